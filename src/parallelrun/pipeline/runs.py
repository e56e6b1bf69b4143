"""``Run``, ``PipelineRun``, ``StepRun``: a submitted pipeline and its steps, as recorded in the
workspace catalog (any process can follow them: a notebook, another terminal, the dashboard).
A job started by ``run_job`` or ``parallelrun run`` is a run too (kind ``run_job``, one step;
see :mod:`parallelrun.pipeline.job_runs`): the same class shows, watches, cancels and resumes it.

Statuses: ``NotStarted`` -> ``Queued`` (the runner process is starting) -> ``Running`` ->
``Finished`` | ``Failed`` | ``Canceled``. A run whose runner process died (killed, machine
restarted) is found out the next time anyone looks: it becomes ``Failed`` with an error saying
to resume it (``run.resume()`` / ``parallelrun runs resume RUN_ID``), which goes on where it
stopped.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from datetime import datetime, timezone
from typing import Any, Iterator

from parallelrun.errors import ConfigurationError, JobFailedError, RunTimeoutError, WorkspaceError
from parallelrun.pipeline.pipeline_data import PortDataReference
from parallelrun.pipeline.records import JOB_KIND, RunStore
from parallelrun.pipeline.step_counts import StepCounts
from parallelrun.statuses import IN_PROGRESS_STATUSES, TERMINAL_STATUSES, RunStatus

POLL_SECONDS = 0.25
# a Queued run without a runner pid this long after its last update lost its runner
_QUEUED_GRACE = 60.0


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")


def runner_alive(record: dict) -> bool:
    """Whether the process recorded as a run's runner still runs (True when it cannot tell)."""
    import psutil

    if record.get("host") and record["host"] != socket.gethostname():
        return True  # another machine's process: only its own status updates tell
    pid = record.get("pid")
    if not pid:
        return time.time() - (record.get("updated_at") or 0) < _QUEUED_GRACE
    try:
        process = psutil.Process(pid)
        if record.get("pid_started") and abs(process.create_time() - record["pid_started"]) > 1.0:
            return False  # the pid was reused by another process
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def reconcile(store: RunStore, record: dict) -> dict:
    """Mark a run Failed when its runner died without saying how it ended."""
    if record["status"] not in IN_PROGRESS_STATUSES or runner_alive(record):
        return record
    error = (f"the run's process (pid {record.get('pid')}) ended without finishing the run "
             "(killed, or the machine restarted); finished mini-batches are kept: continue with "
             f"`parallelrun runs resume {record['id']}` or run.resume()")
    if store.update_run(record["id"], only_if_status=IN_PROGRESS_STATUSES,
                        status=RunStatus.FAILED,
                        error=error, finished_at=time.time(), pid=record.get("pid")):
        for step in store.steps(record["id"]):
            if step["status"] in IN_PROGRESS_STATUSES:
                store.update_step(step["id"], status=RunStatus.FAILED,
                                  error="the run's process died")
    return store.run(record["id"])


