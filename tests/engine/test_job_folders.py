"""What a job may delete, replace and resume: only its own files, only the same job."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

from parallelrun import (ConfigurationError, Dataset, FolderInUseError, ParallelRunConfig,
                         ResumeMismatchError, run_job)
from parallelrun.engine.job_folders import MARKER_NAME
from fixtures.waiting import wait_for

SCORE = """
    import os, time
    def init(): pass
    def run(mini_batch):
        if os.environ.get("SLOW"):
            time.sleep(float(os.environ["SLOW"]))
        return [int(open(p).read()) for p in mini_batch]
"""


def config(src, **overrides) -> ParallelRunConfig:
    values = dict(source_directory=str(src), entry_script="score.py", mini_batch_size=2,
                  error_threshold=-1, output_action="append_row", process_count_per_node=1)
    values.update(overrides)
    return ParallelRunConfig(**values)


def rows(result) -> list[int]:
    with open(result.output_file) as fh:
        return sorted(int(line) for line in fh)


def user_files(folder, names=("notes.txt", "script.py")) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text(f"the user's own {name}")
    return {name: (folder / name).read_text() for name in names}


def still_there(folder, files: dict) -> bool:
    return all((folder / name).read_text() == text for name, text in files.items())


def test_a_log_folder_holding_the_users_files_is_refused_and_kept(make_script, make_files,
                                                                   tmp_path):
    src, data = make_script(SCORE), make_files(4)
    precious = user_files(tmp_path / "precious")
    with pytest.raises(ConfigurationError, match="did not write"):
        run_job(config(src), [str(data)], tmp_path / "out", log_dir=tmp_path / "precious")
    assert still_there(tmp_path / "precious", precious)
    assert not (tmp_path / "precious" / MARKER_NAME).exists()


def test_a_log_folder_of_the_current_folder_is_refused(make_script, make_files, tmp_path):
    src, data = make_script(SCORE), make_files(4)
    work = user_files(tmp_path, ("notes.txt",))
    with pytest.raises(ConfigurationError, match="log_dir"):
        run_job(config(src), [str(data)], tmp_path / "out", log_dir=tmp_path)
    assert still_there(tmp_path, work) and (src / "score.py").exists() and len(list(data.iterdir())) == 4


@pytest.mark.parametrize("output, log_dir", [("results.txt", None), ("results.txt/a/b", None),
                                             ("out", "results.txt/logs")])
def test_an_output_or_log_folder_at_or_under_a_file_is_refused_and_the_file_kept(
        make_script, make_files, tmp_path, output, log_dir):
    src, data = make_script(SCORE), make_files(4)
    (tmp_path / "results.txt").write_text("the user's results")
    with pytest.raises(ConfigurationError, match="results.txt") as refused:
        run_job(config(src), [str(data)], tmp_path / output,
                log_dir=log_dir and tmp_path / log_dir)
    assert "file" in str(refused.value)
    assert (tmp_path / "results.txt").read_text() == "the user's results"


def test_the_users_files_in_the_output_folder_survive_jobs_and_overwrite(make_script, make_files,
                                                                         tmp_path):
    src, data = make_script(SCORE), make_files(4)
    mine = user_files(tmp_path / "out")
    first = run_job(config(src), [str(data)], tmp_path / "out")
    assert first.status == "Finished" and rows(first) == [0, 1, 2, 3]
    (tmp_path / "out" / "logs" / "my_notes.txt").write_text("kept")
    again = run_job(config(src), [str(make_files(6, folder="more"))], tmp_path / "out",
                    overwrite=True)
    assert again.status == "Finished" and rows(again) == list(range(6))
    assert still_there(tmp_path / "out", mine)
    assert (tmp_path / "out" / "logs" / "my_notes.txt").read_text() == "kept"


def test_logs_folder_in_output_without_marker_is_refused_even_with_overwrite(make_script,
                                                                            make_files, tmp_path):
    src, data = make_script(SCORE), make_files(4)
    theirs = user_files(tmp_path / "out" / "logs", ("sys", "notes.txt"))
    for overwrite in (False, True):
        with pytest.raises(ConfigurationError, match="did not write"):
            run_job(config(src), [str(data)], tmp_path / "out", overwrite=overwrite)
    assert still_there(tmp_path / "out" / "logs", theirs)


def test_a_second_job_into_a_used_output_folder_is_refused(make_script, make_files, tmp_path):
    src, data = make_script(SCORE), make_files(4)
    first = run_job(config(src), [str(data)], tmp_path / "out")
    before = (tmp_path / "out" / "parallel_run_step.txt").read_bytes()
    with pytest.raises(ConfigurationError) as refused:
        run_job(config(src), [str(make_files(6, folder="other"))], tmp_path / "out")
    message = str(refused.value)
    assert str(tmp_path / "out") in message and "parallel_run_step.txt" in message
    assert "overwrite" in message and "resume" in message
    assert (tmp_path / "out" / "parallel_run_step.txt").read_bytes() == before
    assert rows(first) == [0, 1, 2, 3]


def test_a_summary_only_job_with_earlier_logs_is_refused(make_script, make_files, tmp_path):
    src, data = make_script(SCORE), make_files(2)
    run_job(config(src, output_action="summary_only"), [str(data)], tmp_path / "out")
    with pytest.raises(ConfigurationError, match="logs in"):
        run_job(config(src, output_action="summary_only"), [str(data)], tmp_path / "out")


def test_resume_and_overwrite_together_are_refused(make_script, make_files, tmp_path):
    with pytest.raises(ConfigurationError, match="not both"):
        run_job(config(make_script(SCORE)), [str(make_files(2))], tmp_path / "out",
                resume=True, overwrite=True)


def _first_job_then_resume(make_script, make_files, tmp_path, change):
    src, data = make_script(SCORE), make_files(6)
    base = dict(mini_batch_size=2)
    run_job(config(src, **base), [str(data)], tmp_path / "out", ["--threshold", "1"])
    kwargs = dict(inputs=[str(data)], arguments=["--threshold", "1"])
    field = change(src, data, base, kwargs, tmp_path)
    with pytest.raises(ResumeMismatchError) as refused:
        run_job(config(src, **base), kwargs["inputs"], tmp_path / "out", kwargs["arguments"],
                resume=True)
    return field, refused.value


@pytest.mark.parametrize("field", ["entry_script", "arguments", "mini_batch_size", "output_action",
                                   "append_row_format", "append_row_file_name", "inputs"])
def test_a_resume_with_another_job_is_refused_naming_the_field(make_script, make_files,
                                                                tmp_path, field):
    def change(src, data, base, kwargs, tmp_path):
        if field == "entry_script":
            (src / "score.py").write_text((src / "score.py").read_text() + "\n# changed\n")
        elif field == "arguments":
            kwargs["arguments"] = ["--threshold", "2"]
        elif field == "mini_batch_size":
            base["mini_batch_size"] = 3
        elif field == "output_action":
            base["output_action"] = "summary_only"
        elif field == "append_row_format":
            base["append_row_format"] = "csv"
            base["append_row_file_name"] = "parallel_run_step.txt"
        elif field == "append_row_file_name":
            base["append_row_file_name"] = "scores.txt"
        elif field == "inputs":
            kwargs["inputs"] = [str(make_files(6, folder="elsewhere"))]
        return field

    before = (tmp_path / "out").exists()
    name, error = _first_job_then_resume(make_script, make_files, tmp_path, change)
    assert not before
    assert name in [d[0] for d in error.differences]
    assert name in str(error) and "was" in str(error) and "now" in str(error)
    assert rows_in(tmp_path / "out" / "parallel_run_step.txt") == list(range(6))


def test_a_resume_with_other_partition_keys_is_refused(make_script, tmp_path):
    (tmp_path / "t.csv").write_text("id,region\n" + "".join(f"{i},{'eu' if i % 2 else 'us'}\n"
                                                          for i in range(10)))
    src = make_script("""
        def init(): pass
        def run(df): return df
    """)
    ds = Dataset.Tabular.from_delimited_files(str(tmp_path / "t.csv"))
    run_job(config(src, mini_batch_size=None, partition_keys=["region"]), [ds], tmp_path / "out")
    with pytest.raises(ResumeMismatchError, match="partition_keys"):
        run_job(config(src, mini_batch_size=None, partition_keys=["id"]), [ds], tmp_path / "out",
                resume=True)


def rows_in(path) -> list[int]:
    return sorted(int(line) for line in path.read_text().split())


def test_two_jobs_on_one_output_folder_the_second_is_refused(make_script, make_files, tmp_path):
    src, data = make_script(SCORE), make_files(6)
    slow = config(src, environment_variables={"SLOW": "0.5"})
    results = []
    first = threading.Thread(target=lambda: results.append(
        run_job(slow, [str(data)], tmp_path / "out")))
    first.start()
    wait_for(lambda: (tmp_path / "out" / "logs" / "sys" / "journal.txt").exists(), timeout=60)
    with pytest.raises(FolderInUseError) as refused:
        run_job(config(src), [str(data)], tmp_path / "out", overwrite=True)
    assert "pid" in str(refused.value) and "started" in str(refused.value)
    first.join(120)
    assert results[0].status == "Finished" and rows(results[0]) == list(range(6))


def test_the_lock_of_a_killed_job_does_not_block_its_resume(make_script, make_files, tmp_path):
    src, data = make_script(SCORE), make_files(6)
    code = (f"from parallelrun import run_job, ParallelRunConfig\n"
            f"run_job(ParallelRunConfig(source_directory={str(src)!r}, entry_script='score.py', "
            f"mini_batch_size=1, error_threshold=-1, output_action='append_row', "
            f"process_count_per_node=1, environment_variables={{'SLOW': '30'}}), "
            f"[{str(data)!r}], {str(tmp_path / 'out')!r})\n")
    proc = subprocess.Popen([sys.executable, "-c", code])
    wait_for(lambda: (tmp_path / "out" / "logs" / "sys" / "journal.txt").exists(), timeout=60)
    proc.kill()
    proc.wait()
    resumed = run_job(config(src, mini_batch_size=1), [str(data)], tmp_path / "out", resume=True)
    assert resumed.status == "Finished" and rows(resumed) == list(range(6))


def test_failures_are_in_the_result_with_the_traceback_file(make_script, make_files, tmp_path):
    src = make_script("""
        def init(): pass
        def run(mini_batch):
            numbers = [int(open(p).read()) for p in mini_batch]
            if 3 in numbers:
                raise ValueError(f"cannot score {numbers}")
            return [n for n in numbers if n != 0]
    """)
    result = run_job(config(src, run_max_try=1), [str(make_files(6))], tmp_path / "out")
    assert result.status == "Finished" and result.items_failed == 3
    failure = result.first_failure
    assert failure is not None
    if failure.error_type:
        assert failure.error_type == "ValueError" and "cannot score" in failure.message
        with open(failure.traceback_file) as fh:
            assert "cannot score" in fh.read()
    else:  # mini-batch 0 (item 0 left out) may be decided first
        assert failure.mini_batch == 0 and "1 of 2" in failure.message
    assert "first failure: mini-batch" in result.summary()


def test_a_job_that_fails_to_start_workers_releases_everything(make_script, make_files, tmp_path):
    before = {t.name for t in threading.enumerate()}
    result = run_job(config(make_script(SCORE)), [str(make_files(2))], tmp_path / "out",
                     python=str(tmp_path / "no-such-python"))
    assert result.status == "Failed" and "no-such-python" in result.error
    assert "Failed" in (tmp_path / "out" / "logs" / "job_result.txt").read_text()
    assert (tmp_path / "out" / "logs" / "job_error.txt").exists()
    left = {t.name for t in threading.enumerate()} - before
    assert not left, left
    # and the folder is free again: a resume (or overwrite) is accepted
    again = run_job(config(make_script(SCORE)), [str(make_files(2))], tmp_path / "out",
                    resume=True)
    assert again.status == "Finished"


def test_logs_import_under_python_OO():
    done = subprocess.run([sys.executable, "-OO", "-c",
                           "import parallelrun.engine.logs as l; assert 'journal' in l.README"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_resume_over_a_changed_listing_is_refused_before_any_work(make_script, make_files,
                                                                     tmp_path):
    src, data = make_script(SCORE), make_files(6)
    run_job(config(src), [str(data)], tmp_path / "out")
    before = (tmp_path / "out" / "parallel_run_step.txt").read_bytes()
    (data / "aaa_new.txt").write_text("100")   # sorts first: every item moves
    with pytest.raises(ResumeMismatchError, match="listing") as refused:
        run_job(config(src), [str(data)], tmp_path / "out", resume=True)
    assert "aaa_new.txt" in str(refused.value)
    assert (tmp_path / "out" / "parallel_run_step.txt").read_bytes() == before


def test_files_added_after_the_committed_ones_are_new_work_on_resume(make_script, make_files,
                                                                     tmp_path):
    src, data = make_script(SCORE), make_files(6)
    run_job(config(src), [str(data)], tmp_path / "out")
    (data / "item_0006.txt").write_text("6")
    (data / "item_0007.txt").write_text("7")
    resumed = run_job(config(src), [str(data)], tmp_path / "out", resume=True)
    assert resumed.status == "Finished" and rows(resumed) == list(range(8))


def test_a_job_refused_before_any_work_leaves_the_folder_ready_for_the_corrected_one(
        make_script, make_files, tmp_path):
    src, data = make_script(SCORE), make_files(2)
    with pytest.raises(ConfigurationError, match="side"):
        run_job(config(src), [str(data)], tmp_path / "out", side_inputs=[str(tmp_path / "nope")])
    result = run_job(config(src), [str(data)], tmp_path / "out")   # no overwrite needed
    assert result.status == "Finished" and rows(result) == [0, 1]


def test_a_jobs_output_folder_read_as_input_holds_no_marker_item(make_script, make_files,
                                                                 tmp_path):
    # a pipeline's next step reads the folder the step before wrote: its rows, not bookkeeping
    src, data = make_script(SCORE), make_files(3)
    first = run_job(config(src, output_action="summary_only"), [str(data)], tmp_path / "out",
                    log_dir=tmp_path / "logs")
    assert first.status == "Finished" and (tmp_path / "out" / MARKER_NAME).exists()
    for name in ("a.txt", "b.txt"):
        (tmp_path / "out" / name).write_text("7")
    second = run_job(config(src), [str(tmp_path / "out")], tmp_path / "out2")
    assert second.status == "Finished" and rows(second) == [7, 7]


def test_a_worker_that_cannot_read_its_mini_batches_is_a_charged_failure_not_a_hang(
        make_script, make_files, tmp_path, monkeypatch):
    # a payload class the workers cannot import (as a module missing from a job environment)
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "only_here.py").write_text(textwrap.dedent("""
        from parallelrun.data.files import FileDataset
        from parallelrun.data.minibatch import MiniBatch

        class Paths:
            def __init__(self, paths): self.paths = paths
            def load(self): return self.paths
            def names(self): return self.paths

        class OnlyHere(FileDataset):
            def plan(self, mini_batch_size, partition_keys=None, start_index=0, exclude=()):
                for mb in super().plan(mini_batch_size, partition_keys, start_index, exclude):
                    yield MiniBatch(mb.index, mb.items, Paths(mb.payload.paths), mb.label)
    """))
    monkeypatch.syspath_prepend(str(plugins))
    from only_here import OnlyHere

    src = make_script(SCORE)
    result = run_job(config(src, run_max_try=1, run_invocation_timeout=600),
                     [OnlyHere.from_files(str(make_files(4)))], tmp_path / "out")
    assert result.minibatches_failed == 2 and result.items_succeeded == 0
    assert "could not read the mini-batches" in result.first_failure.message
    assert "ModuleNotFoundError" in "".join(
        p.read_text() for p in (tmp_path / "out" / "logs" / "user" / "stderr").rglob("*.txt"))
