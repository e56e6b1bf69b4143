"""Exactly-once survives a machine crash, not only a killed process.

A power loss keeps of each file only what was synced to disk. These tests watch every write and
sync of a job (a model of the disk: a file's durable bytes are those written before its last
fsync/fdatasync began), check that a journal line is never written before the rows it names are
durable, then put the files back as a crash at the worst moment would leave them and resume.
They also cut the output short beside a longer journal by hand (a torn copy), and kill -9 the
whole job several times in a row.
"""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from fixtures.waiting import wait_for
from parallelrun import Dataset, ParallelRunConfig, run_job

# Returns each file's number; with a file named "broken" beside the script, the mini-batch
# holding item 7 raises (so a first run fails part-way and a resume finishes it). Every call is
# noted in calls.txt, so a test can tell which mini-batches ran again.
NUMBERS = """
    import os, time
    HERE = os.path.dirname(__file__)
    def init(): pass
    def run(mini_batch):
        numbers = [int(open(p).read()) for p in mini_batch]
        if 7 in numbers and os.path.exists(os.path.join(HERE, "broken")):
            raise RuntimeError("broken")
        time.sleep({sleep})
        with open(os.path.join(HERE, "calls.txt"), "a") as fh:
            fh.write(" ".join(map(str, numbers)) + "\\n")
        return {result}
"""
AS_NUMBERS = "numbers"
AS_RECORDS = '[{"n": n, "name": f"item {n}"} for n in numbers]'


def config(src: Path, **overrides) -> ParallelRunConfig:
    values = dict(source_directory=str(src), entry_script="score.py", mini_batch_size=2,
                  error_threshold=0, output_action="append_row", process_count_per_node=2,
                  run_max_try=1)
    values.update(overrides)
    return ParallelRunConfig(**values)


def numbers_in(result, fmt: str = "text") -> list[int]:
    """The item numbers in the job's output, sorted, duplicates kept."""
    if fmt == "csv":
        return sorted(pd.read_csv(result.output_file)["n"])
    if fmt == "parquet":
        return sorted(pq.read_table(result.output_file)["n"].to_pylist())
    lines = Path(result.output_file).read_bytes().decode().splitlines()
    return sorted(int(line) if line.isdigit() else ast.literal_eval(line)["n"] for line in lines)


class DiskModel:
    """Watches os.write and fsync/fdatasync of this process: what a power loss would keep.

    ``durable[path]`` is the size a file had when its last sync began: those bytes survive a
    crash. Each journal write is checked against the output's durable size; each write of the
    output records the moment as a possible crash point (output durable size, journal bytes).
    """

    def __init__(self, monkeypatch, journal: str, rows: str):
        self.journal, self.rows = os.path.realpath(journal), os.path.realpath(rows)
        self.durable: dict[str, int] = {}
        self.journal_written = 0
        self.rows_written = 0
        self.violations: list[str] = []
        self.crash_points: list[tuple[int, int, int]] = []   # (rows written, rows durable, journal)
        self._lock = threading.Lock()
        real_write = os.write

        def write(fd, data):
            path = _path(fd)
            if path == self.journal:
                self._journal_lines(bytes(data))
            written = real_write(fd, data)
            with self._lock:
                if path == self.journal:
                    self.journal_written += written
                elif path == self.rows:
                    self.rows_written = os.fstat(fd).st_size
                    self.crash_points.append((self.rows_written, self.durable.get(self.rows, 0),
                                              self.journal_written))
            return written

        def syncing(real):
            def sync(fd):
                path, size = _path(fd), os.fstat(fd).st_size   # written before the sync began
                real(fd)
                with self._lock:
                    self.durable[path] = max(size, self.durable.get(path, 0))
            return sync

        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(os, "fsync", syncing(os.fsync))
        monkeypatch.setattr(os, "fdatasync", syncing(os.fdatasync))

    def _journal_lines(self, data: bytes) -> None:
        durable = self.durable.get(self.rows, 0)
        for line in data.decode().splitlines():
            index, offset, length = map(int, line.split()[:3])
            if offset + length > durable:
                self.violations.append(f"journal line {line!r} written while only {durable} "
                                       f"bytes of the output were on disk")


