"""The scheduler's branches that real workers reach only through timing, on the fake backend
(``fake_backend``): a worker lost with mini-batches queued behind the one it runs, and the
head of a queue timing out, each with a backend that knows which mini-batch was running and
one that does not (outcomes in groups, as Ray's). Time is simulated: a 5 s timeout takes no
time, and what each worker gets is the same on every run.

Two workers, eight files, one per mini-batch: the scheduler queues two on each worker at first,
so worker 0 holds mini-batches 0 and 1 (0 running), worker 1 holds 2 and 3.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from fake_backend import Dies, Done, Hangs, Scenario, register, use_fake_clock
from parallelrun import Dataset, ParallelRunConfig, run_job


@pytest.fixture
def fake(monkeypatch):
    """A fresh scenario on the fake backend, with the scheduler on a simulated clock."""
    register(monkeypatch)
    use_fake_clock(monkeypatch)
    return Scenario()


def run(fake: Scenario, make_script, make_files, tmp_path, **overrides):
    src = make_script("def init(): pass\ndef run(mini_batch): return mini_batch\n")
    values = dict(source_directory=str(src), entry_script="score.py", mini_batch_size=1,
                  error_threshold=-1, output_action="append_row", process_count_per_node=2,
                  run_invocation_timeout=5, run_max_try=3, compute_target=fake.target())
    values.update(overrides)
    return run_job(ParallelRunConfig(**values), [Dataset.File.from_files(str(make_files(8)))],
                   tmp_path / "out", progress=fake.progress)


def tries(result) -> dict[int, list[tuple[str, str]]]:
    """(attempt, status) of every try, by mini-batch."""
    by_index: dict[int, list[tuple[str, str]]] = {}
    with open(Path(result.log_dir) / "sys/job_report/processed_mini-batches.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            by_index.setdefault(int(row["mini_batch_id"]), []).append((row["attempt"], row["status"]))
    return by_index


def every_row_once(result) -> bool:
    rows = Path(result.output_file).read_text().split()
    return sorted(rows) == [f"item_{i:04d}.txt" for i in range(8)]


def coordinator_log(result) -> str:
    return (Path(result.log_dir) / "sys/master_role.txt").read_text()


@pytest.mark.parametrize("first_try", [Dies(), Hangs()], ids=["lost", "timed-out"])
def test_a_worker_lost_or_timed_out_charges_its_running_mini_batch_and_hands_back_the_queued(
        fake, make_script, make_files, tmp_path, first_try):
    fake.tries[(0, 1)] = first_try
    result = run(fake, make_script, make_files, tmp_path)

    assert result.status == "Finished" and every_row_once(result)
    status = "PROCESS_DIED" if isinstance(first_try, Dies) else "RUN_TIMEOUT"
    # the running one is charged a try; the one queued behind it ran once, on its first try
    assert tries(result)[0] == [("1", status), ("2", "RUN_DONE")]
    assert tries(result)[1] == [("1", "RUN_DONE")]
    assert all(tries(result)[i] == [("1", "RUN_DONE")] for i in range(2, 8))
    assert result.retries == 1 and result.minibatches_failed == 0
    assert fake.submitted(1)[0] == 0 and len(fake.submitted(1)) == 2  # sent to the lost worker first
    assert [e[2] for e in fake.ran(1)] == [1]
    if isinstance(first_try, Hangs):
        # killed when run_invocation_timeout had passed since mini-batch 0 started, not before
        (kill,) = [e for e in fake.log if e[0] == "kill" and e[1] == 0]
        (start,) = [e for e in fake.log if e[0] == "start" and e[1] == 0][:1]
        assert 5 < kill[2] - (start[2] + fake.init_seconds) < 5 + 0.01
    assert [e[1] for e in fake.log if e[0] == "start"].count(0) == 2  # worker 0 started again


@pytest.mark.parametrize("first_try", [Dies(), Hangs()], ids=["lost", "timed-out"])
def test_when_the_backend_cannot_tell_which_ran_none_is_charged_and_all_go_back(
        fake, make_script, make_files, tmp_path, first_try):
    fake.running_known = False
    fake.tries[(0, 1)] = first_try
    result = run(fake, make_script, make_files, tmp_path)

    assert result.status == "Finished" and every_row_once(result)
    assert all(tries(result)[i] == [("1", "RUN_DONE")] for i in range(8))
    assert result.retries == 0
    assert "which of its 2 mini-batches was running is not known" in coordinator_log(result)
    assert [e[2] for e in fake.ran(0)] == [1, 2]   # ran again, its failed try not counted


def test_after_a_loss_none_could_be_charged_for_the_held_run_alone_so_a_repeat_culprit_is_charged(
        fake, make_script, make_files, tmp_path):
    # a backend that knows which mini-batch ran only when its worker held one (Ray's grouped
    # outcomes); mini-batch 0 kills its worker on every try
    fake.running_known, fake.known_when_alone = False, True
    for attempt in range(1, 6):
        fake.tries[(0, attempt)] = Dies()
    result = run(fake, make_script, make_files, tmp_path)

    assert result.status == "Finished" and result.minibatches_failed == 1
    # the first loss (0 and 1 held) charged none; then 0 ran alone and was charged each time
    assert "which of its 2 mini-batches was running is not known" in coordinator_log(result)
    assert tries(result)[0] == [("1", "PROCESS_DIED"), ("2", "PROCESS_DIED"), ("3", "PROCESS_DIED")]
    assert all(tries(result)[i] == [("1", "RUN_DONE")] for i in range(1, 8))
    sent_with_0 = [e[2] for e in fake.log if e[0] == "submit" and 0 in e[2]]
    assert sent_with_0 == [[0, 1], [0], [0], [0]]
    assert [e[2] for e in fake.log if e[0] == "submit" and 1 in e[2]][1] == [1]  # alone too


def test_a_queued_mini_batch_s_clock_starts_when_the_one_before_it_ends(
        fake, make_script, make_files, tmp_path):
    # each run() takes 4 s of a 5 s timeout: the second in a queue has been queued 8 s when
    # it ends, but ran 4
    fake.default = Done(seconds=4)
    result = run(fake, make_script, make_files, tmp_path)

    assert result.status == "Finished" and every_row_once(result)
    assert result.retries == 0 and not [e for e in fake.log if e[0] == "kill"]


def test_a_mini_batch_that_always_times_out_fails_after_run_max_try_and_the_rest_finish(
        fake, make_script, make_files, tmp_path):
    for attempt in (1, 2, 3):
        fake.tries[(1, attempt)] = Hangs()
    result = run(fake, make_script, make_files, tmp_path)

    assert result.status == "Finished" and result.minibatches_failed == 1
    assert tries(result)[1] == [("1", "RUN_TIMEOUT"), ("2", "RUN_TIMEOUT"), ("3", "RUN_TIMEOUT")]
    assert all(tries(result)[i] == [("1", "RUN_DONE")] for i in range(8) if i != 1)
    assert (result.retries, result.items_failed, result.items_succeeded) == (2, 1, 7)
    assert "run_invocation_timeout=5" in result.first_failure.message
