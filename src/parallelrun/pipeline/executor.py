"""Executes one run in the runner process (:mod:`~parallelrun.pipeline.runner`):

1. claims the run (``Queued`` -> ``Running``, with its pid) and loads the pipeline that
   ``submit`` pickled into the run folder;
2. starts every step whose inputs are ready, in threads, so independent steps run at once;
   a step with ``allow_reuse`` first looks for an earlier step run with the same reuse key
   (:mod:`~parallelrun.pipeline.reuse_lookup`) and takes its outputs;
3. places the step's outputs (:mod:`~parallelrun.pipeline.output_placement`) and runs it the
   way its kind runs (:mod:`~parallelrun.pipeline.step_execution`); when it finished, its
   outputs are uploaded and registered as asked;
4. reads the run's cancel flag, and writes live counts, about once a second
   (:mod:`~parallelrun.pipeline.run_watcher`);
5. records the outcome; a step that fails stops new steps from starting (unless the run was
   submitted with ``continue_on_step_failure``).
"""

from __future__ import annotations

import concurrent.futures
import os
import pickle
import socket
import threading
import time
import traceback
from typing import Any

from parallelrun.errors import ParallelRunError
from parallelrun.pipeline.output_placement import OutputPlacement, recorded
from parallelrun.pipeline.parallel_execution import ParallelStepExecution
from parallelrun.pipeline.processes import process_start_time
from parallelrun.pipeline.records import RunStore
from parallelrun.pipeline.reuse_lookup import reuse_earlier_outputs
from parallelrun.pipeline.run_folder import PIPELINE_FILE, open_run_log, step_log_dir
from parallelrun.pipeline.run_watcher import RunWatcher
from parallelrun.pipeline.script_execution import ScriptStepExecution
from parallelrun.pipeline.step_execution import StepContext, StepExecution, StepOutcome
from parallelrun.statuses import RunStatus

#: how each kind of step runs, by ``PipelineStep.kind``
EXECUTIONS: dict[str, StepExecution] = {
    execution.kind: execution for execution in (ParallelStepExecution(), ScriptStepExecution())}


def execution_for(step) -> StepExecution:
    """How ``step`` runs, by its kind."""
    try:
        return EXECUTIONS[step.kind]
    except KeyError:
        raise ParallelRunError(f"step {step.name!r} is of kind {step.kind!r}, which the runner "
                               f"cannot run: use one of {sorted(EXECUTIONS)} "
                               "(a ParallelRunStep or a PythonScriptStep)") from None


class _Canceled(Exception):
    pass


