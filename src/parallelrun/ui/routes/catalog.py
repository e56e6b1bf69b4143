"""The workspace's registries: datasets and models with their versions, compute targets,
datastores (never their secrets)."""

from __future__ import annotations

from fastapi import APIRouter

from parallelrun.ui.routes.context import Ctx, Limit, Offset
from parallelrun.ui.routes.schemas import Page

router = APIRouter(tags=["workspace"])


@router.get("/api/datasets", response_model=Page)
def list_datasets(ctx: Ctx, limit: Limit = 50, offset: Offset = 0):
    """Registered datasets by name, with their number of versions and the latest one."""
    return ctx.view.datasets(limit, offset)


@router.get("/api/datasets/{name}/versions", response_model=Page)
def dataset_versions(name: str, ctx: Ctx, limit: Limit = 50, offset: Offset = 0):
    """A dataset's versions, newest first."""
    return ctx.view.dataset_versions(name, limit, offset)


@router.get("/api/models", response_model=Page)
def list_models(ctx: Ctx, limit: Limit = 50, offset: Offset = 0):
    """Registered models by name, with their number of versions and the latest one."""
    return ctx.view.models(limit, offset)


@router.get("/api/models/{name}/versions", response_model=Page)
def model_versions(name: str, ctx: Ctx, limit: Limit = 50, offset: Offset = 0):
    """A model's versions, newest first."""
    return ctx.view.model_versions(name, limit, offset)


@router.get("/api/compute", response_model=Page)
def list_compute(ctx: Ctx):
    """Compute targets registered in the workspace (``local`` is always there)."""
    return ctx.view.compute_targets()


@router.get("/api/datastores", response_model=Page)
def list_datastores(ctx: Ctx):
    """Registered datastores (where they point; never their secrets)."""
    return ctx.view.datastores()
