"""What the data layer needs of a workspace: a registry of versioned datasets.

``ds.register(ws, ...)``, ``Dataset.get_by_name(ws, ...)`` and ``Dataset.get_by_id(ws, ...)``
take the workspace as Azure ML's do, but the data layer sits below the workspace layer and never
imports it: these Protocols are the whole of what it calls. ``parallelrun.Workspace`` meets them
through ``ws.datasets`` (``parallelrun.workspace.datasets.DatasetRegistry``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from parallelrun.errors import WorkspaceError

if TYPE_CHECKING:
    from parallelrun.data.base import AbstractDataset


@runtime_checkable
class DatasetRegistry(Protocol):
    """Registered datasets by name and version."""

    def register(self, dataset: AbstractDataset, name: str, description: str | None = None,
                 tags: dict | None = None, create_new_version: bool = False) -> AbstractDataset:
        """Register ``dataset`` as ``name``; returns the registered version."""

    def get_by_name(self, name: str, version: int | str = "latest") -> AbstractDataset:
        """The version ``version`` (a number or ``"latest"``) of ``name``."""

    def get_by_id(self, id: str) -> AbstractDataset:
        """The registered version with id ``id``."""


@runtime_checkable
class DatasetWorkspace(Protocol):
    """A workspace as the data layer sees it: something with a dataset registry."""

    @property
    def datasets(self) -> DatasetRegistry:
        """The workspace's registered datasets."""


def dataset_registry(workspace: Any) -> DatasetRegistry:
    """``workspace.datasets``, or WorkspaceError naming what was passed instead of a workspace.

    Example: ``dataset_registry(ws).get_by_name("mnist")``.
    """
    registry = getattr(workspace, "datasets", None) if isinstance(workspace, DatasetWorkspace) \
        else None
    if not isinstance(registry, DatasetRegistry):
        raise WorkspaceError(f"workspace={workspace!r} is not a workspace: pass a Workspace "
                             "(Workspace.from_config(), or Workspace.get(name, path=...))")
    return registry
