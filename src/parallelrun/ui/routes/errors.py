"""A step's failed tries: grouped by exception type, listed per type, one with its traceback.
Read from the engine's failure records through an index kept between requests
(:mod:`parallelrun.ui.failures`)."""

from __future__ import annotations

import re

from fastapi import APIRouter, Query

from parallelrun.ui.failures import FailureIndex
from parallelrun.ui.routes.context import AppContext, Ctx, Limit, Offset
from parallelrun.ui.routes.schemas import ErrorSummary, Failure, FailurePage
from parallelrun.ui.state import NotFound, inside

TYPE_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")

router = APIRouter(tags=["errors"])


def _failure_index(ctx: AppContext, step_id: str) -> FailureIndex | None:
    """The step's failure index; None when its log folder is not inside the workspace."""
    log_dir = ctx.view.step_row(step_id).get("log_dir")
    if not inside(log_dir, ctx.workspace.path):
        return None
    return ctx.failures.get(log_dir)


@router.get("/api/steps/{step_id}/errors", response_model=ErrorSummary)
def step_errors(step_id: str, ctx: Ctx, tracebacks: bool = True):
    """Failed tries grouped by exception type, most frequent first, each with its count,
    its failed mini-batches and (``tracebacks``) the first one's traceback. Read
    incrementally: ``complete`` is false while a large error log is still being indexed."""
    index = _failure_index(ctx, step_id)
    if index is None:
        return {"step_id": step_id, "groups": [], "failures": 0, "scanned_bytes": 0,
                "size": 0, "complete": True}
    complete = index.refresh()
    groups = index.groups()
    if tracebacks:
        for group in groups:
            if group["first"] is not None:
                found = index.traceback(group["first"]["entry"])
                group["traceback"] = found and found.get("traceback")
    return {"step_id": step_id, "groups": groups, "failures": index.total(),
            "scanned_bytes": index.read_to, "size": index.size, "complete": complete}


# declared before /errors/{entry}, which would take "items" for an entry
@router.get("/api/steps/{step_id}/errors/items", response_model=FailurePage)
def step_error_items(step_id: str, ctx: Ctx,
                     type: str = Query(..., description="exception type"),
                     limit: Limit = 50, offset: Offset = 0):
    """The failed tries of one exception type, in the order they happened."""
    if not TYPE_NAME.match(type):
        raise NotFound(f"no error type {type!r}")
    index = _failure_index(ctx, step_id)
    if index is None:
        return {"type": type, "items": [], "total": 0, "limit": limit, "offset": offset}
    index.refresh()
    return index.items(type, offset, limit)


@router.get("/api/steps/{step_id}/errors/{entry}", response_model=Failure)
def step_error(step_id: str, entry: int, ctx: Ctx):
    """One failed try (``entry`` from the item list) with its full traceback."""
    index = _failure_index(ctx, step_id)
    found = None
    if index is not None and entry >= 0:
        index.refresh()
        found = index.traceback(entry)
    if found is None:
        raise NotFound(f"step run {step_id} has no failure {entry}")
    return found
