"""What the engine is given of a job's Environment: a plain RuntimeSpec made at the pipeline
layer, so the Environment's variables reach the workers however the job is started, and
anything that is not an Environment is refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from parallelrun import ConfigurationError, Dataset, Environment, ParallelRunConfig, run_job

SHOW_VARIABLES = """
import os
def init(): pass
def run(mini_batch):
    return [f"{os.environ.get('FROM_ENV')} {os.environ.get('BOTH')}" for _ in mini_batch]
"""


def config(src, environment) -> ParallelRunConfig:
    return ParallelRunConfig(source_directory=str(src), entry_script="score.py",
                             mini_batch_size=1, error_threshold=0, output_action="append_row",
                             process_count_per_node=1, environment=environment,
                             environment_variables={"BOTH": "config"})


def test_a_jobs_environment_variables_reach_its_workers_under_the_configs_own(
        make_script, make_files, tmp_path):
    env = Environment(name="plain")
    env.environment_variables = {"FROM_ENV": "env", "BOTH": "env"}
    result = run_job(config(make_script(SHOW_VARIABLES), env),
                     [Dataset.File.from_files(str(make_files(2)))], tmp_path / "out")
    assert result.status == "Finished", result.error
    assert Path(result.output_file).read_text().splitlines() == ["env config", "env config"]


@pytest.mark.parametrize("compute_target", ["local", "ray"])
def test_an_environment_that_is_not_one_is_refused_by_name(compute_target, make_script,
                                                           make_files, tmp_path):
    job = config(make_script(SHOW_VARIABLES), {"pip": ["pillow"]})
    job.compute_target = compute_target
    with pytest.raises(ConfigurationError, match=r"environment=\{'pip': \['pillow'\]\} is not "
                                                 r"allowed: an Environment"):
        run_job(job, [Dataset.File.from_files(str(make_files(1)))], tmp_path / "out")
    assert not (tmp_path / "out").exists()
