"""Defining pipelines: step names, data links, order, cycles, and what submit refuses up front."""

from __future__ import annotations

import pytest

from parallelrun import (BackendError, ConfigurationError, Dataset, EntryScriptError, Experiment,
                         ParallelRunStep, Pipeline, PipelineData, PythonScriptStep)
from parallelrun.pipeline.graph import StepGraph
from parallelrun.pipeline.records import RunStore


@pytest.fixture
def dataset(make_files):
    return Dataset.File.from_files(path=str(make_files(4)))


@pytest.mark.parametrize("name", ["batch-mnist", "abc", "a" * 32, "step-2-of-3"])
def test_valid_parallel_step_names(name, score_config, dataset):
    assert ParallelRunStep(name=name, parallel_run_config=score_config(), inputs=[dataset]).name == name


@pytest.mark.parametrize("name", ["ab", "a" * 33, "Batch-MNIST", "batch_mnist", "-batch",
                                  "batch-", "9batch", "batch mnist", "", None])
def test_bad_parallel_step_names_are_refused_with_the_rule(name, score_config, dataset):
    with pytest.raises(ConfigurationError) as info:
        ParallelRunStep(name=name, parallel_run_config=score_config(), inputs=[dataset])
    message = str(info.value)
    assert "3 to 32 characters" in message and "^[a-z]([-a-z0-9]*[a-z0-9])?$" in message
    assert repr(name) in message


def test_a_bad_name_gets_a_suggestion(score_config, dataset):
    with pytest.raises(ConfigurationError, match="e.g. 'batch-mnist'"):
        ParallelRunStep(name="Batch_MNIST", parallel_run_config=score_config(), inputs=[dataset])


def test_step_names_must_be_unique_in_a_pipeline(ws, score_config, dataset):
    first = ParallelRunStep(name="score", parallel_run_config=score_config(), inputs=[dataset])
    second = ParallelRunStep(name="score", parallel_run_config=score_config(), inputs=[dataset])
    with pytest.raises(ConfigurationError, match="unique in a pipeline; it has two steps with that name"):
        Pipeline(workspace=ws, steps=[first, second])
    with pytest.raises(ConfigurationError, match="the same step twice"):
        Pipeline(workspace=ws, steps=[first, first])


def test_order_follows_the_data_links_and_independent_steps_are_ready_together(
        ws, score_config, score_script, dataset):
    images = PipelineData("images")
    scores = PipelineData("scores")
    other = PipelineData("other")
    report = PythonScriptStep(script_name="report.py", name="report", arguments=["--in", scores],
                              inputs=[scores], source_directory=str(score_script))
    score = ParallelRunStep(name="score", parallel_run_config=score_config(), inputs=[images],
                            output=scores)
    prep = PythonScriptStep(script_name="prep.py", name="prep", arguments=["--out", images],
                            outputs=[images], source_directory=str(score_script))
    side = ParallelRunStep(name="side", parallel_run_config=score_config(), inputs=[dataset],
                           output=other)
    graph = StepGraph([report, score, prep, side])
    assert graph.order == ["prep", "side", "score", "report"]
    assert graph.dependencies == {"report": {"score"}, "score": {"prep"}, "prep": set(),
                                  "side": set()}
    assert graph.ready(done=set()) == ["prep", "side"]
    assert graph.ready(done={"prep"}, started={"side"}) == ["score"]
    assert graph.downstream("prep") == {"score", "report"}


def test_run_after_orders_steps_without_data(ws, score_config, dataset):
    first = ParallelRunStep(name="first", parallel_run_config=score_config(), inputs=[dataset])
    second = ParallelRunStep(name="second", parallel_run_config=score_config(), inputs=[dataset])
    second.run_after(first)
    assert StepGraph([second, first]).order == ["first", "second"]