class RunExecutor:
    """Executes one run in this process; see the module doc."""

    def __init__(self, workspace: Any, run_id: str, resume: bool = False):
        self.ws = workspace
        self.store = RunStore(workspace)
        self.run_id = run_id
        self.resume = resume
        record = self.store.run(run_id)
        self.run_dir = record["run_dir"]
        with open(os.path.join(self.run_dir, PIPELINE_FILE), "rb") as fh:
            payload = pickle.load(fh)
        self.pipeline = payload["pipeline"]
        self.options: dict = payload.get("options", {})
        self.graph = self.pipeline.graph
        self.rows = {row["name"]: row for row in self.store.steps(run_id)}
        self.cancel = threading.Event()
        #: PipelineData name -> (local folder, id of the step run that wrote it)
        self.data: dict[str, tuple[str, str]] = {}
        self.log = open_run_log(self.run_dir, run_id)
        self.watcher = RunWatcher(self.store, run_id, self.cancel, self.log)
        self.placement = OutputPlacement(workspace, self.run_dir, self.log)

    # the run ------------------------------------------------------------------------------------
    def execute(self) -> str:
        """Run the steps and record the outcome; the run's final status."""
        me = os.getpid()
        record = self.store.run(self.run_id)
        claimed = self.store.update_run(
            self.run_id, only_if_status=(RunStatus.QUEUED, RunStatus.NOT_STARTED),
            status=RunStatus.RUNNING, pid=me,
            pid_started=process_start_time(me), host=socket.gethostname(),
            started_at=record["started_at"] or time.time(), finished_at=None, error=None,
            attempts=record["attempts"] + 1)
        if not claimed:
            self.log.info("run %s is %s; this runner (pid %d) leaves it", self.run_id,
                          self.store.run(self.run_id)["status"], me)
            return self.store.run(self.run_id)["status"]
        self.log.info("run %s %s in process %d (attempt %d)", self.run_id,
                      "resumed" if self.resume else "started", me, record["attempts"] + 1)
        for note in self._environment_notes():
            self.log.info("note: %s", note)
        for step in self.pipeline.steps:
            # e.g. job files' options with no meaning here (runs pickled before steps had notes
            # have none)
            for note in getattr(step, "notes", ()):
                self.log.info("note: [%s] %s", step.name, note)
        with self.watcher.running():
            status, error = self._execute_steps()
        self.store.update_run(self.run_id, status=status, finished_at=time.time(), error=error)
        self.log.info("run %s: %s%s", self.run_id, status, f": {error}" if error else "")
        return status

    def _environment_notes(self) -> list[str]:
        notes = []
        for step in self.pipeline.steps:
            env = execution_for(step).environment(step)
            for note in getattr(env, "notes", []) or []:
                text = f"environment {env.name!r}: {note}"
                if text not in notes:
                    notes.append(text)
        return notes

    def _execute_steps(self) -> tuple[str, str | None]:
        done: set[str] = set()
        for name, row in self.rows.items():
            if row["status"] == RunStatus.FINISHED:
                done.add(name)
                for output_name, output in (row.get("outputs") or {}).items():
                    self.data[output_name] = (output["local_path"], output.get("origin") or row["id"])
        started: set[str] = set()
        failed: dict[str, str] = {}
        keep_going = bool(self.options.get("continue_on_step_failure"))
        running: dict[concurrent.futures.Future, str] = {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(self.graph.steps),
                                                   thread_name_prefix="parallelrun-step") as pool:
            while True:
                if not self.cancel.is_set() and (not failed or keep_going):
                    for name in self.graph.ready(done, started):
                        if any(need in failed for need in self.graph.dependencies[name]):
                            continue
                        started.add(name)
                        self.store.update_step(self.rows[name]["id"], status=RunStatus.QUEUED)
                        running[pool.submit(self._run_step, self.graph.by_name[name])] = name
                if not running:
                    break
                finished, _ = concurrent.futures.wait(
                    list(running), timeout=0.5, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in finished:
                    name = running.pop(future)
                    status, error = future.result()
                    if status == RunStatus.FINISHED:
                        done.add(name)
                    elif status == RunStatus.FAILED:
                        failed[name] = error or "failed"
        left = [s.name for s in self.graph.steps if s.name not in done and s.name not in started]
        for name in left:
            reason = "the run was canceled" if self.cancel.is_set() else \
                f"not run: step {next(iter(failed))!r} failed" if failed else "not run"
            status = RunStatus.CANCELED if self.cancel.is_set() else RunStatus.NOT_STARTED
            self.store.update_step(self.rows[name]["id"], status=status, error=reason)
        if failed:
            name, error = next(iter(failed.items()))
            return RunStatus.FAILED, f"step {name!r} failed: {error}"
        if self.cancel.is_set() or len(done) < len(self.graph.steps):
            return RunStatus.CANCELED, "canceled" if self.cancel.is_set() else "not every step ran"
        return RunStatus.FINISHED, None

    # one step -----------------------------------------------------------------------------------
    def _run_step(self, step) -> tuple[str, str | None]:
        """Run one step (in a thread of the step pool) and record how it ended."""
        row = self.rows[step.name]
        step_run_id = row["id"]
        had_started = row["status"] not in (RunStatus.NOT_STARTED, RunStatus.FINISHED) and \
            bool(row.get("log_dir"))
        resuming = self.resume and had_started
        now = time.time()
        self.store.update_step(step_run_id, status=RunStatus.RUNNING, error=None,
                               finished_at=None, started_at=row.get("started_at") or now)
        self.log.info("[%s] %s (step run %s)", step.name,
                      "resuming" if resuming else "started", step_run_id)
        try:
            if self.cancel.is_set():
                raise _Canceled()
            execution = execution_for(step)
            outputs = self.placement.plan(step, row)
            if step.allow_reuse and not resuming and not self.options.get("regenerate_outputs"):
                reused = reuse_earlier_outputs(self.store, step, step_run_id, now,
                                               self._producer_of, self.log)
                if reused is not None:
                    for name, output in reused.items():
                        self.data[name] = (output["local_path"], output["origin"])
                    return RunStatus.FINISHED, None
            log_dir = row.get("log_dir") or step_log_dir(self.run_dir, step.name)
            self.store.update_step(step_run_id, log_dir=log_dir, outputs=recorded(outputs))
            outcome = execution.execute(step, StepContext(
                workspace=self.ws, run_dir=self.run_dir, log=self.log, cancel=self.cancel,
                watcher=self.watcher, step_run_id=step_run_id, outputs=outputs,
                log_dir=log_dir, resuming=resuming, data=self.data))
            if outcome.status == RunStatus.FINISHED:
                if self.placement.deliver(step, outputs):
                    self.store.update_step(step_run_id, outputs=recorded(outputs))
                for output_name, output in outputs.items():
                    self.data[output_name] = (output["local_path"], step_run_id)
        except _Canceled:
            outcome = StepOutcome(RunStatus.CANCELED, "the run was canceled")
        except ParallelRunError as exc:
            outcome = StepOutcome(RunStatus.FAILED, str(exc))
        except Exception as exc:  # noqa: BLE001 - the step fails, the runner lives on
            outcome = StepOutcome(RunStatus.FAILED, "".join(
                traceback.format_exception(type(exc), exc, exc.__traceback__)).strip())
        self.store.update_step(step_run_id, status=outcome.status, error=outcome.error,
                               finished_at=time.time(), **outcome.fields)
        self.log.info("[%s] %s%s", step.name, outcome.status,
                      f": {_first_line(outcome.error)}" if outcome.error else "")
        return outcome.status, outcome.error

    def _producer_of(self, data_name: str) -> str | None:
        found = self.data.get(data_name)
        return found[1] if found else None


def _first_line(text: str) -> str:
    lines = [line for line in str(text).splitlines() if line.strip()]
    if not lines:
        return ""
    return lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
