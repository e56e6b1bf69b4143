"""``PipelineData``: a folder one step writes and later steps read; ``PortDataReference``: a
finished step's output, to download.

Where the data lives: a step run's output ``name`` on datastore ``ds`` is the folder
``azureml/<step run id>/<name>/`` of that datastore, as in Azure ML. On a local datastore (the
workspace's default ``workspaceblobstore`` is one) the step writes straight into it; on a remote
one (Azure Blob, S3) the step writes into a local folder of the run and the folder is uploaded
when the step finishes. A later step of the same run reads the local folder.

``output_path_on_compute`` is where Azure ML's compute nodes would see the folder; locally the
step sees the real folder (its path is in the step's arguments and in
``AZUREML_DATAREFERENCE_<name>``), so it is kept only as information.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from typing import Any, Union

from parallelrun.errors import ConfigurationError, StorageError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")


@dataclasses.dataclass(frozen=True)
class LocalPlacement:
    """An output written straight into a folder of this machine (a v2 job's local
    ``outputs.x.path``); the folder is the user's, so it is never cleared."""

    folder: str


@dataclasses.dataclass(frozen=True)
class DatastorePlacement:
    """An output delivered to ``path`` on ``datastore`` (None: the workspace's default); the
    path may hold ``{run-id}`` and ``{output-name}`` (an ``OutputFileDatasetConfig``'s)."""

    datastore: str | None
    path: str


#: where an output goes instead of ``azureml/<step run id>/<name>`` on its datastore
Placement = Union[LocalPlacement, DatastorePlacement]  # noqa: UP007 (a runtime alias)


class PipelineData:
    """An intermediate folder: the output of one step, an input of the steps after it.

    Example::

        output_dir = PipelineData(name="inferences", datastore=def_data_store,
                                  output_path_on_compute="mnist/results")
        step = ParallelRunStep(name="batch-mnist", ..., output=output_dir)
        report = PythonScriptStep(script_name="report.py", arguments=["--results", output_dir],
                                  inputs=[output_dir], source_directory="scripts")

    ``datastore`` None means the workspace's default datastore. The order of the steps of a
    pipeline follows these links.
    """

    def __init__(self, name: str, datastore: Any = None, output_name: str | None = None,
                 output_mode: str = "mount", output_path_on_compute: str | None = None,
                 output_overwrite: bool | None = None, data_type: str | None = None,
                 is_directory: bool | None = None, pipeline_output_name: str | None = None,
                 training_output: Any = None):
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigurationError(
                "PipelineData.name", name,
                "letters, digits and underscores, starting with a letter or underscore "
                "(e.g. 'inferences'); later steps and get_output_data() find it by this name")
        if output_mode not in ("mount", "upload"):
            raise ConfigurationError("output_mode", output_mode, "'mount' or 'upload'")
        self.name = name
        self.datastore = datastore
        self.output_name = output_name or name
        self.output_mode = output_mode
        self.output_path_on_compute = output_path_on_compute
        self.output_overwrite = output_overwrite
        self.data_type = data_type or "AnyDirectory"
        self.is_directory = True if is_directory is None else is_directory
        self.pipeline_output_name = pipeline_output_name
        self._placement: Placement | None = None

    # [parallelrun] a fixed place instead of azureml/<step run id>/<name> (v2 jobs'
    # `outputs.x.path`, an OutputFileDatasetConfig's destination)
    def place_at(self, placement: Placement | None) -> None:
        """Write this output at ``placement`` (a LocalPlacement or DatastorePlacement) instead
        of ``azureml/<step run id>/<name>`` on its datastore; None undoes it."""
        if placement is not None and not isinstance(placement, (LocalPlacement,
                                                                DatastorePlacement)):
            raise ConfigurationError(f"{self.name}: placement", placement,
                                     "LocalPlacement(folder) or DatastorePlacement(datastore, "
                                     "path)")
        self._placement = placement

    @property
    def placement(self) -> Placement | None:
        """Where :meth:`place_at` put this output; None for the default place."""
        return self._placement

    # Azure ML's ways of passing it on; the folder is always a local folder here.
    def as_input(self, input_name: str | None = None) -> "PipelineData":
        return self

    def as_mount(self) -> "PipelineData":
        return self

    def as_download(self, input_name: str | None = None, path_on_compute: str | None = None,
                    overwrite: bool | None = None) -> "PipelineData":
        return self

    def as_dataset(self) -> "PipelineData":
        return self

    @property
    def datastore_name(self) -> str | None:
        return getattr(self.datastore, "name", self.datastore)

    def __str__(self) -> str:
        # what Azure ML shows for an unresolved reference in arguments
        return f"$AZUREML_DATAREFERENCE_{self.name}"

    def __repr__(self) -> str:
        return f"PipelineData(name={self.name!r}, datastore={self.datastore_name!r})"


