"""Every job is a run: ``run_job`` (the public one) and ``parallelrun run`` record the job in a
workspace's catalog, so it is listed, shown, watched, cancelled and resumed by id like a pipeline.

The engine's ``run_job`` (:mod:`parallelrun.engine.job`) sits below the workspace and pipeline
layers and knows nothing of runs; this module wraps it. What a recorded job is:

* a row in ``runs`` of kind ``run_job``, in the workspace found from the current folder, else
  the default one (:mod:`parallelrun.workspace.default_workspace`); its experiment is the
  current folder's name unless given. It has one step run (kind ``parallel``, named after the
  entry script) whose counts a thread of this process updates about once a second, as the
  pipeline runner does for a ParallelRunStep;
* the process running it (pid, start time, host): a job whose process died is seen Failed;
  ``runs cancel`` sets the run's cancel flag, which the same thread polls, and sends SIGTERM
  where the engine turns it into a graceful stop (recorded as ``graph.job.stops_on_sigterm``);
* a run folder, ``<workspace>/.parallelrun/runs/<run id>/``, holding ``job.pkl`` (config,
  inputs, output, arguments: what ``runs resume RUN_ID`` runs again with ``resume=True``, in
  ``python -m parallelrun.pipeline.job_runs RUN_ID --workspace PATH``) and ``run.log`` (what
  ``runs watch`` prints).

The record is made when the engine starts the job (its ``on_start``): a job refused before any
work (a bad value, a folder in use) is no run. ``run_job(..., resume=True)`` goes on with the
run that wrote the same log folder. Pipelines call the engine directly: the pipeline runner
records their steps.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Sequence

from parallelrun.backends import backend_of
from parallelrun.config import ParallelRunConfig
from parallelrun.data.urls import is_url
from parallelrun.engine.job import JobResult
from parallelrun.engine.job import run_job as run_engine_job
from parallelrun.engine.progress import JobProgress, ProgressListener
from parallelrun.engine.stop_signals import StopSignals
from parallelrun.errors import ConfigurationError, JobFailedError, ParallelRunError, WorkspaceError
from parallelrun.pipeline.environment import engine_config, materialise, storage_requirements
from parallelrun.pipeline.processes import process_start_time, start_run_process
from parallelrun.pipeline.records import JOB_KIND, RunStore, hold_catalog_open, progress_fields
from parallelrun.statuses import TERMINAL_STATUSES, RunStatus

SPEC_FILE = "job.pkl"
RUN_LOG = "run.log"
RUNNER_OUT = "runner.out"
FLUSH_EVERY = 1.0
_EXPERIMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")
_this_process_started: float | None = None


def _say_on_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def default_experiment_name(folder: str | None = None) -> str:
    """The experiment a job is listed under when none is given: the folder's name (the current
    folder's by default) in the letters an experiment name allows, as Azure ML v2 names it."""
    base = re.sub(r"[^A-Za-z0-9_-]+", "_", os.path.basename(folder or os.getcwd())).strip("_-")
    return base[:255] or "jobs"


