"""`parallelrun run` from a real terminal process: flags, exit codes, progress and errors."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

from parallelrun import ParallelRunConfig
from parallelrun.cli.run import config_flag

CLI = [sys.executable, "-m", "parallelrun.cli.__main__"]


def cli(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_every_config_parameter_is_a_flag():
    help_text = cli("run", "--help", cwd=".").stdout
    names = [f.name for f in dataclasses.fields(ParallelRunConfig)
             if f.name not in ("environment", "compute_target", "input_format")]
    for name in names:
        assert config_flag(name) in help_text, name
    assert "--compute" in help_text


def test_run_writes_rows_shows_progress_and_exits_zero(make_script, make_files, tmp_path):
    make_script("""
        import argparse, os
        def init():
            global scale
            parser = argparse.ArgumentParser(); parser.add_argument("--scale", type=int)
            scale = parser.parse_known_args()[0].scale
        def run(mini_batch):
            return [int(open(p).read()) * scale for p in mini_batch]
    """)
    make_files(9)
    result = cli("run", "--source-directory", "scripts", "--entry-script", "score.py",
                 "--input", "data/*.txt", "--mini-batch-size", "2", "--output", "out",
                 "--process-count-per-node", "2", "--", "--scale", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = sorted(int(x) for x in (tmp_path / "out/parallel_run_step.txt").read_text().split())
    assert rows == [i * 3 for i in range(9)]
    assert "mini-batches: 5/5 done" in result.stderr       # progress line (not a TTY here)
    assert "Finished" in result.stderr and "out/parallel_run_step.txt" in result.stderr
    assert "logs:" in result.stderr


def test_failed_job_exits_one_and_prints_the_first_real_traceback(make_script, make_files, tmp_path):
    make_script("""
        def init(): pass
        def run(mini_batch):
            return helper(mini_batch)
        def helper(mini_batch):
            raise KeyError("label_map")
    """)
    make_files(3)
    result = cli("run", "--source-directory", "scripts", "--entry-script", "score.py",
                 "--input", "data", "--output", "out", "--error-threshold", "0",
                 "--run-max-try", "1", "--quiet", cwd=tmp_path)
    assert result.returncode == 1
    assert "Failed" in result.stderr and "error_threshold=0 exceeded" in result.stderr
    assert "in helper" in result.stderr and "KeyError: 'label_map'" in result.stderr


def test_bad_configuration_exits_two_with_the_parameter_named(make_script, make_files, tmp_path):
    make_script("def init(): pass\ndef run(mb): return mb\n")
    make_files(1)
    result = cli("run", "--source-directory", "scripts", "--entry-script", "score.py",
                 "--input", "data", "--output", "out", "--run-max-try", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert "--run-max-try 0 is not allowed" in result.stderr
    missing = cli("run", "--entry-script", "score.py", "--input", "nothing/*.png", "--output", "out",
                  "--source-directory", "scripts", cwd=tmp_path)
    assert missing.returncode == 2 and "matched no files" in missing.stderr
    assert not (Path(tmp_path) / "out").exists()
