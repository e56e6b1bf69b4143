"""Published pipelines (``pipeline.publish(...)``): the active ones, and submitting one as a new
run (a token action, as cancel is)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from parallelrun.ui.access import require_token
from parallelrun.ui.routes.context import Ctx
from parallelrun.ui.routes.schemas import PublishedSubmit, SubmitResult

router = APIRouter(tags=["actions"])


@router.get("/api/published-pipelines")
def list_published_pipelines(ctx: Ctx) -> list[dict]:
    """The workspace's active published pipelines (``pipeline.publish(...)``)."""
    from parallelrun.pipeline.published import PublishedPipeline

    return [p.to_dict() for p in PublishedPipeline.list(ctx.workspace)]


@router.post("/api/published-pipelines/{pipeline_id}/submit", response_model=SubmitResult,
             dependencies=[Depends(require_token("submit"))])
def submit_published_pipeline(pipeline_id: str, body: PublishedSubmit, ctx: Ctx):
    """Submit a published pipeline as a new run of ``experiment_name``, with
    ``pipeline_parameters``. Needs the dashboard's token, as cancel does."""
    from parallelrun.pipeline.published import PublishedPipeline

    run = PublishedPipeline.get(ctx.workspace, pipeline_id).submit(
        ctx.workspace, body.experiment_name, pipeline_parameters=body.pipeline_parameters or None)
    return {"run_id": run.id, "experiment": body.experiment_name, "status": run.get_status()}
