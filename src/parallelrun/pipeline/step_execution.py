"""How a step runs, per kind of step: the interface each kind implements, and what the runner
gives a step to run with.

Every step kind has one :class:`StepExecution` (``ParallelRunStep``:
:mod:`~parallelrun.pipeline.parallel_execution`; ``PythonScriptStep``, which a v2 command node
also is: :mod:`~parallelrun.pipeline.script_execution`). The executor does what is the same for
every kind (reuse, output places, delivery, the step run's record) and asks the step's kind
for the rest. The steps themselves stay plain descriptions: they are pickled into the run
folder and built in user code, which must not import the engine.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import threading
from typing import Any, ClassVar

from parallelrun.data.base import AbstractDataset
from parallelrun.data.local_copy import local_folder
from parallelrun.errors import ParallelRunError
from parallelrun.pipeline.output_datasets import OutputDatasetConfig
from parallelrun.pipeline.pipeline_data import PipelineData
from parallelrun.pipeline.run_folder import input_folder
from parallelrun.pipeline.run_watcher import RunWatcher


@dataclasses.dataclass
class StepOutcome:
    """How a step run ended: ``status`` (Finished, Failed, Canceled), why when it did not
    finish, and further step run fields to record (counts, metrics)."""

    status: str
    error: str | None = None
    fields: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class StepContext:
    """What one step run runs with: the run's workspace, folder, log, cancel event and watch
    thread, the step run's id, outputs (see :mod:`~parallelrun.pipeline.output_placement`) and
    log folder, whether it goes on from an earlier attempt, and the folders of the PipelineData
    written so far in the run (name -> (folder, id of the step run that wrote it))."""

    workspace: Any
    run_dir: str
    log: logging.Logger
    cancel: threading.Event
    watcher: RunWatcher
    step_run_id: str
    outputs: dict[str, dict]
    log_dir: str
    resuming: bool
    data: dict[str, tuple[str, str]]

    def data_folder(self, data: PipelineData) -> str:
        """The folder holding a PipelineData an earlier step of the run wrote."""
        found = self.data.get(data.name)
        if found is None:
            raise ParallelRunError(f"PipelineData {data.name!r} has no data: the step that "
                                   "writes it did not finish")
        return found[0]

    def local_path(self, item: Any, own_outputs: bool = True) -> str:
        """A local path standing for a dataset or PipelineData in arguments and variables
        (with ``own_outputs``, the step's own outputs are the folders it writes)."""
        if isinstance(item, PipelineData):
            if own_outputs and item.name in self.outputs:
                return self.outputs[item.name]["local_path"]
            return self.data_folder(item)
        if isinstance(item, AbstractDataset):
            return local_folder(item, input_folder(self.run_dir, self.step_run_id,
                                                   item.name or f"input{id(item)}"))
        return str(item)

    def arguments(self, step) -> list[str]:
        """The step's arguments, each dataset and PipelineData a local path."""
        return [self.local_path(a) if isinstance(a, (PipelineData, AbstractDataset)) else str(a)
                for a in step.arguments]

    def references(self, step, folder_inputs: list[Any]) -> dict[str, str]:
        """``AZUREML_DATAREFERENCE_<name>`` for every named input read as a folder (the
        kind's ``folder_inputs`` and the data in the arguments) and every output; an
        OutputFileDatasetConfig's name also holds its path, as in Azure ML."""
        refs = {}
        items = [*folder_inputs,
                 *[a for a in step.arguments if isinstance(a, (PipelineData, AbstractDataset))]]
        for item in items:
            name = item.name if isinstance(item, PipelineData) else getattr(item, "name", None)
            if name:
                refs[f"AZUREML_DATAREFERENCE_{name}"] = self.local_path(item)
        for name, output in self.outputs.items():
            refs[f"AZUREML_DATAREFERENCE_{name}"] = output["local_path"]
        for config in step.outputs:
            if isinstance(config, OutputDatasetConfig):
                # Azure ML: "the name will also become an environment variable" holding the path
                refs[config.name] = self.outputs[config.name]["local_path"]
        return refs


class StepExecution(abc.ABC):
    """How the steps of one kind run."""

    #: the kind of step (``PipelineStep.kind``) this runs
    kind: ClassVar[str]

    @abc.abstractmethod
    def environment(self, step) -> Any:
        """The step's Environment (None: parallelrun's own interpreter)."""

    @abc.abstractmethod
    def folder_inputs(self, step) -> list[Any]:
        """The step's inputs that reach it as local folders (and so as
        ``AZUREML_DATAREFERENCE_<name>`` variables)."""

    @abc.abstractmethod
    def execute(self, step, context: StepContext) -> StepOutcome:
        """Run the step (its outputs are placed; the executor delivers them if it finished).
        Raises ParallelRunError for a failure to report as the step's error."""
