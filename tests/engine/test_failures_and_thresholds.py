"""Failed items, thresholds, retries, timeouts and dying workers: the job never hangs or duplicates."""

from __future__ import annotations

import collections
import csv
import os
import random
from pathlib import Path

import pytest

from fixtures.scripts import SHORT_AND_RAISE
from fixtures.timeout_clock import TimeoutClock, use_timeout_clock
from parallelrun import Dataset, ParallelRunConfig, run_job


def job(make_script, make_files, tmp_path, body, files=10, listeners=(), **overrides):
    src = make_script(body)
    values = dict(source_directory=str(src), entry_script="score.py", mini_batch_size=1,
                  error_threshold=-1, output_action="append_row", process_count_per_node=2,
                  run_invocation_timeout=30, run_max_try=2)
    values.update(overrides)
    data = make_files(files)
    return run_job(ParallelRunConfig(**values), [Dataset.File.from_files(str(data))], tmp_path / "out",
                   listeners=listeners)


def output_numbers(result) -> list[int]:
    return sorted(int(line) for line in Path(result.output_file).read_text().splitlines())


def test_short_return_counts_missing_items_as_failed(make_script, make_files, tmp_path):
    body = SHORT_AND_RAISE.format(fail={1, 2, 3}, raise_=set())
    result = job(make_script, make_files, tmp_path, body, mini_batch_size=5)
    assert result.status == "Finished"
    assert (result.items_succeeded, result.items_failed) == (7, 3)
    assert result.minibatches_failed == 0 and result.retries == 0
    assert output_numbers(result) == [0, 4, 5, 6, 7, 8, 9]


def test_exception_fails_every_item_of_the_mini_batch_after_retries(make_script, make_files, tmp_path):
    body = SHORT_AND_RAISE.format(fail=set(), raise_={7})
    result = job(make_script, make_files, tmp_path, body, mini_batch_size=5, run_max_try=3)
    assert result.status == "Finished"
    assert (result.items_succeeded, result.items_failed) == (5, 5)
    assert (result.minibatches_failed, result.retries) == (1, 2)
    assert output_numbers(result) == [0, 1, 2, 3, 4]
    report = list(csv.DictReader(open(Path(result.log_dir) / "sys/job_report/processed_mini-batches.csv")))
    tries = [r for r in report if r["mini_batch_id"] == "1"]
    assert [r["status"] for r in tries] == ["RUN_EXCEPTION"] * 3 and [r["attempt"] for r in tries] == ["1", "2", "3"]
    tracebacks = "".join(p.read_text() for p in (Path(result.log_dir) / "user/error").rglob("*.txt"))
    assert "ValueError: cannot score [5, 6, 7, 8, 9]" in tracebacks
    failed_files = ", ".join(str(tmp_path / "data" / f"item_{i:04d}.txt") for i in range(5, 10))
    assert tracebacks.count(f"items: {failed_files}\n") == 3  # each try names its files
    assert "mini-batch 1 try 3 failed" in (Path(result.log_dir) / "user/error.txt").read_text()


@pytest.mark.parametrize("threshold, failures, status", [
    (-1, 6, "Finished"),   # -1 ignores every failure
    (0, 0, "Finished"),    # no failure at all
    (0, 1, "Failed"),      # the first failure exceeds 0
    (3, 3, "Finished"),    # exactly at the threshold is still fine
    (3, 4, "Failed"),      # one over
])
def test_error_threshold_boundaries(make_script, make_files, tmp_path, threshold, failures, status):
    body = SHORT_AND_RAISE.format(fail=set(range(failures)), raise_=set())
    result = job(make_script, make_files, tmp_path, body, files=12, error_threshold=threshold,
                 process_count_per_node=1)
    assert result.status == status
    assert result.items_failed == (failures if status == "Finished" else threshold + 1)
    if status == "Failed":
        assert f"error_threshold={threshold} exceeded" in result.error
        # what finished before the stop is kept, each row once
        numbers = output_numbers(result)
        assert len(numbers) == len(set(numbers)) == result.items_succeeded


