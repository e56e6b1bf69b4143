"""parallelrun: batch inference over large data, after Azure ML's ParallelRunStep.

Example::

    from parallelrun import Dataset, ParallelRunConfig, run_job

    ds = Dataset.File.from_files(path="data/mnist/*.png")
    config = ParallelRunConfig(source_directory="scripts", entry_script="score.py",
                               mini_batch_size="5", error_threshold=10,
                               output_action="append_row", process_count_per_node=2)
    result = run_job(config, inputs=[ds], output="out/")

Every public name is importable from here. Heavy parts are imported on first use, so
``import parallelrun`` stays light (no Ray, no web stack, no pandas).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parallelrun._lazy import lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it (imported on first attribute access)
_EXPORTS = {
    "ParallelRunError": "parallelrun.errors",
    "ConfigurationError": "parallelrun.errors",
    "EntryScriptError": "parallelrun.errors",
    "DataError": "parallelrun.errors",
    "StorageError": "parallelrun.errors",
    "BackendError": "parallelrun.errors",
    "WorkspaceError": "parallelrun.errors",
    "JobFailedError": "parallelrun.errors",
    "FolderInUseError": "parallelrun.errors",
    "ResumeMismatchError": "parallelrun.errors",
    "JobSpecError": "parallelrun.errors",
    "BadResultError": "parallelrun.errors",
    "ComputeTargetException": "parallelrun.errors",
    "UnknownNameError": "parallelrun.errors",
    "UnsafeArchiveError": "parallelrun.errors",
    "RunTimeoutError": "parallelrun.errors",
    "ParallelRunConfig": "parallelrun.config",
    "EntryScript": "parallelrun.script",
    "Dataset": "parallelrun.data.dataset",
    "FileDataset": "parallelrun.data.files",
    "TabularDataset": "parallelrun.data.tabular",
    "run_job": "parallelrun.pipeline.job_runs",   # the engine's, recorded as a run
    "JobResult": "parallelrun.engine.job",
    "JobProgress": "parallelrun.engine.progress",
    "ProgressListener": "parallelrun.engine.progress",
    "MiniBatchRecord": "parallelrun.engine.progress",
    "RayCompute": "parallelrun.compute",
    "Workspace": "parallelrun.workspace.workspace",
    "Datastore": "parallelrun.workspace.datastore",
    "DataPath": "parallelrun.workspace.datastore",
    "Model": "parallelrun.workspace.models",
    "ComputeTarget": "parallelrun.compute",
    "AmlCompute": "parallelrun.compute",
    "LocalCompute": "parallelrun.compute",
    "PipelineData": "parallelrun.pipeline.pipeline_data",
    "PortDataReference": "parallelrun.pipeline.pipeline_data",
    "PipelineParameter": "parallelrun.pipeline.parameters",
    "DatasetConsumptionConfig": "parallelrun.pipeline.dataset_inputs",
    "OutputFileDatasetConfig": "parallelrun.pipeline.output_datasets",
    "OutputTabularDatasetConfig": "parallelrun.pipeline.output_datasets",
    "DataReference": "parallelrun.pipeline.data_reference",
    "PublishedPipeline": "parallelrun.pipeline.published",
    "Schedule": "parallelrun.pipeline.schedules",
    "ScheduleRecurrence": "parallelrun.pipeline.schedules",
    "ParallelRunStep": "parallelrun.pipeline.steps",
    "PythonScriptStep": "parallelrun.pipeline.steps",
    "Pipeline": "parallelrun.pipeline.graph",
    "Environment": "parallelrun.pipeline.environment",
    "CondaDependencies": "parallelrun.pipeline.environment",
    "RunConfiguration": "parallelrun.pipeline.environment",
    "DEFAULT_CPU_IMAGE": "parallelrun.pipeline.environment",
    "DEFAULT_GPU_IMAGE": "parallelrun.pipeline.environment",
    "Experiment": "parallelrun.pipeline.experiment",
    "Run": "parallelrun.pipeline.runs",
    "PipelineRun": "parallelrun.pipeline.runs",
    "StepRun": "parallelrun.pipeline.runs",
    "RunStatus": "parallelrun.statuses",
    "OutcomeStatus": "parallelrun.statuses",
    "RunDetails": "parallelrun.ui.widgets",
    "load_job": "parallelrun.pipeline.yaml_job",
    "submit_job": "parallelrun.pipeline.yaml_job",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from parallelrun.compute import AmlCompute, ComputeTarget, LocalCompute, RayCompute
    from parallelrun.config import ParallelRunConfig
    from parallelrun.data.dataset import Dataset
    from parallelrun.data.files import FileDataset
    from parallelrun.data.tabular import TabularDataset
    from parallelrun.engine.job import JobResult
    from parallelrun.engine.progress import JobProgress, MiniBatchRecord, ProgressListener
    from parallelrun.pipeline.environment import (DEFAULT_CPU_IMAGE, DEFAULT_GPU_IMAGE,
                                                  CondaDependencies, Environment,
                                                  RunConfiguration)
    from parallelrun.pipeline.experiment import Experiment
    from parallelrun.pipeline.graph import Pipeline
    from parallelrun.pipeline.job_runs import run_job
    from parallelrun.pipeline.dataset_inputs import DatasetConsumptionConfig
    from parallelrun.pipeline.data_reference import DataReference
    from parallelrun.pipeline.output_datasets import (OutputFileDatasetConfig,
                                                      OutputTabularDatasetConfig)
    from parallelrun.pipeline.parameters import PipelineParameter
    from parallelrun.pipeline.published import PublishedPipeline
    from parallelrun.pipeline.schedules import Schedule, ScheduleRecurrence
    from parallelrun.pipeline.pipeline_data import PipelineData, PortDataReference
    from parallelrun.pipeline.runs import PipelineRun, Run, StepRun
    from parallelrun.pipeline.steps import ParallelRunStep, PythonScriptStep
    from parallelrun.pipeline.yaml_job import load_job, submit_job
    from parallelrun.errors import (BackendError, BadResultError, ComputeTargetException,
                                    ConfigurationError, DataError, EntryScriptError,
                                    FolderInUseError, JobFailedError, JobSpecError,
                                    ParallelRunError, ResumeMismatchError, RunTimeoutError,
                                    StorageError, UnknownNameError, UnsafeArchiveError,
                                    WorkspaceError)
    from parallelrun.script import EntryScript
    from parallelrun.statuses import OutcomeStatus, RunStatus
    from parallelrun.ui.widgets import RunDetails
    from parallelrun.workspace.datastore import DataPath, Datastore
    from parallelrun.workspace.models import Model
    from parallelrun.workspace.workspace import Workspace