def _path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd")
def test_after_a_power_loss_the_journal_never_names_rows_the_output_lacks(
        make_script, make_files, tmp_path, monkeypatch):
    src = make_script(NUMBERS.format(sleep=0.01, result=AS_NUMBERS))
    data = Dataset.File.from_files(str(make_files(120)))
    out = tmp_path / "out"
    rows, journal = out / "parallel_run_step.txt", out / "logs" / "sys" / "journal.txt"
    disk = DiskModel(monkeypatch, str(journal), str(rows))
    result = run_job(config(src), [data], out)
    monkeypatch.undo()
    assert result.status == "Finished" and numbers_in(result) == list(range(120))
    assert not disk.violations, disk.violations[:3]
    # before the job reported Finished, every row and every journal line was on disk
    assert disk.durable[str(rows)] == rows.stat().st_size
    assert disk.durable[str(journal)] == journal.stat().st_size

    # The crash: at the moment the output was furthest ahead of its last sync, with every
    # journal line written so far persisted (the worst case), and no more.
    written, durable, journal_bytes = max(disk.crash_points, key=lambda p: (p[0] - p[1], p[2]))
    assert written > durable and journal_bytes > 0, disk.crash_points
    os.truncate(rows, durable)
    os.truncate(journal, journal_bytes)
    resumed = run_job(config(src), [data], out, resume=True)
    assert resumed.status == "Finished"
    assert numbers_in(resumed) == list(range(120))            # each row once, none lost
    assert b"\0" not in rows.read_bytes()


@pytest.mark.parametrize("fmt", ["text", "csv", "parquet"])
@pytest.mark.parametrize("cut", ["mid_row", "half", "empty", "missing"])
def test_a_short_output_beside_a_longer_journal_resumes_exactly(make_script, make_files, tmp_path,
                                                                  fmt, cut):
    src = make_script(NUMBERS.format(sleep=0, result=AS_RECORDS))
    data = Dataset.File.from_files(str(make_files(20)))
    out = tmp_path / "out"
    first = run_job(config(src, append_row_format=fmt), [data], out)
    assert first.status == "Finished"
    # what the journal's offsets count: the file itself, or parquet's staging file
    rows = out / f".{Path(first.output_file).name}.arrows" if fmt == "parquet" \
        else Path(first.output_file)
    size = rows.stat().st_size
    if cut == "missing":
        rows.unlink()
    else:
        os.truncate(rows, {"mid_row": size - 3, "half": size // 2, "empty": 0}[cut])
    calls_before = len((src / "calls.txt").read_text().splitlines())

    resumed = run_job(config(src, append_row_format=fmt), [data], out, resume=True)
    assert resumed.status == "Finished"
    assert numbers_in(resumed, fmt) == list(range(20))
    if fmt != "parquet":                  # (the staging file is binary)
        assert b"\0" not in rows.read_bytes()
    rerun = len((src / "calls.txt").read_text().splitlines()) - calls_before
    assert 0 < rerun <= 10            # the mini-batches whose rows were lost, not the others
    if cut in ("empty", "missing"):
        assert rerun == 10
    assert resumed.items_succeeded == 20 and resumed.minibatches_succeeded == 10


def test_a_journal_torn_mid_line_by_a_crash_is_read_up_to_the_tear(make_script, make_files,
                                                                   tmp_path):
    src = make_script(NUMBERS.format(sleep=0, result=AS_NUMBERS))
    data = Dataset.File.from_files(str(make_files(20)))
    out = tmp_path / "out"
    assert run_job(config(src), [data], out).status == "Finished"
    journal = out / "logs" / "sys" / "journal.txt"
    lines = journal.read_bytes().splitlines(keepends=True)
    # a crash can leave zeros where the last lines were being written: here in the last field
    torn = b" ".join(lines[4].split()[:4] + [b"\0\0\0"]) + b"\n"
    journal.write_bytes(b"".join(lines[:4]) + torn + b"".join(lines[5:]))
    resumed = run_job(config(src), [data], out, resume=True)
    assert resumed.status == "Finished" and numbers_in(resumed) == list(range(20))


def test_kill_9_of_the_whole_job_five_times_then_resume_gives_each_row_once(
        make_script, make_files, tmp_path):
    src = make_script(NUMBERS.format(sleep=0.02, result=AS_NUMBERS))
    data = make_files(400)
    out = tmp_path / "out"
    journal = out / "logs" / "sys" / "journal.txt"
    command = [sys.executable, "-m", "parallelrun.cli", "run", "--source-directory", str(src),
               "--entry-script", "score.py", "--input", str(data), "--mini-batch-size", "2",
               "--process-count-per-node", "2", "--error-threshold", "0", "--output", str(out),
               "--quiet"]

    def committed() -> int:
        return len(journal.read_bytes().splitlines()) if journal.exists() else 0

    for attempt in range(5):
        before = committed()
        job = subprocess.Popen(command + (["--resume"] if attempt else []),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
        try:
            wait_for(lambda: committed() >= before + 5 or job.poll() is not None, timeout=60,
                     every=0.02)
        finally:
            os.killpg(job.pid, signal.SIGKILL)          # the coordinator and its workers at once
            job.wait()
        assert job.returncode == -signal.SIGKILL, job.stderr.read().decode()
    done = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = (out / "parallel_run_step.txt").read_text().splitlines()
    assert sorted(map(int, lines)) == list(range(400))
