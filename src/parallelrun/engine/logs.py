"""The job's log folder, laid out after Azure ML's (SPEC.md section 6): see ``README``.

Every file here is written by parallelrun; the folder's ``.parallelrun`` marker
(engine/job_folders.py) is what proves it, and only what proves it lets a later job remove them.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from parallelrun.engine.progress import JobProgress, MiniBatchRecord, ProgressListener
from parallelrun.script import LOG_FORMAT

# A constant, not the module docstring: ``python -OO`` strips docstrings.
README = """\
logs/
  .parallelrun                      marker: this folder is parallelrun's (the job's lock, its fingerprint)
  readme.txt                        what each file is
  job_progress_overview.<yyyymmddhh>.txt   a progress line every few seconds
  job_result.txt / job_error.txt    the outcome / why a failed job failed
  sys/master_role.txt               the coordinator's log
  sys/journal.txt                   committed mini-batches (exactly-once, resume)
  sys/node/<node>/<process>.txt     each worker's engine log
  sys/job_report/processed_mini-batches.csv   one row per try of a mini-batch
  sys/perf/<node>/node_resource_usage.csv     CPU, memory, disk, network over time
  user/error.txt                    one line per failed mini-batch
  user/error/<node>/<process>.txt   full tracebacks, each under its try and the items it held
  user/entry_script_log/<node>/<process>.log.txt   EntryScript().logger
  user/stdout/<node>/<process>.stdout.txt, user/stderr/...
"""
CSV_COLUMNS = ["mini_batch_id", "attempt", "node", "process", "start_time", "total_items",
               "succeeded_items", "failed_items", "elapsed_seconds", "run_seconds", "status",
               "error_category", "error_message"]


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")


def progress_line(p: JobProgress) -> str:
    total = str(p.planned_minibatches) if p.planning_done else f"{p.planned_minibatches}+"
    eta = p.eta_seconds()
    return (f"{_utc(time.time())} mini-batches: {p.minibatches_done}/{total} done "
            f"({p.minibatches_failed} failed, {p.retries} retried); items: {p.items_succeeded} "
            f"succeeded, {p.items_failed} failed; {p.items_per_second():.1f} items/s; "
            f"workers ready: {p.workers_ready}/{p.workers_total}; elapsed: {p.elapsed:.0f} s"
            + (f"; ETA: {eta:.0f} s" if eta is not None else ""))


def traceback_file(log_dir: str, record: MiniBatchRecord) -> str:
    """Where the full traceback of a failed try is written."""
    return os.path.join(log_dir, "user", "error", record.node_name, f"{record.process_name}.txt")


class _QuietFileHandler(logging.FileHandler):
    """A log file that stays quiet when it cannot be written (a full disk): the job's result
    says what went wrong; a traceback per log line on the terminal would bury it."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


