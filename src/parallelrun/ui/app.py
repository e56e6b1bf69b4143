"""The dashboard: a FastAPI app serving the pages, the JSON API under ``/api`` (described at
``/openapi.json``) and server-sent events for live views.

Read-only, except ``POST /api/runs/{run_id}/cancel`` and submitting a published pipeline, which
need the token the server printed at start (header ``X-Parallelrun-Token`` or
``Authorization: Bearer ...``). Requests must name this machine in their ``Host`` header unless
the server was opened to other hosts, so a web page elsewhere cannot read runs through a DNS
name pointing here (both in :mod:`parallelrun.ui.access`). Logs are reached by run, step and
file ids, never by paths (see :mod:`parallelrun.ui.logfiles`). The routes live in
:mod:`parallelrun.ui.routes`, one router per area; this module assembles them.

Example::

    app = create_app(Workspace.from_config(), cancel_token="s3cret")
    # uvicorn.run(app, host="127.0.0.1", port=8787), or parallelrun.ui.server.serve(...)
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from parallelrun import __version__
from parallelrun.errors import ParallelRunError
from parallelrun.ui.access import LOOPBACK_HOSTS, HostCheck, new_token
from parallelrun.ui.routes import catalog, errors, logs, pages, published, runs, steps
from parallelrun.ui.routes.context import AppContext
from parallelrun.ui.state import NotFound

__all__ = ["LOOPBACK_HOSTS", "create_app", "new_token"]

#: in the order they are matched (pages first: they hold no /api/ path)
ROUTERS = (pages.router, runs.router, published.router, logs.router, steps.router,
           errors.router, catalog.router)


async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=404)


async def _refused(request: Request, exc: ParallelRunError) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=400)


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
    context = AppContext(workspace, cancel_token=cancel_token, poll_seconds=poll_seconds)
    app.state.context = context   # the routes' dependency (routes/context.py)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(ParallelRunError, _refused)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(HostCheck, allowed=allowed_hosts)
    return app
