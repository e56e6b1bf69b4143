"""What every v2 job file has, whatever its ``type``: the YAML read with the line of each key
(:func:`_line_map`), the :class:`JobFile` base (path, folder, data, problems each reported with
its line, the check of its shape against :mod:`~parallelrun.pipeline.job_schema`'s models,
experiment name) and the vocabulary that parallel jobs
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
from parallelrun.pipeline.job_schema import DATA_TYPES, LITERAL_TYPES, MODEL_TYPES, document_problems

_DATA_TYPES = set(DATA_TYPES)
_MODEL_TYPES = set(MODEL_TYPES)
_LITERAL_TYPES = set(LITERAL_TYPES)
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
        # a key the file lacks (a required one) is reported at the line of its parent
        while line is None:
            parent = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", probe)
            if parent == probe:
                break
            probe, line = parent, self.lines.get(parent)
        if line is None and self.lines:
            line = min(self.lines.values())   # a top-level key the file lacks: its first line
        self.problems.append((line, key, message))

    def check_shape(self, model: type, data: Any = None, key_prefix: str = "") -> None:
        """Report every way ``data`` (default: the file's) differs from ``model``, one of
        :mod:`~parallelrun.pipeline.job_schema`'s, each as a problem with its line;
        ``key_prefix`` is where ``data`` sits in the file (``jobs.<node>.``)."""
        for key, message in document_problems(model, self.data if data is None else data):
            self.problem(key_prefix + key, message)

    def raise_problems(self) -> None:
        if self.problems:
            # in the file's order, so a reader fixes them top to bottom
            ordered = sorted(self.problems, key=lambda problem: problem[0] or 0)
            raise JobSpecError(os.path.relpath(self.path), ordered)

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

