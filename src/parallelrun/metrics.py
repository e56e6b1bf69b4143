"""Metrics and tags an entry script logs while it runs (``Run.get_context().log(...)``).

Each worker appends JSON lines to ``logs/user/metrics/<node>/<process>.jsonl``: plain files,
so it works the same on every backend and survives a worker that dies later. The coordinator
(or anyone reading the log folder later) folds them with :func:`collect_metrics`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from parallelrun.script import current_context

_lock = threading.Lock()


def _metrics_file() -> Path | None:
    ctx = current_context()
    if ctx is None:
        return None
    return Path(ctx.log_dir, "user", "metrics", ctx.node_name, f"{ctx.process_name}.jsonl")


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def record(kind: str, name: str, value: Any) -> bool:
    """Append one metric/tag line for this worker; False outside a worker (nothing written)."""
    path = _metrics_file()
    if path is None:
        return False
    line = json.dumps({"kind": kind, "name": str(name), "value": _jsonable(value),
                       "time": time.time(), "pid": os.getpid()})
    with _lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    return True


def collect_metrics(log_dir: str | os.PathLike) -> dict[str, Any]:
    """Fold every worker's metric files: ``{"metrics": {name: [values in time order]}, "tags": {}}``.

    Example::

        collect_metrics("out/logs")["metrics"]["accuracy"]   # -> [0.91, 0.93]
    """
    entries = []
    for path in sorted(Path(log_dir, "user", "metrics").rglob("*.jsonl")):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    entries.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line torn by a worker killed mid-write
    entries.sort(key=lambda e: e["time"])
    metrics: dict[str, list] = {}
    tags: dict[str, Any] = {}
    for entry in entries:
        if entry["kind"] == "tag":
            tags[entry["name"]] = entry["value"]
        elif entry["kind"] == "list":
            metrics.setdefault(entry["name"], []).extend(entry["value"])
        else:
            metrics.setdefault(entry["name"], []).append(entry["value"])
    return {"metrics": metrics, "tags": tags}