class Run:
    """A run in a workspace's catalog. ``Run.get(ws, run_id)`` finds any run by id.

    Example::

        run = Run.get(ws, "digit_identification_1700000000_1a2b3c4d")
        run.get_status()          # 'Running'
        run.wait_for_completion(show_output=True)
    """

    def __init__(self, experiment: Any, run_id: str, _store: RunStore | None = None):
        self.experiment = experiment
        self.workspace = experiment.workspace
        self._store = _store or RunStore(self.workspace)
        self._id = run_id

    @property
    def id(self) -> str:
        return self._id

    # finding ----------------------------------------------------------------------------------
    @staticmethod
    def get(workspace: Any, run_id: str) -> "Run":
        """The run (a PipelineRun) or step run (a StepRun) with that id; a unique prefix of a
        run id is enough."""
        from parallelrun.pipeline.experiment import Experiment

        store = RunStore(workspace)
        try:
            step = store.step(run_id)
        except WorkspaceError:
            step = None
        if step is not None:
            parent = store.run(step["run_id"])
            return StepRun(Experiment(workspace, parent["experiment"]), step["id"],
                           parent["id"], _store=store)
        record = store.run(store.find_run(run_id))
        return PipelineRun(Experiment(workspace, record["experiment"]), record["id"], _store=store)

    @staticmethod
    def list(workspace: Any, experiment_name: str | None = None, limit: int = 50) -> list["PipelineRun"]:
        """Runs, newest first."""
        from parallelrun.pipeline.experiment import Experiment

        store = RunStore(workspace)
        return [PipelineRun(Experiment(workspace, r["experiment"]), r["id"], _store=store)
                for r in store.runs(experiment_name, limit=limit)]

    # state ------------------------------------------------------------------------------------
    def _record(self) -> dict:
        raise NotImplementedError

    def get_status(self) -> str:
        """NotStarted, Queued, Running, Finished, Failed or Canceled."""
        return self._record()["status"]

    @property
    def status(self) -> str:
        return self.get_status()

    def _is_done(self) -> bool:
        return self.get_status() in TERMINAL_STATUSES

    def wait_for_completion(self, show_output: bool = False,
                            timeout_seconds: float = sys.maxsize,
                            raise_on_error: bool = True) -> str:
        """Wait until the run ends; returns its status.

        ``show_output=True`` streams the run's log lines and each running step's progress
        (mini-batches, items, failures, rate, ETA). A Failed run raises JobFailedError with the
        step's first real error unless ``raise_on_error=False``. Example::

            pipeline_run.wait_for_completion(show_output=True)
        """
        from parallelrun.pipeline.watch import RunWatcher

        deadline = time.monotonic() + timeout_seconds
        watcher = RunWatcher(self) if show_output else None
        try:
            while True:
                status = self.get_status()
                if watcher is not None:
                    watcher.update()
                if status in TERMINAL_STATUSES:
                    break
                if time.monotonic() >= deadline:
                    raise RunTimeoutError(self.id, status, timeout_seconds)
                time.sleep(POLL_SECONDS)
        finally:
            if watcher is not None:
                watcher.close()
        if status == RunStatus.FAILED and raise_on_error:
            raise JobFailedError(f"run {self.id} Failed: {self._record().get('error')}", run=self)
        return status

    def get_details(self) -> dict:
        raise NotImplementedError

    def get_metrics(self, name: str | None = None) -> dict:
        raise NotImplementedError

    def cancel(self) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, status={self.get_status()!r})"


