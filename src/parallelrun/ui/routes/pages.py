"""The dashboard's pages and static assets. Every page is the same ``index.html`` (the script
routes in the browser); pages of one thing check its id first, so a bad link answers 404.
"""

from __future__ import annotations

import functools
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from parallelrun.ui.routes.context import Ctx
from parallelrun.ui.state import RUN_ID, NotFound, check_id

#: the assets served under /static/, with their media types; nothing else is
STATIC = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8",
          "favicon.svg": "image/svg+xml"}
_NO_CACHE = {"Cache-Control": "no-cache"}

router = APIRouter(include_in_schema=False)


@functools.cache
def _asset(name: str) -> bytes:
    return (resources.files("parallelrun.ui") / "static" / name).read_bytes()


def page() -> HTMLResponse:
    """The page (its script shows what the URL names)."""
    return HTMLResponse(_asset("index.html"), headers=_NO_CACHE)


for _path in ("/", "/runs", "/datasets", "/models", "/compute"):
    router.add_api_route(_path, page, methods=["GET"])


@router.get("/experiments/{name}")
def experiment_page(name: str, ctx: Ctx):
    ctx.view.experiment(name)
    return page()


@router.get("/runs/{run_id}")
def run_page(run_id: str):
    check_id("run", run_id, RUN_ID)
    return page()


@router.get("/steps/{step_id}")
def step_page(step_id: str):
    check_id("step run", step_id)
    return page()


@router.get("/steps/{step_id}/failures")
def failures_page(step_id: str):
    check_id("step run", step_id)
    return page()


@router.get("/static/{name}")
def static_file(name: str):
    if name not in STATIC:
        raise NotFound(f"no static file {name!r}")
    return Response(_asset(name), media_type=STATIC[name], headers=_NO_CACHE)
