"""The terminal's vocabulary: one name per thing, hints for known mistakes, errors in flags."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from click.testing import CliRunner

from parallelrun import Model, Workspace
from parallelrun.cli import main as cli


def parallelrun(*args, cwd) -> subprocess.CompletedProcess:
    """``python -m parallelrun ARGS`` in ``cwd`` (HOME there too: nothing lands in the real one)."""
    env = {**os.environ, "HOME": str(cwd)}
    return subprocess.run([sys.executable, "-m", "parallelrun", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_python_m_parallelrun_is_the_command_and_its_help_lists_run_and_runs(tmp_path):
    result = parallelrun("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: parallelrun ")
    commands = {line.split()[0]: line for line in result.stdout.split("Commands:")[1].splitlines()
                if line.strip()}
    assert {"run", "runs", "workspace", "dataset", "model", "datastore", "job",
            "ui"} <= set(commands)
    assert "flags below" not in result.stdout


def test_an_unquoted_glob_gets_the_quoted_one_instead_of_every_file_name(
        make_script, make_files, tmp_path):
    make_script("def init(): pass\ndef run(mb): return mb\n")
    folder = make_files(299, suffix=".png")
    expanded = sorted(f"data/{p.name}" for p in folder.iterdir())   # what the shell passes
    result = parallelrun("run", "--source-directory", "scripts", "--entry-script", "score.py",
                         "--input", *expanded, "--output", "out", cwd=tmp_path)
    assert result.returncode == 2
    assert "quote the glob: --input 'data/*.png'" in result.stderr.lower()
    assert "--input got 299 file names" in result.stderr
    assert len(result.stderr) < 1000                  # not the 299 names
    assert not (tmp_path / "out").exists()


def test_a_script_flag_without_the_separator_gets_a_hint_about_it(make_script, make_files,
                                                                   tmp_path):
    make_script("def init(): pass\ndef run(mb): return mb\n")
    make_files(2)
    args = ["run", "--source-directory", "scripts", "--entry-script", "score.py", "--input",
            "data", "--output", "out"]
    flag = parallelrun(*args, "--threshold", "0.5", cwd=tmp_path)
    assert flag.returncode == 2
    assert "No such option '--threshold'" in flag.stderr
    assert "put it after `--`" in flag.stderr and "-- --threshold" in flag.stderr
    word = parallelrun(*args, "fast", cwd=tmp_path)
    assert word.returncode == 2
    assert "unexpected argument(s) fast" in word.stderr and "-- fast" in word.stderr


def test_errors_of_the_run_command_name_its_flags(make_script, make_files, tmp_path):
    make_script("def init(): pass\ndef run(mb): return mb\n")
    make_files(1)
    missing = parallelrun("run", "--input", "data", "--output", "out", cwd=tmp_path)
    assert missing.returncode == 2
    assert "Missing option '--entry-script'" in missing.stderr
    assert "entry_script=None" not in missing.stderr
    nowhere = parallelrun("run", "--source-directory", "nowhere", "--entry-script", "score.py",
                          "--input", "data", "--output", "out", cwd=tmp_path)
    assert nowhere.returncode == 2
    assert "error: --source-directory nowhere is not allowed: an existing folder" in nowhere.stderr
    unreachable = parallelrun("run", "--source-directory", "scripts", "--entry-script",
                              "score.py", "--input", "data", "--output", "out", "--compute",
                              "ray", "--ray-address", "127.0.0.1:9", cwd=tmp_path)
    assert unreachable.returncode == 2
    assert "at --ray-address 127.0.0.1:9" in unreachable.stderr
    assert "--ray-address local" in unreachable.stderr or "address=" not in unreachable.stderr


def test_workspace_errors_name_the_commands_and_flags(tmp_path):
    runner = CliRunner()
    nowhere = runner.invoke(cli, ["model", "list", "--workspace", str(tmp_path)])
    assert nowhere.exit_code == 2
    assert "parallelrun workspace create NAME --workspace PATH" in nowhere.output
    assert "Workspace.create(" not in nowhere.output
    ws = Workspace.create("words", path=tmp_path / "ws")
    missing = runner.invoke(cli, ["datastore", "register", "local", "files",
                                  str(tmp_path / "absent"), "--workspace", ws.path])
    assert missing.exit_code == 2
    assert "pass --create" in missing.output and "create_if_not_exists" not in missing.output


def test_one_vocabulary_workspace_version_and_all_versions(tmp_path, make_files):
    runner = CliRunner()
    created = runner.invoke(cli, ["workspace", "create", "vocab", "--workspace",
                                  str(tmp_path / "ws")])
    assert created.exit_code == 0, created.output
    old = runner.invoke(cli, ["workspace", "create", "vocab2", "--path", str(tmp_path / "ws2")])
    assert old.exit_code == 0 and (tmp_path / "ws2" / "config.json").exists()
    assert "is now `parallelrun workspace create --workspace`" in old.output
    ws = Workspace.from_config(str(tmp_path / "ws"))
    for _ in range(2):
        Model.register(ws, str(make_files(1, "m") / "item_0000.txt"), "clf")
    where = ["--workspace", ws.path, "--json"]

    def listed(*args):
        result = runner.invoke(cli, [*args, *where])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    assert [m["version"] for m in listed("model", "list")] == [2]          # the latest, by default
    assert [m["version"] for m in listed("model", "list", "--all-versions")] == [1, 2]
    assert listed("model", "show", "clf", "--version", "1")["version"] == 1
    assert listed("model", "show", "clf", "--version", "latest")["version"] == 2
    for command in (["model", "show", "clf"], ["dataset", "show", "any"]):
        bad = runner.invoke(cli, [*command, "--version", "newest", *where])
        assert bad.exit_code == 2 and "a version number (1, 2, ...) or 'latest'" in bad.output
    for command in (["model", "list", "--help"], ["dataset", "list", "--help"]):
        assert "--all-versions" in runner.invoke(cli, command).output


def test_runs_is_the_group_and_the_old_run_spelling_still_works_with_a_note(tmp_path):
    Workspace.create("runs-ws", path=tmp_path)
    new = parallelrun("runs", "list", "--json", "--workspace", str(tmp_path), cwd=tmp_path)
    assert new.returncode == 0, new.stderr
    assert new.stderr == ""
    old = parallelrun("run", "list", "--json", "--workspace", str(tmp_path), cwd=tmp_path)
    assert old.returncode == 0 and json.loads(old.stdout) == json.loads(new.stdout)
    assert "`parallelrun run list` is now `parallelrun runs list`" in old.stderr
    job_help = parallelrun("run", "--help", cwd=tmp_path)
    assert "--entry-script" in job_help.stdout and "parallelrun runs list" in job_help.stdout