class PipelineRun(Run):
    """A submitted pipeline. Returned by ``Experiment.submit(pipeline)``.

    Example::

        pipeline_run = Experiment(ws, "digit_identification").submit(pipeline)
        pipeline_run.wait_for_completion(show_output=True)
        step_run = pipeline_run.find_step_run("batch-mnist")[0]
        step_run.get_output_data("inferences").download(local_path="results")
    """

    def __init__(self, experiment: Any, run_id: str, _store: RunStore | None = None,
                 _process: Any = None):
        super().__init__(experiment, run_id, _store)
        self._process = _process

    def _record(self) -> dict:
        if self._process is not None:
            self._process.poll()  # reap our runner child, so a dead one is not a zombie
        return reconcile(self._store, self._store.run(self.id))

    @property
    def run_dir(self) -> str:
        return self._store.run(self.id)["run_dir"]

    # steps ------------------------------------------------------------------------------------
    def get_steps(self) -> Iterator["StepRun"]:
        """The step runs, in the order of the pipeline's steps."""
        for row in self._store.steps(self.id):
            yield StepRun(self.experiment, row["id"], self.id, _store=self._store)

    get_children = get_steps

    def find_step_run(self, name: str) -> list["StepRun"]:
        """The step runs of the step named ``name`` (a list, as in Azure ML)."""
        steps = [s for s in self.get_steps() if s.name == name]
        return steps

    # actions ----------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop the run: running steps stop (finished mini-batches stay in their output), steps
        not started are Canceled. Returns at once; ``wait_for_completion`` sees it end."""
        record = self._record()
        if record["status"] in TERMINAL_STATUSES:
            return
        self._store.request_cancel(self.id)
        if record["kind"] == JOB_KIND and not (
                record["status"] == RunStatus.RUNNING and
                ((record.get("graph") or {}).get("job") or {}).get("stops_on_sigterm")):
            return  # its process polls the flag; SIGTERM would end it (e.g. a notebook kernel)
        # not picked up by a runner yet: nobody else will end it
        if self._store.update_run(self.id, only_if_status=(RunStatus.NOT_STARTED,),
                                  status=RunStatus.CANCELED,
                                  finished_at=time.time(), error="canceled before it started"):
            for row in self._store.steps(self.id):
                self._store.update_step(row["id"], status=RunStatus.CANCELED,
                                        error="the run was canceled")
            return
        import signal

        pid = record.get("pid")
        if pid and record.get("host") in (None, socket.gethostname()) and runner_alive(record):
            try:
                os.kill(pid, signal.SIGTERM)  # faster than the runner's next look at the flag
            except OSError:
                pass

    def resume(self, wait: bool = False, show_output: bool = False) -> "PipelineRun":
        """Continue a run that Failed, was Canceled or whose process died: finished steps are
        kept, a ParallelRunStep that had started goes on from its journal (finished mini-batches
        are not run again; each output row once), the rest run. A job's run (``run_job``,
        ``parallelrun run``) runs its recorded job again with ``resume=True`` in a process of its
        own. Returns at once unless ``wait``. Example: ``Run.get(ws, run_id).resume(wait=True)``.
        """
        record = self._record()
        if record["status"] == RunStatus.FINISHED:
            raise ConfigurationError("run", self.id, "a run that did not finish: this one Finished, "
                                     "there is nothing to resume")
        if record["status"] in IN_PROGRESS_STATUSES:
            raise ConfigurationError("run", self.id, f"a run that stopped: this one is "
                                     f"{record['status']} (runner pid {record.get('pid')})")
        if record["kind"] == JOB_KIND:
            from parallelrun.pipeline.job_runs import resume_job_run

            self._process = resume_job_run(self._store, record)
            if wait:
                self.wait_for_completion(show_output=show_output)
            return self
        from parallelrun.pipeline.experiment import start_runner

        if record["status"] == RunStatus.NOT_STARTED and not record.get("pid"):
            allowed = (RunStatus.NOT_STARTED,)
        else:
            allowed = (RunStatus.FAILED, RunStatus.CANCELED)
        if not self._store.update_run(self.id, only_if_status=allowed, status=RunStatus.QUEUED,
                                      cancel_requested=0, error=None, finished_at=None, pid=None,
                                      pid_started=None, host=None):
            raise ConfigurationError("run", self.id, "a stopped run; another process resumed it "
                                     "just now")
        self._process = start_runner(self.workspace, self.id, resume=True)
        if wait:
            self.wait_for_completion(show_output=show_output)
        return self

    # what it did ------------------------------------------------------------------------------
    def get_details(self) -> dict:
        """Status, timings, the runner, each step's details, the first error."""
        record = self._record()
        return {
            "runId": record["id"], "experiment": record["experiment"], "kind": record["kind"],
            "status": record["status"], "createdTimeUtc": _iso(record["created_at"]),
            "startTimeUtc": _iso(record["started_at"]), "endTimeUtc": _iso(record["finished_at"]),
            "durationSeconds": _duration(record), "attempts": record["attempts"],
            "runner": {"pid": record.get("pid"), "host": record.get("host")},
            "runDir": record["run_dir"], "logFiles": _run_files(record["run_dir"]),
            "tags": record.get("tags") or {}, "description": record.get("description"),
            "error": record.get("error"),
            "steps": [step.get_details() for step in self.get_steps()],
            # a run_job's output, logs and arguments (what a resume runs again)
            **({"job": (record.get("graph") or {}).get("job")} if record["kind"] == JOB_KIND
               else {}),
        }

    def get_metrics(self, name: str | None = None) -> dict:
        """Metrics the steps' entry scripts logged, by step name: ``{step: {metric: value}}``."""
        return {step.name: step.get_metrics(name) for step in self.get_steps()}

    def get_graph(self) -> dict:
        """The pipeline's steps and data links as submitted."""
        return self._store.run(self.id)["graph"]


