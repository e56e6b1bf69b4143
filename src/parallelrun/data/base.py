"""What every dataset kind provides: a deterministic plan of mini-batches."""

from __future__ import annotations

import abc
import copy
import importlib
from typing import Any, Iterable, Iterator

from parallelrun.data.minibatch import MiniBatch
from parallelrun.data.registry import DatasetWorkspace, dataset_registry
from parallelrun.errors import DataError

#: dataset kind -> class, filled as dataset classes are defined (``to_record()["kind"]``)
DATASET_KINDS: dict[str, type["AbstractDataset"]] = {}
# kinds whose module is imported on first use when a workspace re-creates a registered dataset
_KIND_MODULES = {"file": "parallelrun.data.files", "tabular": "parallelrun.data.tabular",
                 "mltable": "parallelrun.data.mltable"}


def dataset_class(kind: str) -> type["AbstractDataset"]:
    """The dataset class of a record's ``kind`` (``"file"``, ``"tabular"``, ``"mltable"``),
    imported if need be."""
    if kind not in DATASET_KINDS and kind in _KIND_MODULES:
        importlib.import_module(_KIND_MODULES[kind])
    try:
        return DATASET_KINDS[kind]
    except KeyError:
        raise DataError(f"unknown dataset kind {kind!r}; known: "
                        f"{', '.join(sorted(set(DATASET_KINDS) | set(_KIND_MODULES)))}") from None


