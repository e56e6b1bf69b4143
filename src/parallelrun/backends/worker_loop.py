"""The life of one worker, whatever carries its messages: import, init, run mini-batches, shutdown.

Backends wrap this: the local backend runs it in a child process fed over a socket
(``local_worker``), the Ray backend in an actor.
"""

from __future__ import annotations

import logging
import os
import time
import traceback

from parallelrun.backends.base import Slot, WorkerSpec
from parallelrun.data import minibatch as payloads
from parallelrun.data.minibatch import MINI_BATCH_FORMATS, MiniBatch
from parallelrun.errors import EntryScriptError
from parallelrun.script import (EntryScriptRunner, MiniBatchContext, RunOutcome, WorkerContext,
                                set_context, utc_formatter)
from parallelrun.statuses import OutcomeStatus

log = logging.getLogger("parallelrun.worker")


class WorkerStartError(Exception):
    def __init__(self, traceback_text: str, fatal: bool):
        super().__init__(traceback_text)
        self.traceback_text = traceback_text
        self.fatal = fatal


def setup_worker_logging(spec: WorkerSpec, slot: Slot) -> None:
    """The worker's own engine log: ``logs/sys/node/<node>/<process>.txt`` (UTC)."""
    path = os.path.join(spec.log_dir, "sys", "node", slot.node_name, f"{slot.process_name}.txt")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(utc_formatter())
    root = logging.getLogger("parallelrun")
    root.handlers[:] = [handler]
    root.setLevel(spec.logging_level)
    root.propagate = False


def start_worker(spec: WorkerSpec, slot: Slot) -> EntryScriptRunner:
    """Import the script and call its init(); raises WorkerStartError with the traceback."""
    setup_worker_logging(spec, slot)
    os.environ.update(spec.environment_variables)
    os.environ["AZUREML_MODEL_DIR"] = _model_dir(spec.models)
    # batch deployments' scoring scripts write their own files here (summary_only), in init()
    os.environ.setdefault("AZUREML_BI_OUTPUT_PATH", spec.output_dir)
    set_context(WorkerContext(
        node_name=slot.node_name, process_name=slot.process_name, output_dir=spec.output_dir,
        log_dir=spec.log_dir, working_dir=spec.source_dir, logging_level=spec.logging_level,
        models=dict(spec.models), input_datasets=dict(spec.input_datasets), run_id=spec.run_id,
        workspace_path=spec.workspace_path))
    runner = EntryScriptRunner(spec.script_path, spec.source_dir, spec.arguments, spec.encoder)
    log.info("worker %s.%s (pid %d) importing %s", slot.node_name, slot.process_name, os.getpid(),
             spec.script_path)
    try:
        runner.load()
        log.info("mini-batches of tables reach run() as %s", mini_batch_format(runner))
    except BaseException:  # noqa: BLE001 - any import failure is reported, not raised
        raise WorkerStartError(traceback.format_exc(), fatal=True) from None
    started = time.perf_counter()
    try:
        runner.init()
    except BaseException:  # noqa: BLE001
        raise WorkerStartError(traceback.format_exc(), fatal=False) from None
    log.info("init() done in %.3f s", time.perf_counter() - started)
    return runner


def mini_batch_format(runner: EntryScriptRunner) -> str:
    """What ``run()`` receives for a table's mini-batch: the entry script's module-level
    ``MINI_BATCH_FORMAT`` (``"pandas"``, the default, or ``"pyarrow"``). Raises
    :class:`EntryScriptError` for any other value: the worker then fails to start, fatally, so
    the job stops before any mini-batch runs."""
    value = getattr(runner.module, "MINI_BATCH_FORMAT", "pandas")   # optional in a script
    if value not in MINI_BATCH_FORMATS:
        raise EntryScriptError(
            f"entry script {runner.script_name!r} sets MINI_BATCH_FORMAT = {value!r}, which is "
            f"not a format parallelrun reads tables in: use one of "
            f"{', '.join(repr(f) for f in MINI_BATCH_FORMATS)} (pandas DataFrames when it is "
            "not set), or remove it.")
    return value


def run_minibatch(runner: EntryScriptRunner, minibatch: MiniBatch) -> RunOutcome:
    """Load the mini-batch's data here, in the worker, and run the script on it."""
    payload = minibatch.payload
    started = time.perf_counter()
    try:
        loaded = payloads.read(payload, mini_batch_format(runner))
    except Exception as exc:  # noqa: BLE001 - unreadable data fails this mini-batch, not the worker
        items = minibatch.items or payloads.rows_hint(payload)
        return RunOutcome(minibatch.index, OutcomeStatus.DATA_ERROR.value, items, 0,
                          error_type=type(exc).__name__, error_message=str(exc)[:2000],
                          traceback=traceback.format_exc())
    data = loaded.data
    items = minibatch.items if minibatch.items is not None else len(data)
    context = MiniBatchContext(minibatch.index, payloads.partition_key_value(payload))
    outcome = runner.run(minibatch.index, data, items, context)
    extra_failed = loaded.failed_rows
    if extra_failed:
        # rows the reader could not parse count as failed records of this mini-batch
        outcome.items += extra_failed
        report = loaded.failed_rows_report
        if report:
            # file and line of each bad row, for logs/user/error.txt and user/error/<node>/...
            lines = report.splitlines()
            outcome.error_type = outcome.error_type or "BadRows"
            outcome.error_message = outcome.error_message or (
                f"{extra_failed} bad rows, first: {lines[1].strip()}" if len(lines) > 1 else lines[0])
            outcome.traceback = report if not outcome.traceback else f"{outcome.traceback}\n{report}"
    outcome.work_seconds = time.perf_counter() - started
    log.debug("mini-batch %d: %s, %d/%d in %.4f s", minibatch.index, outcome.status,
              outcome.succeeded, outcome.items, outcome.run_seconds)
    return outcome


def stop_worker(runner: EntryScriptRunner) -> None:
    try:
        runner.shutdown()
    except Exception:  # noqa: BLE001
        log.exception("shutdown() raised")
    logging.shutdown()


def _model_dir(models: dict[str, str]) -> str:
    """AZUREML_MODEL_DIR for v2-style scripts: the one model's folder, or the parent of several."""
    if not models:
        return os.environ.get("AZUREML_MODEL_DIR", "")
    paths = list(models.values())
    if len(paths) == 1:
        return paths[0]
    return os.path.commonpath(paths)

