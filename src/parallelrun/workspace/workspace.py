"""``Workspace``: a folder with a catalog, found through ``config.json`` as in Azure ML.

Layout of a workspace folder::

    config.json                       {"workspace_name": ..., "parallelrun_workspace": 1}
    .parallelrun/catalog.db           the SQLite catalog (mode 0600: it holds datastore secrets)
    .parallelrun/datastores/workspaceblobstore/   the default datastore (a local folder)
    .parallelrun/models/<name>/<version>/         registered models

``Workspace.from_config()`` looks for ``config.json`` (or ``.azureml/config.json``) in the
current folder and then in each parent, as Azure ML does.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import time
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, Iterator

from parallelrun.compute import COMPUTE_KINDS, ComputeTarget, LocalCompute
from parallelrun.errors import UnknownNameError, WorkspaceError  # noqa: F401 (re-exported)
from parallelrun.workspace.catalog import Catalog

if TYPE_CHECKING:
    from parallelrun.workspace.datasets import DatasetRegistry

CONFIG_FILE = "config.json"
STATE_DIR = ".parallelrun"
DEFAULT_DATASTORE = "workspaceblobstore"
#: Azure ML's cloud coordinates of a workspace. They mean nothing on this machine; a workspace
#: keeps what ``create`` was given (in config.json, as Azure ML's config file holds them) and
#: answers ``LOCAL`` for the rest, so notebooks that print them run unchanged.
AZURE_FIELDS = ("subscription_id", "resource_group", "location")
LOCAL = "local"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,31}$")


def known(names: Any) -> str:
    """``a, b, c`` or ``none`` for error messages naming what exists."""
    names = sorted(str(n) for n in names)
    if not names:
        return "none"
    shown = ", ".join(names[:20])
    return shown + (f" (and {len(names) - 20} more)" if len(names) > 20 else "")


class Workspace:
    """A workspace: a folder holding a catalog of datastores, datasets, models, compute targets.

    Example::

        ws = Workspace.create(name="my-ws", path=".", exist_ok=True)
        ws = Workspace.from_config()          # later, from this folder or any folder below it
        store = ws.get_default_datastore()
    """

    def __init__(self, path: str | os.PathLike, _name: str | None = None):
        self.path = os.path.abspath(os.fspath(path))
        config = _read_config(os.path.join(self.path, CONFIG_FILE))
        if config is None:
            raise WorkspaceError(
                f"{self.path!r} is not a parallelrun workspace (no {CONFIG_FILE}); create one "
                "with Workspace.create(name, path=...)")
        self.name = config["workspace_name"]
        self._config = config
        self.catalog = Catalog(os.path.join(self.path, STATE_DIR, "catalog.db"))
        if _name is not None and _name != self.name:
            raise WorkspaceError(f"the workspace at {self.path!r} is named {self.name!r}, not "
                                 f"{_name!r}")

    # Creating and finding ---------------------------------------------------------------------
    @classmethod
    def create(cls, name: str, path: str | os.PathLike = ".", exist_ok: bool = True,
               **_azure_arguments: Any) -> "Workspace":
        """Create (or, with ``exist_ok``, open) the workspace ``name`` in the folder ``path``.

        Example: ``ws = Workspace.create(name="my-ws", path=".", exist_ok=True)``. Azure ML's
        cloud arguments ``subscription_id``, ``resource_group`` and ``location`` are recorded
        (``ws.location`` gives them back); the others (``sku``, ``key_vault``...) are accepted
        and ignored.
        """
        if not isinstance(name, str) or not _NAME.match(name):
            raise WorkspaceError(
                f"workspace name {name!r} is not allowed: 2 to 32 letters, digits, '-' or '_', "
                "starting with a letter or digit")
        folder = os.path.abspath(os.fspath(path))
        config_path = os.path.join(folder, CONFIG_FILE)
        existing = _read_config(config_path)
        if existing is not None:
            if existing["workspace_name"] != name:
                raise WorkspaceError(
                    f"{folder!r} already holds the workspace {existing['workspace_name']!r}; "
                    f"create {name!r} in another folder")
            if not exist_ok:
                raise WorkspaceError(f"workspace {name!r} already exists at {folder!r}; pass "
                                     "exist_ok=True to use it")
        elif os.path.exists(config_path):
            raise WorkspaceError(f"{config_path!r} exists but is not a parallelrun workspace "
                                 "config; choose another folder")
        os.makedirs(os.path.join(folder, STATE_DIR), exist_ok=True)
        if existing is None:
            recorded = {key: str(_azure_arguments[key]) for key in AZURE_FIELDS
                        if _azure_arguments.get(key) is not None}
            _write_config_atomically(config_path, {"workspace_name": name,
                                                   "parallelrun_workspace": 1, **recorded})
        ws = cls(folder)
        ws._initialise()
        return ws

    @classmethod
    def get(cls, name: str, path: str | os.PathLike | None = None, **_azure_arguments: Any) -> "Workspace":
        """The existing workspace ``name``: at ``path``, or found upward from the current folder.

        Example: ``ws = Workspace.get("my-ws")``.
        """
        if path is not None:
            if _read_config(os.path.join(os.path.abspath(os.fspath(path)), CONFIG_FILE)) is None:
                raise WorkspaceError(f"no workspace at {os.fspath(path)!r} (no {CONFIG_FILE}); "
                                     f"create it with Workspace.create({name!r}, path=...)")
            return cls(path, _name=name)
        found = _find_config(os.getcwd())
        if found is None:
            raise WorkspaceError(
                f"workspace {name!r} not found: no {CONFIG_FILE} in {os.getcwd()!r} or its "
                "parents; pass path=, or create it with Workspace.create(name, path=...)")
        return cls(found, _name=name)

    @classmethod
    def from_config(cls, path: str | os.PathLike | None = None, _file_name: str | None = None,
                    **_azure_arguments: Any) -> "Workspace":
        """The workspace whose ``config.json`` is in ``path`` (default: the current folder) or
        in one of its parents, as Azure ML looks for it.

        Example: ``ws = Workspace.from_config()``.
        """
        start = os.path.abspath(os.fspath(path)) if path is not None else os.getcwd()
        if os.path.isfile(start):
            found = _workspace_of_config(start)
        else:
            found = _find_config(start, _file_name or CONFIG_FILE)
        if found is None:
            raise WorkspaceError(
                f"no workspace config found: looked for {_file_name or CONFIG_FILE} and "
                f".azureml/{_file_name or CONFIG_FILE} in {start!r} and every parent folder. "
                "Create a workspace with Workspace.create(name, path=...) or cd into one")
        return cls(found)

    def write_config(self, path: str | os.PathLike | None = None, file_name: str | None = None) -> str:
        """Write a config file pointing at this workspace into ``path``'s ``.azureml`` folder,
        so ``from_config()`` run from there (or below) finds it. Returns the file written."""
        folder = os.path.abspath(os.fspath(path)) if path is not None else os.getcwd()
        target = os.path.join(folder, ".azureml", file_name or CONFIG_FILE)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        _write_config_atomically(target, {"workspace_name": self.name,
                                          "parallelrun_workspace": 1,
                                          "workspace_path": self.path})
        return target

    def _initialise(self) -> None:
        with self.catalog.write() as db:
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('name', ?)", (self.name,))
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('created_at', ?)",
                       (str(time.time()),))
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('default_datastore', ?)",
                       (DEFAULT_DATASTORE,))
            db.execute("INSERT OR IGNORE INTO compute_targets (name, record) VALUES (?, ?)",
                       ("local", json.dumps(LocalCompute("local").to_record())))
            now = time.time()
            db.execute(
                "INSERT OR IGNORE INTO datastores (name, kind, config, secret_env, created_at, "
                "updated_at) VALUES (?, 'local', ?, '{}', ?, ?)",
                (DEFAULT_DATASTORE, json.dumps({"path": _default_store_relpath()}), now, now))
        os.makedirs(os.path.join(self.path, _default_store_relpath()), exist_ok=True)

    # Azure ML's description of a workspace ---------------------------------------------------
    @property
    def subscription_id(self) -> str:
        """The ``subscription_id`` given to :meth:`create`, else ``"local"`` (never raises)."""
        return self._config.get("subscription_id") or LOCAL

    @property
    def resource_group(self) -> str:
        """The ``resource_group`` given to :meth:`create`, else ``"local"`` (never raises)."""
        return self._config.get("resource_group") or LOCAL

    @property
    def location(self) -> str:
        """The ``location`` (Azure region) given to :meth:`create`, else ``"local"``."""
        return self._config.get("location") or LOCAL

    def get_details(self) -> dict[str, Any]:
        """What Azure ML's ``get_details()`` returns, with this workspace's recorded values:
        ``id``, ``name``, ``location``, ``friendlyName``, ``creationTime``, ...; plus
        ``path`` (the folder) and ``defaultDatastore``."""
        rows = self.catalog.query("SELECT key, value FROM meta WHERE key IN "
                                  "('created_at', 'default_datastore')")
        meta = {r["key"]: r["value"] for r in rows}
        created = float(meta.get("created_at") or os.path.getmtime(
            os.path.join(self.path, CONFIG_FILE)))
        return {
            "id": (f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
                   f"/providers/Microsoft.MachineLearningServices/workspaces/{self.name}"),
            "name": self.name, "friendlyName": self.name, "location": self.location,
            "subscriptionId": self.subscription_id, "resourceGroup": self.resource_group,
            "creationTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created)),
            "description": "", "sku": "Basic", "hbiWorkspace": False,
            "containerRegistry": None, "keyVault": None, "applicationInsights": None,
            "storageAccount": None, "workspaceid": self.name,
            "defaultDatastore": meta.get("default_datastore", DEFAULT_DATASTORE),
            "path": self.path,
        }

    @property
    def experiments(self) -> dict:
        """Experiments with at least one run, by name (``ws.experiments["iris-prs"]``)."""
        # Experiment belongs to the pipeline layer above this one: looked up by name on use,
        # as parallelrun/__init__.py does for every public name (no import of that layer here)
        experiment = importlib.import_module("parallelrun.pipeline.experiment").Experiment
        return {e.name: e for e in experiment.list(self)}

    # Folders ----------------------------------------------------------------------------------
    @property
    def state_dir(self) -> str:
        return os.path.join(self.path, STATE_DIR)

    @property
    def model_store(self) -> str:
        return os.path.join(self.state_dir, "models")

    # Datastores -------------------------------------------------------------------------------
    def get_default_datastore(self):
        """The default datastore: ``workspaceblobstore``, a local folder inside the workspace
        (unless :meth:`set_default_datastore` chose another).

        Example: ``ws.get_default_datastore().path("results/")``.
        """
        from parallelrun.workspace.datastore import Datastore

        rows = self.catalog.query("SELECT value FROM meta WHERE key = 'default_datastore'")
        return Datastore.get(self, rows[0]["value"] if rows else DEFAULT_DATASTORE)

    def set_default_datastore(self, name: str) -> None:
        """Make the registered datastore ``name`` the default."""
        from parallelrun.workspace.datastore import Datastore

        Datastore.get(self, name)
        with self.catalog.write() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('default_datastore', ?)",
                       (name,))

    @property
    def datastores(self) -> dict:
        """Registered datastores by name (``ws.datastores["mnist_datastore"]``)."""
        from parallelrun.workspace.datastore import Datastore

        return {ds.name: ds for ds in Datastore.list(self)}

    # Datasets and models ----------------------------------------------------------------------
    @property
    def datasets(self) -> "DatasetRegistry":
        """Registered datasets: as a mapping, the latest version of each by name
        (``ws.datasets["mnist"]``); ``register``, ``get_by_name``, ``get_by_id`` are what
        ``ds.register(ws, ...)`` and ``Dataset.get_by_name(ws, ...)`` call."""
        from parallelrun.workspace.datasets import DatasetRegistry

        return DatasetRegistry(self)

    @property
    def models(self) -> dict:
        """The latest version of every registered model, by name."""
        from parallelrun.workspace.models import Model

        latest: dict[str, Any] = {}
        for model in Model.list(self, latest=True):
            latest[model.name] = model
        return latest

    # Compute targets ---------------------------------------------------------------------------
    @property
    def compute_targets(self) -> "ComputeTargets":
        """Registered compute targets by name; ``"local"`` (worker processes here) is always
        there. Example: ``ws.compute_targets["local"]``, ``ws.compute_targets[name] = target``.
        """
        return ComputeTargets(self)

    def __reduce__(self):
        # no file is read to unpickle: a worker on another machine may lack the folder
        return (_restore_workspace, (self.path, self.name, dict(self._config)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Workspace) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def __repr__(self) -> str:
        return f"Workspace.create(name={self.name!r}, path={self.path!r})"


class ComputeTargets(MutableMapping):
    """The workspace's compute targets, persisted in its catalog as ``ComputeTarget`` records."""

    def __init__(self, workspace: Workspace):
        self._ws = workspace

    def __getitem__(self, name: str) -> ComputeTarget:
        rows = self._ws.catalog.query("SELECT record FROM compute_targets WHERE name = ?", (name,))
        if not rows:
            raise UnknownNameError(f"no compute target {name!r} in workspace {self._ws.name!r}; "
                                   f"registered: {known(self)}")
        record = json.loads(rows[0]["record"])
        if record.get("kind") not in COMPUTE_KINDS:
            raise WorkspaceError(
                f"compute target {name!r} is of kind {record.get('kind')!r}, which this process "
                f"has not loaded (loaded kinds: {known(COMPUTE_KINDS)}); import the module that "
                "defines it (e.g. the Ray backend) first")
        target = ComputeTarget.from_record(record)
        target.workspace = self._ws  # lets a target find its workspace (e.g. to update itself)
        return target

    def __setitem__(self, name: str, target: ComputeTarget) -> None:
        if not isinstance(target, ComputeTarget):
            raise WorkspaceError(f"ws.compute_targets[{name!r}] must be a ComputeTarget, got "
                                 f"{type(target).__name__}")
        if getattr(target, "name", name) != name:
            raise WorkspaceError(f"compute target named {target.name!r} cannot be stored as {name!r}")
        with self._ws.catalog.write() as db:
            db.execute("INSERT OR REPLACE INTO compute_targets (name, record) VALUES (?, ?)",
                       (name, json.dumps(target.to_record())))

    def add(self, target: ComputeTarget) -> ComputeTarget:
        """Store ``target`` under its own name (replacing one of that name)."""
        self[target.name] = target
        return target

    def __delitem__(self, name: str) -> None:
        if name == "local":
            raise WorkspaceError("the compute target 'local' cannot be removed")
        with self._ws.catalog.write() as db:
            removed = db.execute("DELETE FROM compute_targets WHERE name = ?", (name,)).rowcount
        if not removed:
            raise UnknownNameError(f"no compute target {name!r}; registered: {known(self)}")

    def __contains__(self, name: object) -> bool:
        return bool(self._ws.catalog.query("SELECT 1 FROM compute_targets WHERE name = ?", (name,)))

    def __iter__(self) -> Iterator[str]:
        return iter([r["name"] for r in self._ws.catalog.query(
            "SELECT name FROM compute_targets ORDER BY name")])

    def __len__(self) -> int:
        return int(self._ws.catalog.query("SELECT COUNT(*) FROM compute_targets")[0][0])

    def __repr__(self) -> str:
        return f"ComputeTargets({list(self)})"