class AbstractDataset(abc.ABC):
    """A dataset kind (files, tables). Subclasses plan mini-batches; the engine runs them.

    ``name`` is set by :meth:`as_named_input` and lets the entry script find its input by name.
    """

    #: "file" or "tabular": decides what mini_batch_size means and what run() receives.
    kind: str = ""
    #: the ``kind`` of this class's registration records (``to_record``), by which
    #: ``dataset_class`` finds the class that re-creates them; ``kind`` unless set (an MLTable is
    #: "tabular" to the engine, yet re-created by its own class)
    record_kind: str = ""
    name: str | None = None
    #: set when the dataset was registered in a workspace (id and version of the record)
    registration: dict | None = None
    #: what the dataset reads: local paths, folders or globs, or URLs (``az://``, ``s3://``)
    paths: list[str] = []

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "from_record" in cls.__dict__:
            record_kind = cls.__dict__.get("record_kind") or cls.__dict__.get("kind")
            if record_kind:
                DATASET_KINDS.setdefault(record_kind, cls)

    @abc.abstractmethod
    def plan(self, mini_batch_size: int | str | None, partition_keys: list[str] | None = None,
             start_index: int = 0, exclude: Iterable[str] = ()) -> Iterator[MiniBatch]:
        """Yield mini-batches in a deterministic order, numbered from ``start_index``; local
        folders in ``exclude`` (the job's own output and logs) are never read as input."""

    @abc.abstractmethod
    def check_mini_batch_size(self, value: int | str | None) -> None:
        """Raise ConfigurationError when ``value`` means nothing for this kind of dataset."""

    @abc.abstractmethod
    def check_inputs(self) -> None:
        """Raise DataError naming the path when one of the dataset's paths names no file now
        (a missing or empty folder, a glob matching nothing): what ``validate=True`` checks at
        construction, and ``run_job`` checks again before any work, as a registered dataset's
        files may have gone since. Costs one listing step per path, not a listing."""

    @abc.abstractmethod
    def describe(self) -> str:
        """A short, human description for logs and errors, e.g. ``files data/*.png``."""

    def local_paths(self) -> list[str]:
        """The paths this dataset reads on this machine's filesystem (not URLs)."""
        from parallelrun.data.remote import is_remote

        return [path for path in self.paths if not is_remote(path)]

    def check_outside(self, folders: Iterable[str]) -> None:
        """Raise DataError when a path lists one of ``folders`` (the job's own output and log
        folders: local paths, or URLs on a datastore), whose results would become inputs:
        ``run_job`` asks before it writes anything. Listing refuses the same, and never enters
        those folders where they lie under an input."""
        from parallelrun.data.listing import check_outside
        from parallelrun.data.urls import is_remote

        folders = list(folders)
        for spec in self.paths:
            if is_remote(spec):
                from parallelrun.data.remote import check_remote_outside

                check_remote_outside(spec, folders)
            else:
                check_outside(spec, folders)

    def as_named_input(self, name: str) -> "AbstractDataset":
        """A copy of this dataset known to the entry script as ``name``.

        Example: ``step inputs=[ds.as_named_input("mnist")]``; inside the script,
        ``Run.get_context().input_datasets["mnist"]``.
        """
        named = copy.copy(self)
        named.name = name
        return named

    def as_mount(self) -> "AbstractDataset":
        """Accepted for code written for Azure ML; files are always handed over as local paths."""
        return self

    as_download = as_mount

    # Registration in a workspace (Azure ML's names). The workspace's dataset registry does the
    # work, through the Protocol in data/registry.py: the data layer never imports the workspace.
    def register(self, workspace: DatasetWorkspace, name: str, description: str | None = None,
                 tags: dict | None = None, create_new_version: bool = False) -> "AbstractDataset":
        """Register this dataset in ``workspace`` as ``name``; returns the registered version.

        Example: ``ds = ds.register(ws, "mnist_sample_data", create_new_version=True)``. With
        ``create_new_version=False`` an existing name is an error unless it holds the same
        definition (then that version is returned).
        """
        return dataset_registry(workspace).register(self, name, description=description,
                                                    tags=tags,
                                                    create_new_version=create_new_version)

    @staticmethod
    def get_by_name(workspace: DatasetWorkspace, name: str, version: int | str = "latest") -> "AbstractDataset":
        """A registered dataset by name; ``version`` is a number or ``"latest"``.

        Example: ``Dataset.get_by_name(ws, "mnist_sample_data", version="latest")``.
        """
        return dataset_registry(workspace).get_by_name(name, version)

    @staticmethod
    def get_by_id(workspace: DatasetWorkspace, id: str) -> "AbstractDataset":
        """A registered dataset version by its id (``ds.id``)."""
        return dataset_registry(workspace).get_by_id(id)

    @property
    def id(self) -> str | None:
        """The registered version's id, None for a dataset that was not registered."""
        return (self.registration or {}).get("id")

    @property
    def version(self) -> int | None:
        """The registered version number, None for a dataset that was not registered."""
        return (self.registration or {}).get("version")

    def to_record(self) -> dict:
        """What re-creates this dataset: ``{"kind": ..., "paths": [...], ...}`` (JSON-able).

        Each kind implements it with ``from_record``; a workspace stores it on registration.
        """
        raise DataError(f"{type(self).__name__} cannot be registered: it does not implement "
                        "to_record()/from_record()")

    @classmethod
    def from_record(cls, record: dict) -> "AbstractDataset":
        """Re-create a dataset from :meth:`to_record`."""
        return dataset_class(record["kind"]).from_record(record)

    def file_entries(self) -> Iterator[Any]:
        """Every file of the dataset with size and version tag (etag or modification time):
        what a registered version's fingerprint is computed from."""
        from parallelrun.data import remote

        for path in self.iter_files():
            if remote.is_remote(path):
                fs, key = remote.filesystem(path)
                try:
                    info = fs.info(key)
                except Exception as exc:  # noqa: BLE001
                    raise remote.storage_error(exc, path, "reading") from None
                yield remote.RemoteFile(path, int(info.get("size") or 0), remote._tag(info))
            else:
                yield remote.local_entry(path)

    def iter_files(self) -> Iterator[str]:
        """The dataset's files (local paths or URLs) in deterministic order."""
        raise DataError(f"{type(self).__name__} does not list its files")
