"""A job's ``Environment`` as Ray's ``runtime_env`` for the worker actors, and the upload of local
folders in it.

Separate from the backend because it converts data shapes (an ``Environment``, or the Azure ML
shape of one, into a ``runtime_env`` dict) and calls Ray's private upload helpers, which a
future Ray may move; the backend only decides what goes in.
"""

from __future__ import annotations

import inspect
import logging
import os
from typing import Any

from parallelrun.errors import BackendError

# the Ray backend's one logger, whichever of its modules writes
log = logging.getLogger("parallelrun.backends.ray")


def environment_runtime_env(environment: Any) -> dict:
    """Ray's ``runtime_env`` for a parallelrun ``Environment`` (or anything shaped like one).

    Uses ``environment.to_runtime_env()`` when it exists; otherwise reads the Azure ML shape:
    ``environment.environment_variables`` and the pip packages of
    ``environment.python.conda_dependencies``.

    Example: ``environment_runtime_env(env)`` -> ``{"pip": ["pillow"], "env_vars": {"A": "1"}}``
    """
    if environment is None:
        return {}
    if isinstance(environment, dict):
        return dict(environment)
    to_runtime_env = getattr(environment, "to_runtime_env", None)
    if callable(to_runtime_env):
        return dict(to_runtime_env() or {})
    result: dict[str, Any] = {}
    env_vars = getattr(environment, "environment_variables", None)
    if env_vars:
        result["env_vars"] = {str(k): str(v) for k, v in dict(env_vars).items()}
    deps = getattr(getattr(environment, "python", None), "conda_dependencies", None)
    pip = None
    if deps is not None:
        getter = getattr(deps, "pip_packages", None)
        pip = getter() if callable(getter) else getter
    if pip:
        result["pip"] = [str(p) for p in pip]
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
