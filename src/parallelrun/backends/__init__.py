"""Compute backends, chosen by name. ``import parallelrun`` never imports Ray: backends outside
this package's core register as ``"module:Class"`` strings and are imported on first use.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from parallelrun.backends.base import Backend, Slot, WorkerSpec
from parallelrun.errors import BackendError, ConfigurationError

BACKENDS: dict[str, str] = {
    "local": "parallelrun.backends.local:LocalProcessBackend",
    "ray": "parallelrun.backends.ray:RayBackend",
}


@dataclasses.dataclass
class BackendTarget:
    """The simplest compute target: a backend name and its options.

    Compute targets of the workspace (``ws.compute_targets[name]``) expose the same two
    attributes, which is all ``run_job`` reads.
    """

    backend: str
    backend_options: dict = dataclasses.field(default_factory=dict)


def backend_choice(compute_target: Any) -> tuple[str, dict]:
    """The backend a compute target runs on, and its options: ``"local"`` for None, a name as it
    is, a target object's ``backend`` and ``backend_options``; anything else is refused.

    Example: ``backend_choice(ws.compute_targets["ray-cluster"])`` ->
    ``("ray", {"address": "auto"})``.
    """
    if compute_target is None:
        return "local", {}
    if isinstance(compute_target, str):
        return compute_target, {}
    name = getattr(compute_target, "backend", None)
    if not name:
        raise ConfigurationError("compute_target", compute_target,
                                 "a compute target (ws.compute_targets[name]) or a backend name "
                                 "such as 'local' or 'ray'")
    return name, dict(getattr(compute_target, "backend_options", None) or {})


def backend_of(compute_target: Any) -> str:
    """The name of the backend a compute target runs on (see :func:`backend_choice`).

    Example: ``backend_of(ws.compute_targets["ray-cluster"])`` -> ``"ray"``.
    """
    return backend_choice(compute_target)[0]


def register_backend(name: str, target: str) -> None:
    """Make a backend available by name; ``target`` is ``"package.module:ClassName"``."""
    BACKENDS[name] = target


def get_backend(name: str) -> type[Backend]:
    """The backend class registered as ``name`` (imported now if it was not yet)."""
    try:
        target = BACKENDS[name]
    except KeyError:
        raise BackendError(
            f"unknown compute backend {name!r}; available: {', '.join(sorted(BACKENDS))}") from None
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = {"ray": "ray"}.get(name, name)
        raise BackendError(
            f"backend {name!r} needs a package that is not installed ({exc.name}); "
            f"install it with: pip install 'parallelrun[{extra}]'") from exc
    return getattr(module, class_name)


__all__ = ["BACKENDS", "Backend", "BackendTarget", "Slot", "WorkerSpec", "backend_choice",
           "backend_of", "get_backend",
           "register_backend"]
