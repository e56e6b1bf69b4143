"""Every registered backend runs the same job to the same counts: the backend conformance suite.

Same scripts, same files, same settings on each backend in ``parallelrun.backends.BACKENDS``
(local processes, Ray); only ``compute_target`` changes. What must hold everywhere: every row
once, init() once per worker, thresholds, a failing run() retried, a timeout, a worker killed
in the middle of a mini-batch retried, no duplicates, and the same log layout.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from fixtures.scripts import SHORT_AND_RAISE
from fixtures.timeout_clock import TimeoutClock, use_timeout_clock
from parallelrun import Dataset, ParallelRunConfig, run_job
from parallelrun.backends import BACKENDS
from parallelrun.engine.logs import FAILURES_FILE


@pytest.fixture(params=sorted(BACKENDS))
def backend(request) -> str:
    """Each registered backend's name, with what it needs running (a Ray cluster for "ray")."""
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
    return request.param


def job(backend, make_script, make_files, tmp_path, body, files=12, listeners=(), **overrides):
    src = make_script(body)
    values = dict(source_directory=str(src), entry_script="score.py", mini_batch_size=2,
                  error_threshold=-1, output_action="append_row", process_count_per_node=2,
                  run_invocation_timeout=30, run_max_try=3, compute_target=backend)
    values.update(overrides)
    data = make_files(files)
    return run_job(ParallelRunConfig(**values), [Dataset.File.from_files(str(data))], tmp_path / "out",
                   listeners=listeners)


def output_lines(result) -> list[str]:
    return Path(result.output_file).read_text().splitlines()


def report(result) -> list[dict]:
    with open(Path(result.log_dir) / "sys/job_report/processed_mini-batches.csv", newline="") as fh:
        return list(csv.DictReader(fh))


# init() counts its calls per process in a file named after the pid; run() prints, logs through
# EntryScript, and returns "<number> <pid>" per file.
COUNTING = """
    import os, time
    from parallelrun import EntryScript
    def init():
        folder = os.path.join(os.path.dirname(os.path.realpath(__file__)), "inits")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, str(os.getpid())), "a") as fh:
            fh.write("init\\n")
    def run(mini_batch):
        print("scoring", len(mini_batch), "files")
        EntryScript().logger.info("mini-batch of %d", len(mini_batch))
        time.sleep(0.05)
        return [f"{int(open(p).read())} {os.getpid()}" for p in mini_batch]
"""


def test_every_row_once_and_init_once_per_worker(backend, make_script, make_files, tmp_path):
    result = job(backend, make_script, make_files, tmp_path, COUNTING, files=16)
    assert result.status == "Finished", result.error
    assert (result.items_succeeded, result.items_failed, result.minibatches_succeeded) == (16, 0, 8)
    rows = [line.split() for line in output_lines(result)]
    assert sorted(int(n) for n, _ in rows) == list(range(16))
    inits = tmp_path / "scripts" / "inits"
    for pid in {pid for _, pid in rows}:
        assert (inits / pid).read_text() == "init\n"
    # the same log layout on every backend
    logs = Path(result.log_dir)
    ran = {(r["node"], r["process"]) for r in report(result)}
    assert ran and all(node == "node0" for node, _ in ran)
    for node, process in ran:
        assert "scoring 2 files" in (logs / f"user/stdout/{node}/{process}.stdout.txt").read_text()
        assert "mini-batch of 2" in (logs / f"user/entry_script_log/{node}/{process}.log.txt").read_text()
        assert "init() done" in (logs / f"sys/node/{node}/{process}.txt").read_text()
    assert "status: Finished" in (logs / "job_result.txt").read_text()