def _restore_workspace(path: str, name: str, config: dict | None = None) -> Workspace:
    ws = Workspace.__new__(Workspace)
    ws.path, ws.name = path, name
    ws._config = config or {"workspace_name": name}
    ws.catalog = Catalog(os.path.join(path, STATE_DIR, "catalog.db"))
    return ws


def _default_store_relpath() -> str:
    return os.path.join(STATE_DIR, "datastores", DEFAULT_DATASTORE)


def _read_config(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or "workspace_name" not in data:
        return None
    if "parallelrun_workspace" not in data:
        return None  # an Azure ML config.json: names a cloud workspace, not a local one
    return data


def _workspace_of_config(path: str) -> str | None:
    config = _read_config(path)
    if config is None:
        return None
    if config.get("workspace_path"):
        return config["workspace_path"]
    folder = os.path.dirname(os.path.abspath(path))
    return os.path.dirname(folder) if os.path.basename(folder) == ".azureml" else folder


def _find_config(start: str, file_name: str = CONFIG_FILE) -> str | None:
    """The workspace folder of the first config found from ``start`` upward."""
    folder = os.path.abspath(start)
    while True:
        for candidate in (os.path.join(folder, file_name),
                          os.path.join(folder, ".azureml", file_name)):
            found = _workspace_of_config(candidate)
            if found is not None:
                return found
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def _write_config_atomically(path: str, data: dict) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)
