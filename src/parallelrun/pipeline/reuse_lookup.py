"""``allow_reuse`` at run time: a step takes the outputs of the newest Finished step run with
its reuse key (:mod:`~parallelrun.pipeline.reuse` computes the key) whose output folders still
exist, and nothing runs; on a miss, ``run.log`` says which parts of the key changed since the
step's previous run."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from parallelrun.pipeline import step_counts
from parallelrun.pipeline.records import RunStore
from parallelrun.pipeline.reuse import step_reuse_key
from parallelrun.statuses import RunStatus

#: what a reusing step run copies from the one it reuses: its counts and metrics
_COPIED = (*step_counts.COLUMNS, "metrics")


def _still_there(outputs: dict[str, dict]) -> bool:
    return all(o.get("local_path") and os.path.isdir(o["local_path"]) or
               o.get("path_on_datastore") and not o.get("local_path")
               for o in outputs.values())


def reuse_earlier_outputs(store: RunStore, step, step_run_id: str, started: float,
                          producer_of: Callable[[str], str | None],
                          log: logging.Logger) -> dict[str, dict] | None:
    """Finish step run ``step_run_id`` with an earlier run's outputs and return them (each with
    its ``origin``), or record the step's reuse key and return None when there is no hit.

    ``producer_of`` names the step run that wrote a PipelineData of this run (part of the key).
    """
    key = step_reuse_key(step, producer_of)
    for earlier in store.reusable(key.key):
        outputs = earlier.get("outputs") or {}
        if not _still_there(outputs):
            continue
        reused = {name: {**o, "origin": earlier["id"]} for name, o in outputs.items()}
        store.update_step(step_run_id, status=RunStatus.FINISHED, reuse_key=key.key,
                          reuse_parts=key.parts, reused_from=earlier["id"], outputs=reused,
                          log_dir=earlier.get("log_dir"), finished_at=time.time(),
                          **{field: earlier[field] for field in _COPIED})
        log.info("[%s] reused the output of step run %s (run %s): nothing changed",
                 step.name, earlier["id"], earlier["run_id"])
        return reused
    previous = store.previous_step(step.name, started)
    changed = key.changed_since(previous.get("reuse_parts") if previous else None)
    store.update_step(step_run_id, reuse_key=key.key, reuse_parts=key.parts)
    if changed:
        log.info("[%s] not reused: %s changed since step run %s", step.name,
                 ", ".join(changed), previous["id"])
    return None