def test_thresholds_stop_the_job_and_keep_finished_rows_once(backend, make_script, make_files, tmp_path):
    body = SHORT_AND_RAISE.format(fail={0, 1, 2, 3}, raise_=set())
    result = job(backend, make_script, make_files, tmp_path / "a", body, error_threshold=2,
                 process_count_per_node=1)
    assert result.status == "Failed" and "error_threshold=2 exceeded" in result.error
    numbers = [int(n) for n in output_lines(result)]
    assert len(numbers) == len(set(numbers)) == result.items_succeeded

    body = SHORT_AND_RAISE.format(fail=set(), raise_={4, 5, 6, 7})
    counted = job(backend, make_script, make_files, tmp_path / "b", body, allowed_failed_count=2,
                  run_max_try=1)
    assert counted.status == "Finished", counted.error
    assert (counted.minibatches_failed, counted.items_succeeded, counted.items_failed) == (2, 8, 4)
    assert sorted(int(n) for n in output_lines(counted)) == [0, 1, 2, 3, 8, 9, 10, 11]
    # both failed mini-batches, in the records, the summary and the tracebacks alike
    log_dir = Path(counted.log_dir)
    failures = [json.loads(line) for line in (log_dir / FAILURES_FILE).read_text().splitlines()]
    assert sorted((f["error_type"], f["error_message"], f["outcome"]) for f in failures) == [
        ("ValueError", "cannot score [4, 5]", "failed"),
        ("ValueError", "cannot score [6, 7]", "failed")]
    summary = (log_dir / "user/error.txt").read_text()
    tracebacks = "".join(p.read_text() for p in (log_dir / "user/error").rglob("*.txt"))
    for message in ("ValueError: cannot score [4, 5]", "ValueError: cannot score [6, 7]"):
        assert message in summary and message in tracebacks


# Misbehaves only on the first try of the mini-batch holding file number 5, remembered by a
# marker file, so its retry succeeds.
MISBEHAVE_ONCE = """
    import os, signal, time
    def init(): pass
    def run(mini_batch):
        numbers = [int(open(p).read()) for p in mini_batch]
        marker = os.path.join(os.path.dirname(mini_batch[0]), "..", "tried")
        if 5 in numbers and not os.path.exists(marker):
            open(marker, "w").close()
            {misbehave}
        time.sleep(0.02)
        return numbers
"""


#: backends whose workers send each outcome as soon as it is known (ARCHITECTURE.md, "Failures"):
#: they always know which mini-batch a lost or timed-out worker was running, so it is charged
KNOWS_WHICH_RAN = {"local"}
#: what the coordinator logs when it charges no try because it cannot tell which one ran
NOT_KNOWN = "was running is not known"


@pytest.mark.parametrize("misbehave, status", [
    ("raise RuntimeError('flaky')", "RUN_EXCEPTION"),
    ("time.sleep(60)", "RUN_TIMEOUT"),
    ("os.kill(os.getpid(), signal.SIGKILL)", "PROCESS_DIED"),
])
def test_a_failed_try_is_retried_without_duplicates(backend, make_script, make_files, tmp_path,
                                                    misbehave, status):
    body = MISBEHAVE_ONCE.format(misbehave=misbehave)
    result = job(backend, make_script, make_files, tmp_path, body, run_invocation_timeout=3)
    assert result.status == "Finished", result.error
    assert (result.items_succeeded, result.items_failed) == (12, 0)
    assert sorted(int(n) for n in output_lines(result)) == list(range(12))
    failed = [(r["mini_batch_id"], r["attempt"], r["status"]) for r in report(result)
              if r["status"] != "RUN_DONE"]
    coordinator_log = (Path(result.log_dir) / "sys/master_role.txt").read_text()
    if status == "RUN_EXCEPTION" or backend in KNOWS_WHICH_RAN:
        # the outcome itself names the mini-batch, or the backend knows which one was running
        assert failed == [("2", "1", status)] and result.retries == 1
    elif failed:
        assert failed == [("2", "1", status)] and result.retries == 1
        assert NOT_KNOWN not in coordinator_log
    else:
        # a backend whose outcomes come back in groups (Ray) charges none for a worker lost
        # while some were on their way, and says so; only then may the try go uncharged
        assert result.retries == 0 and NOT_KNOWN in coordinator_log


