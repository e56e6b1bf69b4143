"""The job's log folder, laid out after Azure ML's (SPEC.md section 6): see ``README``.

Every file here is written by parallelrun; the folder's ``.parallelrun`` marker
(engine/job_folders.py) is what proves it, and only what proves it lets a later job remove them.

People read the text files; programs (the dashboard, ``RunDetails``) read the JSON-lines records
written beside them from the same values, one object a line, never the prose:

* ``sys/job_report/tries.jsonl`` (:data:`TRIES_FILE`): every finished try of a mini-batch, see
  :func:`try_record`;
* ``sys/job_report/failures.jsonl`` (:data:`FAILURES_FILE`): the failed tries alone, in the same
  shape, each with where its traceback lies (so a reader never scans the successful ones);
* ``sys/progress.jsonl`` (:data:`PROGRESS_FILE`): a progress sample every few seconds, see
  :func:`progress_record`.

Every record carries ``"v": RECORDS_VERSION``; fields are only ever added.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from parallelrun.engine.progress import JobProgress, MiniBatchRecord, ProgressListener
from parallelrun.script import utc_formatter
from parallelrun.statuses import OutcomeStatus, RunStatus, TryOutcome

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
  sys/job_report/tries.jsonl        the same tries as JSON lines (for programs)
  sys/job_report/failures.jsonl     the failed tries as JSON lines, with their traceback's place
  sys/progress.jsonl                the progress samples as JSON lines
  sys/perf/<node>/node_resource_usage.csv     CPU, memory, disk, network over time
  user/error.txt                    one line per failed mini-batch
  user/error/<node>/<process>.txt   full tracebacks, each under its try and the items it held
  user/entry_script_log/<node>/<process>.log.txt   EntryScript().logger
  user/stdout/<node>/<process>.stdout.txt, user/stderr/...
"""
CSV_COLUMNS = ["mini_batch_id", "attempt", "node", "process", "start_time", "total_items",
               "succeeded_items", "failed_items", "elapsed_seconds", "run_seconds", "status",
               "error_category", "error_message"]


#: the machine-readable records, relative to the log folder (see the module doc)
TRIES_FILE = "sys/job_report/tries.jsonl"
FAILURES_FILE = "sys/job_report/failures.jsonl"
PROGRESS_FILE = "sys/progress.jsonl"
RECORDS_VERSION = 1
_MAX_MESSAGE = 2000
# bound once: on Python 3.11 every lookup of a member on its Enum class costs a Python-level
# call, and this runs for every mini-batch
_RUN_DONE = OutcomeStatus.RUN_DONE


_utc_second: tuple[int, str] = (-1, "")


