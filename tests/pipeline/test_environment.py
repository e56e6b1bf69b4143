"""Environments: the spec (pip packages, a conda file's pip part, variables, a Python version),
made once into a virtualenv that the workers run in, and reused."""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import zipfile

import pytest

from parallelrun import (DEFAULT_GPU_IMAGE, CondaDependencies, ConfigurationError, Dataset,
                         Environment, Experiment, ParallelRunConfig, ParallelRunStep, Pipeline,
                         PythonScriptStep)
from parallelrun.pipeline.environment import materialise

from pipeline_helpers import rows_of, script


@pytest.fixture(scope="session")
def tiny_wheel(tmp_path_factory) -> str:
    """A one-module wheel built here (no download): ``import tinypkg_pr; tinypkg_pr.VALUE``."""
    folder = tmp_path_factory.mktemp("wheel")
    path = folder / "tinypkg_pr-1.0-py3-none-any.whl"
    files = {"tinypkg_pr/__init__.py": b"VALUE = 42\n",
             "tinypkg_pr-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinypkg-pr\n"
                                                  b"Version: 1.0\n",
             "tinypkg_pr-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\n"
                                               b"Root-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append("tinypkg_pr-1.0.dist-info/RECORD,,")
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("tinypkg_pr-1.0.dist-info/RECORD", "\n".join(record) + "\n")
    return str(path)


def test_the_spec_reads_pip_packages_conda_files_and_requirements(tmp_path):
    deps = CondaDependencies.create(pip_packages=["pillow", "scikit-learn>=1.3"],
                                    conda_packages=["numpy=1.26"])
    env = Environment(name="batch_environment")
    env.python.conda_dependencies = deps
    assert env.packages() == ["pillow", "scikit-learn>=1.3", "numpy==1.26"]
    env.environment_variables = {"OMP_NUM_THREADS": "1"}
    runtime = env.runtime_spec()
    assert (runtime.pip, runtime.environment_variables) == (tuple(env.packages()),
                                                            {"OMP_NUM_THREADS": "1"})

    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    spec_file = tmp_path / "env.yml"
    spec_file.write_text(script(f"""
        name: scoring
        channels: [conda-forge]
        dependencies:
          - python={version}
          - pip
          - pandas
          - pip:
            - --extra-index-url https://example.invalid/simple
            - pillow
            - onnxruntime==1.17.*
    """))
    from_file = Environment.from_conda_specification("scoring", spec_file)
    deps = from_file.python.conda_dependencies
    assert deps.pip_packages == ["pillow", "onnxruntime==1.17.*"]
    assert deps.conda_packages == ["pandas"] and deps.get_python_version() == version
    assert deps.pip_options == ["--extra-index-url https://example.invalid/simple"]
    from_file.validate()
    again = CondaDependencies(_underlying_structure=__import__("yaml").safe_load(
        deps.serialize_to_string()))
    assert again.spec() == deps.spec()

    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# comment\npillow\n\nsix==1.16.0  # pinned\n")
    assert Environment.from_pip_requirements("req", requirements).packages() == ["pillow", "six==1.16.0"]
    # the same spec in another order is the same environment
    a, b = Environment("a"), Environment("a")
    a.python.conda_dependencies = CondaDependencies.create(pip_packages=["x", "y"])
    b.python.conda_dependencies = CondaDependencies.create(pip_packages=["y", "x"])
    assert a.spec_hash() == b.spec_hash()


def test_a_python_older_than_the_worker_runs_on_is_refused_at_submit(ws, score_config, make_files):
    env = Environment(name="old")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["pillow"],
                                                             python_version="3.6")
    with pytest.raises(ConfigurationError) as info:
        env.validate()
    assert "python_version='3.6'" in str(info.value) and "Python 3.8 or newer" in str(info.value)
    step = ParallelRunStep(name="score", parallel_run_config=score_config(),
                           inputs=[Dataset.File.from_files(path=str(make_files(2)))])
    step.parallel_run_config.environment = env
    with pytest.raises(ConfigurationError, match="python_version='3.6'"):
        Experiment(ws, "versions").submit(Pipeline(workspace=ws, steps=[step]))


def test_docker_and_spark_settings_are_accepted_and_noted():
    env = Environment(name="batch_environment")
    env.docker.enabled = True
    env.docker.base_image = DEFAULT_GPU_IMAGE
    env.spark.precache_packages = False
    assert env.notes == ["docker.enabled is ignored: locally the workers are processes on this "
                         "machine", "docker.base_image is ignored: locally the workers are "
                         "processes on this machine"]
    assert materialise(env) is None  # no packages: the current interpreter


