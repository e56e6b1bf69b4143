"""Fixtures of the pipeline tests: a workspace in the test's folder (the current folder, as in
a notebook), a scoring entry script, and clean-up of any run a test leaves going."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from parallelrun import ParallelRunConfig, Workspace

from pipeline_helpers import SCORE


@pytest.fixture(scope="session", autouse=True)
def shared_environments(tmp_path_factory):
    """One virtualenv cache for the session, so an environment is made once for all tests."""
    root = tmp_path_factory.mktemp("environments")
    old = os.environ.get("PARALLELRUN_ENVIRONMENTS")
    os.environ["PARALLELRUN_ENVIRONMENTS"] = str(root)
    yield root
    if old is None:
        os.environ.pop("PARALLELRUN_ENVIRONMENTS", None)
    else:
        os.environ["PARALLELRUN_ENVIRONMENTS"] = old


@pytest.fixture
def ws(tmp_path: Path, monkeypatch):
    """A workspace whose config.json is in the current folder (the test's folder)."""
    monkeypatch.chdir(tmp_path)
    workspace = Workspace.create(name="pipeline-tests", path=tmp_path, exist_ok=True)
    yield workspace
    stop_runs(workspace)


def stop_runs(workspace) -> None:
    """Cancel what a test left running, then kill any runner process group still there."""
    from parallelrun.pipeline.records import TERMINAL, RunStore
    from parallelrun.pipeline.runs import Run

    store = RunStore(workspace)
    pids = []
    for record in store.runs(limit=1000):
        if record.get("pid"):
            pids.append(record["pid"])
        if record["status"] not in TERMINAL:
            run = Run.get(workspace, record["id"])
            run.cancel()
            try:
                run.wait_for_completion(timeout_seconds=20, raise_on_error=False)
            except TimeoutError:
                pass
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)  # the runner's group (its workers end with it)
        except (ProcessLookupError, PermissionError):
            pass


@pytest.fixture
def score_script(make_script):
    """The scoring entry script in ./scripts/score.py; returns the folder."""
    return make_script(SCORE)


@pytest.fixture
def score_config(score_script):
    """A ParallelRunConfig factory for the scoring script."""

    def build(**overrides) -> ParallelRunConfig:
        values = dict(source_directory=str(score_script), entry_script="score.py",
                      mini_batch_size="2", error_threshold=0, output_action="append_row",
                      process_count_per_node=1, run_max_try=1)
        values.update(overrides)
        return ParallelRunConfig(**values)

    return build
