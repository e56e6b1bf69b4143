"""The workspace a run goes to: the one found from the current folder, else the default one.

Every job is a run in a workspace, also when nobody made one: outside a workspace folder, runs
go to a per-user default workspace, ``~/.parallelrun`` (the variable ``PARALLELRUN_HOME`` names
another folder). It is an ordinary workspace (``config.json`` and ``.parallelrun/`` inside that
folder), created on first use.

Example::

    ws, created = workspace_for_runs()          # config.json upward from here, else the default
    ws, created = default_workspace()           # always the default one
"""

from __future__ import annotations

import os

from parallelrun.errors import WorkspaceError
from parallelrun.workspace.workspace import CONFIG_FILE, Workspace

#: the environment variable naming the default workspace's folder
HOME_VARIABLE = "PARALLELRUN_HOME"
DEFAULT_NAME = "default"


def default_workspace_path() -> str:
    """The default workspace's folder: ``$PARALLELRUN_HOME``, else ``~/.parallelrun``."""
    folder = os.environ.get(HOME_VARIABLE) or os.path.join("~", ".parallelrun")
    return os.path.abspath(os.path.expanduser(folder))


def default_workspace(create: bool = True) -> tuple[Workspace | None, bool]:
    """The default workspace and whether this call created it; ``(None, False)`` when it does
    not exist and ``create`` is False."""
    folder = default_workspace_path()
    if os.path.isfile(os.path.join(folder, CONFIG_FILE)):
        return Workspace(folder), False
    if not create:
        return None, False
    try:
        return Workspace.create(DEFAULT_NAME, path=folder, exist_ok=True), True
    except OSError as exc:
        raise WorkspaceError(
            f"cannot create the default workspace in {folder!r} ({exc.strerror or exc}); set "
            f"{HOME_VARIABLE} to a folder you can write, or run inside a workspace "
            "(Workspace.create(name, path=...))") from None


def workspace_for_runs(path: str | os.PathLike | None = None,
                       create: bool = True) -> tuple[Workspace | None, bool]:
    """The workspace that records runs: the one at ``path`` when given, else the one whose
    config.json is in the current folder or a parent, else the default workspace (created when
    ``create``). Returns it and whether this call created it."""
    if path is not None:
        return Workspace.from_config(path), False
    try:
        return Workspace.from_config(), False
    except WorkspaceError:
        return default_workspace(create=create)
