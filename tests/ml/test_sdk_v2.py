"""The SDK v2 surface (parallelrun.ml, after azure.ai.ml): Microsoft's 3a notebook as a script
with its imports and MLClient line changed, jobs built in Python and loaded from YAML as the
same objects, and the client's operations (jobs, data, models, environments, compute)."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fixtures.models import digits_model, oj_models_trained_directly
from parallelrun import AmlCompute, ComputeTarget, Workspace
from parallelrun.errors import ConfigurationError, JobFailedError

SAMPLES = Path(__file__).parents[1] / "pipeline" / "v2_samples"


@pytest.fixture
def ws(tmp_path, monkeypatch):
    """A workspace in the current folder with the samples' compute (2 nodes)."""
    monkeypatch.chdir(tmp_path)
    workspace = Workspace.create(name="sdk-tests", path=tmp_path, exist_ok=True)
    ComputeTarget.create(workspace, "cpu-cluster",
                         AmlCompute.provisioning_configuration(max_nodes=2))
    return workspace


def _expected_digits(model, images: Path) -> list[str]:
    from PIL import Image

    return sorted(f"{p.name}: {model.predict(np.array(Image.open(p)).reshape(1, 784))[0]}"
                  for p in images.glob("*.png"))


def test_the_mnist_notebook_runs_with_its_imports_changed(ws, tmp_path):
    shutil.copytree(SAMPLES / "mnist", tmp_path / "mnist")
    model = digits_model(tmp_path / "mnist" / "mnist_models")
    done = subprocess.run([sys.executable, "mnist_batch_prediction.py"], capture_output=True,
                          text=True, timeout=240, cwd=tmp_path / "mnist")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cpu-cluster" in done.stdout.splitlines()[0]       # print(ml_client.compute.get(...))
    assert "predict_digits_mnist:" in done.stdout             # print(my_job): the YAML shape
    from parallelrun.ml import MLClient

    ml_client = MLClient.from_config()
    [job] = list(ml_client.jobs.list())
    assert (job.status, job.experiment_name) == ("Completed", "hello-world-parallel-job")
    steps = {step.display_name: step for step in ml_client.jobs.list(parent_job_name=job.name)}
    assert set(steps) == {"prepare-data", "predict-digits-mnist"}
    store = Path(ws.get_default_datastore().path_on_disk)
    [output] = store.glob("predict_digits_mnist_*/aggregated_returns.csv")
    images = next(store.glob("azureml/*/mnist_png/mnist"))
    assert sorted(line for line in output.read_text().splitlines() if line) == \
        _expected_digits(model, images)
    # node settings changed after the call (mini_batch_error_threshold = 10) reached the step
    run_log = next(tmp_path.glob(".parallelrun/runs/*/run.log")).read_text()
    assert "predict-digits-mnist" in run_log
    # jobs.download: a named output, and the run's logs as artifacts
    ml_client.jobs.download(job.name, download_path=tmp_path / "dl", output_name="mnist_png")
    assert len(list((tmp_path / "dl" / "named-outputs" / "mnist_png" / "mnist").glob("*.png"))) == 12
    assert not (tmp_path / "dl" / "artifacts").exists()
    ml_client.jobs.download(job.name, download_path=tmp_path / "dl")
    assert (tmp_path / "dl" / "artifacts" / "run.log").is_file()


