"""``ws.datasets``: the public registry that ``ds.register(ws)`` and ``Dataset.get_by_name(ws)``
call, and the refusal of something that is not a workspace."""

from __future__ import annotations

import pytest

from parallelrun import Dataset, Workspace, WorkspaceError


@pytest.fixture
def ws(tmp_path):
    return Workspace.create("ws", path=tmp_path / "ws")


def test_the_registry_registers_and_finds_what_the_dataset_api_does(ws, make_files):
    ds = Dataset.File.from_files(path=str(make_files(3) / "*.txt"))
    first = ws.datasets.register(ds, "numbers", description="three numbers")
    second = ds.register(ws, "numbers", create_new_version=True)
    assert (first.version, second.version) == (1, 2)
    assert ws.datasets.get_by_name("numbers", version=1).id == first.id
    assert ws.datasets.get_by_name("numbers").id == Dataset.get_by_name(ws, "numbers").id == second.id
    assert ws.datasets.get_by_id(first.id).registration["description"] == "three numbers"
    # as a mapping (Azure ML's ws.datasets): the latest version of each name
    assert list(ws.datasets) == ["numbers"] and len(ws.datasets) == 1
    assert ws.datasets["numbers"].version == 2 and "numbers" in ws.datasets
    assert "other" not in ws.datasets


@pytest.mark.parametrize("call", [
    lambda ds: ds.register("ws", "numbers"),
    lambda ds: Dataset.get_by_name("ws", "numbers"),
    lambda ds: Dataset.get_by_id(None, "some-id"),
])
def test_something_that_is_not_a_workspace_is_refused_by_name(call, make_files):
    ds = Dataset.File.from_files(path=str(make_files(1) / "*.txt"))
    with pytest.raises(WorkspaceError, match=r"workspace=('ws'|None) is not a workspace: pass a "
                                             r"Workspace \(Workspace.from_config\(\)"):
        call(ds)
