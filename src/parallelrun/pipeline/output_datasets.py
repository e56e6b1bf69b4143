"""``OutputFileDatasetConfig`` and ``OutputTabularDatasetConfig``: a step's output folder that is
copied to a datastore path and may be registered as a dataset, after Azure ML's
``azureml.data.output_dataset_config``.

Example (Azure ML's own)::

    prepared = (OutputFileDatasetConfig(name="prepared", destination=(store, "prep/{run-id}"))
                .as_upload(overwrite=True)
                .read_delimited_files()
                .register_on_complete("prepared_sales"))
    prep = PythonScriptStep(script_name="prep.py", arguments=["--out", prepared], ...)
    score = ParallelRunStep(..., inputs=[prepared.as_input("sales")], ...)

What happens here, for real:

* the step writes into a local folder: its path is in the step's arguments, in the variable
  named like the output (``os.environ["prepared"]``, as Azure ML sets it) and in
  ``AZUREML_DATAREFERENCE_<name>``;
* ``destination`` is ``(datastore, path)``; ``{run-id}`` (the step run's id) and
  ``{output-name}`` in the path are filled in. Without it, the workspace's default datastore,
  under ``dataset/{run-id}/{output-name}``, as in Azure ML;
* mode ``mount`` (the default): on a local datastore the step writes straight into the
  destination; on a remote one (Azure Blob, S3) it writes a local folder that is uploaded when
  the step finishes. Mode ``upload`` (:meth:`~OutputFileDatasetConfig.as_upload`): the step
  writes a folder of the run, copied to the destination only when the step finishes (a failed
  or canceled step uploads nothing), keeping existing files unless ``overwrite=True`` (a file
  that exists is then an error naming it) and only the files ``source_globs`` match;
* :meth:`register_on_complete` registers the delivered folder as a new version of a named
  dataset when the step finishes: a FileDataset, or a TabularDataset after
  :meth:`~OutputFileDatasetConfig.read_delimited_files` / ``read_parquet_files`` (with
  ``keep_columns`` / ``drop_columns`` applied);
* :meth:`as_input` makes it an input of a later step (which then runs after the producer): a
  file input (its files), or a table input after ``read_*_files``.

``source`` (where Azure ML's compute node writes) is kept as information: the step writes the
folder its argument names.
"""

from __future__ import annotations

import copy
import fnmatch
import os
import uuid
from typing import Any

from parallelrun.errors import ConfigurationError
from parallelrun.pipeline.pipeline_data import DatastorePlacement, PipelineData

DEFAULT_DESTINATION = "dataset/{run-id}/{output-name}"
MOUNT, UPLOAD = "mount", "upload"


def _random_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