def run_job(config: ParallelRunConfig, inputs: Any, output: str | os.PathLike,
            arguments: Sequence[str] | None = None, *, log_dir: str | os.PathLike | None = None,
            models: Any = None, side_inputs: Any = None,
            listeners: Iterable[ProgressListener] = (), resume: bool = False,
            overwrite: bool = False, cancel: threading.Event | None = None,
            progress: JobProgress | None = None, python: str | None = None,
            run_id: str | None = None, workspace_path: str | None = None,
            raise_on_failure: bool = False, workspace: Any = None,
            experiment_name: str | None = None) -> JobResult:
    """Run the entry script over ``inputs`` in parallel and gather the results in ``output``.

    Example::

        result = run_job(config, inputs=[Dataset.File.from_files("data/*.png")], output="out/")
        print(result.status, result.items_succeeded, result.output_file)
        print(result.run_id)      # parallelrun runs show|watch|cancel|resume RUN_ID
        if result.first_failure:
            print(result.first_failure)   # which mini-batch, the exception, its traceback file

    Every job is a run: when it starts, it is recorded in the workspace found from the current
    folder (``config.json`` upward), else in the default workspace (``~/.parallelrun``, or
    ``$PARALLELRUN_HOME``; created on first use), and its run id is printed on stderr. Its
    counts are updated about once a second, so ``parallelrun runs list|show|watch`` and the
    dashboard follow it; ``parallelrun runs cancel RUN_ID`` stops it gracefully and
    ``parallelrun runs resume RUN_ID`` continues it. ``workspace`` (a Workspace or its folder)
    records it elsewhere; ``experiment_name`` lists it under that experiment (default: the
    current folder's name). ``JobResult.run_id`` is the run's id.

    ``side_inputs`` (datasets, local paths, or a dict of name to path) reach every worker
    whole, by name: ``Run.get_context().input_datasets[name]`` and the variable
    ``AZUREML_DATAREFERENCE_<name>`` hold the local path. Everything is checked before any
    worker starts.

    parallelrun deletes only what it wrote: an output folder holding an earlier job's results is
    refused unless ``overwrite=True`` (replace them) or ``resume=True`` (continue that job, whose
    coordinator died or was stopped: committed mini-batches are not run again and the output keeps
    each row once; the job must be the same, see :mod:`parallelrun.engine.job_folders`). One job
    at a time writes into a folder.

    The job's outcome is in the returned :class:`JobResult`, and ``job_result.txt`` in the log
    folder, on every way out. With ``raise_on_failure=True`` a failed job raises JobFailedError.
    Called on the main thread of a program that has not set its own signal handlers, the first
    Ctrl-C or SIGTERM stops the job gracefully (Canceled, resumable) and is then raised
    (KeyboardInterrupt, SystemExit); a second Ctrl-C stops it at once.
    """
    return record_job(config, inputs, output, arguments, log_dir=log_dir, models=models,
                      side_inputs=side_inputs, listeners=listeners, resume=resume,
                      overwrite=overwrite, cancel=cancel, progress=progress, python=python,
                      run_id=run_id, workspace_path=workspace_path,
                      raise_on_failure=raise_on_failure, workspace=workspace,
                      experiment_name=experiment_name)


def record_job(config: ParallelRunConfig, inputs: Any, output: Any, arguments: Any = None, *,
               workspace: Any = None, experiment_name: str | None = None,
               say: Callable[[str], None] = _say_on_stderr, started_by: str = "python",
               _resuming_run: dict | None = None, **engine_options: Any) -> JobResult:
    """:func:`run_job` with the terminal's ways: ``say`` prints the run id and notes (the CLI
    passes its console), ``started_by`` is recorded (``python``, ``cli``, ``resume``)."""
    raise_on_failure = bool(engine_options.pop("raise_on_failure", False))
    if experiment_name is not None and not (isinstance(experiment_name, str)
                                            and _EXPERIMENT_NAME.match(experiment_name)):
        raise ConfigurationError("experiment_name", experiment_name,
                                 "1 to 255 letters, digits, '_' or '-', starting with a letter or "
                                 "digit (e.g. 'digit_identification')")
    if config.environment is not None and engine_options.get("python") is None and \
            backend_of(config.compute_target) == "local":
        # the workers' own virtualenv (its pins resolved with what the worker needs), as a
        # pipeline step's; Ray builds environments on its nodes from the same object
        engine_options["python"] = materialise(config.environment,
                                               extra_requirements=storage_requirements(inputs))
    # the engine takes the Environment as a plain RuntimeSpec; the run records the config given
    job_config = engine_config(config, engine_options.get("python"))
    recorder = _recorder_for(config, inputs, output, arguments, workspace, experiment_name, say,
                             started_by, _resuming_run, engine_options)
    if recorder is None:
        result = run_engine_job(job_config, inputs, output, arguments,
                                raise_on_failure=raise_on_failure, **engine_options)
        return result
    engine_options["cancel"] = recorder.cancel
    engine_options["listeners"] = [recorder, *(engine_options.get("listeners") or ())]
    # entry scripts see the run: Run.get_context() finds its step run, experiment, workspace
    engine_options["run_id"] = engine_options.get("run_id") or recorder.step_id
    engine_options["workspace_path"] = engine_options.get("workspace_path") or \
        recorder.store.workspace.path
    try:
        result = run_engine_job(job_config, inputs, output, arguments, **engine_options)
    except BaseException as exc:
        recorder.abandon(exc)   # a refusal (never recorded), or a crash after the start
        raise
    if not recorder.created:
        recorder.record_unstarted(result)   # e.g. a full disk: Failed before the start
    result.run_id = recorder.run_id if recorder.created else None
    if raise_on_failure and not result.succeeded:
        raise JobFailedError(f"job {result.status}: {result.error}", result)
    return result


