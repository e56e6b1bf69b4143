"""``parallelrun workspace|datastore|dataset|model ...`` from the terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from click.testing import CliRunner

from parallelrun import Dataset, Model, Workspace
from parallelrun.cli import main as cli


def _run(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-W", "ignore", "-m", "parallelrun.cli", *args],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def test_a_session_in_the_terminal_registers_and_lists(tmp_path, azurite, make_files):
    folder = make_files(3)
    # one real process for the entry point; the rest in-process to keep the test fast
    created = _run("workspace", "create", "term-ws", "--path", str(tmp_path / "ws"))
    assert created.returncode == 0, created.stderr
    container = azurite.new_container()
    azurite.filesystem().pipe({f"{container}/scans/{i}.png": b"x" for i in range(4)})
    runner = CliRunner(env={"TERM_AZ_KEY": azurite.account_key})
    ws_flag = ["--workspace", str(tmp_path / "ws")]

    def invoke(*args):
        result = runner.invoke(cli, [*args, *ws_flag])
        assert result.exit_code == 0, (args, result.output)
        return result.output

    invoke("datastore", "register", "azure-blob", "scans_blob", "--container", container,
           "--account-name", azurite.account_name, "--account-key-env", "TERM_AZ_KEY",
           "--account-url", azurite.account_url)
    invoke("dataset", "register", "scans", "scans/*.png", "--datastore", "scans_blob")
    invoke("dataset", "register", "scans", str(folder), "--new-version", "--tag", "source=local")
    invoke("model", "register", "clf", str(folder / "item_0000.txt"), "--tag", "kind=text",
           "--description", "a model")
    stores = {s["name"]: s for s in json.loads(invoke("datastore", "list", "--json"))}
    assert stores["scans_blob"]["credentials"] == {"account_key": "from $TERM_AZ_KEY"}
    datasets = json.loads(invoke("dataset", "list", "--all-versions", "--json"))
    assert [(d["name"], d["version"], d["file_count"]) for d in datasets] == [("scans", 1, 4),
                                                                             ("scans", 2, 3)]
    shown = json.loads(invoke("dataset", "show", "scans", "--version", "1", "--verify", "--json"))
    assert shown["paths"] == "scans_blob:scans/*.png" and shown["unchanged"] is True
    model = json.loads(invoke("model", "show", "clf", "--json"))
    assert model["version"] == 1 and model["tags"] == {"kind": "text"}
    everything = "".join(invoke(*cmd) for cmd in (
        ["datastore", "list"], ["datastore", "show", "scans_blob"], ["dataset", "list"],
        ["model", "list"], ["workspace", "show"]))
    listed = _run("model", "list", cwd=tmp_path / "ws")  # config.json found from the folder
    assert listed.returncode == 0 and "clf" in listed.stdout
    assert azurite.account_key not in everything and "scans_blob" in everything


def test_errors_name_what_exists_and_exit_2(tmp_path, make_files):
    ws = Workspace.create("cli-ws", path=tmp_path)
    Dataset.File.from_files(str(make_files(1))).register(ws, "known")
    Model.register(ws, str(make_files(1, "m")), "clf")
    runner = CliRunner()
    result = runner.invoke(cli, ["dataset", "show", "unknown", "--workspace", str(tmp_path)])
    assert result.exit_code == 2 and "registered: known" in result.output
    result = runner.invoke(cli, ["model", "show", "clf", "--version", "4", "--workspace",
                                 str(tmp_path)])
    assert result.exit_code == 2 and "versions: 1" in result.output
    result = runner.invoke(cli, ["datastore", "show", "nope", "--workspace", str(tmp_path)])
    assert result.exit_code == 2 and "registered: workspaceblobstore" in result.output
    elsewhere = tmp_path.parent / (tmp_path.name + "-empty")
    elsewhere.mkdir()
    result = runner.invoke(cli, ["model", "list", "--workspace", str(elsewhere)])
    assert result.exit_code == 2 and "no workspace config found" in result.output


def test_a_changed_dataset_fails_verify(tmp_path, make_files):
    folder = make_files(2)
    ws = Workspace.create("cli-ws", path=tmp_path / "ws")
    Dataset.File.from_files(str(folder)).register(ws, "data")
    (folder / "item_0000.txt").write_text("other contents")
    result = CliRunner().invoke(cli, ["dataset", "show", "data", "--verify", "--workspace", ws.path])
    assert result.exit_code == 1 and "the files changed" in result.output


def test_parallelrun_run_reads_and_writes_urls_with_the_credentials_of_a_datastore(
        tmp_path, azurite, make_script, monkeypatch):
    ws = Workspace.create("run-ws", path=tmp_path / "ws")
    container = azurite.new_container()
    fs = azurite.filesystem()
    fs.pipe({f"{container}/in/{i}.txt": str(i).encode() for i in range(4)})
    from parallelrun import Datastore

    Datastore.register_azure_blob_container(ws, "store", container, azurite.account_name,
                                            account_key=azurite.account_key,
                                            account_url=azurite.account_url)
    scripts = make_script("""
        def init():
            pass

        def run(mini_batch):
            return [open(p).read() for p in mini_batch]
    """)
    monkeypatch.chdir(ws.path)  # the workspace is found from here, as from_config() does
    result = CliRunner().invoke(cli, [
        "run", "--source-directory", str(scripts), "--entry-script", "score.py",
        "--input", f"az://{container}/in/", "--output", f"az://{container}/out/",
        "--mini-batch-size", "2", "--process-count-per-node", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    assert sorted(fs.cat(f"{container}/out/parallel_run_step.txt").decode().split()) == [
        "0", "1", "2", "3"]
