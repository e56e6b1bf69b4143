"""What wait_for_completion raises: the tree's timeout error, and JobFailedError with the run."""

from __future__ import annotations

import pytest

from parallelrun import (Dataset, Experiment, JobFailedError, ParallelRunConfig, ParallelRunError,
                         ParallelRunStep, Pipeline, RunTimeoutError, run_job)


def test_a_timeout_is_the_trees_error_and_still_a_timeout_error(ws, make_files, score_config):
    data = Dataset.File.from_files(path=str(make_files(2)))
    step = ParallelRunStep(name="slow", parallel_run_config=score_config(), inputs=[data],
                           arguments=["--delay", "1.5"], allow_reuse=False)
    run = Experiment(ws, "timeouts").submit(Pipeline(workspace=ws, steps=[step]))
    with pytest.raises(RunTimeoutError) as info:
        run.wait_for_completion(timeout_seconds=0)
    assert isinstance(info.value, TimeoutError) and isinstance(info.value, ParallelRunError)
    assert info.value.run_id == run.id and "timeout_seconds=0" in str(info.value)
    with pytest.raises(TimeoutError):   # callers catching the builtin keep working
        run.find_step_run("slow")[0].wait_for_completion(timeout_seconds=0)
    assert run.wait_for_completion() == "Finished"


def test_job_failed_error_carries_the_run_or_the_job_result(ws, make_script, make_files,
                                                          score_config, tmp_path):
    make_script("def init(): pass\ndef run(mini_batch):\n    raise KeyError('label_map')\n",
                name="broken.py")
    data = Dataset.File.from_files(path=str(make_files(2)))
    step = ParallelRunStep(name="score", parallel_run_config=score_config(entry_script="broken.py"),
                           inputs=[data], allow_reuse=False)
    run = Experiment(ws, "failing").submit(Pipeline(workspace=ws, steps=[step]))
    with pytest.raises(JobFailedError) as info:
        run.wait_for_completion()
    assert info.value.run is run and info.value.result is None
    step_run = run.find_step_run("score")[0]
    with pytest.raises(JobFailedError) as info:
        step_run.wait_for_completion()
    assert info.value.run is step_run and info.value.result is None

    config = score_config(entry_script="broken.py")
    with pytest.raises(JobFailedError) as info:
        run_job(config, inputs=[data], output=str(tmp_path / "out"), raise_on_failure=True)
    result = info.value.result
    assert info.value.run is None and type(result).__name__ == "JobResult"
    assert result.status == "Failed" and result.minibatches_failed >= 1