def _recorder_for(config, inputs, output, arguments, workspace, experiment_name, say, started_by,
                  resuming_run, engine_options) -> _JobRecorder | None:
    """The listener that records this job, or None (with a note) when no workspace can."""
    from parallelrun.workspace.default_workspace import HOME_VARIABLE, workspace_for_runs

    if workspace is not None and not isinstance(workspace, (str, os.PathLike)):
        ws = workspace
    else:
        try:
            ws, created = workspace_for_runs(workspace)
        except (WorkspaceError, OSError) as exc:
            if workspace is not None:
                raise
            say(f"note: this job is not recorded as a run (no workspace could record it: {exc})")
            return None
        if created:
            say(f"note: no workspace here, so runs are recorded in the default workspace "
                f"{ws.path}, made now ({HOME_VARIABLE} chooses its folder; `parallelrun "
                "workspace create NAME` makes a workspace of your own)")
    store = RunStore(ws)
    hold_catalog_open(ws.catalog)   # so that recording costs a few milliseconds
    log_dir = engine_options.get("log_dir")
    resume = bool(engine_options.get("resume"))
    local_output = _local_path(output)
    local_logs = _local_path(log_dir) if log_dir is not None else (
        os.path.join(local_output, "logs") if local_output else None)
    if resume and resuming_run is None and local_logs:
        try:
            resuming_run = store.job_run_with_log_dir(local_logs)
        except WorkspaceError:
            resuming_run = None
    try:
        spec = pickle.dumps({"config": config, "inputs": inputs, "output": output,
                             "arguments": arguments, **{k: engine_options.get(k) for k in (
                                 "log_dir", "models", "side_inputs", "python")}})
    except Exception as exc:  # noqa: BLE001 - the job runs; only resume by id is lost
        spec = None
        say(f"note: `parallelrun runs resume` cannot resume this job by id: its inputs cannot "
            f"be saved ({type(exc).__name__}: {exc}); resume it with run_job(..., resume=True)")
    experiment = experiment_name or (resuming_run or {}).get("experiment") or \
        default_experiment_name()
    script = os.path.splitext(os.path.basename(str(config.entry_script or "job")))[0]
    step_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", script).strip("_.-") or "job"
    return _JobRecorder(
        store=store, experiment=experiment, step_name=step_name, resuming_run=resuming_run,
        spec=spec, say=say, started_by=started_by, explicit_workspace=workspace is not None,
        cancel=engine_options.get("cancel") or threading.Event(), local_output=local_output,
        local_logs=local_logs,
        job={"entry_script": str(config.entry_script), "source_directory": str(config.source_path),
             "inputs": _describe_inputs(inputs), "output": _shown(output),
             "log_dir": local_logs or _shown(log_dir),
             "arguments": [str(a) for a in arguments or []]})


