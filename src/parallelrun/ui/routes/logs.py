"""Log files of runs and steps: listed with ids, read by byte ranges. Never addressed by path:
an id names a file the listing found inside the workspace (see :mod:`parallelrun.ui.logfiles`).
"""

from __future__ import annotations

import re
from typing import Optional

from fastapi import APIRouter, Query

from parallelrun.ui import logfiles
from parallelrun.ui.routes.context import AppContext, Ctx
from parallelrun.ui.routes.schemas import LogChunk, LogFilePage
from parallelrun.ui.state import NotFound

FILE_ID = re.compile(r"^[0-9a-f]{20}$")

router = APIRouter(tags=["logs"])


def _run_files(ctx: AppContext, run_id: str) -> list[logfiles.LogFile]:
    run_dir = ctx.view.run_dir(run_id)
    # the run folder itself: its top-level logs only (steps/ has its own endpoints)
    return [f for f in ctx.folders.files(run_dir, within=ctx.workspace.path)
            if "/" not in f.name and f.name.endswith((".log", ".out", ".txt"))]


def _step_files(ctx: AppContext, step_id: str) -> list[logfiles.LogFile]:
    row = ctx.view.step_row(step_id)
    return ctx.folders.files(row.get("log_dir"), within=ctx.workspace.path)


def _page(files: list[logfiles.LogFile], limit: int, offset: int) -> dict:
    return {"items": [f.public() for f in files[offset:offset + limit]],
            "total": len(files), "limit": limit, "offset": offset}


def _chunk(files: list[logfiles.LogFile], file_id: str, offset: Optional[int],
           before: Optional[int], limit: int) -> dict:
    if not FILE_ID.match(file_id):
        raise NotFound(f"no log file {file_id!r}: file ids are 20 hex digits")
    item = logfiles.find(files, file_id)
    if item is None:
        raise NotFound(f"no log file {file_id!r} here (GET .../logs lists them)")
    try:
        return logfiles.read_chunk(item, offset=offset, before=before, limit=limit)
    except OSError:
        raise NotFound(f"log file {item.name} is gone") from None


@router.get("/api/runs/{run_id}/logs", response_model=LogFilePage)
def run_logs(run_id: str, ctx: Ctx, limit: int = Query(100, ge=1, le=1000),
             offset: int = Query(0, ge=0)):
    """The run's own log files (``run.log``: what the runner did; ``runner.out``)."""
    return _page(_run_files(ctx, run_id), limit, offset)


@router.get("/api/runs/{run_id}/logs/{file_id}", response_model=LogChunk)
def run_log(run_id: str, file_id: str, ctx: Ctx, offset: Optional[int] = Query(None, ge=0),
            before: Optional[int] = Query(None, ge=0),
            limit: int = Query(logfiles.DEFAULT_CHUNK, ge=1, le=logfiles.MAX_CHUNK)):
    """Part of a run log file: from ``offset``, ending at ``before``, or its tail."""
    return _chunk(_run_files(ctx, run_id), file_id, offset, before, limit)


@router.get("/api/steps/{step_id}/logs", response_model=LogFilePage)
def step_logs(step_id: str, ctx: Ctx, limit: int = Query(100, ge=1, le=1000),
              offset: int = Query(0, ge=0), category: Optional[str] = None):
    """The step's log files (job result, progress overview, per-process logs...)."""
    files = _step_files(ctx, step_id)
    if category:
        files = [f for f in files if logfiles.category(f.name) == category]
    return _page(files, limit, offset)


@router.get("/api/steps/{step_id}/logs/{file_id}", response_model=LogChunk)
def step_log(step_id: str, file_id: str, ctx: Ctx, offset: Optional[int] = Query(None, ge=0),
             before: Optional[int] = Query(None, ge=0),
             limit: int = Query(logfiles.DEFAULT_CHUNK, ge=1, le=logfiles.MAX_CHUNK)):
    """Part of a step log file: from ``offset`` on, the lines ending at ``before``, or (with
    neither) its last lines. At most ``limit`` bytes, cut at line ends."""
    return _chunk(_step_files(ctx, step_id), file_id, offset, before, limit)