class JobLogs(ProgressListener):
    """Writes the log folder as the job runs; a progress listener of the scheduler."""

    OVERVIEW_EVERY = 5.0

    def __init__(self, log_dir: str, logging_level: str = "INFO", resume: bool = False):
        self.dir = Path(log_dir)
        self.level = logging_level
        for sub in ("sys/job_report", "sys/node", "user/error"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        (self.dir / "readme.txt").write_text(README, encoding="utf-8")
        self.logger = self._master_logger()
        self._csv_file = open(self.dir / "sys/job_report/processed_mini-batches.csv", "a",
                              newline="", encoding="utf-8")
        self._csv = csv.writer(self._csv_file)
        if self._csv_file.tell() == 0:
            self._csv.writerow(CSV_COLUMNS)
        self._error_summary = open(self.dir / "user/error.txt", "a", encoding="utf-8")
        self._tracebacks: dict[tuple[str, str], io.TextIOWrapper] = {}
        self._last_overview = 0.0
        self._perf = _PerfSampler(self.dir / "sys/perf/node0/node_resource_usage.csv")
        if not resume:
            for stale in ("job_result.txt", "job_error.txt"):
                (self.dir / stale).unlink(missing_ok=True)

    def _master_logger(self) -> logging.Logger:
        logger = logging.getLogger(f"parallelrun.job.{id(self)}")
        logger.setLevel(self.level)
        logger.propagate = False
        handler = _QuietFileHandler(self.dir / "sys/master_role.txt", encoding="utf-8")
        formatter = logging.Formatter(LOG_FORMAT)
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
        logger.addHandler(handler)
        return logger

    @property
    def journal_path(self) -> Path:
        return self.dir / "sys" / "journal.txt"

    # ProgressListener ------------------------------------------------------------------------
    def on_start(self, progress: JobProgress) -> None:
        self._perf.start()

    def on_record(self, progress: JobProgress, record: MiniBatchRecord) -> None:
        self._csv.writerow([
            record.index, record.attempt, record.node_name, record.process_name,
            _utc(record.started_at), record.items, record.succeeded, record.failed,
            f"{record.elapsed:.4f}", f"{record.run_seconds:.4f}", record.status,
            record.error_type or "", (record.error_message or "").replace("\n", " ")[:500]])
        if record.status != "RUN_DONE" or record.error_message:
            self._write_failure(record)

    def _write_failure(self, record: MiniBatchRecord) -> None:
        outcome = "failed" if record.final else "will be retried"
        if record.status == "RUN_DONE":
            outcome = "done, with failed records"   # e.g. bad rows of a tabular file
        self._error_summary.write(
            f"{_utc(record.finished_at)} mini-batch {record.index} try {record.attempt} {outcome}: "
            f"{record.status} {record.error_type or ''}: "
            f"{(record.error_message or '').splitlines()[0] if record.error_message else ''} "
            f"[{record.node_name}/{record.process_name}]\n")
        self._error_summary.flush()
        key = (record.node_name, record.process_name)
        fh = self._tracebacks.get(key)
        if fh is None:
            path = Path(traceback_file(str(self.dir), record))
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = self._tracebacks[key] = open(path, "a", encoding="utf-8")
        fh.write(f"--- mini-batch {record.index}, try {record.attempt}, {record.status}, "
                 f"{_utc(record.finished_at)}\n"
                 + (f"items: {record.item_names}\n" if record.item_names else "")
                 + f"{record.traceback or record.error_message or ''}\n")
        fh.flush()

    def on_tick(self, progress: JobProgress) -> None:
        now = time.time()
        if now - self._last_overview >= self.OVERVIEW_EVERY:
            self._write_overview(progress)
            self._csv_file.flush()

    def _write_overview(self, progress: JobProgress) -> None:
        self._last_overview = time.time()
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d%H")
        with open(self.dir / f"job_progress_overview.{stamp}.txt", "a", encoding="utf-8") as fh:
            fh.write(progress_line(progress) + "\n")

    def on_end(self, progress: JobProgress, result) -> None:
        self._write_overview(progress)
        self._perf.stop()
        (self.dir / "job_result.txt").write_text(result.summary() + "\n", encoding="utf-8")
        if result.status != "Finished":
            (self.dir / "job_error.txt").write_text(
                (result.error or "the job failed") + "\n", encoding="utf-8")
        self.close()

    def close(self) -> None:
        self._perf.stop()
        for fh in [self._csv_file, self._error_summary, *self._tracebacks.values()]:
            try:
                fh.close()
            except OSError:
                pass  # a full disk: the job's result already says so; the file stays short
        for handler in list(self.logger.handlers):
            self.logger.removeHandler(handler)
            try:
                handler.close()
            except OSError:
                pass


class _PerfSampler:
    """Samples this node's CPU, memory, disk and network use into a CSV every few seconds."""

    def __init__(self, path: Path, every: float = 5.0):
        self.path = path
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._loop, name="parallelrun-perf", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
            self._thread = None

    def _loop(self) -> None:
        try:
            self._sample()
        except OSError:
            pass  # a full or read-only disk: the job's result reports it, sampling just stops

    def _sample(self) -> None:
        import psutil

        new = not self.path.exists()
        with open(self.path, "a", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            if new:
                writer.writerow(["time", "cpu_percent", "memory_used_mb", "memory_percent",
                                 "disk_read_mb", "disk_write_mb", "net_sent_mb", "net_recv_mb"])
            psutil.cpu_percent(None)
            while not self._stop.wait(self.every):
                mem = psutil.virtual_memory()
                disk = psutil.disk_io_counters()
                net = psutil.net_io_counters()
                mb = 1024 * 1024
                writer.writerow([
                    _utc(time.time()), psutil.cpu_percent(None), mem.used // mb, mem.percent,
                    (disk.read_bytes // mb) if disk else "", (disk.write_bytes // mb) if disk else "",
                    (net.bytes_sent // mb) if net else "", (net.bytes_recv // mb) if net else ""])
                fh.flush()