def test_the_oj_sales_notebook_trains_one_model_per_store_and_brand(tmp_path, monkeypatch):
    import pandas as pd
    import yaml

    from parallelrun.ml import MLClient

    monkeypatch.chdir(tmp_path)
    Workspace.create(name="sdk-oj", path=tmp_path, exist_ok=True)
    # 6 nodes: the notebook's instance_count = 3 x max_concurrency_per_instance = 2, set on the
    # node after the call, give 6 worker processes here (its first values, 2 x 1, would give 2)
    ComputeTarget.create(Workspace.from_config(), "cpu-cluster",
                         AmlCompute.provisioning_configuration(max_nodes=6))
    shutil.copytree(SAMPLES / "oj_sales", tmp_path / "oj_sales")
    done = subprocess.run([sys.executable, "oj_sales_prediction.py"], capture_output=True,
                          text=True, timeout=240, cwd=tmp_path / "oj_sales")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cpu-cluster" in done.stdout.splitlines()[0]       # print(ml_client.compute.get(...))
    assert "parallel_train:" in done.stdout and "partition_keys:" in done.stdout  # print(my_job)
    ml_client = MLClient.from_config()
    [job] = list(ml_client.jobs.list())
    assert (job.status, job.experiment_name) == ("Completed", "hello-world-parallel-job")
    steps = {step.display_name for step in ml_client.jobs.list(parent_job_name=job.name)}
    assert steps == {"partition-job", "parallel-train"}
    ml_client.jobs.download(job.name, download_path=tmp_path / "dl", output_name="model_folder")
    models = tmp_path / "dl" / "named-outputs" / "model_folder"
    # the command node's MLTable partitioned by Store/Brand; partition_keys: one mini-batch and
    # one model (mlflow.sklearn.save_model) per Store and Brand, predicting as trained directly
    sales = pd.read_csv(tmp_path / "oj_sales" / "oj_sales_data" / "oj_sales_data.csv")
    expected = oj_models_trained_directly(sales)
    assert len(expected) == 12
    assert sorted((p.parent.name, p.name) for p in models.glob("*/*") if p.is_dir()) == \
        sorted(expected)
    for (store, brand), (direct, features) in expected.items():
        folder = models / store / brand
        mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
        assert mlmodel["flavors"]["python_function"]["loader_module"] == "mlflow.sklearn"
        saved = pickle.loads((folder / mlmodel["flavors"]["sklearn"]["pickled_model"])
                             .read_bytes())
        assert np.array_equal(saved.predict(features), direct.predict(features)), (store, brand)
    # the node's settings after the call reached the run: 3 x 2 workers, logging_level DEBUG
    logs = next(tmp_path.glob(".parallelrun/runs/*/steps/parallel-train/logs"))
    progress = [json.loads(line) for line in (logs / "sys" / "progress.jsonl").open()]
    assert progress[-1]["workers_total"] == 6
    first = json.loads((logs / "sys" / "job_report" / "tries.jsonl").open().readline())
    worker_log = logs / "sys" / "node" / first["node"] / f"{first['process']}.txt"
    assert "|DEBUG|" in worker_log.read_text()


def test_a_pipeline_built_in_python_is_the_pipeline_its_yaml_loads(ws, tmp_path):
    from parallelrun.ml import Input, Output, load_component, load_job
    from parallelrun.ml.dsl import pipeline
    from parallelrun.ml.entities import Command, Parallel, PipelineJob
    from parallelrun.ml.parallel import RunFunction, parallel_run_function

    shutil.copytree(SAMPLES / "mnist", tmp_path / "mnist")
    (tmp_path / "mnist" / "mnist_models").mkdir()
    loaded = load_job(tmp_path / "mnist" / "pipeline.yml")
    assert isinstance(loaded, PipelineJob)
    assert type(loaded.jobs["prepare_data"]) is Command
    assert type(loaded.jobs["predict_digits_mnist"]) is Parallel
    assert loaded.jobs["predict_digits_mnist"].resources.instance_count == 2
    assert loaded.jobs["predict_digits_mnist"].retry_settings.max_retries == 2

    prepare = load_component(source=str(tmp_path / "mnist" / "script" / "prepare_data.yml"))
    predict = parallel_run_function(
        inputs=dict(job_data_path=Input(type="uri_folder", mode="ro_mount"),
                    score_model=Input(type="uri_folder", mode="download")),
        outputs=dict(job_output_file=Output(type="uri_file", mode="rw_mount")),
        input_data="${{inputs.job_data_path}}", mini_batch_size="5", instance_count=2,
        max_concurrency_per_instance=2, mini_batch_error_threshold=5, logging_level="DEBUG",
        retry_settings=dict(max_retries=2, timeout=60),
        environment_variables={"AZUREML_PARALLEL_EXAMPLE": "3a_yaml"},
        task=RunFunction(code=str(tmp_path / "mnist" / "script"),
                         entry_script="digit_identification.py",
                         program_arguments="--model ${{inputs.score_model}}",
                         append_row_to="${{outputs.job_output_file}}"))

    @pipeline()
    def hello():
        prepare_data = prepare()
        predict_digits_mnist = predict(
            job_data_path=prepare_data.outputs.mnist_png,
            score_model=Input(type="uri_folder", path=str(tmp_path / "mnist" / "mnist_models"),
                              mode="download"))
        predict_digits_mnist.compute = "azureml:cpu-cluster"
        prepare_data.compute = "azureml:cpu-cluster"
        predict_digits_mnist.outputs.job_output_file.path = \
            "azureml://datastores/${{default_datastore}}/paths/${{name}}/aggregated_returns.csv"

    built = hello()
    mine, theirs = built._to_dict()["jobs"], loaded._to_dict()["jobs"]
    assert list(mine) == list(theirs) == ["prepare_data", "predict_digits_mnist"]
    for node in mine:
        for key in ("type", "inputs", "outputs", "task", "code", "command", "input_data",
                    "mini_batch_size", "resources", "retry_settings", "compute",
                    "environment_variables", "max_concurrency_per_instance",
                    "mini_batch_error_threshold", "logging_level"):
            assert mine[node].get(key) == theirs[node].get(key), (node, key)


