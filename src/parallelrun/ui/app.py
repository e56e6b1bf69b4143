"""The dashboard: a FastAPI app serving the pages, the JSON API under ``/api`` (described at
``/openapi.json``) and server-sent events for live views.

Read-only, except ``POST /api/runs/{run_id}/cancel``, which needs the token the server printed
at start (header ``X-Parallelrun-Token`` or ``Authorization: Bearer ...``). Requests must name
this machine in their ``Host`` header unless the server was opened to other hosts, so a web page
elsewhere cannot read runs through a DNS name pointing here. Logs are reached by run, step and
file ids, never by paths (see :mod:`parallelrun.ui.logfiles`).

Example::

    app = create_app(Workspace.from_config(), cancel_token="s3cret")
    # uvicorn.run(app, host="127.0.0.1", port=8787), or parallelrun.ui.server.serve(...)
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import threading
import time
from importlib import resources
from typing import Any, Callable, Optional

from fastapi import FastAPI, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict

from parallelrun import __version__
from parallelrun.errors import ParallelRunError, WorkspaceError
from parallelrun.ui import graph as graph_layout
from parallelrun.ui import logfiles
from parallelrun.ui.failures import IndexCache
from parallelrun.ui.state import MAX_LIMIT, RUN_ID, NotFound, WorkspaceView, check_id, inside, \
    is_terminal
from parallelrun.ui.throughput import ThroughputCache

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
STREAM_SECONDS = 600.0   # an event stream ends after this; the browser reconnects
FILE_ID = re.compile(r"^[0-9a-f]{20}$")
TYPE_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")
_STATIC = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8",
           "favicon.svg": "image/svg+xml"}
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
     b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
]


# response shapes (for the OpenAPI document; extra fields pass through) -----------------------
class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class RunBrief(_Open):
    id: str
    status: str
    created_at: float
    started_at: Optional[float] = None
    finished_at: Optional[float] = None
    duration: Optional[float] = None
    runner_lost: bool = False


class Experiment(_Open):
    name: str
    created_at: float
    run_count: int
    latest_run: Optional[RunBrief] = None


class RunSummary(_Open):
    id: str
    experiment: str
    kind: str
    status: str
    created_at: float
    started_at: Optional[float] = None
    finished_at: Optional[float] = None
    duration: Optional[float] = None
    runner_lost: bool
    cancel_requested: bool
    steps_total: int
    steps_finished: int
    items_succeeded: int
    items_failed: int
    items_per_second: float
    error: Optional[str] = None


class StepSummary(_Open):
    id: str
    name: str
    kind: str
    status: str
    minibatches_total: int
    minibatches_succeeded: int
    minibatches_failed: int
    items_succeeded: int
    items_failed: int
    retries: int
    items_per_second: float
    duration: Optional[float] = None


class RunDetail(RunSummary):
    steps: list[StepSummary]
    graph: dict
    layout: dict


class Worker(_Open):
    process: str
    node: Optional[str] = None
    state: Optional[str] = None
    current: Optional[int] = None
    done: int = 0


class StepDetail(StepSummary):
    run_id: str
    minibatches_done: int
    items_done: int
    eta_seconds: Optional[float] = None
    workers_total: int
    workers_ready: int
    workers: list[Worker]
    outputs: list[dict]
    logs_available: bool
    error: Optional[str] = None


class Page(_Open):
    items: list[dict]
    total: int
    limit: int
    offset: int


class ExperimentPage(Page):
    items: list[Experiment]


class RunPage(Page):
    items: list[RunSummary]


class LogFileInfo(_Open):
    id: str
    name: str
    size: int
    modified: float
    category: str


class LogFilePage(Page):
    items: list[LogFileInfo]


class LogChunk(_Open):
    file: LogFileInfo
    start: int
    end: int
    size: int
    at_start: bool
    at_end: bool
    text: str


class ErrorGroup(_Open):
    type: str
    tries: int
    minibatches_failed: int
    retried: int
    first: Optional[dict] = None
    traceback: Optional[str] = None


class ErrorSummary(_Open):
    step_id: str
    groups: list[ErrorGroup]
    failures: int
    scanned_bytes: int
    size: int
    complete: bool


class Failure(_Open):
    entry: int
    index: int
    attempt: int
    outcome: str
    status: str
    type: str
    message: str
    node: str
    process: str
    time: str
    traceback: Optional[str] = None


class FailurePage(Page):
    items: list[Failure]
    type: str


class ThroughputSeries(_Open):
    step_id: str
    points: list[dict]


class CancelResult(_Open):
    id: str
    status: str
    cancel_requested: bool


class PublishedSubmit(BaseModel):
    """The body of ``POST /api/published-pipelines/{id}/submit``."""
    model_config = ConfigDict(extra="forbid")
    experiment_name: str
    pipeline_parameters: dict[str, Any] = {}


class SubmitResult(_Open):
    run_id: str
    experiment: str
    status: str


# the app -----------------------------------------------------------------------------------
class _HostCheck:
    """Plain ASGI middleware: refuse requests for other host names (DNS rebinding), add the
    security headers. Plain ASGI so event streams pass through unbuffered."""

    def __init__(self, app, allowed: frozenset[str] | None):
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.allowed is not None:
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name.lower() not in self.allowed:
                response = JSONResponse(
                    {"detail": f"host {host!r} is not served here; open the dashboard as "
                               "http://127.0.0.1:<port>/ (or start it with --host)"},
                    status_code=421)
                return await response(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + _SECURITY_HEADERS
            await send(message)

        return await self.app(scope, receive, with_headers)


def create_app(workspace: Any, cancel_token: str | None = None,
               allowed_hosts: frozenset[str] | None = LOOPBACK_HOSTS,
               poll_seconds: float = 1.0) -> FastAPI:
    """The dashboard app for ``workspace``.

    ``cancel_token``: the secret that cancel requests must carry (None: cancel is refused).
    ``allowed_hosts``: host names requests may address (None: any, for ``--host``).
    Example: ``create_app(ws, cancel_token=secrets.token_urlsafe(24))``.
    """
    app = FastAPI(title="parallelrun dashboard", version=__version__,
                  description="Read-only state of a parallelrun workspace: experiments, runs, "
                              "steps with live progress, errors, logs, datasets, models, "
                              "compute targets. Cancel and submitting a published pipeline are the "
                              "actions (token required).",
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    view = WorkspaceView(workspace)
    folders = logfiles.FolderCache()
    failures = IndexCache()
    history = ThroughputCache()
    static = {name: (resources.files("parallelrun.ui") / "static" / name).read_bytes()
              for name in (*_STATIC, "index.html")}
    app.state.view = view
    app.state.cancel_token = cancel_token
    #: set when the server stops, so open event streams end instead of being cut
    app.state.closing = threading.Event()

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound):
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(ParallelRunError)
    async def _error(request: Request, exc: ParallelRunError):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    # pages --------------------------------------------------------------------------------
    def page() -> HTMLResponse:
        return HTMLResponse(static["index.html"], headers={"Cache-Control": "no-cache"})

    @app.get("/", include_in_schema=False)
    def home():
        return page()

    for route in ("/runs", "/datasets", "/models", "/compute"):
        app.add_api_route(route, page, include_in_schema=False, methods=["GET"])

    @app.get("/experiments/{name}", include_in_schema=False)
    def experiment_page(name: str):
        view.experiment(name)
        return page()

    @app.get("/runs/{run_id}", include_in_schema=False)
    def run_page(run_id: str):
        check_id("run", run_id, RUN_ID)
        return page()

    @app.get("/steps/{step_id}", include_in_schema=False)
    def step_page(step_id: str):
        check_id("step run", step_id)
        return page()

    @app.get("/steps/{step_id}/failures", include_in_schema=False)
    def failures_page(step_id: str):
        check_id("step run", step_id)
        return page()

    @app.get("/static/{name}", include_in_schema=False)
    def static_file(name: str):
        if name not in _STATIC:
            raise NotFound(f"no static file {name!r}")
        return Response(static[name], media_type=_STATIC[name],
                        headers={"Cache-Control": "no-cache"})

    # workspace ------------------------------------------------------------------------------
    @app.get("/api/workspace", tags=["workspace"])
    def get_workspace() -> dict:
        """The workspace's name, folder and how many of each thing it holds."""
        return {**view.summary(), "version": __version__, "cancel_enabled": cancel_token is not None}

    @app.get("/api/experiments", response_model=ExperimentPage, tags=["runs"])
    def list_experiments(limit: int = Query(50, ge=1, le=MAX_LIMIT), offset: int = Query(0, ge=0)):
        """Experiments by name, each with its number of runs and its latest run."""
        return view.experiments(limit, offset)

    @app.get("/api/experiments/{name}/runs", response_model=RunPage, tags=["runs"])
    def list_experiment_runs(name: str, limit: int = Query(50, ge=1, le=MAX_LIMIT),
                             offset: int = Query(0, ge=0), status: Optional[str] = None):
        """An experiment's runs, newest first: status, duration, items/s, steps finished."""
        return view.runs(experiment=name, status=status, limit=limit, offset=offset)

    @app.get("/api/runs", response_model=RunPage, tags=["runs"])
    def list_runs(limit: int = Query(50, ge=1, le=MAX_LIMIT), offset: int = Query(0, ge=0),
                  status: Optional[str] = None):
        """All runs of the workspace, newest first."""
        return view.runs(status=status, limit=limit, offset=offset)

    def run_detail(run_id: str) -> dict:
        data = view.run(run_id)
        data["layout"] = graph_layout.layout(data.get("graph"))
        data.pop("run_dir", None)
        return data

    @app.get("/api/runs/{run_id}", response_model=RunDetail, tags=["runs"])
    def get_run(run_id: str):
        """One run: status, timings, its steps' status and counts, the pipeline graph."""
        return run_detail(run_id)

    @app.get("/api/runs/{run_id}/events", tags=["runs"],
             response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {}},
                              "description": "`update` events with the run (as GET "
                                             "/api/runs/{run_id}) when it changes; `end` when "
                                             "it has ended"}})
    async def run_events(run_id: str, request: Request):
        """Server-sent events: the run whenever it changes, until it ends."""
        await run_in_threadpool(view.run_dir, run_id)  # 404 before the stream starts
        return _stream(request, lambda: run_detail(run_id),
                       lambda data: is_terminal(data["status"]), poll_seconds, app.state.closing)

    def _check_token(action: str, token: Optional[str], authorization: Optional[str]) -> None:
        given = token
        if given is None and authorization and authorization.lower().startswith("bearer "):
            given = authorization[7:].strip()
        if cancel_token is None:
            raise HTTPException(403, f"{action} is turned off on this dashboard")
        if not given or not secrets.compare_digest(given.encode(), cancel_token.encode()):
            raise HTTPException(403, f"{action} needs the token the dashboard printed when it "
                                     "started (header X-Parallelrun-Token)")

    @app.get("/api/published-pipelines", tags=["actions"])
    def list_published_pipelines() -> list[dict]:
        """The workspace's active published pipelines (``pipeline.publish(...)``)."""
        from parallelrun.pipeline.published import PublishedPipeline

        return [p.to_dict() for p in PublishedPipeline.list(workspace)]

    @app.post("/api/published-pipelines/{pipeline_id}/submit", response_model=SubmitResult,
              tags=["actions"])
    def submit_published_pipeline(pipeline_id: str, body: PublishedSubmit,
                                  x_parallelrun_token: Optional[str] = Header(None),
                                  authorization: Optional[str] = Header(None)):
        """Submit a published pipeline as a new run of ``experiment_name``, with
        ``pipeline_parameters``. Needs the dashboard's token, as cancel does."""
        _check_token("submit", x_parallelrun_token, authorization)
        from parallelrun.pipeline.published import PublishedPipeline

        run = PublishedPipeline.get(workspace, pipeline_id).submit(
            workspace, body.experiment_name, pipeline_parameters=body.pipeline_parameters or None)
        return {"run_id": run.id, "experiment": body.experiment_name, "status": run.get_status()}

    @app.post("/api/runs/{run_id}/cancel", response_model=CancelResult, tags=["actions"])
    def cancel_run(run_id: str, x_parallelrun_token: Optional[str] = Header(None),
                   authorization: Optional[str] = Header(None)):
        """Cancel a run (running steps stop, finished work stays). Needs the token printed
        when the dashboard started, in ``X-Parallelrun-Token`` or ``Authorization: Bearer``."""
        _check_token("cancel", x_parallelrun_token, authorization)
        record = view.run(run_id)
        if is_terminal(record["status"]):
            raise HTTPException(409, f"run {run_id} already ended: {record['status']}")
        from parallelrun.pipeline.runs import Run

        Run.get(workspace, run_id).cancel()
        after = view.run(run_id)
        return {"id": run_id, "status": after["status"], "cancel_requested": True}

    @app.get("/api/runs/{run_id}/logs", response_model=LogFilePage, tags=["logs"])
    def run_logs(run_id: str, limit: int = Query(100, ge=1, le=1000),
                 offset: int = Query(0, ge=0)):
        """The run's own log files (``run.log``: what the runner did; ``runner.out``)."""
        files = _run_files(run_id)
        return {"items": [f.public() for f in files[offset:offset + limit]],
                "total": len(files), "limit": limit, "offset": offset}

    def _run_files(run_id: str) -> list[logfiles.LogFile]:
        run_dir = view.run_dir(run_id)
        # the run folder itself: its top-level logs only (steps/ has its own endpoints)
        return [f for f in folders.files(run_dir, within=workspace.path)
                if "/" not in f.name and f.name.endswith((".log", ".out", ".txt"))]

    @app.get("/api/runs/{run_id}/logs/{file_id}", response_model=LogChunk, tags=["logs"])
    def run_log(run_id: str, file_id: str, offset: Optional[int] = Query(None, ge=0),
                before: Optional[int] = Query(None, ge=0),
                limit: int = Query(logfiles.DEFAULT_CHUNK, ge=1, le=logfiles.MAX_CHUNK)):
        """Part of a run log file: from ``offset``, ending at ``before``, or its tail."""
        return _chunk(_run_files(run_id), file_id, offset, before, limit)

    # steps ----------------------------------------------------------------------------------
    def step_detail(step_id: str) -> dict:
        data = view.step(step_id)
        if data["status"] == "Running" and data.get("updated_at"):
            row_log = view.step_row(step_id).get("log_dir")
            history.get(step_id, row_log).add_sample(
                data["updated_at"], data["items_done"], data["minibatches_done"])
        return data

    @app.get("/api/steps/{step_id}", response_model=StepDetail, tags=["steps"])
    def get_step(step_id: str):
        """One step run: counts, rate, ETA, per-worker activity, outputs, error."""
        return step_detail(step_id)

    @app.get("/api/steps/{step_id}/events", tags=["steps"], response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {}},
                              "description": "`update` events with the step (as GET "
                                             "/api/steps/{step_id}); `end` when it has ended"}})
    async def step_events(step_id: str, request: Request):
        """Server-sent events: the step's live counts whenever they change, until it ends."""
        await run_in_threadpool(view.step_row, step_id)
        return _stream(request, lambda: step_detail(step_id),
                       lambda data: is_terminal(data["status"]) or
                       (data["status"] == "NotStarted" and is_terminal(data.get("run_status"))),
                       poll_seconds, app.state.closing)

    @app.get("/api/steps/{step_id}/throughput", response_model=ThroughputSeries, tags=["steps"])
    def step_throughput(step_id: str):
        """Items done and items/s over time (from the progress overview and live samples)."""
        row = view.step_row(step_id)
        log_dir = row.get("log_dir") if inside(row.get("log_dir"), workspace.path) else None
        series = history.get(step_id, log_dir).series(row.get("started_at"),
                                                      row.get("finished_at"))
        return {"step_id": step_id, **series}

    def _failure_index(step_id: str):
        row = view.step_row(step_id)
        log_dir = row.get("log_dir")
        if not inside(log_dir, workspace.path):
            return None
        return failures.get(log_dir)

    @app.get("/api/steps/{step_id}/errors", response_model=ErrorSummary, tags=["errors"])
    def step_errors(step_id: str, tracebacks: bool = True):
        """Failed tries grouped by exception type, most frequent first, each with its count,
        its failed mini-batches and (``tracebacks``) the first one's traceback. Read
        incrementally: ``complete`` is false while a large error log is still being indexed."""
        index = _failure_index(step_id)
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

    @app.get("/api/steps/{step_id}/errors/items", response_model=FailurePage, tags=["errors"])
    def step_error_items(step_id: str, type: str = Query(..., description="exception type"),
                         limit: int = Query(50, ge=1, le=MAX_LIMIT), offset: int = Query(0, ge=0)):
        """The failed tries of one exception type, in the order they happened."""
        if not TYPE_NAME.match(type):
            raise NotFound(f"no error type {type!r}")
        index = _failure_index(step_id)
        if index is None:
            return {"type": type, "items": [], "total": 0, "limit": limit, "offset": offset}
        index.refresh()
        return index.items(type, offset, limit)

    @app.get("/api/steps/{step_id}/errors/{entry}", response_model=Failure, tags=["errors"])
    def step_error(step_id: str, entry: int):
        """One failed try (``entry`` from the item list) with its full traceback."""
        index = _failure_index(step_id)
        found = None
        if index is not None and entry >= 0:
            index.refresh()
            found = index.traceback(entry)
        if found is None:
            raise NotFound(f"step run {step_id} has no failure {entry}")
        return found

    def _step_files(step_id: str) -> list[logfiles.LogFile]:
        row = view.step_row(step_id)
        return folders.files(row.get("log_dir"), within=workspace.path)

    @app.get("/api/steps/{step_id}/logs", response_model=LogFilePage, tags=["logs"])
    def step_logs(step_id: str, limit: int = Query(100, ge=1, le=1000),
                  offset: int = Query(0, ge=0), category: Optional[str] = None):
        """The step's log files (job result, progress overview, per-process logs...)."""
        files = _step_files(step_id)
        if category:
            files = [f for f in files if logfiles.category(f.name) == category]
        return {"items": [f.public() for f in files[offset:offset + limit]],
                "total": len(files), "limit": limit, "offset": offset}

    @app.get("/api/steps/{step_id}/logs/{file_id}", response_model=LogChunk, tags=["logs"])
    def step_log(step_id: str, file_id: str, offset: Optional[int] = Query(None, ge=0),
                 before: Optional[int] = Query(None, ge=0),
                 limit: int = Query(logfiles.DEFAULT_CHUNK, ge=1, le=logfiles.MAX_CHUNK)):
        """Part of a step log file: from ``offset`` on, the lines ending at ``before``, or (with
        neither) its last lines. At most ``limit`` bytes, cut at line ends."""
        return _chunk(_step_files(step_id), file_id, offset, before, limit)

    def _chunk(files, file_id: str, offset, before, limit) -> dict:
        if not FILE_ID.match(file_id):
            raise NotFound(f"no log file {file_id!r}: file ids are 20 hex digits")
        item = logfiles.find(files, file_id)
        if item is None:
            raise NotFound(f"no log file {file_id!r} here (GET .../logs lists them)")
        try:
            return logfiles.read_chunk(item, offset=offset, before=before, limit=limit)
        except OSError:
            raise NotFound(f"log file {item.name} is gone") from None

    # registries -----------------------------------------------------------------------------
    @app.get("/api/datasets", response_model=Page, tags=["workspace"])
    def list_datasets(limit: int = Query(50, ge=1, le=MAX_LIMIT), offset: int = Query(0, ge=0)):
        """Registered datasets by name, with their number of versions and the latest one."""
        return view.datasets(limit, offset)

    @app.get("/api/datasets/{name}/versions", response_model=Page, tags=["workspace"])
    def dataset_versions(name: str, limit: int = Query(50, ge=1, le=MAX_LIMIT),
                         offset: int = Query(0, ge=0)):
        """A dataset's versions, newest first."""
        return view.dataset_versions(name, limit, offset)

    @app.get("/api/models", response_model=Page, tags=["workspace"])
    def list_models(limit: int = Query(50, ge=1, le=MAX_LIMIT), offset: int = Query(0, ge=0)):
        """Registered models by name, with their number of versions and the latest one."""
        return view.models(limit, offset)

    @app.get("/api/models/{name}/versions", response_model=Page, tags=["workspace"])
    def model_versions(name: str, limit: int = Query(50, ge=1, le=MAX_LIMIT),
                       offset: int = Query(0, ge=0)):
        """A model's versions, newest first."""
        return view.model_versions(name, limit, offset)

    @app.get("/api/compute", response_model=Page, tags=["workspace"])
    def list_compute():
        """Compute targets registered in the workspace (``local`` is always there)."""
        return view.compute_targets()

    @app.get("/api/datastores", response_model=Page, tags=["workspace"])
    def list_datastores():
        """Registered datastores (where they point; never their secrets)."""
        return view.datastores()

    app.add_middleware(_HostCheck, allowed=allowed_hosts)
    return app


def _stream(request: Request, read: Callable[[], dict], done: Callable[[dict], bool],
            every: float, closing: threading.Event) -> StreamingResponse:
    async def events():
        deadline = time.monotonic() + STREAM_SECONDS
        last_text, last_sent = None, time.monotonic()
        yield "retry: 2000\n\n"
        while time.monotonic() < deadline and not closing.is_set():
            if await request.is_disconnected():
                return
            try:
                data = await run_in_threadpool(read)
            except (NotFound, WorkspaceError):
                yield "event: gone\ndata: {}\n\n"
                return
            text = json.dumps(data, default=str, separators=(",", ":"))
            if text != last_text:
                yield f"event: update\ndata: {text}\n\n"
                last_text, last_sent = text, time.monotonic()
            elif time.monotonic() - last_sent > 15:
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()
            if done(data):
                yield "event: end\ndata: {}\n\n"
                return
            await asyncio.sleep(every)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def new_token() -> str:
    """A cancel token: 32 random bytes, URL-safe."""
    return secrets.token_urlsafe(32)
