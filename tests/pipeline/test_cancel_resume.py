"""Stopping and going on: cancel() stops a run cleanly; after kill -9 of the run's process,
resume continues the step from its journal with every output row exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter

import psutil

from parallelrun import (Dataset, Experiment, ParallelRunStep, Pipeline, PipelineData,
                         PythonScriptStep, Run)

from pipeline_helpers import rows_of, wait_for

CLI = [sys.executable, "-m", "parallelrun.cli.__main__"]
ITEMS = 32   # 16 mini-batches of 2; 2 workers, 0.4 s each: about 3.2 s of work


def _slow_pipeline(ws, make_files, score_config, trace):
    data = Dataset.File.from_files(path=str(make_files(ITEMS)))
    out = PipelineData("scores")
    step = ParallelRunStep(name="score", parallel_run_config=score_config(process_count_per_node=2),
                           inputs=[data], output=out, allow_reuse=False,
                           arguments=["--delay", "0.4", "--trace", str(trace)])
    return Pipeline(workspace=ws, steps=[step])


def _journal(step_run) -> list[int]:
    log_dir = step_run.get_details()["logDir"]
    path = os.path.join(log_dir or "", "sys", "journal.txt")
    if not log_dir or not os.path.exists(path):
        return []
    return [int(line.split()[0]) for line in open(path).read().splitlines() if line.strip()]


def _expected() -> list[str]:
    return sorted(f"item_{i:04d}.txt {i}" for i in range(ITEMS))


def _output_rows(step_run) -> list[str]:
    return rows_of(os.path.join(step_run.get_output_data("scores").local_path,
                                "parallel_run_step.txt"))


def _processed(trace) -> list[tuple[int, list[str]]]:
    """(worker pid, files) of every mini-batch run() was called with."""
    result = []
    for line in trace.read_text().splitlines():
        pid, *files = line.split()
        result.append((int(pid), files))
    return result


def test_cancel_stops_the_run_and_resume_finishes_it(ws, make_files, score_config, tmp_path):
    trace = tmp_path / "trace.txt"
    run = Experiment(ws, "cancel").submit(_slow_pipeline(ws, make_files, score_config, trace))
    step = run.find_step_run("score")[0]
    wait_for(lambda: len(_journal(step)) >= 2)
    run.cancel()
    assert run.wait_for_completion(timeout_seconds=60) == "Canceled"
    assert step.get_status() == "Canceled"
    pid = run._store.run(run.id)["pid"]
    wait_for(lambda: not psutil.pid_exists(pid) or
             psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, timeout=30)  # it exits
    committed = _journal(step)
    assert len(committed) < ITEMS // 2  # it stopped before the end
    partial = _output_rows(step)
    assert len(partial) == len(set(partial)) and set(partial) <= set(_expected())

    run.resume()
    assert run.wait_for_completion(timeout_seconds=120) == "Finished"
    assert _output_rows(step) == _expected()
    assert run.get_details()["attempts"] == 2


def test_kill_9_of_the_run_process_then_resume_gives_each_row_once(
        ws, make_files, score_config, tmp_path):
    trace = tmp_path / "trace.txt"
    run = Experiment(ws, "killed").submit(_slow_pipeline(ws, make_files, score_config, trace))
    step = run.find_step_run("score")[0]
    wait_for(lambda: len(_journal(step)) >= 3)
    runner_pid = run._store.run(run.id)["pid"]
    os.kill(runner_pid, signal.SIGKILL)
    wait_for(lambda: run.get_status() == "Failed", timeout=30)
    assert "resume" in run.get_details()["error"]
    committed = set(_journal(step))
    assert 3 <= len(committed) < ITEMS // 2
    # the killed runner's workers notice their coordinator is gone and leave at once
    old_workers = {pid for pid, _ in _processed(trace)}
    wait_for(lambda: not any(psutil.pid_exists(p) and psutil.Process(p).status() !=
                             psutil.STATUS_ZOMBIE for p in old_workers), timeout=5)

    resumed = subprocess.run([*CLI, "run", "resume", run.id], capture_output=True, text=True,
                             timeout=180, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming" in resumed.stdout and "Finished" in resumed.stdout
    assert run.get_status() == "Finished" and step.get_status() == "Finished"
    assert _output_rows(step) == _expected()      # every item, each exactly once
    rows = open(os.path.join(step.get_output_data("scores").local_path,
                             "parallel_run_step.txt")).read().splitlines()
    assert len(rows) == ITEMS and max(Counter(rows).values()) == 1

    # mini-batches committed before the kill were not run again by the resumed run's workers
    new_runs = [files for pid, files in _processed(trace) if pid not in old_workers]
    committed_files = {f"item_{2 * i + k:04d}.txt" for i in committed for k in (0, 1)}
    assert new_runs and not committed_files & {f for files in new_runs for f in files}
    assert run.get_details()["attempts"] == 2


def test_cancel_stops_a_running_script_step(ws, make_script, tmp_path):
    scripts = make_script("import time\nprint('sleeping', flush=True)\ntime.sleep(60)\n",
                          name="sleep.py")
    step = PythonScriptStep(script_name="sleep.py", name="sleep", source_directory=str(scripts))
    run = Experiment(ws, "cancel-script").submit(Pipeline(workspace=ws, steps=[step]))
    wait_for(lambda: "sleeping" in open(os.path.join(run.run_dir, "run.log")).read(), timeout=60)
    subprocess.run([*CLI, "run", "cancel", run.id, "--wait"], check=True, timeout=60,
                   capture_output=True, cwd=tmp_path)
    assert Run.get(ws, run.id).get_status() == "Canceled"
    assert run.find_step_run("sleep")[0].get_status() == "Canceled"


# a script step that records its pid; its first attempt then sleeps (the runner is killed
# meanwhile), a later one ends at once
RECORDS_PID_THEN_SLEEPS = """
import os, sys, time
pids = sys.argv[1]
first = not os.listdir(pids)
with open(os.path.join(pids, str(os.getpid())), "w") as fh:
    fh.write("first" if first else "again")
print("started", flush=True)
if first:
    time.sleep(120)
"""


def test_kill_9_of_the_run_process_ends_its_script_step_then_resume_runs_it_again(
        ws, make_script, tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    scripts = make_script(RECORDS_PID_THEN_SLEEPS, name="sleep.py")
    step = PythonScriptStep(script_name="sleep.py", name="sleep", arguments=[str(pids)],
                            source_directory=str(scripts), allow_reuse=False)
    run = Experiment(ws, "killed-script").submit(Pipeline(workspace=ws, steps=[step]))
    wait_for(lambda: os.listdir(pids), timeout=60)
    (script_pid,) = [int(name) for name in os.listdir(pids)]
    try:
        runner_pid = run._store.run(run.id)["pid"]
        assert runner_pid != script_pid and psutil.Process(script_pid).ppid() == runner_pid
        os.kill(runner_pid, signal.SIGKILL)
        # the script's process dies with the runner: no orphan of the old run writes on
        wait_for(lambda: not psutil.pid_exists(script_pid) or
                 psutil.Process(script_pid).status() == psutil.STATUS_ZOMBIE, timeout=30)
    finally:
        if psutil.pid_exists(script_pid):
            os.kill(script_pid, signal.SIGKILL)
    wait_for(lambda: run.get_status() == "Failed", timeout=30)

    run.resume()
    assert run.wait_for_completion(timeout_seconds=60) == "Finished"
    assert sorted(open(pids / name).read() for name in os.listdir(pids)) == ["again", "first"]
