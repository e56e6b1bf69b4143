"""Every job is a run (issue #19, item 1), from the terminal as a new user meets it: a job
started with ``parallelrun run`` in a folder with no workspace gets a run id, lands in the
default workspace (HOME is a temporary folder here), and is listed, shown, watched, cancelled
and resumed by that id; the dashboard's API shows it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.waiting import wait_for

CLI = [sys.executable, "-m", "parallelrun.cli.__main__"]

SCORE = """
    import os, time
    def init(): pass
    def run(mini_batch):
        time.sleep(float(os.environ.get("SLEEP", "0")))
        return [int(open(p).read()) for p in mini_batch]
"""


@pytest.fixture
def user(tmp_path: Path, make_script, make_files):
    """A project folder with no workspace, and the environment of a user whose HOME is a
    temporary folder (no PARALLELRUN_HOME)."""
    make_script(SCORE)
    make_files(60)
    env = {k: v for k, v in os.environ.items() if k != "PARALLELRUN_HOME"}
    env["HOME"] = str(tmp_path / "home")
    return env


def parallelrun(*args: str, cwd: Path, env: dict, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=180, **kwargs)


def job_args(*extra: str) -> list[str]:
    return ["run", "--source-directory", "scripts", "--entry-script", "score.py", "--input",
            "data", "--mini-batch-size", "2", "--output", "out", "--process-count-per-node", "2",
            *extra]


def rows(tmp_path: Path) -> list[int]:
    return sorted(int(x) for x in (tmp_path / "out" / "parallel_run_step.txt").read_text().split())


def printed_run_id(text: str) -> str:
    found = re.search(r"^run (\S+) in workspace", text, re.MULTILINE)
    assert found, text
    return found.group(1)


def test_a_terminal_job_is_listed_shown_watched_and_on_the_dashboard(tmp_path, user):
    job = parallelrun(*job_args(), cwd=tmp_path, env=user)
    assert job.returncode == 0, job.stderr
    home = tmp_path / "home" / ".parallelrun"
    assert f"default workspace {home}" in job.stderr
    run_id = printed_run_id(job.stderr)
    assert f"parallelrun runs watch {run_id}" in job.stderr

    listed = parallelrun("runs", "list", "--json", cwd=tmp_path, env=user)
    assert listed.returncode == 0, listed.stderr
    [run] = json.loads(listed.stdout)
    assert run["id"] == run_id and run["status"] == "Finished" and run["kind"] == "run_job"
    table = parallelrun("runs", "list", cwd=tmp_path, env=user).stdout
    assert run_id in table and "job" in table and str(home) in table

    shown = parallelrun("runs", "show", run_id, "--json", cwd=tmp_path, env=user)
    details = json.loads(shown.stdout)
    assert details["steps"][0]["counts"]["items_succeeded"] == 60
    assert details["job"]["output"] == "out" and details["job"]["started_by"] == "cli"

    watched = parallelrun("runs", "watch", run_id[:-2], cwd=tmp_path, env=user)
    assert watched.returncode == 0, watched.stderr
    assert f"Run {run_id}: Finished" in watched.stdout
    assert "score: Finished; mini-batches 30/30, items 60 succeeded 0 failed" in watched.stdout

    # the dashboard of the default workspace (what `parallelrun ui` serves here) shows it
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from parallelrun import Workspace
    from parallelrun.ui.app import create_app

    with TestClient(create_app(Workspace(home)), base_url="http://127.0.0.1:8787") as client:
        runs = client.get("/api/runs").json()["items"]
        assert [(r["id"], r["status"], r["items_succeeded"]) for r in runs] == \
            [(run_id, "Finished", 60)]


def test_cancel_and_resume_by_run_id_keeps_every_row_once(tmp_path, user):
    job = subprocess.Popen([*CLI, *job_args()], cwd=tmp_path, env={**user, "SLEEP": "0.5"},
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)
    try:
        def running_run():
            listed = parallelrun("runs", "list", "--json", cwd=tmp_path, env=user)
            runs = json.loads(listed.stdout or "[]")
            return runs and runs[0]["status"] == "Running" and runs[0]["id"]

        run_id = wait_for(running_run, timeout=120, every=0.3)
        watcher = subprocess.Popen([*CLI, "runs", "watch", run_id], cwd=tmp_path, env=user,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_for(lambda: (tmp_path / "out" / "logs" / "sys" / "journal.txt").exists() and len(
            (tmp_path / "out/logs/sys/journal.txt").read_text().splitlines()) >= 3, timeout=120)
        canceled = parallelrun("runs", "cancel", run_id, "--wait", cwd=tmp_path, env=user)
        assert canceled.returncode == 0 and f"{run_id}: Canceled" in canceled.stdout
        output, _ = job.communicate(timeout=120)
        watched, _ = watcher.communicate(timeout=120)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    assert job.returncode == 128 + signal.SIGTERM, output   # stopped gracefully, resumable
    assert f"parallelrun runs resume {run_id}" in output
    assert watcher.returncode == 1 and f"Run {run_id}: Canceled" in watched
    kept = rows(tmp_path)
    assert kept and len(kept) == len(set(kept)) < 60

    resumed = parallelrun("runs", "resume", run_id, cwd=tmp_path, env=user)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"Run {run_id}: Finished" in resumed.stdout
    assert rows(tmp_path) == list(range(60))
    shown = json.loads(parallelrun("runs", "show", run_id, "--json", cwd=tmp_path,
                                   env=user).stdout)
    assert shown["status"] == "Finished" and shown["attempts"] == 2


def test_runs_outside_any_workspace_before_the_first_job(tmp_path, user):
    listed = parallelrun("runs", "list", cwd=tmp_path, env=user)
    assert listed.returncode == 0 and "runs (0 shown)" in listed.stdout
    shown = parallelrun("runs", "show", "nope", cwd=tmp_path, env=user)
    assert shown.returncode == 2 and "no default workspace yet" in shown.stderr
    assert not (tmp_path / "home" / ".parallelrun").exists()