class _JobRecorder(ProgressListener):
    """Records one job as a run: made at the engine's start, counts once a second from a thread
    (never on the scheduler's), the cancel flag polled, the outcome at the end."""

    def __init__(self, *, store: RunStore, experiment: str, step_name: str,
                 resuming_run: dict | None, spec: bytes | None, say: Callable[[str], None],
                 started_by: str, explicit_workspace: bool, cancel: threading.Event,
                 local_output: str | None, local_logs: str | None, job: dict):
        self.store = store
        self.experiment = experiment
        self.step_name = step_name
        self.resuming_run = resuming_run
        self.spec = spec
        self.say = say
        self.started_by = started_by
        self.explicit_workspace = explicit_workspace
        self.cancel = cancel
        self.job = job
        self.local_output = local_output
        self.local_logs = local_logs
        self.run_id = (resuming_run or {}).get("id") or \
            f"{experiment}_{int(time.time())}_{uuid.uuid4().hex[:8]}"
        self.step_id = uuid.uuid4().hex
        self.run_dir = os.path.join(store.workspace.state_dir, "runs", self.run_id)
        self.created = False
        self.ended = False
        self.progress: JobProgress | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ProgressListener --------------------------------------------------------------------------
    def on_start(self, progress: JobProgress) -> None:
        self.progress = progress
        try:
            attempt = self._record_start()
        except Exception as exc:  # noqa: BLE001 - a busy or broken catalog must not stop the job
            self.say(f"note: this job is not recorded as a run: {type(exc).__name__}: {exc}")
            return
        self.created = True
        where = f" --workspace {self.store.workspace.path}" if self.explicit_workspace else ""
        self.say(f"run {self.run_id}{f' (attempt {attempt})' if attempt > 1 else ''} in "
                 f"workspace {self.store.workspace.name!r} ({self.store.workspace.path}); follow "
                 f"it: parallelrun runs watch {self.run_id}{where}")

    def on_tick(self, progress: JobProgress) -> None:
        # the first tick (a second in): from now on a thread keeps the record live; a job that
        # ends sooner never pays for one
        if self.created and self._thread is None and not self.ended:
            self._thread = threading.Thread(target=self._flush_loop, daemon=True,
                                            name="parallelrun-job-run")
            self._thread.start()

    def on_end(self, progress: JobProgress, result: object) -> None:
        self._finish(result.status, result.error or _first_failure(result), result)

    # the record --------------------------------------------------------------------------------
    def _record_start(self) -> int:
        """Record the job as Running in this process (a new run, or the run it resumes);
        returns the attempt."""
        process = {"pid": os.getpid(), "pid_started": _process_started(),
                   "host": socket.gethostname()}
        self.job["stops_on_sigterm"] = _sigterm_stops_the_job()
        self.job["started_by"] = self.started_by
        graph = {"steps": [{"name": self.step_name, "kind": "parallel",
                            "inputs": self.job["inputs"], "outputs": [], "allow_reuse": False,
                            "entry_script": self.job["entry_script"],
                            "source_directory": self.job["source_directory"],
                            "side_inputs": [], "models": [], "depends_on": []}],
                 "order": [self.step_name], "job": dict(self.job)}
        outputs = {"output": {"local_path": self.local_output} if self.local_output else
                   {"url": self.job["output"]}}
        attempt = self._claim(process, graph, outputs) if self.resuming_run else 0
        if not attempt:   # a new run (also when another process took the one it resumes)
            attempt = 1
            if self.resuming_run:
                self.run_id = f"{self.experiment}_{int(time.time())}_{uuid.uuid4().hex[:8]}"
                self.run_dir = os.path.join(self.store.workspace.state_dir, "runs", self.run_id)
            self.store.create_started_run(
                {"id": self.run_id, "experiment": self.experiment, "kind": JOB_KIND,
                 "tags": {"started_by": self.started_by}, "graph": graph,
                 "run_dir": self.run_dir, "cwd": os.getcwd(), **process},
                {"id": self.step_id, "name": self.step_name, "kind": "parallel",
                 "log_dir": self.local_logs, "outputs": outputs})
        os.makedirs(self.run_dir, exist_ok=True)
        if self.spec is not None:
            with open(os.path.join(self.run_dir, SPEC_FILE), "wb") as fh:
                fh.write(self.spec)
        self._log(f"job {'started' if attempt == 1 else f'resumed (attempt {attempt})'} in "
                  f"process {process['pid']}: {self.job['entry_script']} over "
                  f"{', '.join(self.job['inputs'])}; output {self.job['output']}; logs "
                  f"{self.job['log_dir']}")
        return attempt

    def _claim(self, process: dict, graph: dict, outputs: dict) -> int:
        """Take over the run this job resumes; 0 when another process holds it."""
        from parallelrun.pipeline.runs import reconcile

        record = reconcile(self.store, self.store.run(self.resuming_run["id"]))
        attempt = int(record.get("attempts") or 0) + 1
        if not self.store.update_run(
                record["id"],
                only_if_status=(RunStatus.QUEUED, RunStatus.FAILED, RunStatus.CANCELED),
                status=RunStatus.RUNNING, error=None, finished_at=None,
                started_at=record.get("started_at") or time.time(),
                attempts=attempt, graph=graph, **process):
            return 0
        self.run_dir = record["run_dir"]
        steps = self.store.steps(record["id"])
        self.step_id = steps[0]["id"] if steps else self.step_id
        self.store.update_step(self.step_id, status=RunStatus.RUNNING, error=None,
                               finished_at=None, log_dir=self.local_logs, outputs=outputs)
        return attempt

    def _flush_loop(self) -> None:
        """About once a second: live counts to the catalog; the cancel flag from it."""
        while True:
            try:
                if not self.cancel.is_set() and self.store.cancel_requested(self.run_id):
                    self._log("cancel requested: stopping the job (finished mini-batches are kept)")
                    self.cancel.set()
                if self.progress is not None:
                    self.store.update_step(self.step_id, **progress_fields(self.progress))
            except Exception:  # noqa: BLE001 - a busy catalog must not kill the job
                pass
            if self._stop.wait(FLUSH_EVERY):
                return

    def _finish(self, status: str, error: str | None, result: Any = None) -> None:
        if not self.created or self.ended:
            return
        self.ended = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        fields: dict = progress_fields(self.progress) if self.progress is not None else {}
        log_dir = getattr(result, "log_dir", None)
        if log_dir and os.path.isdir(log_dir):
            from parallelrun.metrics import collect_metrics

            fields["metrics"] = collect_metrics(log_dir)
        try:
            self.store.end_job_run(self.run_id, self.step_id, status, error, **fields)
        except Exception as exc:  # noqa: BLE001 - the result still reaches the caller
            self.say(f"note: could not record the end of run {self.run_id}: {exc}")
        summary = result.summary().replace("\n", "; ") if result is not None else error
        self._log(f"job {status}: {summary}")

    def abandon(self, exc: BaseException) -> None:
        """The engine raised: a started job's run ends Failed (or Canceled on Ctrl-C)."""
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            self._finish(RunStatus.CANCELED, f"the job was interrupted ({type(exc).__name__})")
        else:
            self._finish(RunStatus.FAILED,
                         "".join(traceback.format_exception_only(type(exc), exc)).strip())

    def record_unstarted(self, result: JobResult) -> None:
        """A job that failed before its start (nothing written: a full or read-only disk)."""
        self.on_start(JobProgress(started_at=time.time() - result.elapsed_seconds))
        self.on_end(self.progress, result)

    def _log(self, message: str) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        try:
            with open(os.path.join(self.run_dir, RUN_LOG), "a", encoding="utf-8") as fh:
                fh.write(f"{stamp} {message}\n")
        except OSError:
            pass


