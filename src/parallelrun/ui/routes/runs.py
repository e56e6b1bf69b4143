"""Experiments and runs: lists, one run with its steps and graph, its live events, and
cancelling it (the token's action)."""

from __future__ import annotations

from typing import Optional

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from parallelrun import __version__
from parallelrun.ui import graph as graph_layout
from parallelrun.ui.access import require_token
from parallelrun.ui.routes.context import AppContext, Ctx, Limit, Offset
from parallelrun.ui.routes.events import EVENT_STREAM, stream
from parallelrun.ui.routes.schemas import CancelResult, ExperimentPage, RunDetail, RunPage
from parallelrun.ui.state import is_terminal

router = APIRouter()


@router.get("/api/workspace", tags=["workspace"])
def get_workspace(ctx: Ctx) -> dict:
    """The workspace's name, folder and how many of each thing it holds."""
    return {**ctx.view.summary(), "version": __version__,
            "cancel_enabled": ctx.cancel_token is not None}


@router.get("/api/experiments", response_model=ExperimentPage, tags=["runs"])
def list_experiments(ctx: Ctx, limit: Limit = 50, offset: Offset = 0):
    """Experiments by name, each with its number of runs and its latest run."""
    return ctx.view.experiments(limit, offset)


@router.get("/api/experiments/{name}/runs", response_model=RunPage, tags=["runs"])
def list_experiment_runs(name: str, ctx: Ctx, limit: Limit = 50, offset: Offset = 0,
                         status: Optional[str] = None):
    """An experiment's runs, newest first: status, duration, items/s, steps finished."""
    return ctx.view.runs(experiment=name, status=status, limit=limit, offset=offset)


@router.get("/api/runs", response_model=RunPage, tags=["runs"])
def list_runs(ctx: Ctx, limit: Limit = 50, offset: Offset = 0, status: Optional[str] = None):
    """All runs of the workspace, newest first."""
    return ctx.view.runs(status=status, limit=limit, offset=offset)


def run_detail(ctx: AppContext, run_id: str) -> dict:
    """The run as GET /api/runs/{run_id} answers it: its graph laid out, no paths."""
    data = ctx.view.run(run_id)
    data["layout"] = graph_layout.layout(data.get("graph"))
    data.pop("run_dir", None)
    return data


@router.get("/api/runs/{run_id}", response_model=RunDetail, tags=["runs"])
def get_run(run_id: str, ctx: Ctx):
    """One run: status, timings, its steps' status and counts, the pipeline graph."""
    return run_detail(ctx, run_id)


@router.get("/api/runs/{run_id}/events", tags=["runs"], response_class=StreamingResponse,
            responses={200: {**EVENT_STREAM,
                             "description": "`update` events with the run (as GET "
                                            "/api/runs/{run_id}) when it changes; `end` when it "
                                            "has ended"}})
async def run_events(run_id: str, request: Request, ctx: Ctx):
    """Server-sent events: the run whenever it changes, until it ends."""
    await run_in_threadpool(ctx.view.run_dir, run_id)  # 404 before the stream starts
    return stream(request, lambda: run_detail(ctx, run_id),
                  lambda data: is_terminal(data["status"]), ctx.poll_seconds, ctx.closing)


@router.post("/api/runs/{run_id}/cancel", response_model=CancelResult, tags=["actions"],
             dependencies=[Depends(require_token("cancel"))])
def cancel_run(run_id: str, ctx: Ctx):
    """Cancel a run (running steps stop, finished work stays). Needs the token printed
    when the dashboard started, in ``X-Parallelrun-Token`` or ``Authorization: Bearer``."""
    record = ctx.view.run(run_id)
    if is_terminal(record["status"]):
        raise HTTPException(409, f"run {run_id} already ended: {record['status']}")
    from parallelrun.pipeline.runs import Run

    Run.get(ctx.workspace, run_id).cancel()
    after = ctx.view.run(run_id)
    return {"id": run_id, "status": after["status"], "cancel_requested": True}