class StepRun(Run):
    """One step of a PipelineRun: its status, counts, logs, metrics and outputs."""

    def __init__(self, experiment: Any, step_run_id: str, pipeline_run_id: str,
                 _store: RunStore | None = None):
        super().__init__(experiment, step_run_id, _store)
        self.pipeline_run_id = pipeline_run_id
        self._name: str | None = None

    @property
    def name(self) -> str:
        if self._name is None:
            self._name = self._store.step(self.id)["name"]
        return self._name

    def _record(self) -> dict:
        reconcile(self._store, self._store.run(self.pipeline_run_id))
        return self._store.step(self.id)

    @property
    def parent(self) -> PipelineRun:
        return PipelineRun(self.experiment, self.pipeline_run_id, _store=self._store)

    def _is_done(self) -> bool:
        if super()._is_done():
            return True
        # a step that will never start once its run ended
        return self._store.run(self.pipeline_run_id)["status"] in TERMINAL_STATUSES

    def wait_for_completion(self, show_output: bool = False, timeout_seconds: float = sys.maxsize,
                            raise_on_error: bool = True) -> str:
        """Wait until this step (or its run) ends; returns the step's status."""
        deadline = time.monotonic() + timeout_seconds
        while not self._is_done():
            if time.monotonic() >= deadline:
                raise RunTimeoutError(self.id, self.get_status(), timeout_seconds)
            time.sleep(POLL_SECONDS)
        status = self.get_status()
        if status == RunStatus.FAILED and raise_on_error:
            raise JobFailedError(f"step {self.name!r} Failed: {self._record().get('error')}",
                                 run=self)
        return status

    def cancel(self) -> None:
        """Cancel the pipeline run this step belongs to."""
        self.parent.cancel()

    def get_counts(self) -> dict:
        """Mini-batches and items so far (updated about once a second while it runs)."""
        return StepCounts.of_row(self._record()).as_json()

    def get_details(self) -> dict:
        row = self._record()
        return {
            "runId": row["id"], "name": row["name"], "kind": row["kind"], "status": row["status"],
            "pipelineRunId": self.pipeline_run_id, "startTimeUtc": _iso(row["started_at"]),
            "endTimeUtc": _iso(row["finished_at"]), "durationSeconds": _duration(row),
            "counts": {k: v for k, v in StepCounts.of_row(row).as_json().items()
                       if k != "planning_done"},
            "reusedFrom": row.get("reused_from"), "reuseKey": row.get("reuse_key"),
            "dependsOn": row.get("depends_on") or [],
            "outputs": {name: {k: v for k, v in o.items()} for name, o in
                        (row.get("outputs") or {}).items()},
            "logDir": row.get("log_dir"), "logFiles": _log_files(row.get("log_dir")),
            "error": row.get("error"),
        }

    def get_metrics(self, name: str | None = None) -> dict:
        """What the entry script logged with ``Run.get_context().log(...)``: one value per name,
        or the list of values when it logged several (as Azure ML returns them)."""
        row = self._record()
        data = row.get("metrics") or {}
        if row["status"] not in TERMINAL_STATUSES and row.get("log_dir"):
            from parallelrun.metrics import collect_metrics

            data = collect_metrics(row["log_dir"])  # live, while it runs
        metrics = {k: (v[0] if isinstance(v, list) and len(v) == 1 else v)
                   for k, v in (data.get("metrics") or {}).items()}
        if name is not None:
            return {name: metrics[name]} if name in metrics else {}
        return metrics

    def get_tags(self) -> dict:
        return dict((self._record().get("metrics") or {}).get("tags") or {})

    def get_output_data(self, name: str) -> PortDataReference:
        """The output ``name`` (a PipelineData of the step), to download or read.

        Example: ``step_run.get_output_data("inferences").download(local_path="results")``.
        """
        outputs = self._record().get("outputs") or {}
        if name not in outputs:
            raise WorkspaceError(f"step {self.name!r} has no output {name!r}; its outputs: "
                                 f"{', '.join(sorted(outputs)) or 'none (not started yet?)'}")
        output = outputs[name]
        datastore = None
        if output.get("datastore"):
            from parallelrun.workspace.datastore import Datastore

            datastore = Datastore.get(self.workspace, output["datastore"])
        return PortDataReference(name, datastore, output.get("path_on_datastore"),
                                 output.get("local_path"), self.id)

    def get_outputs(self) -> dict[str, PortDataReference]:
        return {name: self.get_output_data(name) for name in self._record().get("outputs") or {}}

    def get_file_names(self) -> list[str]:
        """The step's log files, relative to its log folder (``logs/...``)."""
        return _log_files(self._record().get("log_dir"))

    def download_file(self, name: str, output_file_path: str | None = None) -> str:
        """Copy one log file (a name from :meth:`get_file_names`) to ``output_file_path``."""
        import shutil

        log_dir = self._record().get("log_dir")
        if name not in self.get_file_names():
            raise WorkspaceError(f"step {self.name!r} has no file {name!r}; see get_file_names()")
        source = os.path.join(os.path.dirname(log_dir), *name.split("/"))
        target = output_file_path or os.path.basename(name)
        if os.path.isdir(target):
            target = os.path.join(target, os.path.basename(name))
        shutil.copyfile(source, target)
        return target

    def __repr__(self) -> str:
        return f"StepRun(name={self.name!r}, id={self.id!r}, status={self.get_status()!r})"


def _duration(record: dict) -> float | None:
    if record.get("started_at") is None:
        return None
    return round((record.get("finished_at") or time.time()) - record["started_at"], 3)


def _run_files(run_dir: str) -> list[str]:
    if not os.path.isdir(run_dir):
        return []
    return sorted(f for f in os.listdir(run_dir) if f.endswith((".log", ".out")))


def _log_files(log_dir: str | None) -> list[str]:
    if not log_dir or not os.path.isdir(log_dir):
        return []
    base = os.path.dirname(log_dir)
    found = []
    for dirpath, dirnames, filenames in os.walk(log_dir):
        dirnames.sort()
        for name in sorted(filenames):
            found.append(os.path.relpath(os.path.join(dirpath, name), base).replace(os.sep, "/"))
    return found