def _first_failure(result: Any) -> str | None:
    failure = getattr(result, "first_failure", None)
    return str(failure) if failure is not None and result.status != RunStatus.FINISHED else None


def _local_path(value: Any) -> str | None:
    """The absolute local path of an output or log folder; None for a URL or a datastore path."""
    if getattr(value, "remote", False):
        return None  # a path on a remote datastore (its os.fspath raises)
    if isinstance(value, (str, os.PathLike)) and not is_url(os.fspath(value)):
        return os.path.abspath(os.fspath(value))
    return None


def _shown(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "url", None) or os.fspath(value)) if not isinstance(value, str) \
        else value


def _describe_inputs(inputs: Any) -> list[str]:
    items = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    described = []
    for item in items:
        describe = getattr(item, "describe", None)
        described.append(describe() if callable(describe) else str(item))
    return described


def _process_started() -> float | None:
    global _this_process_started
    if _this_process_started is None:
        _this_process_started = process_start_time(os.getpid())
    return _this_process_started


def _sigterm_stops_the_job() -> bool:
    """Whether SIGTERM to this process stops the job gracefully (a StopSignals handler is in
    place: the CLI's, or the engine's on a main thread); elsewhere, e.g. in a notebook kernel,
    SIGTERM would end the process, so ``runs cancel`` only sets the cancel flag."""
    handler = signal.getsignal(signal.SIGTERM)
    return isinstance(getattr(handler, "__self__", None), StopSignals)


