"""``run_job``: run one parallel step without a pipeline, from config to JobResult.

This is where the layers meet: the data layer plans, a backend runs workers, the scheduler
decides, the output action and journal commit, and the log folder records it all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import itertools
import os
import shutil
import signal
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from parallelrun.backends import WorkerSpec, backend_choice, get_backend
from parallelrun.config import ParallelRunConfig, check_arguments
from parallelrun.data.base import AbstractDataset
from parallelrun.data.files import FileDataset
from parallelrun.data.local_copy import local_folder
from parallelrun.data.minibatch import MiniBatch
from parallelrun.data.urls import is_url
from parallelrun.engine.job_folders import job_fingerprint, job_folders
from parallelrun.engine.journal import Commit, Journal
from parallelrun.engine.logs import JobLogs, traceback_file
from parallelrun.engine.outputs import OutputAction, make_output_action
from parallelrun.engine.progress import JobProgress, MiniBatchRecord, ProgressListener
from parallelrun.engine.scheduler import Limits, Scheduler
from parallelrun.engine.staging import stage_remote_outputs
from parallelrun.engine.stop_signals import StopSignals
from parallelrun.errors import (ConfigurationError, JobFailedError, ParallelRunError,
                                ResumeMismatchError)
from parallelrun.script import inspect_entry_script
from parallelrun.statuses import OutcomeStatus, RunStatus

# bound once: on Python 3.11 every lookup of a member on its Enum class costs a Python-level
# call, and this runs for every mini-batch
_RUN_DONE = OutcomeStatus.RUN_DONE


@dataclasses.dataclass
class FailureSummary:
    """The first mini-batch whose items failed: what it held, why, and where the traceback is."""

    mini_batch: int
    items: str                          # the paths or table range it held
    error_type: str | None
    message: str
    traceback_file: str | None          # logs/user/error/<node>/<process>.txt, None if no traceback

    def __str__(self) -> str:
        cause = f"{self.error_type}: {self.message}" if self.error_type else self.message
        where = f" (full traceback: {self.traceback_file})" if self.traceback_file else ""
        return f"mini-batch {self.mini_batch} [{self.items}]: {cause}{where}"


@dataclasses.dataclass
class JobResult:
    """How a job ended: status, counts, where its output and logs are, and why it failed."""

    status: str                         # a RunStatus: Finished | Failed | Canceled
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
    first_failure: FailureSummary | None = None  # set whenever an item failed, Finished or not
    #: the run recording this job (``parallelrun runs show RUN_ID``); None when none did
    run_id: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == RunStatus.FINISHED

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
        if self.first_failure is not None:
            lines.append(f"first failure: {self.first_failure}")
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


def _plan(datasets: Sequence[AbstractDataset], config: ParallelRunConfig,
          exclude: Sequence[str] = ()) -> Iterator[MiniBatch]:
    """Mini-batches of every input in turn, numbered across inputs; the folders in ``exclude``
    (the job's own output and logs) are never read as input."""
    index = 0
    for dataset in datasets:
        for mb in dataset.plan(config.mini_batch_size, config.partition_keys, start_index=index,
                               exclude=exclude):
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
        elif isinstance(item, (str, os.PathLike)) and not is_url(os.fspath(item)):
            path = os.path.abspath(os.fspath(item))
            if not os.path.exists(path):
                raise ConfigurationError("side_inputs", os.fspath(item),
                                         "an existing local file or folder, or a dataset")
            paths[name] = path
        else:
            raise ConfigurationError("side_inputs", item, "datasets (Dataset.File.from_files"
                                     "(...)), local paths, or a dict of name to local path")
    return paths


def _local_paths(datasets: Sequence[AbstractDataset], side_paths: Mapping[str, str],
                 model_paths: Mapping[str, str]) -> list[tuple[str, str]]:
    """(what, path) for everything the workers must read from this machine's disk."""
    paths: dict[str, str] = {}
    for what, path in ([("input", path) for dataset in datasets for path in dataset.local_paths()]
                       + [(f"side input {name!r}", path) for name, path in side_paths.items()]
                       + [(f"model {name!r}", path) for name, path in model_paths.items()]):
        paths.setdefault(path, what)
    return [(what, path) for path, what in paths.items()]


def _output_file_names(action: OutputAction) -> list[str]:
    """What the output action writes in the output folder (the file and its staging file)."""
    return [os.path.basename(path) for path in action.files()]


class _FirstFailure(ProgressListener):
    """Keeps the first try whose items failed for good, for the result and the terminal."""

    def __init__(self, log_dir: str):
        self.log_dir = log_dir
        self.summary: FailureSummary | None = None

    def on_record(self, progress: JobProgress, record: MiniBatchRecord) -> None:
        # a final failed try counts even where its items are unknown (a table's rows are
        # counted by the worker that reads them: a mini-batch that timed out has none)
        if self.summary is not None or not record.final or \
                (record.status == _RUN_DONE and not record.failed):
            return
        message = (record.error_message or "").strip().splitlines()
        has_traceback = record.status != _RUN_DONE or bool(record.error_message)
        self.summary = FailureSummary(
            mini_batch=record.index, items=record.item_names or f"{record.items or '?'} items",
            error_type=record.error_type,
            message=message[0] if message else
            f"run() returned results for {record.succeeded} of {record.items} items",
            traceback_file=traceback_file(self.log_dir, record) if has_traceback else None)


def _one_line_cause(exc: BaseException) -> str:
    """What stopped the job, in one line a person can act on."""
    if isinstance(exc, OSError) and not isinstance(exc, ParallelRunError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        hint = {errno.ENOSPC: "free some space, then resume the job",
                errno.EDQUOT: "free some space, then resume the job",
                errno.EROFS: "make the folder writable, then resume the job",
                errno.EACCES: "fix the permissions, then resume the job",
                errno.ENOENT: "a folder the job writes into was removed; resume the job"}
        return f"{exc.strerror}{where}: " + hint.get(exc.errno, "fix it, then resume the job")
    text = str(exc).strip() or type(exc).__name__
    return text if isinstance(exc, ParallelRunError) else f"{type(exc).__name__}: {text}"


def _same_plan_as_journal(planner: Iterator[MiniBatch], committed: Mapping[int, Commit],
                          log_dir: str) -> Iterator[MiniBatch]:
    """Plan up to the last committed mini-batch now, checking each committed one holds what it
    held when it was committed; returns the plan to run, from its start.

    A file added, removed or renamed in the inputs moves items to other mini-batches: resuming
    would run some twice and skip others, so that is refused (ResumeMismatchError).
    """
    last = max(committed)
    seen: list[MiniBatch] = []
    for minibatch in planner:
        seen.append(minibatch)
        commit = committed.get(minibatch.index)
        if commit is not None and commit.digest and commit.digest != minibatch.digest():
            raise ResumeMismatchError(log_dir, [(
                "inputs' listing", f"mini-batch {minibatch.index} held other items",
                f"it holds {minibatch.item_names(3)}: files were added, removed or renamed")])
        if minibatch.index >= last:
            break
    return itertools.chain(seen, planner)


def _prepare_workers(stack: contextlib.ExitStack, config: ParallelRunConfig,
                     datasets: Sequence[AbstractDataset], action: OutputAction, args: list[str],
                     model_paths: dict[str, str], side_inputs: Any, backend_class: type,
                     backend_options: dict, output_dir: str, log_path: str, python: str | None,
                     run_id: str | None, workspace_path: str | None):
    """The backend with its slots planned and every local path checked, and the side inputs as
    local paths; raises (ConfigurationError, BackendError...) before any worker starts."""
    side_staging = os.path.join(tempfile.gettempdir(),
                                f"parallelrun-side-inputs-{uuid.uuid4().hex}")
    if side_inputs:
        stack.callback(shutil.rmtree, side_staging, True)
    side_paths = _side_input_paths(side_inputs, side_staging)
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
        # a backends.base.RuntimeSpec, which the pipeline layer's engine_config made from an
        # Environment: backends that build environments on their nodes (Ray's runtime_env) read it
        backend_options.setdefault("environment", config.environment)
    backend = backend_class(spec, **backend_options)
    # a job that ends any way at all leaves no worker behind (idempotent after a clean end)
    stack.callback(backend.shutdown, grace_seconds=0)
    slots = backend.plan_slots(config.node_count, config.process_count_per_node)
    backend.check_local_paths(_local_paths(datasets, side_paths, model_paths))
    return backend, slots, side_paths


def _finish_unstarted(output_dir: str, log_dir: str, started: float, error: str,
                      raise_on_failure: bool) -> JobResult:
    """The result of a job that could not even create its files (a read-only or full disk)."""
    result = JobResult(status=RunStatus.FAILED, output_dir=output_dir, output_file=None,
                       log_dir=log_dir, minibatches_total=0, minibatches_succeeded=0,
                       minibatches_failed=0, items_succeeded=0, items_failed=0, retries=0,
                       elapsed_seconds=time.time() - started, error=error)
    if raise_on_failure:
        raise JobFailedError(f"job Failed: {error}", result)
    return result


@stage_remote_outputs  # output/log_dir on a datastore: written locally, uploaded at the end
def run_job(config: ParallelRunConfig, inputs: Any, output: str | os.PathLike, arguments:
            Sequence[str] | None = None, *, log_dir: str | os.PathLike | None = None,
            models: Any = None, side_inputs: Any = None,
            listeners: Iterable[ProgressListener] = (), resume: bool = False,
            overwrite: bool = False, cancel: threading.Event | None = None,
            progress: JobProgress | None = None, python: str | None = None,
            run_id: str | None = None, workspace_path: str | None = None,
            raise_on_failure: bool = False, remote_folders: Sequence[str] = ()) -> JobResult:
    """Run the entry script over ``inputs`` in parallel and gather the results in ``output``:
    the engine's half of :func:`parallelrun.run_job`, whose docstring says what each argument
    does and what a job guarantees (that function also records the job as a run; pipeline steps
    call this one, their runs being recorded by the pipeline). ``remote_folders`` are set by
    ``stage_remote_outputs``: the datastore URLs that ``output``/``log_dir`` (local staging
    folders by then) stand for, never read as input either.

    In order: everything that can be refused is checked without writing; the output and log
    folders are claimed (engine/job_folders.py); the workers are prepared; then one ExitStack
    holds the job until its result is written, whichever way it ends.
    """
    started = time.time()
    args = check_arguments(arguments)
    inspect_entry_script(config.script_path)
    datasets = _as_datasets(inputs)
    for dataset in datasets:
        dataset.check_mini_batch_size(config.mini_batch_size)
        dataset.check_inputs()    # a registered dataset's files may have gone since
    model_paths = _model_paths(models)
    backend_name, backend_options = backend_choice(config.compute_target)
    backend_class = get_backend(backend_name)
    if not os.fspath(output).strip():  # '' would be the current folder: an unset "$OUT"?
        raise ConfigurationError("output", output, "a folder path, e.g. 'out/' ('.' for the "
                                 "current folder)")
    output_dir = os.path.abspath(os.fspath(output))
    log_path = os.path.abspath(os.fspath(log_dir)) if log_dir else os.path.join(output_dir, "logs")
    action = make_output_action(config.output_action, output_dir, config.append_row_file_name,
                                config.append_row_format)
    own_folders = [output_dir, log_path, *remote_folders]
    for dataset in datasets:
        dataset.check_outside(own_folders)
    fingerprint = job_fingerprint(config, args, [d.describe() for d in datasets])

    with contextlib.ExitStack() as stack:
        # Everything above refused without writing; from here on the job owns its folders.
        try:
            folders = stack.enter_context(job_folders(
                output_dir, log_path, _output_file_names(action), fingerprint, resume=resume,
                overwrite=overwrite))
        except OSError as exc:  # a read-only or full disk: a failed job, with nowhere to log it
            if isinstance(exc, ParallelRunError):
                raise
            return _finish_unstarted(output_dir, log_path, started, _one_line_cause(exc),
                                     raise_on_failure)
        try:
            backend, slots, side_paths = _prepare_workers(
                stack, config, datasets, action, args, model_paths, side_inputs, backend_class,
                backend_options, output_dir, log_path, python, run_id, workspace_path)
        except ParallelRunError:
            if not resume:
                folders.discard_new_logs()  # refused before any work: as if never started
            raise
        try:
            logs = JobLogs(log_path, config.logging_level, resume=resume)
        except OSError as exc:
            return _finish_unstarted(output_dir, log_path, started, _one_line_cause(exc),
                                     raise_on_failure)
        stack.callback(logs.close)
        cancel = cancel or threading.Event()
        stop = stack.enter_context(StopSignals(cancel, only_if_default=True))
        progress = progress or JobProgress()
        first_failure = _FirstFailure(log_path)
        all_listeners = [logs, first_failure, *listeners]
        log = logs.logger
        status, error, interrupted = RunStatus.FAILED, None, None
        journal = Journal(logs.journal_path)
        try:
            # entries naming rows the output file lacks (lost in a crash) are dropped: rerun
            committed = journal.load(action.size_on_disk()) if resume else {}
            if journal.dropped:
                log.warning("%d committed mini-batches name rows the output lacks (lost in a "
                            "crash, or the output was cut short): they run again",
                            len(journal.dropped))
            planner = _plan(datasets, config, exclude=own_folders)
            if committed:
                # before the output is cut back or a worker starts: the same items, same places
                planner = _same_plan_as_journal(planner, committed, log_path)
            if not resume:
                Path(journal.path).unlink(missing_ok=True)
            action.open(journal.output_end() if resume else None)
            journal.open()
            for commit in committed.values():
                progress.minibatches_succeeded += 1
                progress.items_succeeded += commit.succeeded
                progress.items_failed += commit.items - commit.succeeded
            log.info("job starting: %s over %s with %d workers on backend %s; output %s; logs %s",
                     config.script_path, ", ".join(d.describe() for d in datasets), len(slots),
                     backend_name, action.path or output_dir, log_path)
            if committed:
                log.info("resuming: %d mini-batches were committed before", len(committed))
            scheduler = Scheduler(
                backend, slots, planner, action, journal,
                Limits(run_max_try=config.run_max_try,
                       run_invocation_timeout=config.run_invocation_timeout,
                       init_timeout=config.init_timeout, error_threshold=config.error_threshold,
                       allowed_failed_count=config.allowed_failed_count,
                       allowed_failed_percent=config.allowed_failed_percent,
                       init_failures=3 * len(slots)),
                listeners=all_listeners, progress=progress, skip=set(committed), cancel=cancel,
                logger=log)
            outcome = scheduler.run()
            status, error = outcome.status, outcome.error
            if status == RunStatus.CANCELED and stop.received:
                error = stop.reason
        except ResumeMismatchError:
            raise  # a refusal before any work, like the fingerprint's
        except (ParallelRunError, OSError) as exc:
            # the job's own failure (bad data, a full disk, a lost backend): a result, not a crash
            log.exception("the job failed")
            error = _one_line_cause(exc)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                status = RunStatus.CANCELED
                error = "the job was interrupted (Ctrl-C twice: stopped at once)"
            else:
                log.exception("the job stopped on an unexpected error")
                error = f"{type(exc).__name__}: {exc}"
            interrupted = exc
        backend.shutdown(grace_seconds=0)  # already done unless the job ended on an error
        try:
            action.close()  # writes what was committed (parquet: the final file)
            journal.close()  # after the output: the journal never names rows the output lacks
        except OSError as exc:
            log.error("could not close the output: %s", exc)
            status, error = RunStatus.FAILED, error or _one_line_cause(exc)
        progress.status = status
        progress.finished_at = time.time()
        result = JobResult(
            status=status, output_dir=output_dir, output_file=action.path, log_dir=log_path,
            minibatches_total=progress.planned_minibatches,
            minibatches_succeeded=progress.minibatches_succeeded,
            minibatches_failed=progress.minibatches_failed,
            items_succeeded=progress.items_succeeded, items_failed=progress.items_failed,
            retries=progress.retries, elapsed_seconds=time.time() - started, error=error,
            first_failure=first_failure.summary)
        log.info("job ended: %s", result.summary().replace("\n", "; "))
        for listener in all_listeners:
            try:
                listener.on_end(progress, result)
            except OSError as exc:  # a full disk must not hide the result from the caller
                log.error("could not record the end of the job: %s", exc)
    if interrupted is not None:
        raise interrupted
    if stop.installed and stop.received is signal.SIGINT:
        raise KeyboardInterrupt
    if stop.installed and stop.received is not None:
        raise SystemExit(128 + int(stop.received))
    if raise_on_failure and not result.succeeded:
        raise JobFailedError(f"job {result.status}: {result.error}", result)
    return result