class OutputDatasetConfig(PipelineData):
    """What the output configs share: destination, mode, registration, how to read them.

    Not made directly: use :class:`OutputFileDatasetConfig`.
    """

    def __init__(self, name: str | None = None, destination: Any = None, source: str | None = None,
                 partition_format: str | None = None):
        name = name if name is not None else _random_name("output")
        store, path = _destination(destination)
        super().__init__(name, datastore=store)
        self.destination = destination
        self.source = source
        self.partition_format = partition_format
        self.mode = MOUNT
        #: as_upload's options: (overwrite, source_globs)
        self.upload_options: tuple[bool, list[str] | None] | None = None
        #: register_on_complete's: {"name", "description", "tags"}
        self.registration_options: dict | None = None
        #: how the folder reads as a dataset: ("files", {}) or ("delimited"|"parquet", options)
        self.reading: tuple[str, dict] = ("files", {})
        #: keep_columns / drop_columns applied to the table, in order
        self.column_steps: tuple = ()
        self.place_at(DatastorePlacement(store, path))
        self._as_input_name: str | None = None

    # Azure ML's builders: each returns a changed copy ------------------------------------------
    def _copy(self) -> "OutputDatasetConfig":
        return copy.copy(self)

    def as_mount(self, disable_metadata_cache: bool = False) -> "OutputDatasetConfig":
        """The same output, mode ``mount``: written in place (uploaded at the end when the
        datastore is remote)."""
        changed = self._copy()
        changed.mode, changed.upload_options = MOUNT, None
        return changed

    def as_upload(self, overwrite: bool = False,
                  source_globs: list[str] | str | None = None) -> "OutputDatasetConfig":
        """The same output, mode ``upload``: copied to the destination when the step finishes
        (nothing when it fails); ``overwrite`` replaces files already there, ``source_globs``
        (e.g. ``["*.csv"]``) chooses the files copied."""
        if not isinstance(overwrite, bool):
            raise ConfigurationError("as_upload: overwrite", overwrite, "True or False")
        globs = [source_globs] if isinstance(source_globs, str) else source_globs
        if globs is not None and (not isinstance(globs, list)
                                  or not all(isinstance(g, str) and g for g in globs)):
            raise ConfigurationError("as_upload: source_globs", source_globs,
                                     "a list of glob patterns such as ['*.csv', 'models/*']")
        changed = self._copy()
        changed.mode, changed.upload_options = UPLOAD, (overwrite, globs)
        return changed

    def register_on_complete(self, name: str, description: str | None = None,
                             tags: dict | None = None) -> "OutputDatasetConfig":
        """The same output, registered as a new version of dataset ``name`` when the step
        finishes (``Dataset.get_by_name(ws, name)`` finds it)."""
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError("register_on_complete: name", name,
                                     "a non-empty dataset name, e.g. 'prepared_sales'")
        if tags is not None and not isinstance(tags, dict):
            raise ConfigurationError("register_on_complete: tags", tags,
                                     "a dict of str to str, e.g. {'stage': 'prep'}")
        changed = self._copy()
        changed.registration_options = {"name": name, "description": description,
                                        "tags": dict(tags or {})}
        return changed

    def as_input(self, name: str | None = None) -> "OutputDatasetConfig":
        """This output as the input ``name`` of a later step (which then runs after the step
        that writes it)."""
        changed = self._copy()
        changed._as_input_name = name or _random_name("input")
        return changed

    # what the runner and the steps ask -------------------------------------------------------
    @property
    def is_input(self) -> bool:
        """True for a copy made by :meth:`as_input` (an input, not the step's output)."""
        return self._as_input_name is not None

    @property
    def input_name(self) -> str:
        return self._as_input_name or self.name

    @property
    def is_tabular(self) -> bool:
        return self.reading[0] != "files"

    def path_on_datastore(self, step_run_id: str) -> str:
        """The destination path for the step run ``step_run_id``, placeholders filled in."""
        path = self.placement.path
        return path.replace("{run-id}", step_run_id).replace("{output-name}", self.name).strip("/")

    def dataset_at(self, location: Any) -> Any:
        """The dataset the delivered folder ``location`` is (a local folder or a DataPath):
        files, or a table read as ``read_*_files`` said."""
        from parallelrun.data.dataset import Dataset

        kind, options = self.reading
        options = dict(options)
        path_glob = options.pop("path_glob", None)
        if path_glob:
            location = _below(location, path_glob)
        if kind == "files":
            return Dataset.File.from_files(location, partition_format=self.partition_format)
        if kind == "delimited":
            dataset = Dataset.Tabular.from_delimited_files(location, **options)
        else:
            dataset = Dataset.Tabular.from_parquet_files(location, **options)
        for step, columns in self.column_steps:
            dataset = dataset.keep_columns(columns) if step == "keep" else \
                dataset.drop_columns(columns)
        return dataset

    def files_to_upload(self, folder: str) -> list[str]:
        """The files of ``folder`` that upload mode copies (all, or those ``source_globs``
        match by their path below the folder)."""
        globs = self.upload_options[1] if self.upload_options else None
        found = []
        for root, _, names in os.walk(folder):
            for file_name in names:
                path = os.path.join(root, file_name)
                relative = os.path.relpath(path, folder).replace(os.sep, "/")
                if not globs or any(fnmatch.fnmatch(relative, g) or fnmatch.fnmatch(file_name, g)
                                    for g in globs):
                    found.append(path)
        return sorted(found)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, mode={self.mode!r}, "
                f"destination={(self.placement.datastore, self.placement.path)!r})")


