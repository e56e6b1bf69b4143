"""Losing nodes is infrastructure, not the script's fault: never an init() failure, and the job
goes on elsewhere while a node can host its workers.

On Ray, against a cluster of separate ``ray start`` processes (``private_ray_cluster``) whose
nodes the test kills as a machine dies; the job runs in a process of its own, as a user's
would. Locally, the same scenario with worker processes killed from outside.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from parallelrun import Dataset, ParallelRunConfig, ProgressListener, run_job

# Each run() appends its worker's raylet (RAY_RAYLET_PID: which node it ran on) or process id
# to ran.txt beside the data, so the test knows which node or process to kill.
SCORE = """
    import os, time
    def init(): pass
    def run(mini_batch):
        time.sleep({sleep})
        with open(os.path.join(os.path.dirname(mini_batch[0]), "..", "ran.txt"), "a") as fh:
            fh.write(os.environ.get("RAY_RAYLET_PID") or str(os.getpid()))
            fh.write("\\n")
        return [int(open(p).read()) for p in mini_batch]
"""

# The job's process: run_job on the private cluster, its result as JSON on the last line.
DRIVER = """
import json, sys
from parallelrun import Dataset, ParallelRunConfig, RayCompute, run_job
address, src, data, out, node_loss_timeout = sys.argv[1:]
target = RayCompute.attach(None, "private", address=address,
                           node_loss_timeout=float(node_loss_timeout))
config = ParallelRunConfig(source_directory=src, entry_script="score.py", mini_batch_size=1,
                           error_threshold=-1, output_action="append_row", compute_target=target,
                           node_count=1, process_count_per_node=1, run_invocation_timeout=60)
result = run_job(config, [Dataset.File.from_files(data)], out)
print(json.dumps({"status": result.status, "error": result.error, "log_dir": result.log_dir,
                  "output_file": result.output_file, "succeeded": result.items_succeeded}))
"""


def start_job(cluster, make_script, make_files, tmp_path, files, node_loss_timeout=120):
    src = make_script(SCORE.format(sleep=0.25))
    data = make_files(files)
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    return subprocess.Popen(
        [sys.executable, str(driver), cluster.address, str(src), str(data), str(tmp_path / "out"),
         str(node_loss_timeout)], env=cluster.env, cwd=tmp_path, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def ran(tmp_path) -> list[int]:
    """The raylet (or process) of each run() so far, in order."""
    path = tmp_path / "ran.txt"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def node_under_worker(cluster, job, tmp_path, after: int, timeout: float = 60) -> int:
    """The live node where a run() after the first ``after`` ran."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and job.poll() is None:
        for raylet in ran(tmp_path)[after:]:
            node = cluster.node_of(raylet)
            if node is not None:
                return node
        time.sleep(0.05)
    raise AssertionError(f"no run() on a live node after the first {after} (job: {job.poll()})")


def wait_for_runs(job, tmp_path, after: int, count: int, timeout: float = 60) -> list[int]:
    """The run()s after the first ``after``, once there are ``count`` of them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and job.poll() is None:
        runs = ran(tmp_path)[after:]
        if len(runs) >= count:
            return runs
        time.sleep(0.05)
    raise AssertionError(f"no {count} run()s after the first {after} (job ended: {job.poll()})")


def job_result(job) -> dict:
    out, err = job.communicate(timeout=180)
    assert job.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def rows(result) -> list[int]:
    return [int(line) for line in Path(result["output_file"]).read_text().split()]


def report(log_dir) -> list[dict]:
    with open(Path(log_dir) / "sys/job_report/processed_mini-batches.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_worker_whose_node_dies_three_times_moves_to_spare_nodes(
        private_ray_cluster, make_script, make_files, tmp_path):
    cluster = private_ray_cluster
    for _ in range(3):
        cluster.add_node()
    job = start_job(cluster, make_script, make_files, tmp_path, files=60)
    killed: list[int] = []
    try:
        seen = 0
        while len(killed) < 3:
            # the node under the worker, once the worker has run a mini-batch there
            node = node_under_worker(cluster, job, tmp_path, seen)
            seen = len(ran(tmp_path))
            cluster.kill_node(node)
            killed.append(node)
            if len(killed) == 1:
                cluster.add_node()  # spare nodes stay up: one for each loss to come
        result = job_result(job)
    finally:
        job.kill()
        for node in list(cluster.nodes):
            cluster.kill_node(node)
    assert result["status"] == "Finished", result["error"]
    assert sorted(rows(result)) == list(range(60))  # every row once
    logs = Path(result["log_dir"])
    master = (logs / "sys/master_role.txt").read_text()
    assert "init() failed" not in master
    placement = (logs / "sys/ray_placement.txt").read_text().splitlines()
    lost = [line.split("lost Ray node ")[1].split(" (")[0] for line in placement
            if "node0: lost Ray node" in line]
    moved = [line for line in placement if "node0: moved to Ray node" in line]
    assert len(lost) == len(moved) == 3, placement
    assert len(set(lost)) == 3  # each names the node that really ran the worker then
    # a mini-batch is charged only where it was known to be running (the documented rule)
    died = [r for r in report(logs) if r["status"] == "PROCESS_DIED"]
    assert all("its Ray node was lost" in r["error_message"] for r in died)
    assert len(died) <= 3


def test_losing_the_only_node_fails_the_job_and_keeps_finished_rows(
        private_ray_cluster, make_script, make_files, tmp_path):
    cluster = private_ray_cluster
    node = cluster.add_node()
    job = start_job(cluster, make_script, make_files, tmp_path, files=40, node_loss_timeout=5)
    try:
        wait_for_runs(job, tmp_path, 0, 3)
        cluster.kill_node(node)
        result = job_result(job)
    finally:
        job.kill()
        for node in list(cluster.nodes):
            cluster.kill_node(node)
    assert result["status"] == "Failed"
    assert "node0's Ray node was lost" in result["error"]
    assert "for node_loss_timeout=5 s no live node could host its workers" in result["error"]
    assert "refuses connections" in result["error"]  # how the loss was known
    assert "init() failed" not in result["error"]
    kept = rows(result)
    assert kept and len(kept) == len(set(kept)) == result["succeeded"] < 40


class _KillWorkerAfterItsResult(ProgressListener):
    """Kills the process that ran the latest mini-batch, from outside, ``times`` times."""

    def __init__(self, tmp_path, times):
        self.tmp_path, self.times, self.killed = tmp_path, times, []

    def on_record(self, progress, record):
        if record.status != "RUN_DONE" or len(self.killed) >= self.times:
            return
        pid = ran(self.tmp_path)[-1]
        if pid not in self.killed:
            self.killed.append(pid)
            os.kill(pid, signal.SIGKILL)


def test_local_worker_killed_three_times_in_a_row_is_not_an_init_failure(
        make_script, make_files, tmp_path):
    # one worker: three init() failures would fail the job
    src = make_script(SCORE.format(sleep=0.1))
    killer = _KillWorkerAfterItsResult(tmp_path, times=3)
    config = ParallelRunConfig(source_directory=str(src), entry_script="score.py",
                               mini_batch_size=1, error_threshold=-1, output_action="append_row",
                               process_count_per_node=1, compute_target="local")
    result = run_job(config, [Dataset.File.from_files(str(make_files(12)))], tmp_path / "out",
                     listeners=[killer])
    assert len(killer.killed) == 3
    assert result.status == "Finished", result.error
    assert sorted(int(n) for n in Path(result.output_file).read_text().split()) == list(range(12))
    assert "init() failed" not in (Path(result.log_dir) / "sys/master_role.txt").read_text()