def test_allowed_failed_count_counts_mini_batches(make_script, make_files, tmp_path):
    body = SHORT_AND_RAISE.format(fail=set(), raise_={0, 1, 2})
    ok = job(make_script, make_files, tmp_path / "a", body, allowed_failed_count=3, run_max_try=1)
    assert ok.status == "Finished" and ok.minibatches_failed == 3
    bad = job(make_script, make_files, tmp_path / "b", body, allowed_failed_count=2, run_max_try=1,
              process_count_per_node=1)
    assert bad.status == "Failed" and "allowed_failed_count=2 exceeded" in bad.error


def test_allowed_failed_percent_checked_at_the_end(make_script, make_files, tmp_path):
    body = SHORT_AND_RAISE.format(fail=set(), raise_={0, 1, 2})
    ok = job(make_script, make_files, tmp_path / "a", body, allowed_failed_percent=30, run_max_try=1)
    assert ok.status == "Finished"
    bad = job(make_script, make_files, tmp_path / "b", body, allowed_failed_percent=20, run_max_try=1)
    assert bad.status == "Failed" and "3 of 10 mini-batches failed (30.0%)" in bad.error


# A script that misbehaves only on the first try of mini-batch 3 (the file holding "3"),
# remembered by a marker file, so the retry succeeds.
MISBEHAVE_ONCE = """
    import os, time
    def init(): pass
    def run(mini_batch):
        numbers = [int(open(p).read()) for p in mini_batch]
        marker = os.path.join(os.path.dirname(mini_batch[0]), "..", "tried")
        if 3 in numbers and not os.path.exists(marker):
            open(marker, "w").close()
            {misbehave}
        return numbers
"""


@pytest.mark.parametrize("misbehave, status", [
    ("time.sleep(60)", "RUN_TIMEOUT"),
    ("os._exit(1)", "PROCESS_DIED"),
    ("import ctypes; ctypes.string_at(0)", "PROCESS_DIED"),
])
def test_hung_or_dying_worker_is_replaced_and_the_batch_retried_once(make_script, make_files, tmp_path,
                                                                      monkeypatch, misbehave, status):
    # run() times out on a scripted clock, only once mini-batch 3 hangs (its "tried" marker
    # written) and is the one its worker runs: however slow the machine, no other try times
    # out, and a dying worker is not overtaken by a timeout. One worker: a timeout there is
    # exactly the hung try.
    hangs = "sleep" in misbehave
    clock = TimeoutClock(tmp_path / "tried" if hangs else None, hung_index=3)
    use_timeout_clock(monkeypatch, clock)
    result = job(make_script, make_files, tmp_path, MISBEHAVE_ONCE.format(misbehave=misbehave),
                 files=8, run_invocation_timeout=2, process_count_per_node=1, listeners=[clock])
    assert result.status == "Finished"
    assert output_numbers(result) == list(range(8))  # every row exactly once
    assert result.retries == 1 and result.items_failed == 0
    report = list(csv.DictReader(open(Path(result.log_dir) / "sys/job_report/processed_mini-batches.csv")))
    assert [r["status"] for r in report if r["mini_batch_id"] == "3"] == [status, "RUN_DONE"]
    if "ctypes" in misbehave:
        errors = (Path(result.log_dir) / "user/error.txt").read_text()
        assert "SIGSEGV" in errors


def test_a_worker_that_always_hangs_ends_the_job_not_hangs_it(make_script, make_files, tmp_path):
    body = """
        import time
        def init(): pass
        def run(mini_batch):
            time.sleep(60)
    """
    result = job(make_script, make_files, tmp_path, body, files=2, run_invocation_timeout=1,
                 run_max_try=2, error_threshold=0)
    assert result.status == "Failed"
    assert "run_invocation_timeout=1" in result.error
    assert result.elapsed_seconds < 30


