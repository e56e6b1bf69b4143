"""v2 pipeline job files (type: pipeline) as Microsoft's samples write them: command and
parallel nodes, components, bindings, ${{default_datastore}}/${{name}} output paths, the
parallel options in program_arguments, MLTable inputs.

The samples are in v2_samples/, copied from Azure/azureml-examples cli/jobs/parallel with the
changes their README lists (no environment: the test's Python; data made offline)."""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from fixtures.models import digits_model, oj_models_trained_directly
from parallelrun import AmlCompute, ComputeTarget, Experiment, Run, Workspace, load_job
from parallelrun.pipeline.yaml_job import JobSpecError

SAMPLES = Path(__file__).with_name("v2_samples")
CLI = [sys.executable, "-m", "parallelrun.cli.__main__"]


@pytest.fixture
def cluster(ws):
    """The samples' compute, registered as a user would (2 nodes: 2 x 2 worker processes here)."""
    ComputeTarget.create(ws, "cpu-cluster", AmlCompute.provisioning_configuration(max_nodes=2))
    return ws


def test_the_mnist_sample_runs_a_command_node_then_a_parallel_node(cluster, tmp_path):
    shutil.copytree(SAMPLES / "mnist", tmp_path / "mnist")
    model = digits_model(tmp_path / "mnist" / "mnist_models")
    done = subprocess.run([*CLI, "job", "submit", "mnist/pipeline.yml", "--stream"],
                          capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = done.stdout.split("submitted run ")[1].split()[0]
    run = Run.get(Workspace.from_config(str(tmp_path)), run_id)
    assert run.experiment.name == "hello-world-parallel-job"
    steps = {step.name: step for step in run.get_steps()}
    assert set(steps) == {"prepare-data", "predict-digits-mnist"}
    # the command node's output folder is the parallel node's input
    images = Path(steps["prepare-data"].get_output_data("mnist_png").local_path) / "mnist"
    assert sorted(p.name for p in images.iterdir()) == sorted(f"{i}.png" for i in range(12))
    # aggregated_returns.csv under azureml://datastores/${{default_datastore}}/paths/${{name}}/
    store = Path(cluster.get_default_datastore().path_on_disk)
    [output] = store.glob("predict_digits_mnist_*/aggregated_returns.csv")
    rows = sorted(line for line in output.read_text().splitlines() if line)
    from PIL import Image

    expected = sorted(
        f"{i}.png: {model.predict(np.array(Image.open(images / f'{i}.png')).reshape(1, 784))[0]}"
        for i in range(12))
    assert rows == expected
    assert run.get_status() == "Finished"


def test_a_pipeline_file_with_mistakes_lists_each_with_its_line(cluster, tmp_path):
    shutil.copytree(SAMPLES / "mnist", tmp_path / "mnist")
    path = tmp_path / "mnist" / "pipeline.yml"
    text = path.read_text()
    text = text.replace("${{parent.jobs.prepare_data.outputs.mnist_png}}",
                        "${{parent.jobs.prepare_data.outputs.mnist_pngs}}")
    text = text.replace("component: ./script/prepare_data.yml", "component: ./script/prep.yml")
    text = text.replace("mini_batch_size: \"5\"", "mini_batch_size: five")
    text = text.replace("--model ${{inputs.score_model}}",
                        "--model ${{inputs.score_model}} --allowed_failed_percent lots")
    path.write_text(text)
    with pytest.raises(JobSpecError) as info:
        load_job(path)
    message = " ".join(str(info.value).split())
    lines = text.splitlines()

    def line_of(fragment: str) -> int:
        return next(i + 1 for i, line in enumerate(lines) if fragment in line)

    for expected in [
        f"pipeline.yml:{line_of('component:')}: jobs.prepare_data.component: './script/prep.yml': "
        "cannot read",
        f"pipeline.yml:{line_of('mini_batch_size')}: jobs.predict_digits_mnist.mini_batch_size: "
        "'five'",
        f"pipeline.yml:{line_of('program_arguments')}: "
        "jobs.predict_digits_mnist.task.program_arguments: --allowed_failed_percent 'lots': a number",
    ]:
        assert expected in message, (expected, message)
    text = text.replace("component: ./script/prep.yml", "component: ./script/prepare_data.yml")
    path.write_text(text)
    with pytest.raises(JobSpecError, match="node 'prepare_data' has no output 'mnist_pngs'"):
        load_job(path)


PARALLEL_OPTIONS_JOB = """\
type: pipeline
jobs:
  score:
    type: parallel
    inputs:
      items: {type: uri_folder, path: ./data}
    outputs:
      scores: {type: uri_folder}
    input_data: ${{inputs.items}}
    mini_batch_size: "2"
    task:
      type: run_function
      code: ./src
      entry_script: score.py
      program_arguments: >-
        --scale 2
        --error_threshold 7
        --allowed_failed_percent 30
        --allowed_failed_count 4
        --first_task_creation_timeout 90
        --task_overhead_timeout 1200
        --progress_update_timeout 600
        --resource_monitor_interval 20
        --copy_logs_to_parent True
      append_row_to: ${{outputs.scores}}
"""

SCORE = """
import argparse, os, sys
def init():
    global scale
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int)
    args, rest = parser.parse_known_args()
    assert rest == [], rest           # the parallel options are not the script's
    scale = args.scale
def run(mini_batch):
    return [f"{os.path.basename(p)} {int(open(p).read()) * scale}" for p in mini_batch]
"""


def test_parallel_options_in_program_arguments_configure_the_run(ws, make_script, make_files,
                                                                  tmp_path):
    make_script(SCORE, folder="src")
    make_files(3)
    (tmp_path / "job.yml").write_text(PARALLEL_OPTIONS_JOB)
    job = load_job(tmp_path / "job.yml")
    [step] = job.to_pipeline(ws).steps
    config = step.parallel_run_config
    assert (config.error_threshold, config.allowed_failed_percent, config.allowed_failed_count,
            config.init_timeout) == (7, 30, 4, 90)
    assert step.arguments == ["--scale", "2"]
    assert [note.split(":")[0] for note in step.notes] == [
        "--task_overhead_timeout 1200", "--progress_update_timeout 600",
        "--resource_monitor_interval 20", "--copy_logs_to_parent True"]
    run = Experiment(ws, "options").submit(job)
    assert run.wait_for_completion() == "Finished"
    [step_run] = run.get_steps()
    output = Path(step_run.get_output_data("scores").local_path) / "parallel_run_step.txt"
    assert sorted(output.read_text().split("\n")[:-1]) == [f"item_{i:04d}.txt {i * 2}"
                                                         for i in range(3)]
    log = (Path(run.run_dir) / "run.log").read_text()
    assert "[score] --copy_logs_to_parent True: accepted" in log


def _iris_model(folder: Path):
    """A classifier of the 2a sample's 44 columns (iris's 4 and 40 columns of noise, as the
    sample's neural-iris data holds them), pickled beside the sample's own MLmodel file (its
    model.pkl is scikit-learn 0.20, which today's scikit-learn cannot load). Labels are 0, 1, 2:
    the sample's run() stores predict()'s (n, 1) array as a column, which pandas 3 refuses for
    text labels."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris()
    features = np.hstack([iris.data, np.random.RandomState(0).randn(150, 40)])
    model = LogisticRegression(max_iter=1000).fit(features, iris.target)
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    return model


def test_the_iris_sample_scores_an_mltable_with_an_mlflow_model(cluster, tmp_path):
    import pandas as pd

    shutil.copytree(SAMPLES / "iris", tmp_path / "iris")
    model = _iris_model(tmp_path / "iris" / "iris-model")
    done = subprocess.run([*CLI, "job", "submit", "iris/pipeline.yml", "--stream"],
                          capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    # append_row_to: ${{outputs.job_output_file}} (uri_file under ${{default_datastore}}/${{name}})
    store = Path(cluster.get_default_datastore().path_on_disk)
    [output] = store.glob("batch_prediction_*/aggregated_returns.csv")
    rows = sorted(tuple(float(v) for v in line.split())
                  for line in output.read_text().splitlines() if line)
    # the MLTable's header: all_files_same_headers makes the csv's first line the header
    table = pd.read_csv(tmp_path / "iris" / "neural-iris-mltable" / "iris.csv")
    predicted = model.predict(table.to_numpy())
    expected = sorted(tuple(float(v) for v in row[:4]) + (float(label),)
                      for row, label in zip(table.to_numpy(), predicted))
    assert len(rows) == 74 and rows == expected
    # the table is iris's rows 2 to 75 (setosa, versicolor): a model that tells them apart
    assert set(predicted) == {0, 1}
    # --allowed_failed_percent in program_arguments set the config; the others are noted
    log = "".join(p.read_text() for p in tmp_path.glob(".parallelrun/runs/*/run.log"))
    assert "[batch-prediction] --task_overhead_timeout 1200: accepted" in log


def test_the_oj_sales_sample_trains_one_model_per_store_and_brand(cluster, tmp_path):
    import pandas as pd

    shutil.copytree(SAMPLES / "oj_sales", tmp_path / "oj_sales")
    done = subprocess.run([*CLI, "job", "submit", "oj_sales/pipeline.yml", "--stream"],
                          capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = done.stdout.split("submitted run ")[1].split()[0]
    run = Run.get(Workspace.from_config(str(tmp_path)), run_id)
    steps = {step.name: step for step in run.get_steps()}
    # the command node wrote an MLTable partitioned by Store/Brand; partition_keys: one
    # mini-batch (and one model, saved with mlflow.sklearn.save_model) per Store and Brand
    models = Path(steps["parallel-train"].get_output_data("model_folder").local_path)
    sales = pd.read_csv(tmp_path / "oj_sales" / "oj_sales_data" / "oj_sales_data.csv")
    # the sample's features for each partition, and its model trained here directly
    expected = oj_models_trained_directly(sales)
    keys = sorted({(str(s), b) for s, b in zip(sales.Store, sales.Brand)})
    assert len(keys) == 12 and sorted(expected) == keys
    assert sorted((p.parent.name, p.name) for p in models.glob("*/*") if p.is_dir()) == keys
    for (store, brand), (direct, features) in expected.items():
        folder = models / store / brand
        mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
        assert mlmodel["flavors"]["python_function"]["loader_module"] == "mlflow.sklearn"
        saved = pickle.loads((folder / mlmodel["flavors"]["sklearn"]["pickled_model"])
                             .read_bytes())
        assert np.array_equal(saved.predict(features), direct.predict(features)), (store, brand)
    # the sample's run() returns [] for every mini-batch: error_threshold -1 lets that pass
    assert run.get_status() == "Finished"
    [parallel_run] = [s for s in run.get_steps() if s.name == "parallel-train"]
    assert parallel_run.get_status() == "Finished"


MLTABLE_OUTPUT_JOB = """\
type: pipeline
jobs:
  score:
    type: parallel
    inputs:
      items: {type: uri_folder, path: ./data}
    outputs:
      scores: {type: mltable}
    input_data: ${{inputs.items}}
    mini_batch_size: "2"
    task: {type: run_function, code: ./src, entry_script: score.py,
           append_row_to: "${{outputs.scores}}"}
  total:
    type: parallel
    inputs:
      table: {type: mltable, path: "${{parent.jobs.score.outputs.scores}}"}
    outputs:
      totals: {type: uri_folder}
    input_data: ${{inputs.table}}
    mini_batch_size: "1KB"
    task: {type: run_function, code: ./src, entry_script: total.py,
           append_row_to: "${{outputs.totals}}"}
"""


def test_an_mltable_output_is_a_table_for_the_next_node(ws, make_script, make_files, tmp_path):
    make_script("import os\ndef init(): pass\ndef run(mb):\n"
                "    return [f'{os.path.basename(p)} {int(open(p).read()) * 3}' for p in mb]\n",
                folder="src")
    make_script("def init(): pass\ndef run(df):\n"
                "    return [f'{a}={b * 10}' for a, b in zip(df.Column1, df.Column2)]\n",
                name="total.py", folder="src")
    make_files(5)
    (tmp_path / "job.yml").write_text(MLTABLE_OUTPUT_JOB)
    run = Experiment(ws, "tables").submit(load_job(tmp_path / "job.yml"))
    assert run.wait_for_completion() == "Finished"
    steps = {step.name: step for step in run.get_steps()}
    scores = Path(steps["score"].get_output_data("scores").local_path)
    assert yaml.safe_load((scores / "MLTable").read_text())["paths"] == [
        {"file": "./parallel_run_step.txt"}]
    totals = Path(steps["total"].get_output_data("totals").local_path) / "parallel_run_step.txt"
    assert sorted(totals.read_text().split()) == [f"item_{i:04d}.txt={i * 30}" for i in range(5)]
