"""Running pipelines: data passed along three steps, independent steps at once, failures, and
runs seen from other processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from parallelrun import (Dataset, Experiment, JobFailedError, ParallelRunStep, Pipeline,
                         PipelineData, PythonScriptStep, Run)

from pipeline_helpers import rows_of

CLI = [sys.executable, "-m", "parallelrun.cli.__main__"]

PREP = """
import argparse, os, shutil
parser = argparse.ArgumentParser()
parser.add_argument("--raw"); parser.add_argument("--out")
args = parser.parse_args()
for name in sorted(os.listdir(args.raw)):
    value = int(open(os.path.join(args.raw, name)).read())
    with open(os.path.join(args.out, name), "w") as fh:
        fh.write(str(value * 10))
print(f"prep wrote {len(os.listdir(args.out))} files")
"""

REPORT = """
import argparse, os
parser = argparse.ArgumentParser()
parser.add_argument("--scores"); parser.add_argument("--out")
args = parser.parse_args()
assert os.environ["AZUREML_DATAREFERENCE_scores"] == args.scores
lines = open(os.path.join(args.scores, "parallel_run_step.txt")).read().split("\\n")
values = [int(line.split()[1]) for line in lines if line]
with open(os.path.join(args.out, "summary.json"), "w") as fh:
    fh.write('{"count": %d, "total": %d}' % (len(values), sum(values)))
