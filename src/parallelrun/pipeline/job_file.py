"""What every v2 job file has, whatever its ``type``: the YAML read with the line of each key
(:func:`_line_map`), the :class:`JobFile` base (path, folder, data, problems each reported with
its line, experiment name) and the vocabulary that parallel jobs
(:mod:`parallelrun.pipeline.parallel_job`) and pipeline jobs
(:mod:`parallelrun.pipeline.pipeline_job`) share: input types, ``${{inputs.x}}`` references and
job names. It is separate so a pipeline job needs nothing of a parallel job to be read.
"""

from __future__ import annotations

import os
import re
from typing import Any

import yaml

from parallelrun.errors import JobSpecError

_DATA_TYPES = {"uri_folder", "uri_file", "mltable"}
_MODEL_TYPES = {"custom_model", "mlflow_model", "triton_model"}
_LITERAL_TYPES = {"string", "integer", "number", "boolean"}
_REF = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z0-9_]+)\s*\}\}")


def _line_map(text: str) -> dict[str, int]:
    """Dotted key path -> line number in the file."""
    lines: dict[str, int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
                lines[key] = key_node.start_mark.line + 1
                walk(value_node, key)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                key = f"{prefix}[{i}]"
                lines[key] = item.start_mark.line + 1
                walk(item, key)

    if root is not None:
        walk(root, "")
    return lines


class JobFile:
    """What every v2 job file has: its path and folder, its data and the line of each key, and
    the problems found in it, each reported with its line."""

    #: where this job sits in its file: "" for a whole file, "jobs.<node>." for a node of a
    #: pipeline job (keys in messages and line numbers carry it)
    key_prefix = ""

    def __init__(self, path: str | os.PathLike, data: dict, lines: dict[str, int],
                 folder: str | None = None):
        self.path = os.path.abspath(os.fspath(path))
        #: relative paths in the job (code, inputs) are relative to this folder
        self.folder = folder or os.path.dirname(self.path)
        self.data = data
        self.lines = lines
        self.problems: list[tuple[int | None, str, str]] = []

    def problem(self, key: str, message: str) -> None:
        key = self.key_prefix + key
        line, probe = self.lines.get(key), key
        while line is None and "." in probe:
            probe = probe.rsplit(".", 1)[0]
            line = self.lines.get(probe)
        self.problems.append((line, key, message))

    def raise_problems(self) -> None:
        if self.problems:
            raise JobSpecError(os.path.relpath(self.path), self.problems)

    @property
    def experiment_name(self) -> str:
        name = self.data.get("experiment_name")
        if name:
            return str(name)
        base = re.sub(r"[^A-Za-z0-9_-]+", "_", os.path.basename(self.folder)).strip("_-")
        return base or "default"



def new_job_name(base: str) -> str:
    """A unique job name, as Azure ML gives every job (what ``${{name}}`` stands for)."""
    import secrets

    return f"{re.sub(r'[^a-z0-9_]+', '_', base.lower()).strip('_') or 'job'}_{secrets.token_hex(5)}"

