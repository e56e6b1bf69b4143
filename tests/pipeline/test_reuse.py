"""allow_reuse: a step whose hashed parts are unchanged takes the earlier output without running;
a change in any part runs it again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from parallelrun import (Dataset, Environment, Experiment, Model, ParallelRunStep, Pipeline,
                         PipelineData, PythonScriptStep)


@pytest.fixture
def setup(ws, make_files, score_config, score_script, tmp_path):
    """Build-and-run helper: ``run(**changes)`` runs a one-step (or two-step) pipeline and
    returns (pipeline run, score step run); the entry script traces every mini-batch it runs."""
    data_dir = make_files(4)
    dataset = Dataset.File.from_files(path=str(data_dir)).register(ws, "items",
                                                                   create_new_version=True)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "weights.txt").write_text("1")
    Model.register(ws, model_path=str(model_dir), model_name="scorer")
    trace = tmp_path / "trace.txt"

    def run(config=None, arguments=("--scale", "2"), dataset_version="latest", model_version=1,
            allow_reuse=True, report=False):
        data = Dataset.get_by_name(ws, "items", version=dataset_version)
        out = PipelineData("scores")
        step = ParallelRunStep(name="score", parallel_run_config=config or score_config(),
                               inputs=[data.as_named_input("items")], output=out,
                               models=[Model(ws, "scorer", version=model_version)],
                               arguments=[*arguments, "--trace", str(trace)],
                               allow_reuse=allow_reuse)
        steps = [step]
        if report:
            steps.append(PythonScriptStep(script_name="report.py", name="report",
                                          source_directory=str(score_script),
                                          arguments=["--scores", out], inputs=[out]))
        pipeline_run = Experiment(ws, "reuse").submit(Pipeline(workspace=ws, steps=steps))
        assert pipeline_run.wait_for_completion() == "Finished"
        return pipeline_run, pipeline_run.find_step_run("score")[0]

    (score_script / "report.py").write_text("print('report ran')\n")
    return {"run": run, "trace": trace, "data_dir": data_dir, "score_script": score_script,
            "config": score_config, "ws": ws, "model_dir": model_dir}


def _ran(trace: Path) -> int:
    return len(trace.read_text().splitlines()) if trace.exists() else 0


def _reused(step_run) -> bool:
    return step_run.get_details()["reusedFrom"] is not None


def test_an_unchanged_step_reuses_the_earlier_output_without_running(setup):
    first_run, first = setup["run"]()
    assert not _reused(first) and _ran(setup["trace"]) == 2
    second_run, second = setup["run"]()
    assert _reused(second) and second.get_details()["reusedFrom"] == first.id
    assert _ran(setup["trace"]) == 2  # the script did not run again
    assert second.get_status() == "Finished"
    assert second.get_output_data("scores").local_path == first.get_output_data("scores").local_path
    assert second.get_counts()["items_succeeded"] == 4
    assert "reused the output of step run" in open(os.path.join(second_run.run_dir, "run.log")).read()
    # allow_reuse=False always runs
    _, third = setup["run"](allow_reuse=False)
    assert not _reused(third) and _ran(setup["trace"]) == 4


def test_a_change_in_any_hashed_part_runs_the_step_again(setup):
    """One part changed at a time (the changes add up); each run names that part as the miss."""
    ws = setup["ws"]
    state: dict = {}

    def script_folder():
        (setup["score_script"] / "helper.py").write_text("VALUE = 2\n")

    def configuration():
        state["config"] = setup["config"](mini_batch_size="4")

    def input_files_under_the_same_version():
        (setup["data_dir"] / "item_0001.txt").write_text("7")

    def input_dataset_version():
        (setup["data_dir"] / "item_0004.txt").write_text("4")
        Dataset.File.from_files(path=str(setup["data_dir"])).register(ws, "items",
                                                                     create_new_version=True)

    def model_version():
        (setup["model_dir"] / "weights.txt").write_text("2")
        Model.register(ws, model_path=str(setup["model_dir"]), model_name="scorer")
        state["model_version"] = 2

    def arguments():
        state["arguments"] = ("--scale", "3")

    def environment():
        env = Environment(name="scoring")
        env.environment_variables = {"SCORING_MODE": "fast"}
        state["config"] = setup["config"](mini_batch_size="4", environment=env)

    parts = [(script_folder, "script"), (configuration, "config"),
             (input_files_under_the_same_version, "inputs"), (input_dataset_version, "inputs"),
             (model_version, "models"), (arguments, "arguments"), (environment, "environment")]
    setup["run"]()
    for change, key in parts:
        change()
        before = _ran(setup["trace"])
        pipeline_run, step = setup["run"](**state)
        assert not _reused(step), key
        assert _ran(setup["trace"]) > before, key
        log = open(os.path.join(pipeline_run.run_dir, "run.log")).read()
        assert f"[score] not reused: {key} changed since step run" in log, (key, log)
    _, again = setup["run"](**state)
    assert _reused(again)


def test_a_step_after_a_step_that_ran_again_runs_again(setup):
    setup["run"](report=True)
    run, _ = setup["run"](report=True)
    assert _reused(run.find_step_run("report")[0])  # nothing upstream changed
    run, _ = setup["run"](arguments=("--scale", "5"), report=True)
    assert not _reused(run.find_step_run("report")[0])  # its input came from a new step run
