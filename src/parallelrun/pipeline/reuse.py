"""``allow_reuse``: when a step may take the output of an earlier run instead of running.

A step's reuse key is a SHA-256 over these parts, each hashed on its own (the parts are stored
with the step run, so a miss can say what changed):

``kind``         the step kind and parallelrun's version
``script``       the script folder: every file's relative path and content (``__pycache__``,
                 ``.git``, ``*.pyc`` and ``.ipynb_checkpoints`` skipped) and the script's name
``config``       every ParallelRunConfig value (mini_batch_size, error_threshold, output_action,
                 process_count_per_node, timeouts...), the compute target's name and kind
``inputs``       each input and side input: a registered dataset's id, name, version and
                 registered fingerprint, and for every dataset the fingerprint of its files now
                 (paths, sizes, modification times or etags); a PipelineData input: the step run
                 that wrote it (so a step after one that ran again runs again)
``models``       each model's name and version (a folder given by path: its files' fingerprint)
``arguments``    the arguments, with datasets and PipelineData replaced by their identity
``environment``  the environment's spec (packages, Python version, variables); none = default
``outputs``      the names of the outputs

A hit is the newest Finished step run with the same key whose output folders still exist; its
outputs become this step's outputs, nothing runs. Any change in any part is a miss.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable

from parallelrun import __version__
from parallelrun.data.base import AbstractDataset
from parallelrun.pipeline.pipeline_data import PipelineData

_SKIP_DIRS = {"__pycache__", ".git", ".ipynb_checkpoints", ".pytest_cache"}
_SKIP_SUFFIXES = (".pyc", ".pyo")
_CONFIG_SKIP = {"source_directory", "entry_script", "environment", "compute_target"}


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def folder_digest(folder: str | os.PathLike) -> str:
    """SHA-256 of a folder's files: relative paths and contents, in sorted order."""
    digest = hashlib.sha256()
    root = Path(folder)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            if name.endswith(_SKIP_SUFFIXES):
                continue
            path = Path(dirpath, name)
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            try:
                with open(path, "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 20), b""):
                        digest.update(block)
            except OSError:
                digest.update(b"<unreadable>")
            digest.update(b"\0")
    return digest.hexdigest()


def files_fingerprint(folder: str | os.PathLike) -> str:
    """Cheap fingerprint of a folder (paths, sizes, modification times), e.g. model folders."""
    digest = hashlib.sha256()
    root = Path(folder)
    if root.is_file():
        stat = root.stat()
        return _digest([root.name, stat.st_size, stat.st_mtime_ns])
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            stat = os.stat(os.path.join(dirpath, name))
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            digest.update(f"{rel}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def dataset_identity(dataset: AbstractDataset) -> dict:
    """What identifies a dataset's data: its registration and the fingerprint of its files now."""
    registration = dataset.registration or {}
    identity: dict[str, Any] = {
        "kind": dataset.kind, "name": dataset.name,
        "registered": {k: registration.get(k) for k in ("id", "name", "version", "fingerprint")}
        if registration else None}
    try:
        record = dataset.to_record()
    except Exception:  # noqa: BLE001 - kinds without records are described instead
        record = dataset.describe()
    identity["definition"] = record
    digest = hashlib.sha256()
    entries = getattr(dataset, "file_entries", None)
    try:
        if callable(entries):
            for entry in entries():
                digest.update(f"{entry.url}\t{entry.size}\t{entry.tag}\n".encode())
        else:
            for path in dataset.iter_files():
                stat = os.stat(path)
                digest.update(f"{path}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    except Exception as exc:  # noqa: BLE001 - unreadable data never matches an earlier run
        digest.update(f"unlistable: {exc}".encode())
    identity["files"] = digest.hexdigest()
    return identity


@dataclasses.dataclass
class ReuseKey:
    key: str
    parts: dict[str, str]

    def changed_since(self, earlier_parts: dict[str, str] | None) -> list[str]:
        """The parts that differ from an earlier step run's."""
        if not earlier_parts:
            return []
        return [name for name, value in self.parts.items() if earlier_parts.get(name) != value]


def _item_identity(item: Any, producer_of: Callable[[str], str | None]) -> Any:
    if isinstance(item, PipelineData):
        return {"pipeline_data": item.name, "written_by": producer_of(item.name)}
    if isinstance(item, AbstractDataset):
        return dataset_identity(item)
    return str(item)


def _model_identity(models: Any) -> list:
    if isinstance(models, dict):
        return sorted([str(name), files_fingerprint(path)] for name, path in models.items())
    found = []
    for model in models or []:
        version = getattr(model, "version", None)
        identity: list[Any] = [getattr(model, "name", str(model)), version]
        if version is None and getattr(model, "path", None):
            identity.append(files_fingerprint(model.path))
        found.append(identity)
    return sorted(found, key=str)


def _compute_identity(target: Any) -> Any:
    if target is None:
        return "local"
    if isinstance(target, str):
        return target
    return [getattr(target, "name", None), getattr(target, "kind", None) or
            getattr(target, "backend", None)]


def _config_values(config: Any) -> dict:
    values = {}
    for field in dataclasses.fields(config):
        if field.name in _CONFIG_SKIP:
            continue
        values[field.name] = getattr(config, field.name)
    values["entry_script"] = str(config.entry_script)
    values["compute_target"] = _compute_identity(config.compute_target)
    return values


def _environment_identity(env: Any) -> Any:
    if env is None:
        return None
    spec_hash = getattr(env, "spec_hash", None)
    return spec_hash() if callable(spec_hash) else repr(env)


def step_reuse_key(step: Any, producer_of: Callable[[str], str | None]) -> ReuseKey:
    """The reuse key of ``step`` (see the module doc for what it holds).

    ``producer_of(name)`` gives the id of the step run whose output PipelineData ``name`` is
    (for a reused producer, the run it reused).
    """
    parts: dict[str, Any] = {"kind": [step.kind, __version__]}
    if step.kind == "parallel":
        config = step.parallel_run_config
        parts["script"] = [str(config.entry_script), folder_digest(config.source_path)]
        parts["config"] = _config_values(config)
        parts["environment"] = _environment_identity(config.environment)
        parts["models"] = _model_identity(step.models)
        inputs = [*step.inputs, "side:", *step.side_inputs]
    else:
        parts["script"] = [step.script_name, folder_digest(step.source_path)]
        parts["config"] = {"compute_target": _compute_identity(step.compute_target),
                           "params": step.params}
        parts["environment"] = _environment_identity(step.environment)
        parts["models"] = []
        inputs = list(step.inputs)
    parts["inputs"] = [_item_identity(item, producer_of) for item in inputs]
    parts["arguments"] = [_item_identity(arg, producer_of) for arg in step.arguments]
    parts["outputs"] = [output.name for output in step.outputs]
    hashed = {name: _digest(value) for name, value in parts.items()}
    return ReuseKey(_digest(hashed), hashed)
