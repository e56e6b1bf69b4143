"""What Azure ML's notebooks print and look up first: the workspace's cloud coordinates and
details, and compute targets found by name (issue #18)."""

from __future__ import annotations

import pickle

import pytest

from parallelrun import AmlCompute, ComputeTarget, ComputeTargetException, Workspace


def test_a_workspace_gives_back_the_azure_values_it_was_created_with(tmp_path):
    ws = Workspace.create(name="v1-ws", path=tmp_path, subscription_id="sub-1",
                          resource_group="rg-1", location="westeurope")
    again = Workspace.from_config(tmp_path)
    assert (again.subscription_id, again.resource_group, again.location) == \
        ("sub-1", "rg-1", "westeurope")
    details = again.get_details()
    assert details["name"] == "v1-ws" and details["location"] == "westeurope"
    assert details["id"].startswith("/subscriptions/sub-1/resourceGroups/rg-1/")
    # a worker unpickles the workspace without reading its folder
    assert pickle.loads(pickle.dumps(ws)).location == "westeurope"


def test_the_notebooks_first_cell_prints_without_cloud_values(tmp_path):
    ws = Workspace.create(name="plain-ws", path=tmp_path)
    printed = "\n".join(['Workspace name: ' + ws.name, 'Azure region: ' + ws.location,
                         'Subscription id: ' + ws.subscription_id,
                         'Resource group: ' + ws.resource_group])
    assert printed.splitlines()[1:] == ["Azure region: local", "Subscription id: local",
                                        "Resource group: local"]
    assert ws.experiments == {}


def test_compute_targets_are_looked_up_by_name_and_created_when_missing(tmp_path):
    ws = Workspace.create(name="compute-ws", path=tmp_path)
    with pytest.raises(ComputeTargetException, match="no compute target 'cpu-cluster'"):
        ComputeTarget(workspace=ws, name="cpu-cluster")
    with pytest.raises(ComputeTargetException, match="cpu-cluster"):
        AmlCompute(ws, "cpu-cluster")
    config = AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2", max_nodes=3)
    ComputeTarget.create(ws, "cpu-cluster", config)
    found = AmlCompute(ws, "cpu-cluster")
    assert type(found) is AmlCompute and found.max_nodes == 3
    assert ComputeTarget(workspace=ws, name="cpu-cluster") == found
    assert sorted(t.name for t in ComputeTarget.list(ws)) == ["cpu-cluster", "local"]
    # "local" exists but is not an AmlCompute
    with pytest.raises(ComputeTargetException, match="not AmlCompute"):
        AmlCompute(ws, "local")
