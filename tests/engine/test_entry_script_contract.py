"""The entry-script contract, through run_job with real worker processes and real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from parallelrun import ConfigurationError, Dataset, EntryScriptError, ParallelRunConfig, run_job


def config(src: Path, **overrides) -> ParallelRunConfig:
    values = dict(source_directory=str(src), entry_script="score.py", mini_batch_size="3",
                  error_threshold=-1, output_action="append_row", process_count_per_node=2,
                  run_invocation_timeout=30)
    values.update(overrides)
    return ParallelRunConfig(**values)


def rows(result) -> list[str]:
    return Path(result.output_file).read_text().splitlines()


def test_files_in_list_out_one_line_per_item(make_script, make_files, tmp_path):
    src = make_script("""
        import os
        def init():
            pass
        def run(mini_batch):
            return [f"{os.path.basename(p)}: {open(p).read()}" for p in mini_batch]
    """)
    data = make_files(10)
    result = run_job(config(src), [Dataset.File.from_files(f"{data}/*.txt")], tmp_path / "out")
    assert result.status == "Finished"
    assert sorted(rows(result)) == sorted(f"item_{i:04d}.txt: {i}" for i in range(10))
    assert (result.minibatches_total, result.minibatches_succeeded) == (4, 4)
    assert (result.items_succeeded, result.items_failed) == (10, 0)


def test_arguments_reach_argparse_in_init_and_sibling_files_by_file(make_script, make_files, tmp_path):
    src = make_script("""
        import argparse, os
        def init():
            global threshold, labels
            parser = argparse.ArgumentParser()
            parser.add_argument("--threshold", type=float)
            args, _ = parser.parse_known_args()
            threshold = args.threshold
            here = os.path.dirname(os.path.realpath(__file__))
            labels = open(os.path.join(here, "labels.txt")).read().split()
        def run(mini_batch):
            return [f"{threshold} {labels[int(open(p).read())]} {os.getcwd() == os.path.dirname(__file__)}"
                    for p in mini_batch]
    """)
    (src / "labels.txt").write_text("zero one two")
    data = make_files(3)
    result = run_job(config(src), [Dataset.File.from_files(str(data))], tmp_path / "out",
                     arguments=["--threshold", "0.5"])
    assert sorted(rows(result)) == ["0.5 one True", "0.5 two True", "0.5 zero True"]


def test_init_once_per_worker_and_shutdown_called(make_script, make_files, tmp_path):
    # init() and shutdown() each append a line to a file named after the worker's pid: a worker
    # that called init() per mini-batch (12 of them here) would hold several lines
    src = make_script("""
        import os
        from parallelrun import EntryScript
        def calls(what):
            return os.path.join(EntryScript().output_dir, f"{what}-{os.getpid()}")
        def init():
            with open(calls("init"), "a") as fh:
                fh.write("init\\n")
            EntryScript().logger.info("init in %s", os.getpid())
        def run(mini_batch):
            return [str(os.getpid())] * len(mini_batch)
        def shutdown():
            with open(calls("shutdown"), "a") as fh:
                fh.write("shutdown\\n")
    """)
    data = make_files(12)
    out = tmp_path / "out"
    result = run_job(config(src, mini_batch_size=1), [Dataset.File.from_files(str(data))], out)
    assert result.status == "Finished" and result.minibatches_succeeded == 12
    ran = set(rows(result))
    inits = {p.name.split("-")[1]: p.read_text() for p in out.glob("init-*")}
    shutdowns = {p.name.split("-")[1]: p.read_text() for p in out.glob("shutdown-*")}
    # two workers (process_count_per_node=2), none replaced: init() once in each, shutdown()
    # once in each, and every worker that ran a mini-batch is one of them
    assert inits == {pid: "init\n" for pid in inits} and len(inits) == 2
    assert shutdowns == {pid: "shutdown\n" for pid in inits}
    assert ran and ran <= set(inits)
    logs = list((out / "logs/user/entry_script_log/node0").glob("*.log.txt"))
    text = "".join(p.read_text() for p in logs)
    assert "|ParallelRunStep.EntryScript|INFO|" in text and "|init()|init in" in text


def test_dataframe_result_rows_space_separated(make_script, make_files, tmp_path):
    src = make_script("""
        import os
        import pandas as pd
        def init(): pass
        def run(mini_batch):
            return pd.DataFrame({"file": [os.path.basename(p) for p in mini_batch],
                                 "value": [int(open(p).read()) * 10 for p in mini_batch]})
    """)
    data = make_files(4)
    result = run_job(config(src), [Dataset.File.from_files(str(data))], tmp_path / "out")
    assert sorted(rows(result)) == [f"item_{i:04d}.txt {i * 10}" for i in range(4)]


def test_summary_only_counts_but_writes_no_rows(make_script, make_files, tmp_path):
    src = make_script("""
        import os
        from parallelrun import EntryScript
        def init(): pass
        def run(mini_batch):
            for p in mini_batch:
                open(os.path.join(EntryScript().output_dir, os.path.basename(p) + ".done"), "w").close()
            return mini_batch[:-1]
    """)
    data = make_files(6)
    out = tmp_path / "out"
    result = run_job(config(src, output_action="summary_only"), [Dataset.File.from_files(str(data))], out)
    assert result.output_file is None and not (out / "parallel_run_step.txt").exists()
    assert len(list(out.glob("*.done"))) == 6
    assert (result.items_succeeded, result.items_failed) == (4, 2)


def test_a_batch_deployment_script_writes_to_azureml_bi_output_path(make_script, make_files,
                                                                      tmp_path):
    # Azure ML batch endpoints' scoring scripts read the output folder in init()
    src = make_script("""
        import os
        def init():
            global output_path
            output_path = os.environ["AZUREML_BI_OUTPUT_PATH"]
        def run(mini_batch):
            for p in mini_batch:
                with open(os.path.join(output_path, os.path.basename(p) + ".csv"), "w") as fh:
                    fh.write(open(p).read())
            return mini_batch
    """)
    out = tmp_path / "out"
    result = run_job(config(src, output_action="summary_only"),
                     [Dataset.File.from_files(str(make_files(5)))], out)
    assert result.status == "Finished"
    assert sorted(p.read_text() for p in out.glob("*.csv")) == [str(i) for i in range(5)]


@pytest.mark.parametrize("body, message", [
    ("def run(mb): return mb\n", "does not define init()"),
    ("def init(): pass\n", "does not define run()"),
    ("def init(:\n", "syntax error at line 1"),
])
def test_script_without_init_run_or_broken_is_rejected_before_work(make_script, make_files, tmp_path,
                                                                   body, message):
    src = make_script(body)
    with pytest.raises(EntryScriptError, match=message):
        run_job(config(src), [Dataset.File.from_files(str(make_files(2)))], tmp_path / "out")
    assert not (tmp_path / "out" / "parallel_run_step.txt").exists()


def test_script_that_fails_to_import_fails_the_job_with_its_traceback(make_script, make_files, tmp_path):
    src = make_script("""
        import module_that_does_not_exist
        def init(): pass
        def run(mb): return mb
    """)
    result = run_job(config(src), [Dataset.File.from_files(str(make_files(2)))], tmp_path / "out")
    assert result.status == "Failed"
    assert "could not be imported" in result.error and "module_that_does_not_exist" in result.error
    assert result.minibatches_succeeded == 0
    assert "module_that_does_not_exist" in (tmp_path / "out/logs/job_error.txt").read_text()


def test_init_failing_every_time_fails_the_job_with_the_init_traceback(make_script, make_files, tmp_path):
    src = make_script("""
        def init():
            raise RuntimeError("model file is corrupt")
        def run(mb): return mb
    """)
    result = run_job(config(src), [Dataset.File.from_files(str(make_files(2)))], tmp_path / "out")
    assert result.status == "Failed"
    assert "init() failed 6 times" in result.error and "model file is corrupt" in result.error


def test_wrong_return_type_is_a_clear_error_naming_script_and_value(make_script, make_files, tmp_path):
    src = make_script("""
        def init(): pass
        def run(mb): return {"not": "a list"}
    """)
    result = run_job(config(src, error_threshold=0, run_max_try=1),
                     [Dataset.File.from_files(str(make_files(3)))], tmp_path / "out")
    assert result.status == "Failed"
    assert "run() in score.py returned dict" in result.error
    assert "a list" in result.error and "DataFrame" in result.error


def test_local_backend_refuses_several_nodes_and_points_at_ray(make_script, make_files, tmp_path):
    from parallelrun import BackendError

    src = make_script("def init(): pass\ndef run(mb): return mb\n")
    with pytest.raises(BackendError, match="node_count=2.*local backend.*Ray"):
        run_job(config(src, node_count=2), [Dataset.File.from_files(str(make_files(1)))], tmp_path / "out")
    assert not (tmp_path / "out" / "parallel_run_step.txt").exists()


@pytest.mark.parametrize("cores, workers, threads", [
    (8, 2, "4"),    # the cores split evenly
    (8, 3, "2"),    # rounded down: 3 x 2 threads on 8 cores, never more threads than cores
    (2, 4, "1"),    # more workers than cores: one thread each, never 0
])
def test_workers_share_the_cores_between_thread_pools(make_script, make_files, tmp_path,
                                                      monkeypatch, cores, workers, threads):
    # the coordinator's core count, not this machine's, so the split is seen on any machine
    import os

    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    src = make_script("""
        import os
        def init(): pass
        def run(mini_batch):
            sizes = {os.environ.get(name) for name in
                     ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
            return [" ".join(sorted(map(str, sizes)))] * len(mini_batch)
    """)
    result = run_job(config(src, process_count_per_node=workers),
                     [Dataset.File.from_files(str(make_files(2)))], tmp_path / "out")
    assert set(rows(result)) == {threads}
    # the user's own setting wins
    mine = run_job(config(src, process_count_per_node=workers,
                          environment_variables={"OMP_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "3",
                                                 "MKL_NUM_THREADS": "3"}),
                   [Dataset.File.from_files(str(make_files(2)))], tmp_path / "out2")
    assert set(rows(mine)) == {"3"}


def test_side_inputs_reach_every_worker_whole_by_name(make_script, make_files, tmp_path):
    src = make_script("""
        import os
        from azureml.core import Run
        def init():
            global labels, scale
            folder = Run.get_context().input_datasets["labels"]
            labels = open(os.path.join(folder, "labels.txt")).read().split()
            scale = open(os.path.join(os.environ["AZUREML_DATAREFERENCE_scale"], "scale.txt")).read()
        def run(mini_batch):
            return [f"{labels[int(open(p).read())]} x{scale}" for p in mini_batch]
    """)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "labels.txt").write_text("zero one two")
    (tmp_path / "scale").mkdir()
    (tmp_path / "scale" / "scale.txt").write_text("10")
    data = make_files(3)
    side = [Dataset.File.from_files(str(tmp_path / "labels")).as_named_input("labels"),
            Dataset.File.from_files(str(tmp_path / "scale" / "*.txt")).as_named_input("scale")]
    result = run_job(config(src), [Dataset.File.from_files(str(data))], tmp_path / "out",
                     side_inputs=side)
    assert sorted(rows(result)) == ["one x10", "two x10", "zero x10"]
    with pytest.raises(ConfigurationError, match="side_inputs.*nowhere.*existing local file"):
        run_job(config(src), [Dataset.File.from_files(str(data))], tmp_path / "out2",
                side_inputs={"labels": str(tmp_path / "nowhere")})
