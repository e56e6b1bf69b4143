"""Job environments of their own (issue #18, item 2): a job's pins resolved with what the worker
needs into a virtualenv that is not layered on parallelrun's interpreter, a Python pin served
by an interpreter of that version, conflicts refused before any work, one build for two jobs.

Building installs numpy 1.x, pandas 1.x and pyarrow from the registry once; the environment is
shared by the tests of this module (the cache is keyed by the resolved spec)."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from parallelrun import (CondaDependencies, ConfigurationError, Dataset, Environment, Experiment,
                         ParallelRunConfig, ParallelRunStep, Pipeline)
from parallelrun.pipeline.environment import materialise
from parallelrun.pipeline.records import RunStore

from pipeline_helpers import rows_of, script

HERE = f"{sys.version_info.major}.{sys.version_info.minor}"

# the worker's view: its numpy and pandas, its Python, where it runs, what it cannot see
VERSIONS_SCORE = """
import importlib.util, sys
import numpy, pandas
def init(): pass
def run(mini_batch):
    out = mini_batch[["x"]].copy()
    out["double"] = mini_batch["x"] * 2
    out["numpy"] = numpy.__version__
    out["pandas"] = pandas.__version__
    out["python"] = "%d.%d" % sys.version_info[:2]
    out["prefix"] = sys.prefix
    # scikit-learn is in parallelrun's interpreter (dev extra), not in this environment
    out["sklearn_seen"] = importlib.util.find_spec("sklearn") is not None
    return out
