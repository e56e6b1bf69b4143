"""Registered models: files, folders and archives copied in with versions; unsafe archives
refused; Model.get_model_path inside an entry script and outside."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from parallelrun import Model, ParallelRunConfig, Workspace, WorkspaceError, run_job
from parallelrun.workspace.models import UnsafeArchiveError


@pytest.fixture
def ws(tmp_path):
    return Workspace.create("ws", path=tmp_path / "ws")


def _archive(path, entries):
    """entries: (name, kind, data_or_link) with kind 'file', 'symlink', 'hardlink', 'dir'."""
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, value in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
                continue
            info.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                         "dir": tarfile.DIRTYPE, "fifo": tarfile.FIFOTYPE}[kind]
            if value:
                info.linkname = value
            tar.addfile(info)
    return path


def test_register_a_folder_a_file_and_an_archive_as_versions(ws, tmp_path):
    folder = tmp_path / "models"
    (folder / "sub").mkdir(parents=True)
    (folder / "mnist-tf.model.meta").write_text("meta")
    (folder / "sub" / "weights.bin").write_bytes(b"w" * 100)
    first = Model.register(ws, model_path=str(folder), model_name="mnist",
                           tags={"pretrained": "mnist"}, properties={"accuracy": "0.99"},
                           description="digits")
    assert (first.name, first.version) == ("mnist", 1)
    assert first.path.startswith(ws.path) and os.path.isdir(first.path)
    assert first.model_path == os.path.join(first.path, "models")
    assert open(os.path.join(first.model_path, "sub", "weights.bin"), "rb").read() == b"w" * 100
    assert first.file_count == 2 and first.total_bytes == 104
    # the store holds a copy: changing the source later changes nothing
    (folder / "mnist-tf.model.meta").write_text("changed")
    assert open(os.path.join(first.model_path, "mnist-tf.model.meta")).read() == "meta"

    single = tmp_path / "model.pkl"
    single.write_bytes(b"pickle")
    second = Model.register(ws, str(single), "mnist")
    assert second.version == 2 and second.model_path == os.path.join(second.path, "model.pkl")

    archive = _archive(tmp_path / "model.tar.gz", [("model/", "dir", None),
                                                   ("model/a.txt", "file", b"a"),
                                                   ("model/link", "symlink", "a.txt")])
    third = Model.register(ws, str(archive), "mnist")
    assert third.version == 3 and third.model_path == third.path
    assert open(os.path.join(third.path, "model", "link")).read() == "a"

    assert [m.version for m in Model.list(ws)] == [1, 2, 3]
    assert [m.version for m in Model.list(ws, latest=True)] == [3]
    assert [m.version for m in Model.list(ws, tags=[["pretrained", "mnist"]])] == [1]
    assert [m.version for m in Model.list(ws, properties=["accuracy"])] == [1]
    assert Model(ws, "mnist").version == 3
    assert Model(ws, "mnist", version=1).tags == {"pretrained": "mnist"}
    assert Model(ws, id="mnist:2").model_path == second.model_path
    assert ws.models["mnist"].version == 3


@pytest.mark.parametrize("entries, why", [
    ([("ok.txt", "file", b"1"), ("../evil.txt", "file", b"x")], "'..' component"),
    ([("a/../../evil.txt", "file", b"x")], "'..' component"),
    ([("/etc/evil.txt", "file", b"x")], "absolute path"),
    ([("link", "symlink", "../../outside")], "symbolic link out of the folder"),
    ([("link", "symlink", "/etc/passwd")], "symbolic link out of the folder"),
    ([("hard", "hardlink", "../outside")], "hard link out of the folder"),
    ([("pipe", "fifo", None)], "device or FIFO"),
])
def test_unsafe_archives_are_refused_and_nothing_is_extracted(ws, tmp_path, entries, why):
    archive = _archive(tmp_path / "evil.tar.gz", entries)
    with pytest.raises(UnsafeArchiveError, match=why):
        Model.register(ws, str(archive), "evil")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "ws" / "evil.txt").exists()
    assert Model.list(ws) == []
    store = os.path.join(ws.model_store)
    assert not os.path.exists(os.path.join(store, "evil"))
    assert os.listdir(os.path.join(store, ".staging")) == []


def test_unknown_models_and_bad_inputs_are_clear_errors(ws, tmp_path):
    (tmp_path / "m.bin").write_bytes(b"1")
    Model.register(ws, str(tmp_path / "m.bin"), "known")
    with pytest.raises(KeyError, match="no model 'other' in workspace 'ws'; registered: known"):
        Model(ws, "other")
    with pytest.raises(KeyError, match="model 'known' has no version 5; versions: 1"):
        Model(ws, "known", version=5)
    with pytest.raises(WorkspaceError, match="does not exist"):
        Model.register(ws, str(tmp_path / "missing"), "known")
    with pytest.raises(WorkspaceError, match="not allowed"):
        Model.register(ws, str(tmp_path / "m.bin"), "bad name")


def test_get_model_path_outside_a_run_uses_the_workspace_from_config(ws, tmp_path, monkeypatch):
    (tmp_path / "model.pkl").write_bytes(b"1")
    Model.register(ws, str(tmp_path / "model.pkl"), "clf")
    Model.register(ws, str(tmp_path / "model.pkl"), "clf")
    monkeypatch.chdir(ws.path)
    assert Model.get_model_path("clf") == os.path.join(Model(ws, "clf", 2).path, "model.pkl")
    assert Model.get_model_path("clf", version=1).endswith(os.path.join("clf", "1", "model.pkl"))
    with pytest.raises(KeyError, match="registered: clf"):
        Model.get_model_path("nope")


def test_get_model_path_inside_the_entry_script_returns_the_version_the_step_was_given(
        ws, tmp_path, make_script, make_files):
    (tmp_path / "model.pkl").write_text("version one")
    old = Model.register(ws, str(tmp_path / "model.pkl"), "clf")
    (tmp_path / "model.pkl").write_text("version two")
    Model.register(ws, str(tmp_path / "model.pkl"), "clf")
    scripts = make_script("""
        import os
        from parallelrun import Model
        from azureml.core.model import Model as AzureModel

        def init():
            global text, same, env
            path = Model.get_model_path("clf")
            text = open(path).read()
            same = AzureModel.get_model_path("clf") == path == Model.get_model_path("clf", 1)
            env = os.environ["AZUREML_MODEL_DIR"]

        def run(mini_batch):
            return [f"{os.path.basename(p)}|{text}|{same}|{os.path.isdir(env)}" for p in mini_batch]
    """)
    config = ParallelRunConfig(source_directory=str(scripts), entry_script="score.py",
                               error_threshold=0, output_action="append_row",
                               process_count_per_node=1)
    result = run_job(config, [str(make_files(2))], tmp_path / "out", models=[old])
    assert result.succeeded, result.error
    lines = sorted(open(result.output_file).read().splitlines())
    assert lines == ["item_0000.txt|version one|True|True", "item_0001.txt|version one|True|True"]
