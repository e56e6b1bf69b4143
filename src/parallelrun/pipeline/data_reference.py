"""``DataReference``: a path on a datastore given to a step, after Azure ML's
``azureml.data.data_reference.DataReference``.

Example (Azure ML's own)::

    raw = DataReference(datastore=store, data_reference_name="raw",
                        path_on_datastore="sales/2024")
    prep = PythonScriptStep(script_name="prep.py", arguments=["--raw", raw], inputs=[raw], ...)

The step gets a local path for it, in its arguments and in ``AZUREML_DATAREFERENCE_<name>``: the
folder (or file) itself on a local datastore, else a local copy of its files (mode ``mount`` or
``download`` alike). Its files are part of the step's reuse key, as a dataset's are.

It is a file dataset of the path (``Dataset.File.from_files((datastore, path))``) that keeps
Azure ML's attributes, so it goes wherever a file dataset goes (``inputs``, ``side_inputs``,
``arguments``).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from parallelrun.data.files import FileDataset
from parallelrun.errors import ConfigurationError

MODES = ("mount", "download", "upload")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")


class DataReference(FileDataset):
    """The path ``path_on_datastore`` of ``datastore`` (its root when None), known to the step
    as ``data_reference_name`` (the datastore's name when None).

    ``mode``: ``mount``, ``download`` (both give the step a local path) or ``upload`` (accepted;
    a step's outputs are ``PipelineData`` / ``OutputFileDatasetConfig`` here).
    ``path_on_compute`` and ``overwrite`` are kept as information.
    """

    def __init__(self, datastore: Any, data_reference_name: str | None = None,
                 path_on_datastore: str | None = None, mode: str = "mount",
                 path_on_compute: str | None = None, overwrite: bool = False):
        if datastore is None or not callable(getattr(datastore, "path", None)) \
                or isinstance(datastore, str):
            raise ConfigurationError("DataReference: datastore", datastore,
                                     "a Datastore, e.g. ws.get_default_datastore() or "
                                     "Datastore.get(ws, 'name')")
        name = data_reference_name if data_reference_name is not None else datastore.name
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigurationError("DataReference: data_reference_name", name,
                                     "letters, digits and underscores, starting with a letter or "
                                     "underscore (the step finds its path by this name)")
        if mode not in MODES:
            raise ConfigurationError("DataReference: mode", mode, f"one of {', '.join(MODES)}")
        if path_on_datastore is not None and not isinstance(path_on_datastore, str):
            raise ConfigurationError("DataReference: path_on_datastore", path_on_datastore,
                                     "a path on the datastore such as 'sales/2024'")
        location = datastore.path(path_on_datastore or "")
        super().__init__([location.url], {location.url: location})
        self.datastore = datastore
        self.data_reference_name = name
        self.name = name
        self.path_on_datastore = path_on_datastore
        self.mode = mode
        self.path_on_compute = path_on_compute
        self.overwrite = overwrite

    def _with(self, **changes: Any) -> "DataReference":
        changed = copy.copy(self)
        changed.__dict__.update(changes)
        return changed

    def as_mount(self) -> "DataReference":
        """The same reference, mode ``mount``."""
        return self._with(mode="mount")

    def as_download(self, path_on_compute: str | None = None,
                    overwrite: bool = False) -> "DataReference":
        """The same reference, mode ``download``."""
        return self._with(mode="download", path_on_compute=path_on_compute or self.path_on_compute,
                          overwrite=overwrite)

    def as_upload(self, path_on_compute: str | None = None,
                  overwrite: bool = False) -> "DataReference":
        """The same reference, mode ``upload`` (see the class documentation)."""
        return self._with(mode="upload", path_on_compute=path_on_compute or self.path_on_compute,
                          overwrite=overwrite)

    def path(self, path: str | None = None, data_reference_name: str | None = None) -> "DataReference":
        """A reference to ``path`` below this one, e.g. ``ref.path("2024/01")``."""
        below = "/".join(p.strip("/") for p in (self.path_on_datastore or "", path or "") if p.strip("/"))
        return DataReference(self.datastore, data_reference_name or self.data_reference_name,
                             below or None, self.mode, self.path_on_compute, self.overwrite)

    @staticmethod
    def create(data_reference_name: str | None = None, datapath: Any = None,
               datapath_compute_binding: Any = None) -> "DataReference":
        """A reference from a ``DataPath`` (``store.path("sales/")``)."""
        if datapath is None or not hasattr(datapath, "path_on_datastore"):
            raise ConfigurationError("DataReference.create: datapath", datapath,
                                     "a DataPath, e.g. store.path('sales/')")
        mode = getattr(datapath_compute_binding, "mode", None) or "mount"
        return DataReference(datapath.datastore, data_reference_name,
                             datapath.path_on_datastore or None, mode)

    def describe(self) -> str:
        return (f"data reference {self.data_reference_name} "
                f"({self.datastore.name}:{self.path_on_datastore or '/'})")

    def __str__(self) -> str:
        # what Azure ML shows for an unresolved reference in arguments
        return f"$AZUREML_DATAREFERENCE_{self.data_reference_name}"

    def __repr__(self) -> str:
        return (f"DataReference(datastore={self.datastore.name!r}, "
                f"data_reference_name={self.data_reference_name!r}, "
                f"path_on_datastore={self.path_on_datastore!r}, mode={self.mode!r})")
