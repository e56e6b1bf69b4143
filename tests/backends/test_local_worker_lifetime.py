"""Local workers own their children and die with their job (issue #15, items 7 and 9).

A worker's script may start processes (subprocess, os.fork, multiprocessing). Ending the worker
(a timeout, its death) ends them too; a worker that dies while a forked child holds a copy of its
socket is seen at once, not at run_invocation_timeout; and when the coordinator is killed (the
``parallelrun run`` process, or a pipeline runner), no worker nor child of one lives on.

The scripts write the pids they want checked into a folder; every test kills what is left of
them at the end, so a failing test leaves no process behind.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from fixtures.waiting import wait_for
from parallelrun import (Dataset, Experiment, ParallelRunConfig, ParallelRunStep, Pipeline,
                         PipelineData, Workspace, run_job)

CLI = [sys.executable, "-m", "parallelrun.cli.__main__"]

# init() records the worker's pid; run() starts a child that would sleep for 5 minutes, records
# "<worker pid> <child pid>", and sleeps itself: a job that is killed while run() is busy.
SLEEPS_WITH_A_CHILD = """
import os, subprocess, time

PIDS = {pids!r}

def record(name, text):
    with open(os.path.join(PIDS, name + ".tmp"), "w") as fh:
        fh.write(text)
    os.replace(os.path.join(PIDS, name + ".tmp"), os.path.join(PIDS, name))

def init():
    record(f"init-{{os.getpid()}}", str(os.getpid()))

def run(mini_batch):
    child = subprocess.Popen(["sleep", "300"], close_fds=False)
    record(f"run-{{os.getpid()}}", f"{{os.getpid()}} {{child.pid}}")
    time.sleep(300)
    return mini_batch
"""

# On its first try, mini-batch 0 forks a child (which holds a copy of the worker's socket and
# sleeps) and the worker dies; the retry succeeds.
FORKS_AND_DIES_ONCE = """
import os, time

PIDS = {pids!r}

def init(): pass

def run(mini_batch):
    marker = os.path.join(PIDS, "tried")
    if "item_0000" in mini_batch[0] and not os.path.exists(marker):
        open(marker, "w").close()
        child = os.fork()
        if child == 0:
            time.sleep(300)
            os._exit(0)
        with open(os.path.join(PIDS, "run-child"), "w") as fh:
            fh.write(f"{{os.getpid()}} {{child}}")
        os._exit(3)
    return [os.path.basename(p) for p in mini_batch]
"""


# init() starts a helper process and leaves it running; the job itself is quick.
LEAVES_A_HELPER_RUNNING = """
import os, subprocess

def init():
    helper = subprocess.Popen(["sleep", "300"])
    with open(os.path.join({pids!r}, "run-helper"), "w") as fh:
        fh.write(f"{{os.getpid()}} {{helper.pid}}")

def run(mini_batch):
    return [os.path.basename(p) for p in mini_batch]