def test_a_command_node_feeds_a_parallel_node_with_pipeline_inputs_and_outputs(ws, tmp_path):
    from parallelrun.ml import Input, MLClient, Output, command
    from parallelrun.ml.dsl import pipeline
    from parallelrun.ml.parallel import RunFunction, parallel_run_function

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "make.py").write_text(
        "import os, sys\nout, count = sys.argv[1], int(sys.argv[2])\n"
        "for i in range(count):\n    open(os.path.join(out, f'n{i}.txt'), 'w').write(str(i))\n")
    (tmp_path / "src" / "score.py").write_text(
        "import argparse, os\ndef init():\n    global scale\n"
        "    scale = argparse.ArgumentParser().add_argument('--scale', type=int) and None\n"
        "    p = argparse.ArgumentParser(); p.add_argument('--scale', type=int)\n"
        "    scale = p.parse_known_args()[0].scale\n"
        "def run(mb):\n    return [f'{os.path.basename(f)} {int(open(f).read()) * scale}' for f in mb]\n")
    make = command(code="./src", command="python make.py ${{outputs.numbers}} ${{inputs.count}}",
                   inputs=dict(count=Input(type="integer")),
                   outputs=dict(numbers=Output(type="uri_folder")))
    score = parallel_run_function(
        inputs=dict(numbers=Input(type="uri_folder"), scale=Input(type="integer")),
        outputs=dict(scores=Output(type="uri_folder")), input_data="${{inputs.numbers}}",
        mini_batch_size="2", max_concurrency_per_instance=2,
        task=RunFunction(code="./src", entry_script="score.py",
                         program_arguments="--scale ${{inputs.scale}}",
                         append_row_to="${{outputs.scores}}"))

    @pipeline(default_compute="cpu-cluster")
    def numbers(count, scale=3):
        made = make(count=count)
        scored = score(numbers=made.outputs.numbers, scale=scale)
        return {"scores": scored.outputs.scores}

    job = numbers(count=5)
    job.outputs["scores"]["path"] = str(tmp_path / "results")
    ml_client = MLClient(credential=object(), subscription_id="sub", resource_group_name="rg",
                         workspace_name="sdk-tests")
    submitted = ml_client.jobs.create_or_update(job, experiment_name="numbers")
    ml_client.jobs.stream(submitted.name)
    assert ml_client.jobs.get(submitted.name).status == "Completed"   # v2 says Completed
    rows = (tmp_path / "results" / "parallel_run_step.txt").read_text().split("\n")[:-1]
    assert sorted(rows) == [f"n{i}.txt {i * 3}" for i in range(5)]