class PortDataReference:
    """The output ``name`` of a finished step run: where it is, and :meth:`download`.

    Example::

        step_run = pipeline_run.find_step_run("batch-mnist")[0]
        ref = step_run.get_output_data("inferences")
        ref.download(local_path="results")
        # -> results/azureml/<step run id>/inferences/parallel_run_step.txt
    """

    def __init__(self, name: str, datastore: Any, path_on_datastore: str | None,
                 local_path: str | None, step_run_id: str | None = None):
        self.name = name
        self.datastore = datastore
        self.path_on_datastore = path_on_datastore
        #: [parallelrun] the folder on this machine (None when only the datastore holds it)
        self.local_path = local_path
        self.step_run_id = step_run_id

    @property
    def datastore_name(self) -> str | None:
        return getattr(self.datastore, "name", None)

    def download(self, local_path: str | os.PathLike, overwrite: bool = False,
                 show_progress: bool = False) -> str:
        """Copy the data to ``local_path/<path_on_datastore>/`` as Azure ML does; returns that
        folder. ``overwrite=False`` refuses to replace files already there."""
        target_root = os.path.abspath(os.fspath(local_path))
        relative = self.path_on_datastore or self.name
        target = os.path.join(target_root, *relative.split("/"))
        source = self._readable_local_folder()
        if source is not None:
            _copy_tree(source, target, overwrite)
        elif self.datastore is not None and hasattr(self.datastore, "download"):
            os.makedirs(target, exist_ok=True)
            self.datastore.download(target, prefix=self.path_on_datastore, overwrite=overwrite)
        else:
            raise StorageError(f"output {self.name!r} is neither on this machine nor on a "
                               "datastore that can be read")
        if show_progress:
            print(f"downloaded output {self.name!r} to {target}")
        return target

    def _readable_local_folder(self) -> str | None:
        if self.local_path and os.path.isdir(self.local_path):
            return self.local_path
        on_disk = getattr(self.datastore, "path_on_disk", None)
        if on_disk and self.path_on_datastore:
            folder = os.path.join(on_disk, *self.path_on_datastore.split("/"))
            if os.path.isdir(folder):
                return folder
        return None

    def __repr__(self) -> str:
        return (f"PortDataReference(name={self.name!r}, datastore={self.datastore_name!r}, "
                f"path_on_datastore={self.path_on_datastore!r})")


def _copy_tree(source: str, target: str, overwrite: bool) -> None:
    if not overwrite and os.path.isdir(target):
        clashes = [os.path.join(d, f) for d, _, files in os.walk(source) for f in files
                   if os.path.exists(os.path.join(target, os.path.relpath(os.path.join(d, f), source)))]
        if clashes:
            raise StorageError(f"{os.path.relpath(clashes[0], source)!r} already exists in "
                               f"{target!r}; pass overwrite=True to replace it")
    shutil.copytree(source, target, dirs_exist_ok=True)
