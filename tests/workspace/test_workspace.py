"""Workspace: create / get / from_config (config.json upward), default datastore, compute targets."""

from __future__ import annotations

import json
import os

import pytest

from parallelrun import Workspace, WorkspaceError
from parallelrun.compute import LocalCompute


def test_create_makes_a_folder_with_config_and_catalog_and_reopens(tmp_path):
    ws = Workspace.create(name="my-ws", path=tmp_path, exist_ok=True)
    assert ws.name == "my-ws" and ws.path == str(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["workspace_name"] == "my-ws"
    assert Workspace.create(name="my-ws", path=tmp_path, exist_ok=True) == ws
    with pytest.raises(WorkspaceError, match="already exists"):
        Workspace.create(name="my-ws", path=tmp_path, exist_ok=False)
    with pytest.raises(WorkspaceError, match="already holds the workspace 'my-ws'"):
        Workspace.create(name="other", path=tmp_path)
    with pytest.raises(WorkspaceError, match="not allowed"):
        Workspace.create(name="bad name!", path=tmp_path / "x")


def test_from_config_finds_the_workspace_from_any_folder_below(tmp_path, monkeypatch):
    ws = Workspace.create("found", path=tmp_path / "project")
    deep = tmp_path / "project" / "src" / "pkg"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert Workspace.from_config() == ws
    assert Workspace.get("found") == ws
    with pytest.raises(WorkspaceError, match="named 'found', not 'other'"):
        Workspace.get("other")
    # Azure ML's other place: .azureml/config.json, written by write_config()
    elsewhere = tmp_path / "notebooks"
    elsewhere.mkdir()
    written = ws.write_config(path=elsewhere)
    assert written == str(elsewhere / ".azureml" / "config.json")
    monkeypatch.chdir(elsewhere)
    assert Workspace.from_config() == ws


def test_from_config_without_a_config_names_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WorkspaceError, match="no workspace config found") as err:
        Workspace.from_config()
    assert str(tmp_path) in str(err.value)


def test_an_azure_ml_cloud_config_is_not_mistaken_for_a_local_workspace(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text(json.dumps(
        {"subscription_id": "x", "resource_group": "rg", "workspace_name": "cloud"}))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WorkspaceError, match="no workspace config found"):
        Workspace.from_config()


def test_the_default_datastore_is_a_local_folder_inside_the_workspace(tmp_path):
    ws = Workspace.create("ws", path=tmp_path)
    store = ws.get_default_datastore()
    assert store.name == "workspaceblobstore" and store.datastore_type == "LocalFolder"
    assert store.path_on_disk.startswith(str(tmp_path)) and os.path.isdir(store.path_on_disk)
    assert store.path("results/").url == os.path.join(store.path_on_disk, "results", "")
    assert set(ws.datastores) == {"workspaceblobstore"}


def test_compute_targets_hold_local_by_default_and_persist_new_ones(tmp_path):
    ws = Workspace.create("ws", path=tmp_path)
    assert "local" in ws.compute_targets
    local = ws.compute_targets["local"]
    assert isinstance(local, LocalCompute) and local.backend == "local"
    ws.compute_targets["small"] = LocalCompute("small", max_workers=2)
    again = Workspace(tmp_path)  # another object, same catalog
    assert sorted(again.compute_targets) == ["local", "small"]
    assert again.compute_targets["small"].max_workers == 2
    with pytest.raises(KeyError, match="no compute target 'gpu'.*registered: local, small"):
        again.compute_targets["gpu"]
    del again.compute_targets["small"]
    assert list(ws.compute_targets) == ["local"]
    with pytest.raises(WorkspaceError, match="cannot be removed"):
        del ws.compute_targets["local"]