def test_a_parallel_node_runs_alone_and_failures_raise_from_stream(ws, tmp_path):
    from parallelrun.ml import Input, MLClient, Output
    from parallelrun.ml.parallel import RunFunction, parallel_run_function

    (tmp_path / "data").mkdir()
    for i in range(3):
        (tmp_path / "data" / f"f{i}.txt").write_text(str(i))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "fail.py").write_text(
        "def init(): pass\ndef run(mb):\n    raise ValueError('no ' + str(len(mb)))\n")
    job = parallel_run_function(
        inputs=dict(data=Input(type="uri_folder", path="./data")),
        outputs=dict(out=Output()), input_data="${{inputs.data}}", mini_batch_size="1",
        mini_batch_error_threshold=0, retry_settings=dict(max_retries=0),
        task=RunFunction(code="./src", entry_script="fail.py", append_row_to="${{outputs.out}}"))
    ml_client = MLClient.from_config()
    submitted = ml_client.jobs.create_or_update(job, experiment_name="alone")
    with pytest.raises(JobFailedError, match="ValueError: no 1"):
        ml_client.jobs.stream(submitted.name)
    with pytest.raises(ConfigurationError, match="inputs of .*: data"):
        job(images="./data")


def test_assets_register_and_name_job_inputs(ws, tmp_path):
    from parallelrun.ml import Input, MLClient, Output
    from parallelrun.ml.entities import AmlCompute as Cluster
    from parallelrun.ml.entities import Data, Environment, Model
    from parallelrun.ml.parallel import RunFunction, parallel_run_function

    (tmp_path / "data").mkdir()
    for i in range(4):
        (tmp_path / "data" / f"f{i}.txt").write_text(str(i))
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "factor.txt").write_text("7")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "score.py").write_text(
        "import argparse, os\ndef init():\n    global factor\n"
        "    p = argparse.ArgumentParser(); p.add_argument('--model')\n"
        "    folder = p.parse_known_args()[0].model\n"
        "    factor = int(open(os.path.join(folder, 'factor.txt')).read())\n"
        "def run(mb):\n    return [f'{os.path.basename(f)} {int(open(f).read()) * factor}' for f in mb]\n")
    (tmp_path / "env.yml").write_text("dependencies:\n  - pip:\n    - numpy\n")
    ml_client = MLClient.from_config()
    data = ml_client.data.create_or_update(Data(name="numbers", path="./data"))
    model = ml_client.models.create_or_update(Model(name="factor", path="./model"))
    env = ml_client.environments.create_or_update(Environment(name="numpy-env",
                                                              conda_file="./env.yml"))
    cluster = ml_client.compute.begin_create_or_update(Cluster(name="big", max_instances=3)).result()
    assert (data.version, model.version, env.version) == ("1", "1", "1")
    assert ml_client.data.get("numbers").id == "azureml:numbers:1"
    assert ml_client.models.get("factor", version="1").path.endswith("model")
    assert [m.name for m in ml_client.models.list()] == ["factor"]
    assert ml_client.environments.get("numpy-env").name == "numpy-env"
    assert [e.name for e in ml_client.environments.list()] == ["numpy-env"]
    assert cluster.name == "big" and "big" in [c.name for c in ml_client.compute.list()]
    job = parallel_run_function(
        inputs=dict(data=Input(type="uri_folder", path="azureml:numbers:1"),
                    model=Input(type="custom_model", path="azureml:factor:1")),
        outputs=dict(out=Output()), input_data="${{inputs.data}}", mini_batch_size="2",
        task=RunFunction(code="./src", entry_script="score.py",
                         program_arguments="--model ${{inputs.model}}",
                         append_row_to="${{outputs.out}}"))
    submitted = ml_client.jobs.create_or_update(job, experiment_name="assets")
    ml_client.jobs.stream(submitted.name)
    ml_client.jobs.download(submitted.name, download_path=tmp_path / "dl", output_name="out")
    rows = (tmp_path / "dl" / "named-outputs" / "out" / "parallel_run_step.txt").read_text()
    assert sorted(rows.split("\n")[:-1]) == [f"f{i}.txt {i * 7}" for i in range(4)]