"""


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it is not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def pids_dir(tmp_path: Path):
    """The folder the scripts record pids in; what is still alive at the end is killed."""
    folder = tmp_path / "pids"
    folder.mkdir()
    yield folder
    for pid in recorded(folder):
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def recorded(folder: Path, prefix: str = "") -> set[int]:
    """Every pid recorded in ``folder`` (in files whose name starts with ``prefix``)."""
    pids = set()
    for path in folder.iterdir():
        if path.name.startswith(prefix) and not path.name.endswith(".tmp") and path.name != "tried":
            pids.update(int(pid) for pid in path.read_text().split())
    return pids


def children(folder: Path) -> set[int]:
    return {int(path.read_text().split()[1]) for path in folder.glob("run-*")}


def report(result) -> list[dict]:
    with open(Path(result.log_dir) / "sys/job_report/processed_mini-batches.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_timed_out_worker_takes_its_children_with_it(make_script, make_files, tmp_path, pids_dir):
    src = make_script(SLEEPS_WITH_A_CHILD.format(pids=str(pids_dir)))
    config = ParallelRunConfig(source_directory=str(src), entry_script="score.py",
                               mini_batch_size=1, error_threshold=-1, output_action="append_row",
                               process_count_per_node=1, run_invocation_timeout=2, run_max_try=1)
    result = run_job(config, [Dataset.File.from_files(str(make_files(1)))], tmp_path / "out")

    assert [r["status"] for r in report(result)] == ["RUN_TIMEOUT"]
    (child,) = children(pids_dir)
    wait_for(lambda: not alive(child), timeout=5)


def test_a_dead_worker_is_seen_at_once_though_a_forked_child_holds_its_socket(
        make_script, make_files, tmp_path, pids_dir):
    src = make_script(FORKS_AND_DIES_ONCE.format(pids=str(pids_dir)))
    # a death noticed only through the socket would wait for this timeout: RUN_TIMEOUT
    config = ParallelRunConfig(source_directory=str(src), entry_script="score.py",
                               mini_batch_size=1, error_threshold=0, output_action="append_row",
                               process_count_per_node=1, run_invocation_timeout=30, run_max_try=2)
    result = run_job(config, [Dataset.File.from_files(str(make_files(2)))], tmp_path / "out")

    assert result.status == "Finished" and result.retries == 1
    tries = [r for r in report(result) if r["mini_batch_id"] == "0"]
    assert [r["status"] for r in tries] == ["PROCESS_DIED", "RUN_DONE"]
    assert "exited with code 3" in tries[0]["error_message"]
    assert sorted(Path(result.output_file).read_text().split()) == ["item_0000.txt", "item_0001.txt"]
    (child,) = children(pids_dir)
    wait_for(lambda: not alive(child), timeout=5)


def test_the_end_of_a_job_ends_what_its_workers_left_running(
        make_script, make_files, tmp_path, pids_dir):
    src = make_script(LEAVES_A_HELPER_RUNNING.format(pids=str(pids_dir)))
    config = ParallelRunConfig(source_directory=str(src), entry_script="score.py",
                               mini_batch_size=1, error_threshold=0, output_action="append_row",
                               process_count_per_node=1)
    result = run_job(config, [Dataset.File.from_files(str(make_files(2)))], tmp_path / "out")

    assert result.status == "Finished" and result.items_succeeded == 2
    (helper,) = children(pids_dir)
    wait_for(lambda: not alive(helper), timeout=5)


def test_kill_9_of_parallelrun_run_ends_its_workers_and_their_children(
        make_script, make_files, tmp_path, pids_dir):
    make_script(SLEEPS_WITH_A_CHILD.format(pids=str(pids_dir)))
    make_files(2)
    job = subprocess.Popen(
        [*CLI, "run", "--source-directory", "scripts", "--entry-script", "score.py",
         "--input", "data", "--mini-batch-size", "1", "--output", "out",
         "--process-count-per-node", "2", "--run-invocation-timeout", "600", "--quiet"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # both workers started, and at least one is inside run() with its child
        wait_for(lambda: len(recorded(pids_dir, "init-")) == 2 and children(pids_dir), timeout=60)
    finally:
        job.kill()
        job.wait()
    everyone = recorded(pids_dir)
    assert len(everyone) >= 3
    wait_for(lambda: not any(alive(pid) for pid in everyone), timeout=2, every=0.05)


def test_kill_9_of_a_pipeline_runner_ends_its_steps_workers(
        make_script, make_files, tmp_path, pids_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ws = Workspace.create(name="worker-lifetime", path=tmp_path, exist_ok=True)
    src = make_script(SLEEPS_WITH_A_CHILD.format(pids=str(pids_dir)))
    config = ParallelRunConfig(source_directory=str(src), entry_script="score.py",
                               mini_batch_size=1, error_threshold=0, output_action="append_row",
                               process_count_per_node=2, run_invocation_timeout=600)
    step = ParallelRunStep(name="score", parallel_run_config=config,
                           inputs=[Dataset.File.from_files(str(make_files(2)))],
                           output=PipelineData("scores"), allow_reuse=False)
    run = Experiment(ws, "killed-runner").submit(Pipeline(workspace=ws, steps=[step]))
    try:
        wait_for(lambda: len(recorded(pids_dir, "init-")) == 2 and children(pids_dir), timeout=60)
    finally:
        runner = run.get_details()["runner"]["pid"]
        if runner and alive(runner):
            os.kill(runner, signal.SIGKILL)
    everyone = recorded(pids_dir)
    assert len(everyone) >= 3 and runner not in everyone  # the step's workers and a child
    wait_for(lambda: not any(alive(pid) for pid in everyone), timeout=3, every=0.05)
    wait_for(lambda: run.get_status() == "Failed", timeout=30)
