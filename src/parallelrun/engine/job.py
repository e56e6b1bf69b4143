"""``run_job``: run one parallel step without a pipeline, from config to JobResult.

This is where the layers meet: the data layer plans, a backend runs workers, the scheduler
decides, the output action and journal commit, and the log folder records it all.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from parallelrun.backends import WorkerSpec, get_backend
from parallelrun.config import ParallelRunConfig, check_arguments
from parallelrun.data.base import AbstractDataset
from parallelrun.data.files import FileDataset
from parallelrun.data.local_copy import local_folder
from parallelrun.data.minibatch import MiniBatch
from parallelrun.engine.journal import Journal
from parallelrun.engine.logs import JobLogs
from parallelrun.engine.outputs import make_output_action
from parallelrun.engine.progress import JobProgress, ProgressListener
from parallelrun.engine.scheduler import Limits, Scheduler
from parallelrun.engine.staging import stage_remote_outputs
from parallelrun.errors import ConfigurationError, DataError, JobFailedError
from parallelrun.script import inspect_entry_script


@dataclasses.dataclass
class JobResult:
    """How a job ended: status, counts, where its output and logs are, and why it failed."""

    status: str                         # Finished | Failed | Canceled
    output_dir: str
    output_file: str | None             # the append_row file, None for summary_only
    log_dir: str
    minibatches_total: int
    minibatches_succeeded: int
    minibatches_failed: int
    items_succeeded: int
    items_failed: int
    retries: int
    elapsed_seconds: float
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "Finished"

    @property
    def items_total(self) -> int:
        return self.items_succeeded + self.items_failed

    def summary(self) -> str:
        lines = [
            f"status: {self.status}",
            f"mini-batches: {self.minibatches_succeeded} succeeded, {self.minibatches_failed} "
            f"failed, {self.minibatches_total} planned, {self.retries} retried",
            f"items: {self.items_succeeded} succeeded, {self.items_failed} failed",
            f"elapsed: {self.elapsed_seconds:.2f} s",
            f"output: {self.output_file or self.output_dir}",
            f"logs: {self.log_dir}",
        ]
        if self.error:
            lines.append(f"error: {self.error}")
        return "\n".join(lines)


def _as_datasets(inputs: Any) -> list[AbstractDataset]:
    items = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    if not items:
        raise ConfigurationError("inputs", inputs, "at least one dataset, e.g. "
                                 "[Dataset.File.from_files(path='data/*.png')]")
    datasets = []
    for item in items:
        if isinstance(item, AbstractDataset):
            datasets.append(item)
        elif isinstance(item, (str, os.PathLike)):
            datasets.append(FileDataset.from_files(item))
        else:
            raise ConfigurationError("inputs", item, "datasets (Dataset.File.from_files(...), "
                                     "Dataset.Tabular...) or paths/globs of files")
    kinds = {d.kind for d in datasets}
    if len(kinds) > 1:
        raise ConfigurationError("inputs", [d.describe() for d in datasets],
                                 "datasets of one kind: all file datasets or all tabular datasets")
    return datasets


def _plan(datasets: Sequence[AbstractDataset], config: ParallelRunConfig) -> Iterator[MiniBatch]:
    """Mini-batches of every input in turn, numbered across inputs."""
    index = 0
    for dataset in datasets:
        for mb in dataset.plan(config.mini_batch_size, config.partition_keys, start_index=index):
            yield mb
            index = mb.index + 1


def _model_paths(models: Any) -> dict[str, str]:
    if not models:
        return {}
    if isinstance(models, Mapping):
        return {str(k): os.path.abspath(os.fspath(v)) for k, v in models.items()}
    paths = {}
    for model in models:
        path = getattr(model, "path", None)
        name = getattr(model, "name", None)
        if not name or not path:
            raise ConfigurationError("models", model, "Model objects (Model.register(...)) or a "
                                     "dict of model name to local folder")
        paths[name] = os.path.abspath(os.fspath(path))
        version = getattr(model, "version", None)
        if version is not None:  # Model.get_model_path(name, version=...) in entry scripts
            paths[f"{name}:{version}"] = paths[name]
    return paths


def _side_input_paths(side_inputs: Any, staging: str) -> dict[str, str]:
    """Side inputs as local paths by name (``side_input_<n>`` when unnamed): each path must
    exist now, and datasets become a local folder (remote files are downloaded to ``staging``)."""
    if not side_inputs:
        return {}
    if isinstance(side_inputs, Mapping):
        items = list(side_inputs.items())
    else:
        listed = side_inputs if isinstance(side_inputs, (list, tuple)) else [side_inputs]
        items = [(getattr(item, "name", None), item) for item in listed]
    paths = {}
    for index, (name, item) in enumerate(items):
        name = str(name or f"side_input_{index}")
        if isinstance(item, AbstractDataset):
            paths[name] = local_folder(item, os.path.join(staging, name))
        elif isinstance(item, (str, os.PathLike)) and "://" not in os.fspath(item):
            path = os.path.abspath(os.fspath(item))
            if not os.path.exists(path):
                raise ConfigurationError("side_inputs", os.fspath(item),
                                         "an existing local file or folder, or a dataset")
            paths[name] = path
        else:
            raise ConfigurationError("side_inputs", item, "datasets (Dataset.File.from_files"
                                     "(...)), local paths, or a dict of name to local path")
    return paths


def _backend_choice(compute_target: Any) -> tuple[str, dict]:
    """Backend name and options for a compute target: None, a name, or a ComputeTarget object."""
    if compute_target is None:
        return "local", {}
    if isinstance(compute_target, str):
        return compute_target, {}
    name = getattr(compute_target, "backend", None)
    if not name:
        raise ConfigurationError("compute_target", compute_target,
                                 "a compute target (ws.compute_targets[name]) or a backend name "
                                 "such as 'local' or 'ray'")
    return name, dict(getattr(compute_target, "backend_options", {}) or {})


@stage_remote_outputs  # output/log_dir on a datastore: written locally, uploaded at the end
def run_job(config: ParallelRunConfig, inputs: Any, output: str | os.PathLike, arguments:
            Sequence[str] | None = None, *, log_dir: str | os.PathLike | None = None,
            models: Any = None, side_inputs: Any = None,
            listeners: Iterable[ProgressListener] = (), resume: bool = False,
            cancel: threading.Event | None = None, progress: JobProgress | None = None,
            python: str | None = None, run_id: str | None = None,
            workspace_path: str | None = None, raise_on_failure: bool = False) -> JobResult:
    """Run the entry script over ``inputs`` in parallel and gather the results in ``output``.

    Example::

        result = run_job(config, inputs=[Dataset.File.from_files("data/*.png")], output="out/")
        print(result.status, result.items_succeeded, result.output_file)

    ``side_inputs`` (datasets, local paths, or a dict of name to path) reach every worker
    whole, by name: ``Run.get_context().input_datasets[name]`` and the variable
    ``AZUREML_DATAREFERENCE_<name>`` hold the local path. Everything is checked before any
    worker starts. ``resume=True`` continues a job whose
    coordinator died, from the journal in its log folder: committed mini-batches are not run
    again and the output keeps each row once. The job's outcome is in the returned
    :class:`JobResult`; with ``raise_on_failure=True`` a failed job raises JobFailedError.
    """
    started = time.time()
    args = check_arguments(arguments)
    inspect_entry_script(config.script_path)
    datasets = _as_datasets(inputs)
    for dataset in datasets:
        dataset.check_mini_batch_size(config.mini_batch_size)
    model_paths = _model_paths(models)
    side_staging = os.path.join(tempfile.gettempdir(), f"parallelrun-side-inputs-{uuid.uuid4().hex}")
    if side_inputs:
        # removed when the job ends; at exit too, for a job that fails before it starts
        atexit.register(shutil.rmtree, side_staging, True)
    side_paths = _side_input_paths(side_inputs, side_staging)
    backend_name, backend_options = _backend_choice(config.compute_target)
    backend_class = get_backend(backend_name)

    output_dir = os.path.abspath(os.fspath(output))
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ConfigurationError("output", os.fspath(output), "a folder (a file has that name)")
    os.makedirs(output_dir, exist_ok=True)
    log_path = os.path.abspath(os.fspath(log_dir)) if log_dir else os.path.join(output_dir, "logs")
    if not resume and os.path.isdir(log_path):
        shutil.rmtree(log_path)
    logs = JobLogs(log_path, config.logging_level, resume=resume)

    action = make_output_action(config.output_action, output_dir, config.append_row_file_name,
                                config.append_row_format)
    named = {d.name: d for d in datasets if d.name}
    spec = WorkerSpec(
        script_path=str(config.script_path), source_dir=str(config.source_path), arguments=args,
        encoder=action.encoder(), output_dir=output_dir, log_dir=log_path,
        logging_level=config.logging_level,
        environment_variables={**{f"AZUREML_DATAREFERENCE_{name}": path
                                  for name, path in side_paths.items()},
                               **(config.environment_variables or {})},
        models=model_paths, input_datasets={**named, **side_paths}, python=python,
        run_id=run_id, workspace_path=workspace_path)
    if config.environment is not None:
        # backends that build environments on their nodes (Ray's runtime_env) read it here
        backend_options.setdefault("environment", config.environment)
    backend = backend_class(spec, **backend_options)
    slots = backend.plan_slots(config.node_count, config.process_count_per_node)
    local_paths: dict[str, str] = {}  # what the workers must read from this machine's disk
    for what, path in ([("input", path) for dataset in datasets for path in dataset.local_paths()]
                       + [(f"side input {name!r}", path) for name, path in side_paths.items()]
                       + [(f"model {name!r}", path) for name, path in model_paths.items()]):
        local_paths.setdefault(path, what)
    try:  # checked before any worker starts
        backend.check_local_paths([(what, path) for path, what in local_paths.items()])
    except BaseException:
        backend.shutdown(grace_seconds=0)
        raise

    journal = Journal(logs.journal_path)
    committed = journal.load() if resume else {}
    if not resume:
        Path(journal.path).unlink(missing_ok=True)
    action.open(journal.output_end() if resume else None)
    journal.open()
    progress = progress or JobProgress()
    for commit in committed.values():
        progress.minibatches_succeeded += 1
        progress.items_succeeded += commit.succeeded
        progress.items_failed += commit.items - commit.succeeded

    log = logs.logger
    log.info("job starting: %s over %s with %d workers on backend %s; output %s; logs %s",
             config.script_path, ", ".join(d.describe() for d in datasets), len(slots),
             backend_name, action.path or output_dir, log_path)
    if committed:
        log.info("resuming: %d mini-batches were committed before", len(committed))
    scheduler = Scheduler(
        backend, slots, _plan(datasets, config), action, journal,
        Limits(run_max_try=config.run_max_try,
               run_invocation_timeout=config.run_invocation_timeout,
               init_timeout=config.init_timeout, error_threshold=config.error_threshold,
               allowed_failed_count=config.allowed_failed_count,
               allowed_failed_percent=config.allowed_failed_percent,
               init_failures=3 * len(slots)),
        listeners=[logs, *listeners], progress=progress, skip=set(committed), cancel=cancel,
        logger=log)
    try:
        outcome = scheduler.run()
    except DataError as exc:
        outcome = None
        error = str(exc)
        status = "Failed"
    else:
        status, error = outcome.status, outcome.error
    finally:
        action.close()
        journal.close()
        shutil.rmtree(side_staging, ignore_errors=True)
    progress.status = status
    progress.finished_at = time.time()
    result = JobResult(
        status=status, output_dir=output_dir, output_file=action.path, log_dir=log_path,
        minibatches_total=progress.planned_minibatches,
        minibatches_succeeded=progress.minibatches_succeeded,
        minibatches_failed=progress.minibatches_failed,
        items_succeeded=progress.items_succeeded, items_failed=progress.items_failed,
        retries=progress.retries, elapsed_seconds=time.time() - started, error=error)
    log.info("job ended: %s", result.summary().replace("\n", "; "))
    for listener in [logs, *listeners]:
        listener.on_end(progress, result)
    if raise_on_failure and not result.succeeded:
        raise JobFailedError(f"job {result.status}: {result.error}", result)
    return result
