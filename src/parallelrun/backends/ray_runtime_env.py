"""A job's ``RuntimeSpec`` as Ray's ``runtime_env`` for the worker actors, and the upload of local
folders in it.

Separate from the backend because it converts data shapes (the plain ``RuntimeSpec`` the
pipeline layer makes from an ``Environment``, into a ``runtime_env`` dict) and calls Ray's
private upload helpers, which a future Ray may move; the backend only decides what goes in.
"""

from __future__ import annotations

import inspect
import logging
import os
from typing import Any

from parallelrun.backends.base import RuntimeSpec
from parallelrun.errors import BackendError

# the Ray backend's one logger, whichever of its modules writes
log = logging.getLogger("parallelrun.backends.ray")


def runtime_env_of(runtime: RuntimeSpec | None) -> dict:
    """Ray's ``runtime_env`` for the job's ``RuntimeSpec``: its pip packages and variables.

    Example: ``runtime_env_of(RuntimeSpec(pip=("pillow",), environment_variables={"A": "1"}))``
    -> ``{"pip": ["pillow"], "env_vars": {"A": "1"}}``
    """
    if runtime is None:
        return {}
    if not isinstance(runtime, RuntimeSpec):
        raise BackendError(
            f"environment={runtime!r}: the Ray backend takes a RuntimeSpec, which "
            "parallelrun.run_job and pipeline steps make from an Environment; run the job "
            "through those, or pass parallelrun.backends.base.RuntimeSpec(pip=..., "
            "environment_variables=...)")
    result: dict[str, Any] = {}
    if runtime.pip:
        result["pip"] = list(runtime.pip)
    if runtime.environment_variables:
        result["env_vars"] = dict(runtime.environment_variables)
    return result


def merge_runtime_env(*envs: dict) -> dict:
    """Later dicts win; ``env_vars`` are merged key by key and ``pip`` lists are joined."""
    merged: dict[str, Any] = {}
    for env in envs:
        for key, value in (env or {}).items():
            if key == "env_vars" and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            elif key == "pip" and isinstance(merged.get(key), list) and isinstance(value, list):
                merged[key] = merged[key] + [p for p in value if p not in merged[key]]
            else:
                merged[key] = value
    return merged


def upload_local_paths(env: dict) -> dict:
    """Upload local ``working_dir`` / ``py_modules`` folders to the cluster, as ``ray.init`` does.

    Ray accepts local folders only in a job-level ``runtime_env``; for actors they must already
    be URIs. The helpers that ``ray.init`` uses for that are not public, so their absence (a
    future Ray) becomes a clear error instead of a crash.
    """
    try:
        from ray._private.runtime_env.py_modules import upload_py_modules_if_needed
        from ray._private.runtime_env.working_dir import upload_working_dir_if_needed
    except ImportError as exc:
        raise BackendError(
            "this Ray version cannot upload the source directory for nodes that do not share "
            f"this machine's files ({exc}); install parallelrun on the nodes and pass "
            "runtime_env={'working_dir': '<a zip URI: s3://..., gs://..., https://...>'}") from exc
    for upload in (upload_py_modules_if_needed, upload_working_dir_if_needed):
        kwargs: dict[str, Any] = {"scratch_dir": os.getcwd(), "logger": log}
        if "include_gitignore" in inspect.signature(upload).parameters:
            kwargs["include_gitignore"] = True
        env = upload(env, **kwargs)
    return env