ENV_SCORE = """
import os, sys
import tinypkg_pr
def init(): pass
def run(mini_batch):
    return [f"{os.path.basename(p)} {tinypkg_pr.VALUE} {os.environ['GREETING']} {sys.prefix}"
            for p in mini_batch]
"""


def test_an_environment_is_made_once_reused_and_its_workers_run_in_it(
        ws, make_script, make_files, tiny_wheel, shared_environments):
    scripts = make_script(ENV_SCORE, name="env_score.py")
    make_script("import sys, tinypkg_pr\nprint('script step sees', tinypkg_pr.VALUE, sys.prefix)\n",
                name="check.py")
    env = Environment(name="tiny")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=[tiny_wheel])
    env.environment_variables = {"GREETING": "hello"}
    data = Dataset.File.from_files(path=str(make_files(3)))

    def submit():
        config = ParallelRunConfig(source_directory=str(scripts), entry_script="env_score.py",
                                   mini_batch_size="2", error_threshold=0,
                                   output_action="append_row", process_count_per_node=1,
                                   environment=env)
        score = ParallelRunStep(name="score", parallel_run_config=config, inputs=[data],
                                allow_reuse=False)
        check = PythonScriptStep(script_name="check.py", name="check",
                                 source_directory=str(scripts), environment=env, allow_reuse=False)
        run = Experiment(ws, "environments").submit(Pipeline(workspace=ws, steps=[score, check]))
        assert run.wait_for_completion() == "Finished"
        return run

    first = submit()
    venv = os.path.dirname(os.path.dirname(materialise(env)))   # made: found, not made again
    assert os.path.dirname(venv) == str(shared_environments)
    ready = os.path.join(venv, ".parallelrun-ready")
    made_at = os.stat(ready).st_mtime_ns
    rows = rows_of(os.path.join(first.run_dir, "steps", "score", "output", "parallel_run_step.txt"))
    assert rows == [f"item_{i:04d}.txt 42 hello {venv}" for i in range(3)]
    first_log = open(os.path.join(first.run_dir, "run.log")).read()
    assert f"environment tiny: made {venv}" in first_log
    assert f"[check] script step sees 42 {venv}" in first_log

    second = submit()
    assert os.stat(ready).st_mtime_ns == made_at  # not made again
    second_log = open(os.path.join(second.run_dir, "run.log")).read()
    assert "environment tiny: made" not in second_log
    assert rows_of(os.path.join(second.run_dir, "steps", "score", "output",
                                "parallel_run_step.txt")) == rows


def test_conda_package_specs_become_the_same_pip_requirements(tmp_path):
    deps = CondaDependencies.create(conda_packages=[
        "numpy>=1.26", "pandas=2.1=py311_0", "conda-forge::pyarrow 14.*", "scipy>=1.10,<2",
        "python=3.11.*", "six 1.16*"])
    env = Environment(name="ranges")
    env.python.conda_dependencies = deps
    # pip's own form as written (numpy>=1.26 once became numpy>==1.26); conda's pins translated
    assert env.packages() == ["numpy>=1.26", "pandas==2.1", "pyarrow==14.*", "scipy>=1.10,<2",
                              "six==1.16.*"]
    assert deps.get_python_version() == "3.11"
    # names compare as pip compares them, whatever the spec's form
    deps.remove_conda_package("SciPy")
    deps.add_pip_package("Scikit_Learn>=1.3")
    deps.remove_pip_package("scikit-learn")
    assert deps.conda_packages == ["numpy>=1.26", "pandas=2.1=py311_0",
                                   "conda-forge::pyarrow 14.*", "six 1.16*"]
    assert deps.pip_packages == []
    spec_file = tmp_path / "env.yml"
    spec_file.write_text("dependencies:\n  - python>=3.10\n  - numpy >=1.26\n  - _libgcc_mutex=0.1=main\n")
    from_file = Environment.from_conda_specification("file", spec_file)
    assert from_file.python.conda_dependencies.get_python_version() is None
    with pytest.raises(ConfigurationError, match="conda_packages='_libgcc_mutex=0.1=main'.*pip"):
        from_file.packages()


def test_a_job_environment_holds_the_storage_its_inputs_need():
    from parallelrun import Dataset
    from parallelrun.pipeline.environment import storage_requirements

    assert storage_requirements([Dataset.File.from_files("az://c/x/*.png", validate=False),
                                 "s3://bucket/t/", "data/local/*.csv"]) == ["adlfs", "s3fs"]
    assert storage_requirements(Dataset.File.from_files("data/*.png", validate=False)) == []
