"""Registered, versioned datasets: ``ds.register(ws, name)``, ``Dataset.get_by_name(ws, name)``.

A registered version stores how to re-create the dataset (its kind's ``to_record()``: paths and
constructor arguments, with remote URLs turned into ``{"datastore", "path"}`` references so no
credential is stored) and a **fingerprint** of the data it named when registered: a SHA-256 over
every file's path, size and version tag (etag on Azure Blob and S3, modification time locally),
with the file count and total bytes. So a version keeps meaning the same data: comparing the
fingerprint now (:func:`verify`) tells whether the files changed since.

Versions are allocated inside the catalog's write lock (``BEGIN IMMEDIATE``), so processes
registering the same name at once each get their own version number. The listing for the
fingerprint runs before the lock is taken.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from parallelrun.data import remote
from parallelrun.data.base import AbstractDataset, dataset_class
from parallelrun.errors import DataError, UnknownNameError, WorkspaceError
from parallelrun.workspace.workspace import Workspace, known


def fingerprint(dataset: AbstractDataset) -> dict:
    """``{"fingerprint": sha256, "file_count": n, "total_bytes": b}`` of the data now.

    Example: ``fingerprint(ds)["fingerprint"] == ds.registration["fingerprint"]`` when the
    files did not change.
    """
    digest = hashlib.sha256()
    count = total = 0
    for entry in dataset.file_entries():
        digest.update(f"{entry.url}\t{entry.size}\t{entry.tag}\n".encode("utf-8"))
        count += 1
        total += entry.size
    return {"fingerprint": digest.hexdigest(), "file_count": count, "total_bytes": total}


def verify(dataset: AbstractDataset) -> bool:
    """True when a registered dataset's files are still those it was registered with."""
    if not dataset.registration:
        raise WorkspaceError("verify() needs a registered dataset (Dataset.get_by_name(...))")
    return fingerprint(dataset)["fingerprint"] == dataset.registration["fingerprint"]


def _datastore_refs(ws: Workspace, record: dict) -> dict:
    """Remote URL strings in ``record["paths"]`` as references to the datastore holding them."""
    from parallelrun.workspace.datastore import Datastore

    roots = sorted(((store.root_url, store.name) for store in Datastore.list(ws)
                    if store.storage_kind.remote), key=lambda r: -len(r[0]))
    paths = []
    for path in record.get("paths", []):
        if isinstance(path, str) and remote.is_remote(path):
            for root, name in roots:
                if path.startswith(root):
                    path = {"datastore": name, "path": path[len(root):]}
                    break
        paths.append(path)
    return {**record, "paths": paths}


def _resolve(ws: Workspace, record: dict) -> dict:
    """Datastore references back to DataPath objects (credentials resolved when opened)."""
    from parallelrun.workspace.datastore import Datastore

    paths = []
    for path in record.get("paths", []):
        if isinstance(path, dict) and "datastore" in path:
            path = Datastore.get(ws, path["datastore"]).path(path["path"])
        paths.append(path)
    return {**record, "paths": paths}


def register(ws: Workspace, dataset: AbstractDataset, name: str, description: str | None = None,
             tags: dict | None = None, create_new_version: bool = False) -> AbstractDataset:
    """Register ``dataset`` as ``name`` in ``ws``; see ``AbstractDataset.register``."""
    if not isinstance(name, str) or not name.strip() or len(name) > 250:
        raise WorkspaceError(f"dataset name {name!r} is not allowed: a non-empty name of at most "
                             "250 characters")
    record = _datastore_refs(ws, dataset.to_record())
    record_json = json.dumps(record, sort_keys=True)
    json.loads(record_json)  # fails here, not at get_by_name, if something is not JSON-able
    summary = fingerprint(dataset)
    if summary["file_count"] == 0:
        raise DataError(f"dataset {name!r} names no files ({dataset.describe()}); nothing to "
                        "register")
    with ws.catalog.write() as db:
        latest = db.execute("SELECT * FROM datasets WHERE name = ? ORDER BY version DESC LIMIT 1",
                            (name,)).fetchone()
        if latest is not None and not create_new_version:
            if latest["record"] == record_json and latest["fingerprint"] == summary["fingerprint"]:
                dataset_id = latest["id"]
            else:
                raise WorkspaceError(
                    f"dataset {name!r} is already registered (latest version {latest['version']}) "
                    "with another definition or other data; pass create_new_version=True to add "
                    "a version")
        else:
            version = (latest["version"] + 1) if latest is not None else 1
            dataset_id = str(uuid.uuid4())
            db.execute(
                "INSERT INTO datasets (id, name, version, kind, record, fingerprint, file_count, "
                "total_bytes, description, tags, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (dataset_id, name, version, record["kind"], record_json, summary["fingerprint"],
                 summary["file_count"], summary["total_bytes"], description,
                 json.dumps(tags or {}), time.time()))
    return get_by_id(ws, dataset_id)


