"""The document's AmlCompute code on this machine: a local compute with max_nodes worker slots."""

from __future__ import annotations

import pytest

from parallelrun import (AmlCompute, ComputeTarget, ComputeTargetException, ConfigurationError,
                         Workspace)
from parallelrun.pipeline.step_compute import effective_config


def test_the_documents_compute_code_makes_a_registered_local_cluster(ws, monkeypatch, capsys):
    monkeypatch.setenv("AML_COMPUTE_CLUSTER_MAX_NODES", "3")   # environment values are strings
    import os

    compute_name = os.environ.get("AML_COMPUTE_CLUSTER_NAME", "cpu-cluster")
    compute_min_nodes = os.environ.get("AML_COMPUTE_CLUSTER_MIN_NODES", 0)
    compute_max_nodes = os.environ.get("AML_COMPUTE_CLUSTER_MAX_NODES", 4)
    vm_size = os.environ.get("AML_COMPUTE_CLUSTER_SKU", "STANDARD_D2_V2")
    assert compute_name not in ws.compute_targets
    provisioning_config = AmlCompute.provisioning_configuration(vm_size=vm_size,
                                                                min_nodes=compute_min_nodes,
                                                                max_nodes=compute_max_nodes)
    compute_target = ComputeTarget.create(ws, compute_name, provisioning_config)
    compute_target.wait_for_completion(show_output=True, min_node_count=None, timeout_in_minutes=20)
    status = compute_target.get_status().serialize()
    assert status["provisioningState"] == "Succeeded" and status["scaleSettings"]["maxNodeCount"] == 3
    assert 'operation "Succeeded"' in capsys.readouterr().out

    # another process (here: a fresh Workspace object) finds it, as the same class
    again = Workspace.from_config().compute_targets[compute_name]
    assert type(again) is AmlCompute and again.max_nodes == 3 and again.vm_size == "STANDARD_D2_V2"


def test_nodes_become_worker_slots_on_this_machine(ws, score_config):
    target = ComputeTarget.create(ws, "cpu-cluster",
                                  AmlCompute.provisioning_configuration(max_nodes=3))
    folded = effective_config(score_config(compute_target=target, node_count=4,
                                           process_count_per_node=2), ws)
    assert (folded.node_count, folded.process_count_per_node) == (1, 3)   # 4 x 2, capped at 3
    small = effective_config(score_config(compute_target="cpu-cluster", node_count=1,
                                          process_count_per_node=2), ws)
    assert (small.node_count, small.process_count_per_node) == (1, 2)
    assert type(small.compute_target) is AmlCompute
    plain = effective_config(score_config(node_count=1, process_count_per_node=2), ws)
    assert plain.compute_target.name == "local" and plain.process_count_per_node == 2


def test_bad_cluster_settings_are_refused(ws):
    with pytest.raises(ComputeTargetException, match="2 to 16 letters"):
        ComputeTarget.create(ws, "cpu_cluster!", AmlCompute.provisioning_configuration(max_nodes=2))
    with pytest.raises(ConfigurationError, match="min_nodes=5"):
        AmlCompute.provisioning_configuration(min_nodes=5, max_nodes=2)
    with pytest.raises(ConfigurationError, match="max_nodes='many'"):
        AmlCompute.provisioning_configuration(max_nodes="many")
    with pytest.raises(ConfigurationError, match="provisioning configuration"):
        ComputeTarget.create(ws, "cpu-cluster", {"max_nodes": 2})
