"""v2-style job files: `parallelrun job submit job.yml --stream`, and files with mistakes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from parallelrun import Run, load_job
from parallelrun.pipeline.yaml_job import JobSpecError

from pipeline_helpers import rows_of

CLI = [sys.executable, "-m", "parallelrun.cli.__main__"]

SCORE_WITH_MODEL = """
import argparse, os
def init():
    global offset, scale
    parser = argparse.ArgumentParser()
    parser.add_argument("--model"); parser.add_argument("--scale", type=int)
    args, _ = parser.parse_known_args()
    assert args.model == os.environ["AZUREML_MODEL_DIR"]
    offset = int(open(os.path.join(args.model, "offset.txt")).read())
    scale = args.scale
def run(mini_batch):
    return [f"{os.path.basename(p)} {int(open(p).read()) * scale + offset}" for p in mini_batch]
"""

JOB = """\
$schema: https://azuremlschemas.azureedge.net/latest/parallelJob.schema.json
type: parallel
display_name: Score items
experiment_name: yaml-jobs
inputs:
  items:
    type: uri_folder
    path: ./data
  model:
    type: custom_model
    path: ./model
  scale: 3
outputs:
  scores:
    type: uri_folder
input_data: ${{inputs.items}}
mini_batch_size: "2"
mini_batch_error_threshold: 0
error_threshold: 0
logging_level: DEBUG
resources:
  instance_count: 1
max_concurrency_per_instance: 2
retry_settings:
  max_retries: 1
  timeout: 30
environment_variables:
  SCORING_MODE: test
task:
  type: run_function
  code: ./src
  entry_script: score.py
  program_arguments: --model ${{inputs.model}} --scale ${{inputs.scale}}
  append_row_to: ${{outputs.scores}}
"""


@pytest.fixture
def job_folder(ws, make_script, make_files, tmp_path):
    make_script(SCORE_WITH_MODEL, folder="src")
    make_files(5)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "offset.txt").write_text("1")
    (tmp_path / "job.yml").write_text(JOB)
    return tmp_path


def test_a_job_file_runs_from_the_terminal(job_folder):
    done = subprocess.run([*CLI, "job", "submit", "job.yml", "--stream"], capture_output=True,
                          text=True, timeout=180, cwd=job_folder)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "submitted run yaml-jobs_" in done.stdout and "Finished" in done.stdout
    run_id = done.stdout.split("submitted run ")[1].split()[0]
    from parallelrun import Workspace

    run = Run.get(Workspace.from_config(str(job_folder)), run_id)
    [step] = run.get_steps()
    assert step.name == "score-items"
    output = step.get_output_data("scores").local_path
    assert rows_of(os.path.join(output, "parallel_run_step.txt")) == \
        sorted(f"item_{i:04d}.txt {i * 3 + 1}" for i in range(5))
    job = load_job(job_folder / "job.yml")
    config = job.to_pipeline(run.workspace).steps[0].parallel_run_config
    # the v2 keys map onto ParallelRunConfig
    assert (config.run_max_try, config.run_invocation_timeout, config.allowed_failed_count,
            config.process_count_per_node, config.logging_level, config.output_action) == \
        (2, 30, 0, 2, "DEBUG", "append_row")
    assert config.environment_variables == {"SCORING_MODE": "test"}


BROKEN = """\
type: paralel
inputs:
  items:
    type: uri_folder
    path: ./data
outputs:
  scores: {type: uri_folder}
input_data: ${{inputs.images}}
mini_batch_sise: "2"
mini_batch_size: ten
retry_settings:
  max_retries: -1
  timeout: 0
resources:
  instance_count: 0
task:
  type: run_function
  code: ./src
  entry_script: scoring.py
  program_arguments: --threshold ${{inputs.threshold}}
  append_row_to: ${{outputs.results}}
