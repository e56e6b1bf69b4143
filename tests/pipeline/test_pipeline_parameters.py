"""PipelineParameter and DatasetConsumptionConfig: what a submitted value changes, and the
mistakes refused at submit (issue #18)."""

from __future__ import annotations

import pytest

from parallelrun import (ConfigurationError, Dataset, DatasetConsumptionConfig, Experiment,
                         ParallelRunStep, Pipeline, PipelineData, PipelineParameter)

from pipeline_helpers import rows_of


@pytest.fixture
def numbers(tmp_path):
    for name, folder in (("a", "first"), ("b", "first"), ("c", "first"), ("z", "second")):
        (tmp_path / folder).mkdir(exist_ok=True)
        (tmp_path / folder / f"{name}.txt").write_text({"a": "1", "b": "2", "c": "3", "z": "9"}[name])
    return tmp_path


def _pipeline(ws, score_config, numbers):
    data = PipelineParameter(name="data", default_value=Dataset.File.from_files(str(numbers / "first")))
    scale = PipelineParameter(name="scale", default_value=10)
    batch = PipelineParameter(name="batch", default_value="2")
    out = PipelineData("scored", datastore=ws.get_default_datastore())
    step = ParallelRunStep(name="score", parallel_run_config=score_config(mini_batch_size=batch),
                           inputs=[DatasetConsumptionConfig("numbers", data).as_download()],
                           output=out, arguments=["--scale", scale], allow_reuse=False)
    return Pipeline(workspace=ws, steps=[step])


def _output(run) -> list[str]:
    step = run.find_step_run("score")[0]
    return rows_of(step.get_output_data("scored").local_path + "/parallel_run_step.txt"), step


def test_submitted_values_change_the_data_the_arguments_and_the_config(ws, score_config, numbers):
    pipeline = _pipeline(ws, score_config, numbers)
    first = Experiment(ws, "params").submit(pipeline)
    first.wait_for_completion()
    rows, step = _output(first)
    assert rows == ["a.txt 10", "b.txt 20", "c.txt 30"]
    assert step.get_counts()["minibatches_succeeded"] == 2           # batch "2": 3 files -> 2
    second = pipeline.submit("params", pipeline_parameters={
        "data": Dataset.File.from_files(str(numbers / "second")), "scale": 100, "batch": "1"})
    second.wait_for_completion()
    assert _output(second)[0] == ["z.txt 900"]
    third = Experiment(ws, "params").submit(pipeline, pipeline_parameters={"batch": "1"})
    third.wait_for_completion()
    rows, step = _output(third)
    assert rows == ["a.txt 10", "b.txt 20", "c.txt 30"] and \
        step.get_counts()["minibatches_succeeded"] == 3


def test_wrong_names_and_values_are_refused_at_submit(ws, score_config, numbers):
    pipeline = _pipeline(ws, score_config, numbers)
    experiment = Experiment(ws, "params")
    with pytest.raises(ConfigurationError, match=r"\['sacle'\].*batch, data, scale"):
        experiment.submit(pipeline, pipeline_parameters={"sacle": 3})
    with pytest.raises(ConfigurationError, match="mini_batch_size.*PipelineParameter"):
        experiment.submit(pipeline, pipeline_parameters={"batch": "0"})
    with pytest.raises(ConfigurationError, match="the kind of its default"):
        experiment.submit(pipeline, pipeline_parameters={"data": "first/"})
    assert experiment.get_runs() == []