"""


@pytest.fixture(scope="module")
def numpy1_env(tmp_path_factory) -> Environment:
    """A conda file as Azure ML's samples write it: the Python pinned, numpy as a conda package,
    pandas in its pip part, both held below 2."""
    spec = tmp_path_factory.mktemp("conda") / "env.yml"
    spec.write_text(script(f"""
        name: scoring
        channels: [conda-forge]
        dependencies:
          - python={HERE}
          - pip
          - numpy<2
          - pip:
            - pandas<2
            - azureml-defaults
    """))
    return Environment.from_conda_specification("numpy1", spec)


def _tables(folder) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame({"x": range(12), "name": [f"row {i}" for i in range(12)]})
    frame.to_csv(folder / "rows.csv", index=False)
    frame.to_parquet(folder / "rows.parquet")
    return {"csv": Dataset.Tabular.from_delimited_files(path=str(folder / "rows.csv")),
            "parquet": Dataset.Tabular.from_parquet_files(path=str(folder / "rows.parquet"))}


def test_numpy_1_and_pandas_1_score_csv_and_parquet_tables(ws, make_script, tmp_path, numpy1_env):
    scripts = make_script(VERSIONS_SCORE, name="versions.py")
    steps = []
    for kind, dataset in _tables(tmp_path / "tables").items():
        config = ParallelRunConfig(source_directory=str(scripts), entry_script="versions.py",
                                   mini_batch_size="100", error_threshold=0,
                                   output_action="append_row", process_count_per_node=2,
                                   append_row_format="csv" if kind == "csv" else "parquet",
                                   environment=numpy1_env)
        steps.append(ParallelRunStep(name=f"score-{kind}", parallel_run_config=config,
                                     inputs=[dataset], allow_reuse=False))
    run = Experiment(ws, "numpy1").submit(Pipeline(workspace=ws, steps=steps))
    assert run.wait_for_completion() == "Finished"
    out = os.path.join(run.run_dir, "steps", "{}", "output", "parallel_run_step.{}")
    frames = [pd.read_csv(out.format("score-csv", "csv")),
              pd.read_parquet(out.format("score-parquet", "parquet"))]
    venvs = set()
    for frame in frames:
        frame = frame.sort_values("x")
        assert frame["x"].tolist() == list(range(12))
        assert frame["double"].tolist() == [2 * x for x in range(12)]
        assert {v.split(".")[0] for v in frame["numpy"].astype(str)} == {"1"}
        assert {v.split(".")[0] for v in frame["pandas"].astype(str)} == {"1"}
        assert set(frame["python"].astype(str)) == {HERE}
        assert not frame["sklearn_seen"].astype(bool).any()     # not layered on parallelrun's
        venvs |= set(frame["prefix"])
    (venv,) = venvs
    assert venv != sys.prefix and os.path.exists(os.path.join(venv, ".parallelrun-ready"))
    lock = open(os.path.join(venv, "requirements.lock")).read()
    assert "azureml" not in lock   # parallelrun's stand-ins serve azureml.* (noted)
    assert any("azureml-defaults" in note for note in numpy1_env.notes)


def test_a_python_version_that_is_not_here_is_refused_naming_those_that_are(
        ws, score_config, make_files):
    env = Environment(name="future")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["pillow"],
                                                             python_version="3.99")
    with pytest.raises(ConfigurationError) as info:
        step = ParallelRunStep(name="score", parallel_run_config=score_config(environment=env),
                               inputs=[Dataset.File.from_files(path=str(make_files(2)))])
        Experiment(ws, "versions").submit(Pipeline(workspace=ws, steps=[step]))
    message = str(info.value)
    assert "python_version='3.99'" in message and "none of version 3.99 was found" in message
    installed = message.split("Installed: ", 1)[1].split(". Pin", 1)[0].split(", ")
    assert any(v.startswith(f"{HERE}.") for v in installed)    # the running one among them
    assert "pyenv install 3.99" in message and "uv python install 3.99" in message

    env.python.conda_dependencies.set_python_version("3.4")
    with pytest.raises(ConfigurationError, match=r"python_version='3.4'.*Python 3\.8 or newer"):
        env.validate()


def test_a_pin_that_conflicts_with_the_workers_needs_is_refused_before_any_work(
        ws, score_config, tmp_path):
    env = Environment(name="old_arrow")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["pyarrow<1"])
    step = ParallelRunStep(name="score", parallel_run_config=score_config(environment=env),
                           inputs=[_tables(tmp_path / "tables")["csv"]])
    with pytest.raises(ConfigurationError) as info:
        Experiment(ws, "conflicts").submit(Pipeline(workspace=ws, steps=[step]))
    message = str(info.value)
    # both sides named: the environment's pin and the worker's need, with why it needs it
    assert "environment 'old_arrow' asks for pyarrow<1" in message
    assert "the worker needs pyarrow>=10 (tabular datasets are read" in message
    assert RunStore(ws).runs(limit=10) == []     # refused at submit: nothing recorded or run


def test_a_conda_only_package_is_named(tmp_path):
    spec = tmp_path / "env.yml"
    spec.write_text("dependencies:\n  - python\n  - cudatoolkit=11.3\n  - pip:\n    - six\n")
    env = Environment.from_conda_specification("gpu", spec)
    with pytest.raises(ConfigurationError, match=r"conda_packages=\['cudatoolkit=11.3'\].*"
                                                 r"cudatoolkit is conda-only"):
        materialise(env)


TWO_BUILDS = """
import sys
sys.path.insert(0, {src!r})
from parallelrun import CondaDependencies, Environment
from parallelrun.pipeline.environment import materialise
from parallelrun.pipeline.records import RunStore
env = Environment("shared")
env.python.conda_dependencies = CondaDependencies.create(pip_packages=["numpy<2", "pandas<2"])
print(materialise(env, log_file=sys.argv[1]))
"""


def test_two_jobs_building_one_environment_at_once_build_it_once(tmp_path):
    # a cache of its own, so that the build happens here (packages come from uv's cache)
    variables = {**os.environ, "PARALLELRUN_ENVIRONMENTS": str(tmp_path / "environments")}
    code = TWO_BUILDS.format(src=os.path.dirname(os.path.dirname(
        __import__("parallelrun").__file__)))
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    jobs = [subprocess.Popen([sys.executable, "-c", code, str(log)], env=variables,
                             stdout=subprocess.PIPE, text=True) for log in logs]
    pythons = {job.communicate(timeout=240)[0].strip() for job in jobs}
    assert all(job.returncode == 0 for job in jobs)
    (python,) = pythons
    assert python.startswith(str(tmp_path / "environments"))
    made = [log.read_text() if log.exists() else "" for log in logs]
    assert sum("environment shared: made" in text for text in made) == 1
    check = subprocess.run([python, "-c", "import numpy, pandas; print(numpy.__version__)"],
                           capture_output=True, text=True, check=True)
    assert check.stdout.startswith("1.")
