"""Step runs: live counts, rate, ETA and workers; their events; items/s over time."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from parallelrun.statuses import RunStatus
from parallelrun.ui.routes.context import AppContext, Ctx
from parallelrun.ui.routes.events import EVENT_STREAM, stream
from parallelrun.ui.routes.schemas import StepDetail, ThroughputSeries
from parallelrun.ui.state import inside, is_terminal

router = APIRouter()


def step_detail(ctx: AppContext, step_id: str) -> dict:
    """The step as GET /api/steps/{step_id} answers it; a running step's counts are also kept
    as a throughput sample."""
    data = ctx.view.step(step_id)
    if data["status"] == RunStatus.RUNNING and data.get("updated_at"):
        row_log = ctx.view.step_row(step_id).get("log_dir")
        ctx.history.get(step_id, row_log).add_sample(
            data["updated_at"], data["items_done"], data["minibatches_done"])
    return data


@router.get("/api/steps/{step_id}", response_model=StepDetail, tags=["steps"])
def get_step(step_id: str, ctx: Ctx):
    """One step run: counts, rate, ETA, per-worker activity, outputs, error."""
    return step_detail(ctx, step_id)


def _step_ended(data: dict) -> bool:
    # a step that never started has ended with its run
    return is_terminal(data["status"]) or (
        data["status"] == RunStatus.NOT_STARTED and is_terminal(data.get("run_status")))


@router.get("/api/steps/{step_id}/events", tags=["steps"], response_class=StreamingResponse,
            responses={200: {**EVENT_STREAM,
                             "description": "`update` events with the step (as GET "
                                            "/api/steps/{step_id}); `end` when it has ended"}})
async def step_events(step_id: str, request: Request, ctx: Ctx):
    """Server-sent events: the step's live counts whenever they change, until it ends."""
    await run_in_threadpool(ctx.view.step_row, step_id)  # 404 before the stream starts
    return stream(request, lambda: step_detail(ctx, step_id), _step_ended,
                  ctx.poll_seconds, ctx.closing)


@router.get("/api/steps/{step_id}/throughput", response_model=ThroughputSeries, tags=["steps"])
def step_throughput(step_id: str, ctx: Ctx):
    """Items done and items/s over time (from the progress overview and live samples)."""
    row = ctx.view.step_row(step_id)
    log_dir = row.get("log_dir") if inside(row.get("log_dir"), ctx.workspace.path) else None
    series = ctx.history.get(step_id, log_dir).series(row.get("started_at"),
                                                      row.get("finished_at"))
    return {"step_id": step_id, **series}