# resume by id ------------------------------------------------------------------------------------
def resume_job_run(store: RunStore, record: dict) -> subprocess.Popen:
    """Start ``python -m parallelrun.pipeline.job_runs RUN_ID --workspace PATH`` for a job run
    that Failed or was Canceled: it runs the recorded job again with ``resume=True`` (finished
    mini-batches are kept, each output row once). Returns the process (in its own session)."""
    run_id = record["id"]
    if not os.path.isfile(os.path.join(record["run_dir"], SPEC_FILE)):
        raise ConfigurationError(
            "run", run_id, "a job whose inputs were saved in its run folder; this one's were not "
            "(they could not be pickled): run the same job again with resume=True (parallelrun "
            "run ... --resume)")
    if not store.update_run(run_id, only_if_status=(RunStatus.FAILED, RunStatus.CANCELED),
                            status=RunStatus.QUEUED,
                            cancel_requested=0, error=None, finished_at=None, pid=None,
                            pid_started=None, host=None):
        raise ConfigurationError("run", run_id, "a stopped run; another process resumed it just now")
    process = start_run_process(store, record, ["parallelrun.pipeline.job_runs", run_id,
                                                 "--workspace", store.workspace.path],
                                "the job's process")
    return process


def main(argv: list[str] | None = None) -> int:
    """The process that resumes a recorded job (see :func:`resume_job_run`)."""
    parser = argparse.ArgumentParser(prog="python -m parallelrun.pipeline.job_runs")
    parser.add_argument("run_id")
    parser.add_argument("--workspace", required=True)
    args = parser.parse_args(argv)

    from parallelrun.workspace.workspace import Workspace

    print(f"{datetime.now(timezone.utc).isoformat()} job process {os.getpid()} resumes run "
          f"{args.run_id}", flush=True)
    workspace = Workspace(args.workspace)
    store = RunStore(workspace)
    record = store.run(args.run_id)
    try:
        with open(os.path.join(record["run_dir"], SPEC_FILE), "rb") as fh:
            spec = pickle.load(fh)
        result = record_job(
            spec["config"], spec["inputs"], spec["output"], spec["arguments"],
            workspace=workspace, experiment_name=record["experiment"], started_by="resume",
            _resuming_run=record, resume=True, log_dir=spec.get("log_dir"),
            models=spec.get("models"), side_inputs=spec.get("side_inputs"),
            python=spec.get("python"))
    except (Exception, SystemExit, KeyboardInterrupt) as exc:
        # refused before the start (e.g. the inputs changed since): say why on the run
        current = store.run(args.run_id)
        if current["status"] not in TERMINAL_STATUSES:
            error = str(exc) if isinstance(exc, ParallelRunError) else traceback.format_exc()
            store.update_run(args.run_id, status=RunStatus.FAILED, finished_at=time.time(),
                             error=f"the resumed job did not start: {error}")
        raise
    return 0 if result.succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