def _recreate(ws: Workspace, row) -> AbstractDataset:
    record = _resolve(ws, json.loads(row["record"]))
    dataset = dataset_class(record["kind"]).from_record(record)
    dataset.registration = _describe_row(row)
    return dataset


def _describe_row(row) -> dict:
    return {"id": row["id"], "name": row["name"], "version": row["version"], "kind": row["kind"],
            "fingerprint": row["fingerprint"], "file_count": row["file_count"],
            "total_bytes": row["total_bytes"], "description": row["description"],
            "tags": json.loads(row["tags"]), "created_at": row["created_at"],
            "paths": json.loads(row["record"]).get("paths", [])}


def get_by_name(ws: Workspace, name: str, version: int | str = "latest") -> AbstractDataset:
    """The dataset registered as ``name``, at ``version`` (a number, or ``"latest"``)."""
    rows = ws.catalog.query("SELECT * FROM datasets WHERE name = ? ORDER BY version", (name,))
    if not rows:
        raise UnknownNameError(f"no dataset {name!r} in workspace {ws.name!r}; registered: "
                               f"{known(names(ws))}")
    if version is None or str(version).lower() == "latest":
        return _recreate(ws, rows[-1])
    try:
        wanted = int(version)
    except (TypeError, ValueError):
        raise WorkspaceError(f"version={version!r}: give a version number or 'latest'") from None
    for row in rows:
        if row["version"] == wanted:
            return _recreate(ws, row)
    raise UnknownNameError(f"dataset {name!r} has no version {wanted}; versions: "
                           f"{', '.join(str(r['version']) for r in rows)} (or 'latest')")


def get_by_id(ws: Workspace, dataset_id: str) -> AbstractDataset:
    """The registered dataset version with id ``dataset_id``."""
    rows = ws.catalog.query("SELECT * FROM datasets WHERE id = ?", (dataset_id,))
    if not rows:
        raise UnknownNameError(f"no dataset with id {dataset_id!r} in workspace {ws.name!r} "
                               f"(registered datasets: {known(names(ws))})")
    return _recreate(ws, rows[0])


def names(ws: Workspace) -> list[str]:
    return [r["name"] for r in ws.catalog.query("SELECT DISTINCT name FROM datasets ORDER BY name")]


def list_versions(ws: Workspace, name: str | None = None, latest: bool = False) -> list[dict]:
    """Registered versions as dicts (what ``parallelrun dataset list`` shows)."""
    sql = "SELECT * FROM datasets"
    params: tuple[Any, ...] = ()
    if name is not None:
        sql += " WHERE name = ?"
        params = (name,)
    rows = [_describe_row(r) for r in ws.catalog.query(sql + " ORDER BY name, version", params)]
    if latest:
        last: dict[str, dict] = {}
        for row in rows:
            last[row["name"]] = row
        rows = list(last.values())
    return rows


class DatasetRegistry(Mapping):
    """A workspace's registered datasets (``ws.datasets``): the interface the data layer calls.

    As a mapping (Azure ML's ``ws.datasets``) it gives the latest version of each name:
    ``ws.datasets["mnist"]``, ``list(ws.datasets)``. Its methods are what
    ``ds.register(ws, ...)``, ``Dataset.get_by_name(ws, ...)`` and ``Dataset.get_by_id(ws, ...)``
    call (typed there by :class:`parallelrun.data.registry.DatasetWorkspace`, so the data layer
    never imports this one).

    Example: ``ws.datasets.get_by_name("mnist", version=2)``.
    """

    def __init__(self, workspace: Workspace):
        self._ws = workspace

    def register(self, dataset: AbstractDataset, name: str, description: str | None = None,
                 tags: dict | None = None, create_new_version: bool = False) -> AbstractDataset:
        """Register ``dataset`` as ``name``; the registered version comes back (see
        ``AbstractDataset.register``)."""
        return register(self._ws, dataset, name, description=description, tags=tags,
                        create_new_version=create_new_version)

    def get_by_name(self, name: str, version: int | str = "latest") -> AbstractDataset:
        """The dataset registered as ``name`` at ``version`` (a number or ``"latest"``)."""
        return get_by_name(self._ws, name, version)

    def get_by_id(self, id: str) -> AbstractDataset:
        """The registered version with id ``id`` (``ds.id``)."""
        return get_by_id(self._ws, id)

    def __getitem__(self, name: str) -> AbstractDataset:
        return get_by_name(self._ws, name)

    def __iter__(self) -> Iterator[str]:
        return iter(names(self._ws))

    def __len__(self) -> int:
        return len(names(self._ws))

    def __repr__(self) -> str:
        return f"DatasetRegistry({names(self._ws)!r})"

