"""v2 pipeline job files (type: pipeline) as Microsoft's samples write them: command and
parallel nodes, components, bindings, ${{default_datastore}}/${{name}} output paths, the
parallel options in program_arguments, MLTable inputs.

The samples are in v2_samples/, copied from Azure/azureml-examples cli/jobs/parallel with the
changes their README lists (no environment: the test's Python; data made offline)."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from parallelrun import AmlCompute, ComputeTarget, Experiment, Run, Workspace, load_job
from parallelrun.pipeline.yaml_job import JobSpecError

SAMPLES = Path(__file__).with_name("v2_samples")
CLI = [sys.executable, "-m", "parallelrun.cli.__main__"]


@pytest.fixture
def cluster(ws):
    """The samples' compute, registered as a user would (2 nodes: 2 x 2 worker processes here)."""
    ComputeTarget.create(ws, "cpu-cluster", AmlCompute.provisioning_configuration(max_nodes=2))
    return ws


def _digits_model(folder: Path):
    """A classifier of 28x28 digits, pickled where the 3a entry script looks for it."""
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    digits = load_digits()
    pixels = np.stack([np.asarray(Image.fromarray((img * 255 / 16).astype(np.uint8))
                                  .resize((28, 28))).reshape(784) for img in digits.images[:400]])
    model = LogisticRegression(max_iter=300).fit(pixels, digits.target[:400])
    folder.mkdir()
    (folder / "mnist-sklearn.pkl").write_bytes(pickle.dumps(model))
    return model


def test_the_mnist_sample_runs_a_command_node_then_a_parallel_node(cluster, tmp_path):
    shutil.copytree(SAMPLES / "mnist", tmp_path / "mnist")
    model = _digits_model(tmp_path / "mnist" / "mnist_models")
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