def _utc(ts: float) -> str:
    """``ts`` as ISO 8601 UTC to the millisecond (``2026-12-06T04:46:56.223+00:00``). The
    seconds' text is kept from the last call: the scheduler's thread formats a time for every
    mini-batch, mostly within the same second."""
    global _utc_second
    whole = int(ts)
    micro = round((ts - whole) * 1e6)     # as datetime rounds: to the microsecond, then cut
    if micro >= 1_000_000:
        whole, micro = whole + 1, micro - 1_000_000
    second, text = _utc_second            # one read: other threads may replace it
    if whole != second:
        text = datetime.fromtimestamp(whole, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        _utc_second = (whole, text)
    return f"{text}.{micro // 1000:03d}+00:00"


def progress_record(p: JobProgress, now: float | None = None) -> dict:
    """One progress sample as written to :data:`PROGRESS_FILE` (times in seconds since the
    epoch)."""
    return {"v": RECORDS_VERSION, "time": time.time() if now is None else now,
            "minibatches_done": p.minibatches_done, "minibatches_planned": p.planned_minibatches,
            "planning_done": p.planning_done, "minibatches_failed": p.minibatches_failed,
            "retries": p.retries, "items_succeeded": p.items_succeeded,
            "items_failed": p.items_failed, "items_per_second": round(p.items_per_second(), 3),
            "workers_ready": p.workers_ready, "workers_total": p.workers_total,
            "elapsed": round(p.elapsed, 3), "eta_seconds": p.eta_seconds()}


def render_progress(sample: dict) -> str:
    """The progress overview line people read, from a :func:`progress_record`."""
    planned = sample["minibatches_planned"]
    total = str(planned) if sample["planning_done"] else f"{planned}+"
    eta = sample["eta_seconds"]
    return (f"{_utc(sample['time'])} mini-batches: {sample['minibatches_done']}/{total} done "
            f"({sample['minibatches_failed']} failed, {sample['retries']} retried); items: "
            f"{sample['items_succeeded']} succeeded, {sample['items_failed']} failed; "
            f"{sample['items_per_second']:.1f} items/s; workers ready: "
            f"{sample['workers_ready']}/{sample['workers_total']}; elapsed: "
            f"{sample['elapsed']:.0f} s" + (f"; ETA: {eta:.0f} s" if eta is not None else ""))


def progress_line(p: JobProgress) -> str:
    """The progress line of ``p`` now (the overview file, the terminal, ``--watch``)."""
    return render_progress(progress_record(p))


def try_outcome(record: MiniBatchRecord) -> TryOutcome:
    """What a finished try means for its mini-batch."""
    if record.status == _RUN_DONE:
        return TryOutcome.DONE_WITH_FAILED_RECORDS if record.error_message else TryOutcome.DONE
    return TryOutcome.FAILED if record.final else TryOutcome.WILL_BE_RETRIED


def try_record(record: MiniBatchRecord, traceback_at: dict | None = None) -> dict:
    """One try as written to :data:`TRIES_FILE` (and, failed, to :data:`FAILURES_FILE`).

    ``traceback_at`` is ``{"file": path relative to the log folder, "offset": byte offset of
    its block, "length": bytes}`` for a failed try, else None.
    """
    message = record.error_message or ""
    return {"v": RECORDS_VERSION, "mini_batch": record.index, "attempt": record.attempt,
            "node": record.node_name, "process": record.process_name,
            "started_at": round(record.started_at, 6), "finished_at": round(record.finished_at, 6),
            "items": record.items, "succeeded": record.succeeded, "failed": record.failed,
            "run_seconds": round(record.run_seconds, 6), "status": record.status,
            "final": record.final, "outcome": try_outcome(record),
            "error_type": record.error_type, "error_message": message[:_MAX_MESSAGE] or None,
            "item_names": record.item_names or None, "traceback": traceback_at}


def _json_line(record: dict) -> str:
    # one line whatever the values hold: json.dumps escapes line breaks inside strings
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


class _DoneTryLines:
    """The two lines a try done without error adds to the log folder, formatted directly: its
    ``processed_mini-batches.csv`` row (as ``csv.writer`` writes it) and its
    ``_json_line(try_record(record))``. The scheduler's thread writes both for every mini-batch,
    and building the list, the dict and encoding them costs about three times as much
    (tests/engine/test_log_records.py checks they agree)."""

    _TEMPLATE = ('{"v":%d,"mini_batch":%d,"attempt":%d,%s,"started_at":%.6f,"finished_at":%.6f,'
                 '"items":%d,"succeeded":%d,"failed":%d,"run_seconds":%.6f,"status":"'
                 + OutcomeStatus.RUN_DONE + '","final":%s,"outcome":"' + TryOutcome.DONE
                 + '","error_type":null,"error_message":null,'
                 '"item_names":%s,"traceback":null}\n')
    _CSV_TEMPLATE = "%d,%d,%s,%s,%d,%d,%d,%.4f,%.4f," + OutcomeStatus.RUN_DONE + ",,\r\n"

    def __init__(self):
        self._names: dict[tuple[str, str], tuple[str, str]] = {}

    def _names_of(self, r: MiniBatchRecord) -> tuple[str, str]:
        key = (r.node_name, r.process_name)
        names = self._names.get(key)
        if names is None:
            quoted = io.StringIO()      # csv's quoting of names with commas, quotes, newlines
            csv.writer(quoted).writerow(key)
            names = self._names[key] = (
                f'"node":{json.dumps(r.node_name, ensure_ascii=False)},'
                f'"process":{json.dumps(r.process_name, ensure_ascii=False)}',
                quoted.getvalue()[:-2])
        return names

    def __call__(self, r: MiniBatchRecord) -> tuple[str, str]:
        """``(csv row, json line)`` of ``r``, a try with status RUN_DONE and no error."""
        json_names, csv_names = self._names_of(r)
        failed = r.items - r.succeeded if r.items > r.succeeded else 0
        return (self._CSV_TEMPLATE % (r.index, r.attempt, csv_names, _utc(r.started_at), r.items,
                                      r.succeeded, failed, r.finished_at - r.started_at,
                                      r.run_seconds),
                self._TEMPLATE % (
                    RECORDS_VERSION, r.index, r.attempt, json_names, r.started_at, r.finished_at,
                    r.items, r.succeeded, failed, r.run_seconds, "true" if r.final else "false",
                    json.dumps(r.item_names, ensure_ascii=False) if r.item_names else "null"))


def traceback_file(log_dir: str, record: MiniBatchRecord) -> str:
    """Where the full traceback of a failed try is written."""
    return os.path.join(log_dir, "user", "error", record.node_name, f"{record.process_name}.txt")


#: bytes job_result.txt keeps from the job's start: a summary is well under it, and is cut to
#: it only when the disk has no room left
_RESULT_ROOM = 16 * 1024


def _write_reserved(path: Path, text: str, reserve: bool = False) -> None:
    """Write ``text`` as ``path``'s content over the blocks it already holds; ``reserve`` pads it
    to :data:`_RESULT_ROOM` bytes (blank lines), so that the next write fits on a disk that filled
    up meanwhile (rewriting blocks a file owns takes no space)."""
    data = text.encode("utf-8")
    if reserve:
        data = data.ljust(_RESULT_ROOM, b"\n")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        try:
            written = os.pwrite(fd, data, 0)
        except OSError:  # a full disk: what fits in the blocks the file has
            written = os.pwrite(fd, data[:os.fstat(fd).st_size], 0)
        os.ftruncate(fd, written)
    except OSError:
        pass  # not even that: the job's result (and its exit status) still say it
    finally:
        os.close(fd)


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
        self._tries = open(self.dir / TRIES_FILE, "a", encoding="utf-8")
        self._failures = open(self.dir / FAILURES_FILE, "a", encoding="utf-8")
        self._done_lines = _DoneTryLines()
        self._tracebacks: dict[tuple[str, str], io.TextIOWrapper] = {}
        self._last_overview = 0.0
        self._perf = _PerfSampler(self.dir / "sys/perf/node0/node_resource_usage.csv")
        if not resume:
            (self.dir / "job_error.txt").unlink(missing_ok=True)
        # job_result.txt holds its place from the start: a job that fills the disk still has
        # room for its result (rewriting blocks it owns takes none)
        _write_reserved(self.dir / "job_result.txt", f"status: {RunStatus.RUNNING}\n", reserve=True)

    def _master_logger(self) -> logging.Logger:
        logger = logging.getLogger(f"parallelrun.job.{id(self)}")
        logger.setLevel(self.level)
        logger.propagate = False
        handler = _QuietFileHandler(self.dir / "sys/master_role.txt", encoding="utf-8")
        handler.setFormatter(utc_formatter())
        logger.addHandler(handler)
        return logger

    @property
    def journal_path(self) -> Path:
        return self.dir / "sys" / "journal.txt"

    # ProgressListener ------------------------------------------------------------------------
    def on_start(self, progress: JobProgress) -> None:
        self._perf.start()

    def on_record(self, progress: JobProgress, record: MiniBatchRecord) -> None:
        if record.status == _RUN_DONE and not record.error_message:
            row, line = self._done_lines(record)
            self._csv_file.write(row)
            self._tries.write(line)
            return
        self._csv.writerow([
            record.index, record.attempt, record.node_name, record.process_name,
            _utc(record.started_at), record.items, record.succeeded, record.failed,
            f"{record.elapsed:.4f}", f"{record.run_seconds:.4f}", record.status,
            record.error_type or "", (record.error_message or "").replace("\n", " ")[:500]])
        data = try_record(record, self._write_traceback(record))
        line = _json_line(data)
        self._tries.write(line)
        self._failures.write(line)
        self._failures.flush()   # a failure is seen at once; tries are flushed each tick
        self._write_failure_line(data)

    def _write_failure_line(self, data: dict) -> None:
        message = (data["error_message"] or "").splitlines()
        self._error_summary.write(
            f"{_utc(data['finished_at'])} mini-batch {data['mini_batch']} try {data['attempt']} "
            f"{data['outcome']}: {data['status']} {data['error_type'] or ''}: "
            f"{message[0] if message else ''} [{data['node']}/{data['process']}]\n")
        self._error_summary.flush()

    def _write_traceback(self, record: MiniBatchRecord) -> dict:
        """Append the try's traceback block to its process's file; where it lies, for the
        records. The file is opened in binary so offsets are byte offsets."""
        key = (record.node_name, record.process_name)
        path = Path(traceback_file(str(self.dir), record))
        fh = self._tracebacks.get(key)
        if fh is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = self._tracebacks[key] = open(path, "ab")
        block = (f"--- mini-batch {record.index}, try {record.attempt}, {record.status}, "
                 f"{_utc(record.finished_at)}\n"
                 + (f"items: {record.item_names}\n" if record.item_names else "")
                 + f"{record.traceback or record.error_message or ''}\n").encode("utf-8")
        offset = fh.tell()
        fh.write(block)
        fh.flush()
        return {"file": path.relative_to(self.dir).as_posix(), "offset": offset,
                "length": len(block)}

    def on_tick(self, progress: JobProgress) -> None:
        now = time.time()
        if now - self._last_overview >= self.OVERVIEW_EVERY:
            self._write_overview(progress)
            self._csv_file.flush()
            self._tries.flush()

    def _write_overview(self, progress: JobProgress) -> None:
        self._last_overview = now = time.time()
        sample = progress_record(progress, now)
        with open(self.dir / PROGRESS_FILE, "a", encoding="utf-8") as fh:
            fh.write(_json_line(sample))
        stamp = datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%d%H")
        with open(self.dir / f"job_progress_overview.{stamp}.txt", "a", encoding="utf-8") as fh:
            fh.write(render_progress(sample) + "\n")

    def on_end(self, progress: JobProgress, result) -> None:
        self._perf.stop()
        # the result first: it has its room kept, the rest may not fit on a full disk
        _write_reserved(self.dir / "job_result.txt", result.summary() + "\n")
        try:
            self._write_overview(progress)
            if result.status != RunStatus.FINISHED:
                (self.dir / "job_error.txt").write_text(
                    (result.error or "the job failed") + "\n", encoding="utf-8")
        finally:
            self.close()

    def close(self) -> None:
        self._perf.stop()
        for fh in [self._csv_file, self._error_summary, self._tries, self._failures,
                   *self._tracebacks.values()]:
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
