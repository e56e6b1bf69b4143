"""The machine records beside the log folder's text: every try, the failures with their
traceback's place, progress samples; and the dashboard and RunDetails read only those."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from fixtures.scripts import SHORT_AND_RAISE
from parallelrun import Dataset, ParallelRunConfig, run_job
from parallelrun.engine.logs import FAILURES_FILE, PROGRESS_FILE, TRIES_FILE, _utc
from parallelrun.statuses import OutcomeStatus
from parallelrun.ui.failures import FailureIndex
from parallelrun.ui.throughput import Throughput


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def failing_job(make_script, make_files, tmp_path):
    """10 files in mini-batches of 5: items 0-4 succeed; 5-9 raise on each of 3 tries."""
    src = make_script(SHORT_AND_RAISE.format(fail={2}, raise_={7}))
    config = ParallelRunConfig(source_directory=str(src), entry_script="score.py",
                               mini_batch_size=5, error_threshold=-1, output_action="append_row",
                               process_count_per_node=2, run_max_try=3)
    return run_job(config, [Dataset.File.from_files(str(make_files(10)))], tmp_path / "out")


def test_every_try_and_failure_is_a_json_record_with_its_traceback(make_script, make_files,
                                                                   tmp_path):
    result = failing_job(make_script, make_files, tmp_path)
    log_dir = Path(result.log_dir)
    tries = records(log_dir / TRIES_FILE)
    assert sorted((t["mini_batch"], t["attempt"], t["status"]) for t in tries) == [
        (0, 1, "RUN_DONE"), (1, 1, "RUN_EXCEPTION"), (1, 2, "RUN_EXCEPTION"),
        (1, 3, "RUN_EXCEPTION")]
    done = next(t for t in tries if t["mini_batch"] == 0)
    assert (done["items"], done["succeeded"], done["failed"], done["outcome"]) == (5, 4, 1, "done")
    assert done["traceback"] is None and done["final"] is True
    failed = [t for t in tries if t["mini_batch"] == 1]
    assert [t["outcome"] for t in sorted(failed, key=lambda t: t["attempt"])] == [
        "will be retried", "will be retried", "failed"]
    files = [str(tmp_path / "data" / f"item_{i:04d}.txt") for i in range(5, 10)]
    for t in failed:
        assert t["error_type"] == "ValueError"
        assert t["error_message"] == "cannot score [5, 6, 7, 8, 9]"
        assert t["item_names"] == ", ".join(files) and (t["items"], t["failed"]) == (5, 5)
        where = t["traceback"]
        block = (log_dir / where["file"]).read_bytes()[where["offset"]:][:where["length"]]
        assert block.decode().startswith(f"--- mini-batch 1, try {t['attempt']}, RUN_EXCEPTION")
        assert block.decode().rstrip().endswith("ValueError: cannot score [5, 6, 7, 8, 9]")
    assert records(log_dir / FAILURES_FILE) == sorted(failed, key=lambda t: tries.index(t))

    samples = records(log_dir / PROGRESS_FILE)
    last = samples[-1]
    assert (last["minibatches_done"], last["minibatches_failed"], last["retries"]) == (2, 1, 2)
    assert (last["items_succeeded"], last["items_failed"]) == (
        result.items_succeeded, result.items_failed) == (4, 6)
    assert last["planning_done"] and last["minibatches_planned"] == 2
    # the text files are still there, for people
    assert "mini-batch 1 try 3 failed" in (log_dir / "user/error.txt").read_text()
    assert list(log_dir.glob("job_progress_overview.*.txt"))


def test_the_dashboard_reads_the_records_not_the_prose(make_script, make_files, tmp_path):
    result = failing_job(make_script, make_files, tmp_path)
    log_dir = Path(result.log_dir)
    # a reworded text file (or none) changes nothing for the readers
    (log_dir / "user/error.txt").write_text("something else entirely\n", encoding="utf-8")
    for overview in log_dir.glob("job_progress_overview.*.txt"):
        overview.write_text("reworded\n", encoding="utf-8")
    index = FailureIndex(str(log_dir))
    assert index.refresh()
    [group] = index.groups()
    assert (group["type"], group["tries"], group["minibatches_failed"], group["retried"]) == (
        "ValueError", 3, 1, 2)
    page = index.items("ValueError")
    assert [(i["index"], i["attempt"], i["outcome"], i["message"]) for i in page["items"]] == [
        (1, 1, "will be retried", "cannot score [5, 6, 7, 8, 9]"),
        (1, 2, "will be retried", "cannot score [5, 6, 7, 8, 9]"),
        (1, 3, "failed", "cannot score [5, 6, 7, 8, 9]")]
    last = index.traceback(page["items"][-1]["entry"])
    assert last["traceback"].startswith("items: ")
    assert last["traceback"].endswith("ValueError: cannot score [5, 6, 7, 8, 9]")
    points = Throughput(str(log_dir)).series()["points"]
    assert points and points[-1]["items"] == 10 and points[-1]["minibatches"] == 2


def test_a_record_cannot_point_a_traceback_outside_the_error_folder(tmp_path):
    log_dir = tmp_path / "logs"
    (log_dir / "sys" / "job_report").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("--- mini-batch 0, secret\nsecret\n")
    lines = [json.dumps({"mini_batch": 0, "attempt": 1, "node": "n", "process": "p",
                         "finished_at": 0.0, "status": "RUN_EXCEPTION", "outcome": "failed",
                         "error_type": "E", "error_message": "m",
                         "traceback": {"file": name, "offset": 0, "length": 40}})
             for name in ("../secret.txt", "user/error/../../../secret.txt", str(tmp_path))]
    (log_dir / FAILURES_FILE).write_text("\n".join(lines) + "\n")
    index = FailureIndex(str(log_dir))
    index.refresh()
    assert index.total() == 3
    assert [index.traceback(n)["traceback"] for n in range(3)] == [None, None, None]


def test_the_fast_lines_of_a_done_try_are_the_same_records():
    import csv
    import io

    from parallelrun.engine.logs import _DoneTryLines, _json_line, _utc, try_record
    from parallelrun.engine.progress import MiniBatchRecord

    for names, item_names in ((("node0", "process001"), ""), (('n"1', "p\u00e9\n"), "a, b\n"),
                              (("node,2", "p 3"), "")):
        record = MiniBatchRecord(index=12, attempt=2, node_name=names[0], process_name=names[1],
                                 started_at=1767225600.1234567, finished_at=1767225601.5,
                                 items=3, succeeded=2, run_seconds=0.0012345678,
                                 status=OutcomeStatus.RUN_DONE, final=True, item_names=item_names)
        row, line = _DoneTryLines()(record)
        assert line.endswith("\n") and line.count("\n") == 1
        assert json.loads(line) == json.loads(_json_line(try_record(record)))
        # the row csv.writer writes for processed_mini-batches.csv
        expected = io.StringIO(newline="")
        csv.writer(expected).writerow([
            record.index, record.attempt, record.node_name, record.process_name,
            _utc(record.started_at), record.items, record.succeeded, record.failed,
            f"{record.elapsed:.4f}", f"{record.run_seconds:.4f}", record.status, "", ""])
        assert row == expected.getvalue()


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False, allow_infinity=False))
def test_the_logs_time_of_day_is_what_datetime_writes(ts):
    # processed_mini-batches.csv formats a time per mini-batch; the quick formatter (the
    # second's text kept between calls) must write what datetime writes, rounding included
    expected = datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")
    assert _utc(ts) == expected
    assert _utc(ts + 1.0) == datetime.fromtimestamp(ts + 1.0, timezone.utc).isoformat(
        timespec="milliseconds")