"""


def test_a_job_file_with_mistakes_lists_each_with_its_line(job_folder):
    (job_folder / "broken.yml").write_text(BROKEN)
    done = subprocess.run([*CLI, "job", "submit", "broken.yml"], capture_output=True, text=True,
                          timeout=60, cwd=job_folder)
    assert done.returncode == 2
    err = " ".join(done.stderr.split())  # rich wraps long lines
    for expected in [
        "broken.yml:1: type: 'paralel': a parallel job needs 'type: parallel'",
        "broken.yml:8: input_data: inputs.images is not defined; inputs: items",
        "broken.yml:9: mini_batch_sise: unknown key; did you mean 'mini_batch_size'?",
        "broken.yml:10: mini_batch_size: 'ten': a count of files",
        "broken.yml:12: retry_settings.max_retries: -1: retries of a mini-batch after its first "
        "try, an integer >= 0",
        "broken.yml:13: retry_settings.timeout: 0: seconds one run() may take, > 0",
        "broken.yml:15: resources.instance_count: 0: the number of nodes, an integer >= 1 and "
        "<= 1024",
        "broken.yml:19: task.entry_script: 'scoring.py': no such file in",
        "broken.yml:20: task.program_arguments: ${{inputs.threshold}} names no input",
        "broken.yml:21: task.append_row_to: outputs.results is not defined; outputs: scores",
    ]:
        assert expected in err, (expected, err)
    from parallelrun.pipeline.records import RunStore
    from parallelrun import Workspace

    assert RunStore(Workspace.from_config(str(job_folder))).runs() == []  # nothing was submitted


def test_workspace_names_a_job_uses_are_checked_with_their_line(job_folder, ws):
    text = JOB.replace("path: ./model", "path: azureml:no-such-model:1").replace(
        "type: parallel\n", "type: parallel\ncompute: azureml:gpu-cluster\n")
    (job_folder / "names.yml").write_text(text)
    with pytest.raises(JobSpecError) as info:
        load_job(job_folder / "names.yml").to_pipeline(ws)
    lines = {(line, key) for line, key, _ in info.value.problems}
    assert (3, "compute") in lines and (12, "inputs.model.path") in lines
    assert "registered: local" in str(info.value)


def test_unparsable_yaml_names_its_line(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text(textwrap.dedent("""\
        type: parallel
        task:
          code: ./src
         entry_script: x.py
    """))
    with pytest.raises(JobSpecError, match=r"bad.yml:4: yaml: the file does not parse"):
        load_job(path)


TABLE_JOB = """\
type: parallel
inputs:
  sales:
    type: mltable
    path: ./sales
outputs:
  totals:
    type: uri_file
    path: ./results/totals.txt
input_data: ${{inputs.sales}}
mini_batch_size: 1KB
task:
  code: ./src
  entry_script: totals.py
  append_row_to: ${{outputs.totals}}
"""

TOTALS = """
def init(): pass
def run(mini_batch):
    mini_batch["total"] = mini_batch["price"] * mini_batch["count"]
    return mini_batch[["item", "total"]]
"""


def test_a_table_job_reads_an_mltable_folder_and_writes_a_local_output_file(
        ws, make_script, tmp_path):
    from parallelrun import Experiment

    make_script(TOTALS, name="totals.py", folder="src")
    (tmp_path / "sales").mkdir()
    (tmp_path / "sales" / "MLTable").write_text(
        "paths:\n  - pattern: ./*.csv\ntransformations:\n  - read_delimited:\n"
        "      delimiter: ';'\n      header: all_files_same_headers\n")
    (tmp_path / "sales" / "a.csv").write_text("item;price;count\napple;2;3\npear;5;1\n")
    (tmp_path / "sales" / "b.csv").write_text("item;price;count\nplum;1;7\n")
    (tmp_path / "table.yml").write_text(TABLE_JOB)
    job = load_job(tmp_path / "table.yml")
    assert job.step_name == "parallel-job"  # no name in the file
    run = Experiment(ws, "tables").submit(job)
    assert run.wait_for_completion() == "Finished"
    assert rows_of(tmp_path / "results" / "totals.txt") == ["apple 6", "pear 5", "plum 7"]


def test_access_modes_are_azure_mls_and_each_has_its_local_meaning(job_folder):
    text = JOB.replace("    path: ./data\n", "    path: ./data\n    mode: ro_mount\n").replace(
        "  scores:\n    type: uri_folder\n", "  scores:\n    type: uri_folder\n    mode: upload\n")
    (job_folder / "modes.yml").write_text(text)
    assert load_job(job_folder / "modes.yml") is not None    # accepted as written
    (job_folder / "bad.yml").write_text(text.replace("mode: upload", "mode: rw_mnt").replace(
        "mode: ro_mount", "mode: mount"))
    with pytest.raises(JobSpecError) as info:
        load_job(job_folder / "bad.yml")
    message = str(info.value)
    assert "outputs.scores.mode" in message and "'rw_mnt': one of rw_mount, upload, direct" in message
    assert "inputs.items.mode" in message and "'mount': one of ro_mount" in message