print(f"report: count={len(values)} total={sum(values)}")
"""


def test_three_steps_pass_their_data_along(ws, make_script, make_files, score_config, tmp_path):
    scripts = make_script(PREP, name="prep.py")
    make_script(REPORT, name="report.py")
    raw = Dataset.File.from_files(path=str(make_files(7, folder="raw")))
    images, scores, report = PipelineData("images"), PipelineData("scores"), PipelineData("report")
    prep_step = PythonScriptStep(script_name="prep.py", name="prep", source_directory=str(scripts),
                                 arguments=["--raw", raw.as_named_input("raw").as_mount(),
                                            "--out", images],
                                 inputs=[raw], outputs=[images])
    score_step = ParallelRunStep(name="score", parallel_run_config=score_config(), inputs=[images],
                                 output=scores, arguments=["--scale", "2"])
    report_step = PythonScriptStep(script_name="report.py", name="report",
                                   source_directory=str(scripts),
                                   arguments=["--scores", scores, "--out", report],
                                   inputs=[scores], outputs=[report])
    pipeline = Pipeline(workspace=ws, steps=[report_step, score_step, prep_step])
    run = Experiment(ws, "three-steps").submit(pipeline)
    assert run.wait_for_completion(show_output=True) == "Finished"

    assert [s.name for s in run.get_steps()] == ["prep", "score", "report"]
    assert all(s.get_status() == "Finished" for s in run.get_steps())
    score_run = run.find_step_run("score")[0]
    assert rows_of(os.path.join(score_run.get_output_data("scores").local_path,
                                "parallel_run_step.txt")) == \
        sorted(f"item_{i:04d}.txt {i * 20}" for i in range(7))
    counts = score_run.get_counts()
    assert counts["items_succeeded"] == 7 and counts["minibatches_total"] == 4
    assert sorted(score_run.get_metrics()["batch_size"]) == [1, 2, 2, 2]
    folder = run.find_step_run("report")[0].get_output_data("report").download(tmp_path / "got")
    assert json.loads(open(os.path.join(folder, "summary.json")).read()) == \
        {"count": 7, "total": sum(i * 20 for i in range(7))}
    details = run.get_details()
    assert details["status"] == "Finished" and details["endTimeUtc"]
    assert [s["dependsOn"] for s in details["steps"]] == [[], ["prep"], ["score"]]
    log = open(os.path.join(run.run_dir, "run.log")).read()
    assert "[prep] prep wrote 7 files" in log and "[report] report: count=7 total=420" in log


def test_independent_steps_run_at_the_same_time(ws, make_files, score_config):
    steps = []
    for name in ("left", "right"):
        data = Dataset.File.from_files(path=str(make_files(2, folder=name)))
        steps.append(ParallelRunStep(name=name, parallel_run_config=score_config(), inputs=[data],
                                     arguments=["--delay", "1.5"], allow_reuse=False))
    run = Experiment(ws, "parallel-steps").submit(Pipeline(workspace=ws, steps=steps))
    assert run.wait_for_completion() == "Finished"
    left, right = (run.find_step_run(n)[0].get_details() for n in ("left", "right"))
    # each step's time span overlaps the other's: they ran at once, not one after the other
    assert left["startTimeUtc"] < right["endTimeUtc"] and right["startTimeUtc"] < left["endTimeUtc"]


def test_a_failed_step_fails_the_run_with_its_traceback_and_stops_what_follows(
        ws, make_script, make_files, score_config):
    scripts = make_script("""
        def init(): pass
        def run(mini_batch):
            return lookup(mini_batch)
        def lookup(mini_batch):
            raise KeyError("label_map")
    """, name="broken.py")
    make_script(REPORT, name="report.py")
    data = Dataset.File.from_files(path=str(make_files(3)))
    scores = PipelineData("scores")
    score = ParallelRunStep(name="score", parallel_run_config=score_config(entry_script="broken.py"),
                            inputs=[data], output=scores)
    report = PythonScriptStep(script_name="report.py", name="report", source_directory=str(scripts),
                              arguments=["--scores", scores, "--out", "."], inputs=[scores])
    run = Experiment(ws, "failing").submit(Pipeline(workspace=ws, steps=[score, report]))
    with pytest.raises(JobFailedError) as info:
        run.wait_for_completion()
    assert "step 'score' failed" in str(info.value) and "KeyError: 'label_map'" in str(info.value)
    assert "in lookup" in str(info.value)  # the script's own frame, not a bare exit code
    assert run.get_status() == "Failed"
    assert run.wait_for_completion(raise_on_error=False) == "Failed"
    report_run = run.find_step_run("report")[0]
    assert report_run.get_status() == "NotStarted"
    assert report_run.get_details()["error"] == "not run: step 'score' failed"

    shown = subprocess.run([*CLI, "run", "show", run.id], capture_output=True, text=True,
                           timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "Failed" in shown.stdout and "KeyError: 'label_map'" in shown.stdout


def test_the_run_goes_on_after_the_submitter_exits_and_other_processes_see_it(
        ws, make_files, score_config, score_script, tmp_path):
    make_files(4)
    submitter = tmp_path / "submit.py"
    submitter.write_text(textwrap.dedent(f"""
        import os
        from parallelrun import (Dataset, Experiment, ParallelRunConfig, ParallelRunStep,
                                 Pipeline, Workspace)
        ws = Workspace.from_config()
        config = ParallelRunConfig(source_directory="scripts", entry_script="score.py",
                                   mini_batch_size="2", error_threshold=0,
                                   output_action="append_row", process_count_per_node=1)
        step = ParallelRunStep(name="score", parallel_run_config=config,
                               inputs=[Dataset.File.from_files(path="data")],
                               arguments=["--delay", "1"])
        run = Experiment(ws, "detached").submit(Pipeline(workspace=ws, steps=[step]))
        print(run.id, os.getpid(), flush=True)
    """))
    done = subprocess.run([sys.executable, str(submitter)], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run_id, submitter_pid = done.stdout.split()
    listed = subprocess.run([*CLI, "run", "list", "--json"], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    [record] = json.loads(listed.stdout)
    assert record["id"] == run_id and record["status"] in ("Queued", "Running", "Finished")
    run = Run.get(ws, run_id)
    assert run.wait_for_completion(timeout_seconds=120) == "Finished"
    assert str(run.get_details()["runner"]["pid"]) != submitter_pid
    watched = subprocess.run([*CLI, "run", "watch", run_id[:-3]], capture_output=True, text=True,
                             timeout=60, cwd=tmp_path)
    assert watched.returncode == 0 and f"Run {run_id}: Finished" in watched.stdout
    # a step without an output PipelineData writes into its folder of the run
    assert len(rows_of(os.path.join(run.run_dir, "steps", "score", "output",
                                    "parallel_run_step.txt"))) == 4


def test_side_inputs_reach_every_worker_whole(ws, make_script, make_files, score_config, tmp_path):
    scripts = make_script("""
        import argparse, os
        def init():
            global labels
            parser = argparse.ArgumentParser(); parser.add_argument("--labels")
            args, _ = parser.parse_known_args()
            assert os.environ["AZUREML_DATAREFERENCE_labels"] == args.labels
            labels = dict(line.split(",") for line in open(args.labels).read().split())
        def run(mini_batch):
            return [f"{os.path.basename(p)} {labels[os.path.basename(p)]}" for p in mini_batch]
    """, name="label.py")
    (tmp_path / "labels.csv").write_text("".join(f"item_{i:04d}.txt,L{i}\n" for i in range(5)))
    labels = Dataset.File.from_files(path=str(tmp_path / "labels.csv")).as_named_input("labels")
    data = Dataset.File.from_files(path=str(make_files(5)))
    step = ParallelRunStep(name="label", parallel_run_config=score_config(entry_script="label.py"),
                           inputs=[data], side_inputs=[labels], arguments=["--labels", labels],
                           output=PipelineData("labelled"))
    run = Experiment(ws, "side-inputs").submit(Pipeline(workspace=ws, steps=[step]))
    assert run.wait_for_completion() == "Finished"
    out = run.find_step_run("label")[0].get_output_data("labelled").local_path
    assert rows_of(os.path.join(out, "parallel_run_step.txt")) == \
        [f"item_{i:04d}.txt L{i}" for i in range(5)]
