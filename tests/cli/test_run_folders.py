"""`parallelrun run` into folders that hold something already: refused, or replaced on request."""

from __future__ import annotations

import subprocess
import sys

CLI = [sys.executable, "-m", "parallelrun.cli.__main__"]
SCORE = """
    def init(): pass
    def run(mini_batch):
        return [open(p).read() for p in mini_batch]
"""


def run(tmp_path, *extra):
    return subprocess.run([*CLI, "run", "--source-directory", "scripts", "--entry-script",
                           "score.py", "--input", "data", "--mini-batch-size", "2", "--output",
                           "out", *extra], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)


def test_a_rerun_into_a_used_output_folder_is_refused_then_replaced_with_overwrite(
        make_script, make_files, tmp_path):
    make_script(SCORE)
    make_files(4)
    assert run(tmp_path).returncode == 0
    (tmp_path / "out" / "notes.txt").write_text("mine")
    refused = run(tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert "--overwrite" in refused.stderr and "--resume" in refused.stderr
    assert "parallel_run_step.txt" in refused.stderr
    (tmp_path / "data" / "item_0004.txt").write_text("4")
    replaced = run(tmp_path, "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    rows = (tmp_path / "out" / "parallel_run_step.txt").read_text().split()
    assert sorted(rows) == ["0", "1", "2", "3", "4"]
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"


def test_a_log_dir_holding_the_users_files_is_refused_and_kept(make_script, make_files,
                                                                tmp_path):
    make_script(SCORE)
    make_files(2)
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "thesis.tex").write_text("years of work")
    for log_dir in ("precious", "."):
        refused = run(tmp_path, "--log-dir", log_dir)
        assert refused.returncode == 2 and "did not write" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    assert (tmp_path / "precious" / "thesis.tex").read_text() == "years of work"
    assert (tmp_path / "scripts" / "score.py").exists()


def test_an_empty_input_or_output_an_unset_variable_gives_is_refused_before_any_work(
        make_script, make_files, tmp_path):
    make_script(SCORE)
    make_files(2)
    before = sorted(p.name for p in tmp_path.iterdir())
    for flag, message in (("--output", "--output '' is not allowed"),
                          ("--input", "got an empty path")):
        args = {"--input": "data", "--output": "out", flag: ""}
        refused = subprocess.run([*CLI, "run", "--source-directory", "scripts", "--entry-script",
                                  "score.py", "--input", args["--input"], "--output",
                                  args["--output"]], cwd=tmp_path, capture_output=True,
                                 text=True, timeout=120)
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr
        assert "'.'" in refused.stderr   # how to name the current folder on purpose
    # neither the current folder's files were scored nor results written beside them
    assert sorted(p.name for p in tmp_path.iterdir()) == before