def test_a_cycle_is_refused_and_named(ws, score_config):
    a_out, b_out, c_out = PipelineData("a_out"), PipelineData("b_out"), PipelineData("c_out")
    a = ParallelRunStep(name="step-a", parallel_run_config=score_config(), inputs=[c_out], output=a_out)
    b = ParallelRunStep(name="step-b", parallel_run_config=score_config(), inputs=[a_out], output=b_out)
    c = ParallelRunStep(name="step-c", parallel_run_config=score_config(), inputs=[b_out], output=c_out)
    with pytest.raises(ConfigurationError) as info:
        Pipeline(workspace=ws, steps=[a, b, c])
    message = str(info.value)
    assert "without cycles" in message
    cycle = message.split("'")[1].split(" -> ")
    assert cycle[0] == cycle[-1] and sorted(cycle[:-1]) == ["step-a", "step-b", "step-c"]
    # each step in the cycle hands its data to the next: a -> b -> c -> a
    flow = {"step-a": "step-b", "step-b": "step-c", "step-c": "step-a"}
    assert all(flow[x] == y for x, y in zip(cycle, cycle[1:]))


def test_a_cycle_through_run_after_is_refused(ws, score_config, dataset):
    first = ParallelRunStep(name="first", parallel_run_config=score_config(), inputs=[dataset])
    second = ParallelRunStep(name="second", parallel_run_config=score_config(), inputs=[dataset])
    first.run_after(second)
    second.run_after(first)
    with pytest.raises(ConfigurationError, match="without cycles"):
        Pipeline(workspace=ws, steps=[first, second])


def test_data_nobody_writes_or_two_steps_write_is_refused(ws, score_config, dataset):
    orphan = PipelineData("orphan")
    reads = ParallelRunStep(name="reads", parallel_run_config=score_config(), inputs=[orphan])
    with pytest.raises(ConfigurationError, match="no step writes it"):
        Pipeline(workspace=ws, steps=[reads])
    shared = PipelineData("shared")
    one = ParallelRunStep(name="one", parallel_run_config=score_config(), inputs=[dataset], output=shared)
    two = ParallelRunStep(name="two", parallel_run_config=score_config(), inputs=[dataset], output=shared)
    with pytest.raises(ConfigurationError, match="written by one step only"):
        Pipeline(workspace=ws, steps=[one, two])


def test_step_arguments_and_inputs_are_checked_when_the_step_is_built(score_config, dataset):
    with pytest.raises(ConfigurationError, match="starting with a flag"):
        ParallelRunStep(name="score", parallel_run_config=score_config(), inputs=[dataset],
                        arguments=["value", "--flag"])
    with pytest.raises(ConfigurationError, match="name parallelrun owns"):
        ParallelRunStep(name="score", parallel_run_config=score_config(), inputs=[dataset],
                        arguments=["--mini_batch_size", "3"])
    with pytest.raises(ConfigurationError, match="at least one dataset"):
        ParallelRunStep(name="score", parallel_run_config=score_config(), inputs=[])
    with pytest.raises(ConfigurationError, match="PipelineData.name=.my-results."):
        PipelineData("my-results")


def test_submit_refuses_what_cannot_run_and_records_nothing(ws, score_config, dataset, score_script):
    broken = score_script / "broken.py"
    broken.write_text("def init(): pass\n")  # no run()
    step = ParallelRunStep(name="score", parallel_run_config=score_config(entry_script="broken.py"),
                           inputs=[dataset])
    with pytest.raises(EntryScriptError, match="does not define run()"):
        Experiment(ws, "checks").submit(Pipeline(workspace=ws, steps=[step]))
    nodes = ParallelRunStep(name="score", parallel_run_config=score_config(node_count=2),
                            inputs=[dataset])
    with pytest.raises(BackendError, match="node_count=2 on compute 'local'"):
        Experiment(ws, "checks").submit(Pipeline(workspace=ws, steps=[nodes]))
    missing = PythonScriptStep(script_name="nothing.py", source_directory=str(score_script))
    with pytest.raises(ConfigurationError, match="nothing.py"):
        Experiment(ws, "checks").submit(Pipeline(workspace=ws, steps=[missing]))
    with pytest.raises(ConfigurationError, match="experiment name"):
        Experiment(ws, "no spaces allowed")
    assert RunStore(ws).runs() == []
