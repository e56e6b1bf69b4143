"""Which compute a step runs on, and with how many workers: a step's compute target resolved
in its workspace, and an AmlCompute's nodes folded onto this machine's worker slots.

Submit, job files and the runner all ask here, so what is checked before a run is what runs.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from parallelrun.backends import backend_of, get_backend


def resolve_compute(target: Any, workspace: Any) -> Any:
    """A step's compute target as an object: None is the workspace's ``local``; a name is
    looked up in the workspace (``"local"`` and ``"ray"`` also work without registration)."""
    if target is None:
        return workspace.compute_targets["local"] if workspace is not None else "local"
    if isinstance(target, str):
        if workspace is not None and target in workspace.compute_targets:
            return workspace.compute_targets[target]
        return target
    return target


def effective_config(config, workspace: Any):
    """The config a step really runs with: its compute target resolved and, on an AmlCompute
    (or a local compute with ``max_workers``), its ``node_count x process_count_per_node``
    workers folded onto this machine's worker slots."""
    from parallelrun.backends.local import gpu_count

    target = resolve_compute(config.compute_target, workspace)
    changes: dict[str, Any] = {"compute_target": target}
    slots = getattr(target, "max_workers", None)
    if backend_of(target) == "local" and (getattr(target, "kind", "") == "amlcompute" or slots):
        per_node = config.process_count_per_node or gpu_count() or os.cpu_count() or 1
        workers = config.node_count * per_node
        if slots:
            workers = min(workers, int(slots))
        changes.update(node_count=1, process_count_per_node=max(1, workers))
    return dataclasses.replace(config, **changes)


def node_count_problem(config, workspace: Any) -> tuple[Any, str | None]:
    """The compute target a step runs on, and why its ``node_count`` cannot work there (None
    when it can): what submit and job files check before anything runs."""
    effective = effective_config(config, workspace)
    target = effective.compute_target
    return target, get_backend(backend_of(target)).check_node_count(effective.node_count)