#: run() dies (os._exit) on a try of a mini-batch when random.Random("<seed>:<first file>:<try>")
#: draws below 0.3; the try's number is counted in a file per mini-batch, so the deaths are
#: known beforehand from the seed alone
DIES_BY_SEED = """
    import os, random
    SEED = os.environ["DEATH_SEED"]
    def init(): pass
    def run(mini_batch):
        first = os.path.basename(mini_batch[0])
        tries = os.path.join(os.path.dirname(mini_batch[0]), "..", "tries-" + first)
        with open(tries, "a+") as fh:
            fh.write("x")
            fh.seek(0)
            attempt = len(fh.read())
        if random.Random(f"{SEED}:{first}:{attempt}").random() < 0.3:
            os._exit(3)
        return [int(open(p).read()) for p in mini_batch]
"""


def deaths_of(seed: str, first_files: list[str]) -> dict[str, int]:
    """How many tries of each mini-batch (by its first file) DIES_BY_SEED kills before one lives."""
    deaths = {}
    for first in first_files:
        attempt = 1
        while random.Random(f"{seed}:{first}:{attempt}").random() < 0.3:
            attempt += 1
        deaths[first] = attempt - 1
    return deaths


def test_no_duplicate_rows_when_many_workers_die(make_script, make_files, tmp_path):
    # PARALLELRUN_TEST_SEED replays a run; the seed is printed (pytest shows it on failure)
    seed = os.environ.get("PARALLELRUN_TEST_SEED", "2")
    print(f"seed of worker deaths: {seed} (rerun with PARALLELRUN_TEST_SEED={seed})")
    firsts = [f"item_{i:04d}.txt" for i in range(0, 30, 2)]
    deaths = deaths_of(seed, firsts)
    assert sum(deaths.values()) >= 5 and max(deaths.values()) < 10  # many deaths, none fatal
    result = job(make_script, make_files, tmp_path, DIES_BY_SEED, files=30, mini_batch_size=2,
                 run_max_try=10, environment_variables={"DEATH_SEED": seed})
    lines = output_numbers(result)
    assert len(lines) == len(set(lines)) == result.items_succeeded
    assert result.status == "Finished" and lines == list(range(30))
    # each death charged to the mini-batch that died, once; none to those queued behind it
    assert result.retries == sum(deaths.values())
    with open(Path(result.log_dir) / "sys/job_report/processed_mini-batches.csv", newline="") as fh:
        report = list(csv.DictReader(fh))
    died = collections.Counter(int(r["mini_batch_id"]) for r in report if r["status"] == "PROCESS_DIED")
    assert died == collections.Counter({i: n for i, n in enumerate(deaths.values()) if n})


def test_resume_runs_only_what_was_not_committed(make_script, make_files, tmp_path):
    src = make_script("""
        import os
        def init(): pass
        def run(mini_batch):
            numbers = [int(open(p).read()) for p in mini_batch]
            if os.environ.get("BROKEN") and 6 in numbers:
                raise RuntimeError("broken")
            with open(os.path.join(os.path.dirname(__file__), "calls.txt"), "a") as fh:
                fh.write(f"{numbers[0]}\\n")
            return numbers
    """)
    data = Dataset.File.from_files(str(make_files(10)))
    common = dict(source_directory=str(src), entry_script="score.py", mini_batch_size=2,
                  output_action="append_row", process_count_per_node=1, run_max_try=1)
    first = run_job(ParallelRunConfig(error_threshold=0, environment_variables={"BROKEN": "1"}, **common),
                    [data], tmp_path / "out")
    assert first.status == "Failed"
    kept = output_numbers(first)
    assert set(kept) >= {0, 1, 2, 3, 4, 5}   # what finished before the failure is kept
    calls_before = (src / "calls.txt").read_text().split()
    resumed = run_job(ParallelRunConfig(error_threshold=0, **common), [data], tmp_path / "out", resume=True)
    assert resumed.status == "Finished"
    assert output_numbers(resumed) == list(range(10))
    calls_after = (src / "calls.txt").read_text().split()[len(calls_before):]
    assert not {int(n) for n in calls_after} & set(kept)   # committed mini-batches did not run again
    assert resumed.items_succeeded == 10
