"""The process that executes a run:
``python -m parallelrun.pipeline.runner RUN_ID --workspace PATH [--resume]``.

``Experiment.submit`` starts it in its own session (``start_new_session=True``), so the
submitter may exit; ``Run.resume()`` starts it again with ``--resume`` after it died. It:

1. claims the run (``Queued`` -> ``Running``, with its pid) and loads the pipeline that
   ``submit`` pickled into the run folder;
2. starts every step whose inputs are ready, in threads, so independent steps run at once;
   a step with ``allow_reuse`` first looks for an earlier step run with the same reuse key
   (:mod:`parallelrun.pipeline.reuse`) and takes its outputs;
3. runs a ParallelRunStep with ``run_job`` (counts flow to the catalog about once a second) and
   a PythonScriptStep as a child process; on resume, a ParallelRunStep that had started goes
   on with ``run_job(resume=True)`` over the same output and log folders, so committed
   mini-batches are not run again and each output row is written once;
4. polls the run's cancel flag (``Run.cancel()``, ``parallelrun run cancel``) and SIGTERM;
5. records the outcome; a step that fails stops new steps from starting.

The run folder (``<workspace>/.parallelrun/runs/<run id>/``) holds ``pipeline.pkl``,
``run.log`` (what ``wait_for_completion(show_output=True)`` streams), ``runner.out`` (this
process's own stdout/stderr) and ``steps/<step name>/logs/`` (each step's log folder).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import logging
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from datetime import datetime, timezone
from typing import Any

from parallelrun.backends import backend_of, get_backend
from parallelrun.backends.local import PACKAGE_ROOT, ROOT_FOR_OTHER_PYTHONS
from parallelrun.data.base import AbstractDataset
from parallelrun.data.local_copy import local_folder
from parallelrun.engine.progress import JobProgress, ProgressListener
from parallelrun.errors import ParallelRunError
from parallelrun.pipeline.environment import materialise, storage_requirements
from parallelrun.pipeline.output_datasets import OutputDatasetConfig
from parallelrun.pipeline.pipeline_data import PipelineData
from parallelrun.pipeline.records import TERMINAL, RunStore, progress_fields
from parallelrun.pipeline.reuse import step_reuse_key

PIPELINE_FILE = "pipeline.pkl"
RUN_LOG = "run.log"
FLUSH_EVERY = 1.0


def process_start_time(pid: int) -> float | None:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


class _LiveStep(ProgressListener):
    """Holds a running ParallelRunStep's JobProgress for the catalog writer thread."""

    def __init__(self, step_run_id: str):
        self.step_run_id = step_run_id
        self.progress: JobProgress | None = None

    def on_start(self, progress: JobProgress) -> None:
        self.progress = progress


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
        self.live: dict[str, _LiveStep] = {}
        self._lock = threading.Lock()
        #: PipelineData name -> (local folder, id of the step run that wrote it)
        self.data: dict[str, tuple[str, str]] = {}
        self.log = self._run_logger()

    # logging ------------------------------------------------------------------------------------
    def _run_logger(self) -> logging.Logger:
        logger = logging.getLogger(f"parallelrun.pipeline.run.{self.run_id}")
        handler = logging.FileHandler(os.path.join(self.run_dir, RUN_LOG), encoding="utf-8")
        formatter = logging.Formatter("%(asctime)sZ %(message)s", "%Y-%m-%d %H:%M:%S")
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False
        return logger

    # the run ------------------------------------------------------------------------------------
    def execute(self) -> str:
        me = os.getpid()
        record = self.store.run(self.run_id)
        claimed = self.store.update_run(
            self.run_id, only_if_status=("Queued", "NotStarted"), status="Running", pid=me,
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
        stop = threading.Event()
        writer = threading.Thread(target=self._watch, args=(stop,), daemon=True,
                                  name="parallelrun-run-watch")
        writer.start()
        try:
            status, error = self._execute_steps()
        finally:
            stop.set()
            writer.join(timeout=5)
        self.store.update_run(self.run_id, status=status, finished_at=time.time(), error=error)
        self.log.info("run %s: %s%s", self.run_id, status, f": {error}" if error else "")
        return status

    def _environment_notes(self) -> list[str]:
        notes = []
        for step in self.pipeline.steps:
            env = _step_environment(step)
            for note in getattr(env, "notes", []) or []:
                text = f"environment {env.name!r}: {note}"
                if text not in notes:
                    notes.append(text)
        return notes

    def _execute_steps(self) -> tuple[str, str | None]:
        done: set[str] = set()
        for name, row in self.rows.items():
            if row["status"] == "Finished":
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
                        self.store.update_step(self.rows[name]["id"], status="Queued")
                        running[pool.submit(self._run_step, self.graph.by_name[name])] = name
                if not running:
                    break
                finished, _ = concurrent.futures.wait(
                    list(running), timeout=0.5, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in finished:
                    name = running.pop(future)
                    status, error = future.result()
                    if status == "Finished":
                        done.add(name)
                    elif status == "Failed":
                        failed[name] = error or "failed"
        left = [s.name for s in self.graph.steps if s.name not in done and s.name not in started]
        for name in left:
            reason = "the run was canceled" if self.cancel.is_set() else \
                f"not run: step {next(iter(failed))!r} failed" if failed else "not run"
            status = "Canceled" if self.cancel.is_set() else "NotStarted"
            self.store.update_step(self.rows[name]["id"], status=status, error=reason)
        if failed:
            name, error = next(iter(failed.items()))
            return "Failed", f"step {name!r} failed: {error}"
        if self.cancel.is_set() or len(done) < len(self.graph.steps):
            return "Canceled", "canceled" if self.cancel.is_set() else "not every step ran"
        return "Finished", None

    def _watch(self, stop: threading.Event) -> None:
        """About once a second: live counts to the catalog; the cancel flag from it."""
        while not stop.wait(FLUSH_EVERY):
            try:
                if not self.cancel.is_set() and self.store.cancel_requested(self.run_id):
                    self.log.info("cancel requested: stopping the running steps")
                    self.cancel.set()
                with self._lock:
                    live = list(self.live.values())
                for step in live:
                    if step.progress is not None:
                        self.store.update_step(step.step_run_id, **progress_fields(step.progress))
            except Exception:  # noqa: BLE001 - a busy catalog must not kill the run
                self.log.info("catalog update failed (will retry): %s",
                              traceback.format_exc(limit=1).strip().splitlines()[-1])

    # one step -----------------------------------------------------------------------------------
    def _run_step(self, step) -> tuple[str, str | None]:
        row = self.rows[step.name]
        step_run_id = row["id"]
        had_started = row["status"] in ("Running", "Failed", "Canceled", "Queued") and \
            bool(row.get("log_dir"))
        resuming = self.resume and had_started
        now = time.time()
        self.store.update_step(step_run_id, status="Running", error=None, finished_at=None,
                               started_at=row.get("started_at") or now)
        self.log.info("[%s] %s (step run %s)", step.name,
                      "resuming" if resuming else "started", step_run_id)
        try:
            if self.cancel.is_set():
                raise _Canceled()
            outputs = self._outputs(step, row)
            if step.allow_reuse and not resuming and not self.options.get("regenerate_outputs"):
                hit = self._try_reuse(step, step_run_id, now)
                if hit is not None:
                    return "Finished", None
            log_dir = row.get("log_dir") or os.path.join(self.run_dir, "steps", step.name, "logs")
            self.store.update_step(step_run_id, log_dir=log_dir,
                                   outputs={n: {k: v for k, v in o.items() if k != "upload"}
                                            for n, o in outputs.items()})
            if step.kind == "parallel":
                status, error, extra = self._run_parallel(step, step_run_id, outputs, log_dir,
                                                          resuming)
            else:
                status, error, extra = self._run_script(step, step_run_id, outputs, log_dir)
            if status == "Finished":
                self._upload(outputs, step)
                registered = self._register_outputs(outputs, step)
                if registered:
                    self.store.update_step(step_run_id, outputs={
                        n: {k: v for k, v in o.items() if k != "upload"}
                        for n, o in outputs.items()})
                for output_name, output in outputs.items():
                    self.data[output_name] = (output["local_path"], step_run_id)
        except _Canceled:
            status, error, extra = "Canceled", "the run was canceled", {}
        except ParallelRunError as exc:
            status, error, extra = "Failed", str(exc), {}
        except Exception as exc:  # noqa: BLE001 - the step fails, the runner lives on
            status, error, extra = "Failed", "".join(
                traceback.format_exception(type(exc), exc, exc.__traceback__)).strip(), {}
        self.store.update_step(step_run_id, status=status, error=error, finished_at=time.time(),
                               **extra)
        self.log.info("[%s] %s%s", step.name, status, f": {_first_line(error)}" if error else "")
        return status, error

    def _try_reuse(self, step, step_run_id: str, now: float):
        key = step_reuse_key(step, self._producer_of)
        for earlier in self.store.reusable(key.key):
            outputs = earlier.get("outputs") or {}
            if all(o.get("local_path") and os.path.isdir(o["local_path"]) or
                   o.get("path_on_datastore") and not o.get("local_path")
                   for o in outputs.values()):
                reused = {name: {**o, "origin": earlier["id"]} for name, o in outputs.items()}
                counts = {k: earlier[k] for k in (
                    "minibatches_total", "minibatches_succeeded", "minibatches_failed",
                    "items_succeeded", "items_failed", "retries", "items_per_second",
                    "planning_done", "metrics")}
                self.store.update_step(step_run_id, status="Finished", reuse_key=key.key,
                                       reuse_parts=key.parts, reused_from=earlier["id"],
                                       outputs=reused, log_dir=earlier.get("log_dir"),
                                       finished_at=time.time(), **counts)
                for name, output in reused.items():
                    self.data[name] = (output["local_path"], earlier["id"])
                self.log.info("[%s] reused the output of step run %s (run %s): nothing changed",
                              step.name, earlier["id"], earlier["run_id"])
                return earlier
        previous = self.store.previous_step(step.name, now)
        changed = key.changed_since(previous.get("reuse_parts") if previous else None)
        self.store.update_step(step_run_id, reuse_key=key.key, reuse_parts=key.parts)
        if changed:
            self.log.info("[%s] not reused: %s changed since step run %s", step.name,
                          ", ".join(changed), previous["id"])
        return None

    def _producer_of(self, data_name: str) -> str | None:
        found = self.data.get(data_name)
        return found[1] if found else None

    def _outputs(self, step, row: dict) -> dict[str, dict]:
        """Where each output of the step goes: kept from an earlier attempt, else new."""
        known = row.get("outputs") or {}
        outputs = {}
        for output in step.outputs:
            if output.name in known and known[output.name].get("local_path"):
                outputs[output.name] = dict(known[output.name])
                outputs[output.name]["upload"] = self._needs_upload(output)
                outputs[output.name].pop("registered", None)
            else:
                outputs[output.name] = self._new_output(output, row["id"])
            os.makedirs(outputs[output.name]["local_path"], exist_ok=True)
        return outputs

    def _datastore(self, output: PipelineData):
        from parallelrun.workspace.datastore import Datastore

        store = output.datastore
        if store is None:
            return self.ws.get_default_datastore()
        if isinstance(store, str):
            return Datastore.get(self.ws, store)
        return store

    def _needs_upload(self, output: PipelineData) -> bool:
        destination = output._destination
        if destination and destination[0] == "local":
            return False
        if isinstance(output, OutputDatasetConfig) and output.mode == "upload":
            return True   # written in the run's folder, copied when the step finishes
        store = self._datastore(output) if not destination else None
        if destination:
            from parallelrun.workspace.datastore import Datastore

            store = Datastore.get(self.ws, destination[1]) if destination[1] is not None \
                else self.ws.get_default_datastore()
        return getattr(store, "kind", "local") != "local"

    def _new_output(self, output: PipelineData, step_run_id: str) -> dict:
        destination = output._destination
        if destination and destination[0] == "local":
            return {"datastore": None, "path_on_datastore": None,
                    "local_path": os.path.abspath(destination[1]), "upload": False,
                    "owned": False}
        if destination:
            from parallelrun.workspace.datastore import Datastore

            store = Datastore.get(self.ws, destination[1]) if destination[1] is not None \
                else self.ws.get_default_datastore()
            path = output.path_on_datastore(step_run_id) if isinstance(
                output, OutputDatasetConfig) else destination[2].strip("/")
        else:
            store = self._datastore(output)
            path = f"azureml/{step_run_id}/{output.name}"
        if getattr(store, "kind", "local") == "local" and not self._needs_upload(output):
            local = os.path.join(store.path_on_disk, *path.split("/"))
            upload = False
            owned = not destination      # a path of this step run's own, not one the user named
        else:
            local = os.path.join(self.run_dir, "outputs", step_run_id, output.name)
            upload = True
            owned = True
        return {"datastore": store.name, "path_on_datastore": path, "local_path": local,
                "upload": upload, "owned": owned}

    def _upload(self, outputs: dict[str, dict], step) -> None:
        from parallelrun.workspace.datastore import Datastore

        declared = {o.name: o for o in step.outputs}
        for name, output in outputs.items():
            if output.get("upload"):
                store = Datastore.get(self.ws, output["datastore"])
                self.log.info("[%s] uploading output %s to %s:%s", step.name, name, store.name,
                              output["path_on_datastore"])
                config = declared.get(name)
                if isinstance(config, OutputDatasetConfig) and config.mode == "upload":
                    # as_upload(overwrite, source_globs): only the chosen files, existing
                    # files kept unless overwrite
                    overwrite = bool(config.upload_options and config.upload_options[0])
                    store.upload_files(config.files_to_upload(output["local_path"]),
                                       relative_root=output["local_path"],
                                       target_path=output["path_on_datastore"],
                                       overwrite=overwrite)
                else:
                    store.upload(output["local_path"], target_path=output["path_on_datastore"],
                                 overwrite=True)

    def _register_outputs(self, outputs: dict[str, dict], step) -> bool:
        """register_on_complete: each such output, delivered, becomes a new dataset version
        (recorded in the step run's outputs as ``registered``)."""
        from parallelrun.workspace.datastore import Datastore

        changed = False
        for config in step.outputs:
            if not isinstance(config, OutputDatasetConfig) or not config.registration_options:
                continue
            options = config.registration_options
            output = outputs[config.name]
            location = Datastore.get(self.ws, output["datastore"]).path(
                output["path_on_datastore"])
            if not config.files_to_upload(output["local_path"]):
                self.log.info("[%s] output %s holds no files: not registered as dataset %r",
                              step.name, config.name, options["name"])
                continue
            dataset = config.dataset_at(location).register(
                self.ws, options["name"], description=options["description"],
                tags=options["tags"], create_new_version=True)
            output["registered"] = {"name": options["name"], "version": dataset.version}
            changed = True
            self.log.info("[%s] output %s registered as dataset %s version %s", step.name,
                          config.name, options["name"], dataset.version)
        return changed

    # local paths of inputs -------------------------------------------------------------------
    def _data_folder(self, data: PipelineData) -> str:
        found = self.data.get(data.name)
        if found is None:
            raise ParallelRunError(f"PipelineData {data.name!r} has no data: the step that "
                                   "writes it did not finish")
        return found[0]

    def _local_path(self, item: Any, step_run_id: str, outputs: dict | None = None) -> str:
        """A local path standing for a dataset or PipelineData in arguments and variables
        (the step's own outputs are the folders it writes)."""
        if isinstance(item, PipelineData):
            if outputs and item.name in outputs:
                return outputs[item.name]["local_path"]
            return self._data_folder(item)
        if isinstance(item, AbstractDataset):
            return local_folder(item, os.path.join(self.run_dir, "inputs", step_run_id,
                                                      item.name or f"input{id(item)}"))
        return str(item)

    def _arguments(self, step, step_run_id: str, outputs: dict) -> list[str]:
        return [self._local_path(a, step_run_id, outputs)
                if isinstance(a, (PipelineData, AbstractDataset)) else str(a)
                for a in step.arguments]

    def _references(self, step, step_run_id: str, outputs: dict[str, dict]) -> dict[str, str]:
        """``AZUREML_DATAREFERENCE_<name>`` for every named input and output."""
        refs = {}
        # a ParallelRunStep's main datasets reach its workers as mini-batches; listing them
        # here to make a folder would cost as much as the job's own planning
        main = [i for i in step.inputs if step.kind != "parallel" or isinstance(i, PipelineData)]
        items = [*main, *getattr(step, "side_inputs", []),
                 *[a for a in step.arguments if isinstance(a, (PipelineData, AbstractDataset))]]
        for item in items:
            name = item.name if isinstance(item, PipelineData) else getattr(item, "name", None)
            if name:
                refs[f"AZUREML_DATAREFERENCE_{name}"] = self._local_path(item, step_run_id,
                                                                           outputs)
        for name, output in outputs.items():
            refs[f"AZUREML_DATAREFERENCE_{name}"] = output["local_path"]
        for config in step.outputs:
            if isinstance(config, OutputDatasetConfig):
                # Azure ML: "the name will also become an environment variable" holding the path
                refs[config.name] = outputs[config.name]["local_path"]
        return refs

    # ParallelRunStep -------------------------------------------------------------------------
    def _run_parallel(self, step, step_run_id: str, outputs: dict, log_dir: str,
                      resuming: bool) -> tuple[str, str | None, dict]:
        from parallelrun.data.files import FileDataset
        from parallelrun.engine.job import run_job
        from parallelrun.metrics import collect_metrics

        config = effective_config(step.parallel_run_config, self.ws)
        env = config.environment
        python = None
        if backend_of(config.compute_target) == "local" and env is not None:
            python = materialise(env, self.ws, log_file=os.path.join(self.run_dir, RUN_LOG),
                                 extra_requirements=storage_requirements(step.inputs))
        env_vars = {str(k): str(v) for k, v in (getattr(env, "environment_variables", None)
                                                or {}).items()}
        env_vars.update(config.environment_variables or {})
        env_vars.update(self._references(step, step_run_id, outputs))
        env_vars.setdefault("AZUREML_RUN_ID", step_run_id)
        config = dataclasses.replace(config, environment_variables=env_vars)
        inputs = []
        for item in step.inputs:
            if isinstance(item, OutputDatasetConfig):    # as_input() of an earlier output
                inputs.append(item.dataset_at(self._data_folder(item))
                              .as_named_input(item.input_name))
            elif isinstance(item, PipelineData) and item.data_type == "MLTable":
                from parallelrun.data.mltable import load_mltable   # an mltable output

                inputs.append(load_mltable(self._data_folder(item)).as_named_input(item.name))
            elif isinstance(item, PipelineData):
                inputs.append(FileDataset.from_files(self._data_folder(item))
                              .as_named_input(item.name))
            else:
                inputs.append(item)
        side_inputs = {getattr(item, "name", None) or f"side_input_{index}":
                       self._local_path(item, step_run_id)
                       for index, item in enumerate(step.side_inputs)}
        output_dir = outputs[step.output.name]["local_path"] if step.output is not None else \
            os.path.join(self.run_dir, "steps", step.name, "output")
        if resuming:
            self.log.info("[%s] going on from the journal in %s", step.name, log_dir)
        live = _LiveStep(step_run_id)
        with self._lock:
            self.live[step_run_id] = live
        try:
            result = run_job(config, inputs, output_dir, self._arguments(step, step_run_id, outputs),
                             log_dir=log_dir, models=step.models or None,
                             side_inputs=side_inputs or None, listeners=[live], resume=resuming,
                             cancel=self.cancel, python=python, run_id=step_run_id,
                             workspace_path=self.ws.path)
        finally:
            with self._lock:
                self.live.pop(step_run_id, None)
        if result.output_file and step.output is not None and step.output.data_type == "MLTable":
            from parallelrun.data.mltable import output_mltable   # an output of type: mltable

            output_mltable(result.output_file, config.append_row_format)
        extra = progress_fields(live.progress) if live.progress is not None else {}
        extra["metrics"] = collect_metrics(log_dir)
        self.log.info("[%s] %s", step.name, result.summary().replace("\n", "; "))
        return result.status, result.error, extra

    # PythonScriptStep ------------------------------------------------------------------------
    def _run_script(self, step, step_run_id: str, outputs: dict,
                    log_dir: str) -> tuple[str, str | None, dict]:
        env = step.environment
        python = materialise(env, self.ws, log_file=os.path.join(self.run_dir, RUN_LOG)) \
            if env is not None else None
        for output in outputs.values():
            # A script step starts from empty output folders (also on resume), where the folder
            # is this step run's own; a folder the user named (a destination) is never cleared:
            # parallelrun deletes only what it wrote, and the script writes over its own files.
            if output.get("owned"):
                shutil.rmtree(output["local_path"], ignore_errors=True)
            os.makedirs(output["local_path"], exist_ok=True)
        variables = dict(os.environ)
        variables.update({str(k): str(v) for k, v in (getattr(env, "environment_variables", None)
                                                      or {}).items()})
        variables.update(self._references(step, step_run_id, outputs))
        variables["AZUREML_RUN_ID"] = step_run_id
        root = PACKAGE_ROOT if python is None else ROOT_FOR_OTHER_PYTHONS
        variables["PYTHONPATH"] = os.pathsep.join(
            p for p in (root, variables.get("PYTHONPATH")) if p)
        variables.setdefault("PYTHONUNBUFFERED", "1")
        user = os.path.join(log_dir, "user")
        os.makedirs(user, exist_ok=True)
        command = [python or sys.executable, str(step.script_path),
                   *self._arguments(step, step_run_id, outputs)]
        self.log.info("[%s] $ %s", step.name, " ".join(command))
        with open(os.path.join(user, "stdout.txt"), "a", encoding="utf-8") as out, \
                open(os.path.join(user, "stderr.txt"), "a", encoding="utf-8") as err:
            proc = subprocess.Popen(command, cwd=str(step.source_path), env=variables,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, errors="replace",
                                    start_new_session=True, preexec_fn=_die_with_parent)
            tail: list[str] = []
            readers = [threading.Thread(target=self._pump, args=(proc.stdout, out, step.name, None),
                                        daemon=True),
                       threading.Thread(target=self._pump, args=(proc.stderr, err, step.name, tail),
                                        daemon=True)]
            for reader in readers:
                reader.start()
            canceled = False
            while proc.poll() is None:
                if self.cancel.wait(0.2) and not canceled:
                    canceled = True
                    _stop_process_group(proc)
            for reader in readers:
                reader.join(timeout=5)
        if canceled:
            return "Canceled", "the run was canceled", {}
        if proc.returncode != 0:
            return "Failed", f"{step.script_name} exited with code {proc.returncode}" + (
                f"\n{_last_traceback(tail)}" if tail else ""), {}
        return "Finished", None, {}

    def _pump(self, stream, sink, step_name: str, tail: list[str] | None) -> None:
        for line in stream:
            sink.write(line)
            sink.flush()
            self.log.info("[%s] %s", step_name, line.rstrip("\n"))
            if tail is not None:
                tail.append(line.rstrip("\n"))
                del tail[:-200]


class _Canceled(Exception):
    pass


def _step_environment(step) -> Any:
    if step.kind == "parallel":
        return step.parallel_run_config.environment
    return step.environment


def _first_line(text: str) -> str:
    lines = [line for line in str(text).splitlines() if line.strip()]
    if not lines:
        return ""
    return lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"


def _last_traceback(lines: list[str]) -> str:
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
    chosen = lines[starts[-1]:] if starts else lines[-20:]
    return "\n".join(chosen[-60:])


def _die_with_parent() -> None:
    """In a script step's child: end when the runner dies (kill -9 included), so a resumed
    run never has an orphan of the old one writing into the same output folder (Linux)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _stop_process_group(proc: subprocess.Popen, grace: float = 5.0) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except (ProcessLookupError, PermissionError):
        return
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def resolve_compute(target: Any, workspace: Any) -> Any:
    """A step's compute target as an object: None is the workspace's ``local``; a name is
    looked up in the workspace (``"local"`` and ``"ray"`` also work without registration)."""
    if target is None:
        return workspace.compute_targets["local"] if workspace is not None else "local"
    if isinstance(target, str):
        if workspace is not None and target in workspace.compute_targets:
            return workspace.compute_targets[target]
        return target
    return target


def effective_config(config, workspace: Any):
    """The config a step really runs with: its compute target resolved and, on an AmlCompute
    (or a local compute with ``max_workers``), its ``node_count x process_count_per_node``
    workers folded onto this machine's worker slots."""
    from parallelrun.backends.local import gpu_count

    target = resolve_compute(config.compute_target, workspace)
    changes: dict[str, Any] = {"compute_target": target}
    slots = getattr(target, "max_workers", None)
    if backend_of(target) == "local" and (getattr(target, "kind", "") == "amlcompute" or slots):
        per_node = config.process_count_per_node or gpu_count() or os.cpu_count() or 1
        workers = config.node_count * per_node
        if slots:
            workers = min(workers, int(slots))
        changes.update(node_count=1, process_count_per_node=max(1, workers))
    return dataclasses.replace(config, **changes)


def node_count_problem(config, workspace: Any) -> tuple[Any, str | None]:
    """The compute target a step runs on, and why its ``node_count`` cannot work there (None
    when it can): what submit and job files check before anything runs."""
    effective = effective_config(config, workspace)
    target = effective.compute_target
    return target, get_backend(backend_of(target)).check_node_count(effective.node_count)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parallelrun.pipeline.runner")
    parser.add_argument("run_id")
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)

    from parallelrun.workspace.workspace import Workspace

    print(f"{datetime.now(timezone.utc).isoformat()} runner pid {os.getpid()} for run "
          f"{args.run_id} (resume={args.resume})", flush=True)
    workspace = Workspace(args.workspace)
    try:
        executor = RunExecutor(workspace, args.run_id, resume=args.resume)
    except Exception:  # noqa: BLE001 - record why, for the user waiting on the run
        _fail_run(workspace, args.run_id, traceback.format_exc())
        raise
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: executor.cancel.set())
    try:
        status = executor.execute()
    except Exception:  # noqa: BLE001
        _fail_run(workspace, args.run_id, traceback.format_exc())
        raise
    return 0 if status == "Finished" else 1


def _fail_run(workspace: Any, run_id: str, error: str) -> None:
    store = RunStore(workspace)
    try:
        store.update_run(run_id, status="Failed", finished_at=time.time(),
                         error=f"the run's process failed:\n{error}")
        for row in store.steps(run_id):
            if row["status"] not in TERMINAL:
                store.update_step(row["id"], status="Failed", error="the run's process failed")
    except Exception:  # noqa: BLE001
        traceback.print_exc()


if __name__ == "__main__":
    sys.exit(main())
