"""How many worker actors go on each Ray node and what each reserves, from the cluster's nodes.

Separate from the backend because it is plain arithmetic over node records (as ``ray.nodes()``
gives them): it needs no cluster to test, and the backend's error messages describe the nodes
and the free resources with the same helpers.
"""

from __future__ import annotations

import dataclasses
import math

import ray
from ray.exceptions import RayError

from parallelrun.errors import BackendError


def _floor4(value: float) -> float:
    # Ray keeps resource amounts to 4 decimals; rounding up could ask for more than a node has.
    return math.floor(value * 10000) / 10000


@dataclasses.dataclass
class Sizing:
    """How many workers go on each node and what each reserves."""

    node_count: int
    per_node: int
    cpus: float
    gpus: float

    @property
    def bundle(self) -> dict[str, float]:
        bundle = {"CPU": _floor4(self.cpus * self.per_node) or self.cpus}
        if self.gpus:
            bundle["GPU"] = _floor4(self.gpus * self.per_node) or self.gpus
        return bundle


def alive_nodes() -> list[dict]:
    """The cluster's alive nodes that can host workers (some CPU), biggest first."""
    nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]
    nodes.sort(key=lambda n: (n["Resources"].get("GPU", 0), n["Resources"].get("CPU", 0)),
               reverse=True)
    return nodes


def describe_nodes(nodes: list[dict]) -> str:
    """The nodes as an error message lists them: address, CPUs and GPUs of each."""
    return ", ".join(
        f"{n.get('NodeManagerAddress')} ({n['Resources'].get('CPU', 0):g} CPU"
        + (f", {n['Resources']['GPU']:g} GPU" if n["Resources"].get("GPU") else "") + ")"
        for n in nodes) or "none"


def size_workers(nodes: list[dict], node_count: int, process_count_per_node: int | None,
                 cpus_per_worker: float | None = None, gpus_per_worker: float | None = None) -> Sizing:
    """Workers per node and resources per worker, from the ``node_count`` biggest nodes.

    ``process_count_per_node`` defaults to the GPUs of a node when the nodes have GPUs (each
    worker then gets one), else to its cores.
    """
    if len(nodes) < node_count:
        raise BackendError(
            f"node_count={node_count}, but the Ray cluster has {len(nodes)} alive node(s) with "
            f"CPUs: {describe_nodes(nodes)}. Lower node_count to at most {len(nodes)}, or add "
            "nodes to the cluster (ray start --address=<head> on each)")
    chosen = nodes[:node_count]
    cpus = min(n["Resources"].get("CPU", 0) for n in chosen)
    gpus = min(n["Resources"].get("GPU", 0) for n in chosen)
    per_node = process_count_per_node or int(gpus) or max(1, int(cpus))
    if cpus_per_worker is None:
        cpus_per_worker = _floor4(min(1.0, cpus / per_node))
    if gpus_per_worker is None:
        gpus_per_worker = _floor4(min(1.0, gpus / per_node)) if gpus >= 1 else 0.0
    if cpus_per_worker <= 0:
        raise BackendError(f"num_cpus_per_worker={cpus_per_worker}: must be > 0")
    return Sizing(node_count, per_node, cpus_per_worker, gpus_per_worker)


def free_resources() -> str:
    """The cluster's free CPUs, GPUs and memory now, for an error message."""
    try:
        free = ray.available_resources()
    except RayError:
        return "unknown"
    return ", ".join(f"{k} {v:g}" for k, v in sorted(free.items())
                     if k in ("CPU", "GPU") or k.startswith("memory")) or "nothing"