class OutputFileDatasetConfig(OutputDatasetConfig):
    """A step's output folder, delivered to ``destination`` and promoted to a FileDataset.

    Example::

        output = OutputFileDatasetConfig(name="scores", destination=(store, "scores/{run-id}"))
        step = ParallelRunStep(name="score", ..., output=output)

    ``name``: the output's name (a random ``output_xxxxxxxx`` when None); ``destination``:
    ``(datastore or its name, "path")`` with ``{run-id}`` / ``{output-name}`` placeholders
    (default ``(workspace default datastore, "dataset/{run-id}/{output-name}")``);
    ``partition_format``: partition keys in the files' paths of the dataset it becomes.
    See the module documentation for what each mode does here.
    """

    def read_delimited_files(self, include_path: bool = False, separator: str = ",",
                             header: Any = True, partition_format: str | None = None,
                             path_glob: str | None = None,
                             set_column_types: dict | None = None) -> "OutputTabularDatasetConfig":
        """The output read as delimited files (a TabularDataset when registered or used as an
        input), e.g. ``read_delimited_files(separator=" ", header=False)`` for a
        ParallelRunStep's ``parallel_run_step.txt``."""
        options = dict(include_path=include_path, separator=separator, header=header,
                       partition_format=partition_format or self.partition_format,
                       set_column_types=set_column_types, path_glob=path_glob)
        return OutputTabularDatasetConfig._from(self, ("delimited", options))

    def read_parquet_files(self, include_path: bool = False, partition_format: str | None = None,
                           path_glob: str | None = None,
                           set_column_types: dict | None = None) -> "OutputTabularDatasetConfig":
        """The output read as Parquet files (a TabularDataset)."""
        options = dict(include_path=include_path,
                       partition_format=partition_format or self.partition_format,
                       set_column_types=set_column_types, path_glob=path_glob)
        return OutputTabularDatasetConfig._from(self, ("parquet", options))


class OutputTabularDatasetConfig(OutputDatasetConfig):
    """An output read as a table: made by ``OutputFileDatasetConfig.read_delimited_files()``
    or ``read_parquet_files()``, never directly (as in Azure ML)."""

    def __init__(self, **kwargs: Any):
        source = kwargs.get("output_file_dataset_config")
        if not isinstance(source, OutputFileDatasetConfig):
            raise ConfigurationError(
                "OutputTabularDatasetConfig", kwargs,
                "an OutputFileDatasetConfig turned into a table: "
                "OutputFileDatasetConfig(...).read_delimited_files() or .read_parquet_files()")
        self.__dict__.update(copy.copy(source.__dict__))

    @classmethod
    def _from(cls, source: OutputFileDatasetConfig, reading: tuple) -> "OutputTabularDatasetConfig":
        table = cls(output_file_dataset_config=source)
        table.reading = reading
        return table

    def keep_columns(self, columns: str | list[str]) -> "OutputTabularDatasetConfig":
        """The table with only ``columns``."""
        changed = self._copy()
        changed.column_steps = (*self.column_steps, ("keep", columns))
        return changed

    def drop_columns(self, columns: str | list[str]) -> "OutputTabularDatasetConfig":
        """The table without ``columns``."""
        changed = self._copy()
        changed.column_steps = (*self.column_steps, ("drop", columns))
        return changed


def _destination(destination: Any) -> tuple[str | None, str]:
    """``(datastore name or None for the default, path template)`` from Azure ML's
    ``(datastore, "path")``."""
    if destination is None:
        return None, DEFAULT_DESTINATION
    if isinstance(destination, tuple) and len(destination) == 2:
        store, path = destination
        name = store if isinstance(store, str) else getattr(store, "name", None)
        if isinstance(name, str) and name and isinstance(path, str) and path.strip("/"):
            return name, path
    raise ConfigurationError("destination", destination,
                             "(datastore, 'path/on/datastore'), e.g. (ws.get_default_datastore(), "
                             "'scores/{run-id}'); {run-id} and {output-name} are filled in")


def _below(location: Any, pattern: str) -> Any:
    """``location/pattern`` for a local folder or a DataPath."""
    if isinstance(location, str):
        return os.path.join(location, pattern)
    return location.datastore.path(location.path_on_datastore.rstrip("/") + "/" + pattern)