QUICK_MISBEHAVING = """
    import os, signal, time
    def init(): pass
    def run(mini_batch):
        numbers = [int(open(p).read()) for p in mini_batch]
        marker = os.path.join(os.path.dirname(mini_batch[0]), "..", "misbehaved")
        if 301 in numbers:
            with open(marker, "a+") as fh:
                fh.seek(0)
                if len(fh.read()) < {times}:
                    fh.write("x")
                    fh.flush()
                    {misbehave}
        return numbers
"""
KILL, HANG = "os.kill(os.getpid(), signal.SIGKILL)", "time.sleep(60)"


@pytest.mark.parametrize("misbehave, times, status", [
    (KILL, 1, "PROCESS_DIED"), (KILL, 9, "PROCESS_DIED"), (HANG, 9, "RUN_TIMEOUT")])
def test_a_worker_lost_with_many_quick_mini_batches_queued_charges_only_the_culprit(
        backend, make_script, make_files, tmp_path, monkeypatch, misbehave, times, status):
    # Quick run()s make the scheduler queue dozens of mini-batches on each worker. The one
    # holding file 301 kills or hangs its worker `times` times: those queued behind it run
    # again, once; only it is ever charged a try (after 3 it fails), whatever was held
    # unreported when its worker was lost.
    # The timeout runs on a scripted clock, with one worker: it fires once per hang (noted in
    # the "misbehaved" marker) and never for a slow try on a loaded machine. Locally it waits
    # until the hung mini-batch (150) is the one its worker runs; Ray's outcomes come in
    # groups, so it fires at once there, and Ray charges none while it cannot tell which ran.
    hangs = misbehave == HANG
    clock = TimeoutClock(tmp_path / "misbehaved" if hangs else None, hung_index=150,
                         wait_for_head=backend in KNOWS_WHICH_RAN)
    use_timeout_clock(monkeypatch, clock)
    body = QUICK_MISBEHAVING.format(misbehave=misbehave, times=times)
    result = job(backend, make_script, make_files, tmp_path, body, files=600,
                 run_invocation_timeout=2, process_count_per_node=1, listeners=[clock])
    assert result.status == "Finished", result.error
    rows = sorted(int(n) for n in output_lines(result))
    charged = [(r["mini_batch_id"], r["status"]) for r in report(result) if r["status"] != "RUN_DONE"]
    assert {mb for mb, _ in charged} <= {"150"}
    assert {status for _, status in charged} <= {status}
    if times == 1:
        assert rows == list(range(600)) and result.minibatches_failed == 0
    else:
        assert rows == [n for n in range(600) if n not in (300, 301)]
        assert (result.minibatches_succeeded, result.minibatches_failed) == (299, 1)
        assert len(charged) == 3  # run_max_try


def test_init_failing_everywhere_fails_the_job_with_its_traceback(backend, make_script, make_files,
                                                                  tmp_path):
    body = """
        def init():
            raise OSError("model file missing")
        def run(mini_batch):
            return mini_batch
    """
    result = job(backend, make_script, make_files, tmp_path, body, files=2, process_count_per_node=1)
    assert result.status == "Failed"
    assert "init() failed 3 times" in result.error and "OSError: model file missing" in result.error
    assert not output_lines(result)


def test_every_part_asks_one_rule_which_backend_a_target_means():
    # an object that is no compute target is refused the same way wherever it is given
    from parallelrun import ConfigurationError
    from parallelrun.backends import backend_choice, backend_of

    class NotATarget:
        pass

    assert backend_choice(None) == ("local", {}) and backend_of("ray") == "ray"
    with pytest.raises(ConfigurationError, match="compute_target"):
        backend_of(NotATarget())
    with pytest.raises(ConfigurationError, match="compute_target"):
        backend_choice(NotATarget())
