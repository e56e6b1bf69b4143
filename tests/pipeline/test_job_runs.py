"""Every job is a run (issue #19, item 1), from Python: ``run_job`` records itself in the
workspace found from the current folder, else in the default workspace, returns the run id,
and the run is what ``Run.get`` and the dashboard's API show, resumable by id."""

from __future__ import annotations

from pathlib import Path

import pytest

from parallelrun import Dataset, ParallelRunConfig, ParallelRunError, Run, Workspace, run_job
from parallelrun.pipeline.records import RunStore

SCORE = """
import os
def init(): pass
def run(mini_batch):
    if os.environ.get("FAIL_ON") and any(p.endswith(os.environ["FAIL_ON"]) for p in mini_batch):
        raise ValueError("bad item")
    return [int(open(p).read()) for p in mini_batch]
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch, make_script, make_files):
    """A folder with a script and 10 files, in no workspace; HOME is a temporary folder."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PARALLELRUN_HOME", raising=False)
    make_script(SCORE)
    make_files(10)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def config(**overrides) -> ParallelRunConfig:
    values = dict(source_directory="scripts", entry_script="score.py", mini_batch_size="2",
                  error_threshold=-1, output_action="append_row", process_count_per_node=2,
                  run_max_try=1)
    values.update(overrides)
    return ParallelRunConfig(**values)


def rows(folder: Path) -> list[int]:
    return sorted(int(x) for x in (folder / "parallel_run_step.txt").read_text().split())


def test_a_job_outside_a_workspace_is_a_run_in_the_default_workspace(project, capsys):
    result = run_job(config(), [Dataset.File.from_files("data/*.txt")], "out")
    assert result.status == "Finished" and result.run_id
    said = capsys.readouterr().err
    home = project / "home" / ".parallelrun"
    assert (home / "config.json").is_file()
    assert f"default workspace {home}" in said and f"run {result.run_id}" in said
    assert f"parallelrun runs watch {result.run_id}" in said

    ws = Workspace(home)
    run = Run.get(ws, result.run_id)
    assert run.get_status() == "Finished"
    details = run.get_details()
    assert details["kind"] == "run_job" and details["experiment"] == project.name
    assert details["job"]["output"] == "out" and details["runner"]["pid"]
    [step] = details["steps"]
    assert step["name"] == "score" and step["status"] == "Finished"
    assert step["counts"]["items_succeeded"] == 10 and step["counts"]["minibatches_total"] == 5
    assert step["outputs"]["output"]["local_path"] == str(project / "out")
    assert step["logDir"] == str(project / "out" / "logs")

    # the default workspace is made once, and said once
    again = run_job(config(), [Dataset.File.from_files("data/*.txt")], "out2")
    said = capsys.readouterr().err
    assert "default workspace" not in said and f"run {again.run_id}" in said
    assert [r["id"] for r in RunStore(ws).runs()] == [again.run_id, result.run_id]


def test_PARALLELRUN_HOME_chooses_the_default_workspace(project, monkeypatch):
    monkeypatch.setenv("PARALLELRUN_HOME", str(project / "elsewhere"))
    result = run_job(config(), ["data"], "out")
    assert RunStore(Workspace(project / "elsewhere")).run(result.run_id)["status"] == "Finished"
    assert not (project / "home" / ".parallelrun").exists()


def test_inside_a_workspace_the_job_is_its_run_under_the_experiment_given(project):
    ws = Workspace.create("project-ws", path=project)
    result = run_job(config(source_directory=str(project / "scripts")),
                     [str(project / "data")], project / "out", experiment_name="scoring")
    record = RunStore(ws).run(result.run_id)
    assert record["experiment"] == "scoring" and record["kind"] == "run_job"
    assert not (project / "home" / ".parallelrun").exists()
    # the entry script's Run.get_context() is the run's step (as in a pipeline step)
    assert Run.get(ws, RunStore(ws).steps(result.run_id)[0]["id"]).pipeline_run_id == result.run_id


def test_a_refused_job_is_no_run_and_a_failed_one_fails_its_run(project):
    with pytest.raises(ParallelRunError, match="missing.py"):
        run_job(config(entry_script="missing.py"), ["data"], "out")
    home = project / "home" / ".parallelrun"
    assert not (home / "config.json").exists() or RunStore(Workspace(home)).runs() == []
    result = run_job(config(error_threshold=0,
                            environment_variables={"FAIL_ON": "item_0003.txt"}), ["data"], "out")
    assert result.status == "Failed"
    record = RunStore(Workspace(home)).run(result.run_id)
    assert record["status"] == "Failed" and "error_threshold" in record["error"]


def test_resume_of_a_failed_job_goes_on_with_its_run(project, monkeypatch):
    monkeypatch.setenv("FAIL_ON", "item_0007.txt")
    first = run_job(config(error_threshold=0), ["data"], "out")
    assert first.status == "Failed" and first.minibatches_succeeded
    monkeypatch.delenv("FAIL_ON")
    second = run_job(config(error_threshold=0), ["data"], "out", resume=True)
    assert second.status == "Finished" and second.run_id == first.run_id
    assert rows(project / "out") == list(range(10))
    record = RunStore(Workspace(project / "home" / ".parallelrun")).run(first.run_id)
    assert record["status"] == "Finished" and record["attempts"] == 2


def test_resume_by_id_runs_the_recorded_job_again_to_every_row_once(project, monkeypatch):
    monkeypatch.setenv("FAIL_ON", "item_0005.txt")
    first = run_job(config(error_threshold=0), [Dataset.File.from_files("data/*.txt")], "out")
    assert first.status == "Failed"
    monkeypatch.delenv("FAIL_ON")   # the resumed job's process does not fail
    ws = Workspace(project / "home" / ".parallelrun")
    run = Run.get(ws, first.run_id[:-3])   # a unique prefix is enough
    run.resume()
    assert run.wait_for_completion(timeout_seconds=120) == "Finished"
    assert rows(project / "out") == list(range(10))
    assert RunStore(ws).run(first.run_id)["attempts"] == 2
    with pytest.raises(Exception, match="this one Finished"):
        run.resume()


def test_the_dashboard_api_lists_a_job_run(project):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from parallelrun.ui.app import create_app

    result = run_job(config(), ["data"], "out")
    ws = Workspace(project / "home" / ".parallelrun")
    with TestClient(create_app(ws), base_url="http://127.0.0.1:8787") as client:
        runs = client.get("/api/runs").json()["items"]
        listed = next(r for r in runs if r["id"] == result.run_id)
        assert listed["status"] == "Finished" and listed["kind"] == "run_job"
        assert listed["items_succeeded"] == 10 and listed["steps_finished"] == 1
        run = client.get(f"/api/runs/{result.run_id}").json()
        assert run["steps"][0]["name"] == "score" and run["graph"]["steps"][0]["name"] == "score"
        assert client.get(f"/api/steps/{run['steps'][0]['id']}").json()["items_done"] == 10
