"""``load_job`` (``azure.ai.ml.load_job``): a job file as the SDK's objects.

The file is read and checked by :mod:`parallelrun.pipeline.yaml_job` /
:mod:`parallelrun.pipeline.pipeline_job` (every problem with its line), then turned into the
same objects a ``@pipeline`` function or ``parallel_run_function`` builds.
"""

from __future__ import annotations

import os
from typing import Any

from parallelrun.ml._io import absolute
from parallelrun.ml._nodes import Command, Parallel, _Node
from parallelrun.ml._pipeline import PipelineJob


def load_job(source: str | os.PathLike, *, relative_origin: str | None = None,
             **kwargs: Any) -> Any:
    """A ``type: pipeline`` file as a :class:`PipelineJob`, a ``type: parallel`` file as a
    parallel node (submit either with ``ml_client.jobs.create_or_update``).

    Example: ``job = load_job(source="./pipeline.yml")``.
    """
    from parallelrun.pipeline.pipeline_job import PipelineJob as PipelineFile
    from parallelrun.pipeline.yaml_job import load_job as read_job

    path = absolute(source)
    checked = read_job(path)
    if isinstance(checked, PipelineFile):
        return PipelineJob._from_dict(checked.data, checked.nodes, source=path)
    node: _Node = Parallel._from_dict(_with_absolute_paths(checked.data, checked.folder))
    node._source = path
    return node


def _with_absolute_paths(data: dict, folder: str) -> dict:
    """A parallel job file's dict with its relative paths made absolute from its folder."""
    from parallelrun.pipeline.pipeline_job import absolute_input, absolute_task

    data = dict(data)
    data["inputs"] = {k: absolute_input(v, folder) for k, v in (data.get("inputs") or {}).items()}
    if isinstance(data.get("task"), dict):
        data["task"] = absolute_task(data["task"], folder)
    return data


__all__ = ["load_job", "Command"]
