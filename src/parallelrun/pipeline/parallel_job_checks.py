"""A ``type: parallel`` job file's checks, all problems reported at once with their lines
(:class:`ParallelJobFile`). The file's shape and values are checked by
:class:`~parallelrun.pipeline.job_schema.ParallelJobSpec` (config.py's rules for every value
that becomes a ParallelRunConfig field); what is checked here by hand is what one key alone
cannot show: references between keys (``${{inputs.x}}``), files on disk, and the parallel
options inside ``task.program_arguments``. The keys and their meaning are in
:mod:`parallelrun.pipeline.yaml_job`. Separate from building the step
(:mod:`parallelrun.pipeline.parallel_job`): checking looks at the file and the disk only, never
at a workspace.
"""

from __future__ import annotations

import os
import re
import shlex
from typing import Any

from parallelrun.config import check_arguments, check_field, check_script_name, parse_file_count
from parallelrun.data.urls import is_url
from parallelrun.errors import ConfigurationError, ParallelRunError
from parallelrun.pipeline.job_file import _DATA_TYPES, _MODEL_TYPES, _REF, JobFile
from parallelrun.pipeline.job_schema import ParallelJobSpec

#: Azure ML's parallel options, passed as flags in ``task.program_arguments``: flag ->
#: the ParallelRunConfig field it sets (None: no meaning here; accepted and noted in run.log)
PARALLEL_OPTIONS = {
    "error_threshold": "error_threshold",
    "allowed_failed_percent": "allowed_failed_percent",
    "allowed_failed_count": "allowed_failed_count",
    # the time from the job's start to its first mini-batch: locally, workers' start and init()
    "first_task_creation_timeout": "init_timeout",
    "task_overhead_timeout": None,
    "progress_update_timeout": None,
    "resource_monitor_interval": None,
    "copy_logs_to_parent": None,
}
_OPTION_NOTES = {
    "task_overhead_timeout": "the time to hand a mini-batch to run() is not limited apart from "
                             "retry_settings.timeout",
    "progress_update_timeout": "a job whose workers all stop making progress ends with an error "
                               "by parallelrun's own rule",
    "resource_monitor_interval": "logs/sys/perf is sampled at parallelrun's own interval",
    "copy_logs_to_parent": "the step's logs are in the run's folder already",
}


class ParallelJobFile(JobFile):
    """A ``type: parallel`` job file (or a pipeline job's parallel node) and its checks;
    :class:`~parallelrun.pipeline.parallel_job.ParallelJob` builds the step from it."""

    def __init__(self, path: str | os.PathLike, data: dict, lines: dict[str, int],
                 key_prefix: str = "", bound: dict[str, Any] | None = None,
                 folder: str | None = None):
        super().__init__(path, data, lines, folder)
        self.key_prefix = key_prefix
        #: inputs bound to other nodes' outputs (pipeline jobs): name -> PipelineData
        self.bound: dict[str, Any] = dict(bound or {})
        #: parallel options of program_arguments that mean nothing here (for run.log)
        self.notes: list[str] = []

    # names --------------------------------------------------------------------------------------
    @property
    def step_name(self) -> str:
        raw = str(self.data.get("display_name") or self.data.get("name") or "parallel-job")
        name = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
        if not name or not name[0].isalpha():
            name = "job-" + name
        name = name[:32].rstrip("-")
        return name if len(name) >= 3 else "parallel-job"

    # checking -----------------------------------------------------------------------------------
    def check(self) -> None:
        """Check the file's shape and values (not yet what exists in a workspace)."""
        self.check_shape(ParallelJobSpec)
        # by hand: what the shape cannot show (references between keys, the disk)
        data = self.data
        inputs = _mapping(data.get("inputs"))
        outputs = _mapping(data.get("outputs"))
        for name, spec in inputs.items():
            self._check_input_path(name, spec)
        ref = self._reference("input_data", data.get("input_data"), "inputs", inputs)
        if ref is not None:
            spec = inputs.get(ref)
            kind = spec.get("type", "uri_folder") if isinstance(spec, dict) else "string"
            if isinstance(kind, str) and kind not in _DATA_TYPES:
                self.problem("input_data", f"inputs.{ref} is of type {kind}; the data to split "
                             "into mini-batches must be uri_folder, uri_file or mltable")
            elif ref not in self.bound and kind in ("uri_folder", "uri_file"):
                self._check_file_count(ref, kind, spec.get("path"))
        task = data.get("task")
        if isinstance(task, dict):
            self._check_task(task, inputs, outputs)

    def _check_file_count(self, ref: str, kind: str, path: Any) -> None:
        """Files, wherever they are, are cut into mini-batches by count: a size ('1MB') is for
        tables. A registered dataset (azureml:name) may be either, so its own rule decides
        once it is looked up."""
        size = self.data.get("mini_batch_size")
        registered = str(path).startswith("azureml:") and not str(path).startswith("azureml://")
        if size is None or registered or self.key_prefix + "mini_batch_size" in \
                {key for _, key, _ in self.problems}:
            return
        try:
            parse_file_count(size)
        except ConfigurationError as exc:
            self.problem("mini_batch_size", f"{size!r}: inputs.{ref} is {kind}: {exc.allowed}")

    def _get(self, dotted: str) -> Any:
        value: Any = self.data
        for part in dotted.split("."):
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return value

    def _check_input_path(self, name: str, spec: Any) -> None:
        """A data or model input's local path exists (another node's output exists once that
        node ran)."""
        kind = spec.get("type", "uri_folder") if isinstance(spec, dict) else None
        if name in self.bound or not isinstance(kind, str) or kind not in _DATA_TYPES | _MODEL_TYPES:
            return   # a literal, another node's output, or a type the shape check refused
        path = spec.get("path")
        if not path:
            self.problem(f"inputs.{name}.path", f"required for a {kind} input")
        elif not _is_reference(str(path)):
            local = self._local(str(path))
            if not os.path.exists(local):
                self.problem(f"inputs.{name}.path", f"{path!r}: nothing at {local}")
            elif kind == "mltable":
                from parallelrun.data.mltable import read_mltable_file

                try:
                    read_mltable_file(local)
                except ParallelRunError as exc:
                    self.problem(f"inputs.{name}.path", f"{path!r}: {exc}")

    def _local(self, path: str) -> str:
        return path if os.path.isabs(path) else os.path.normpath(os.path.join(self.folder, path))

    def _reference(self, key: str, value: Any, section: str, known: dict) -> str | None:
        if value is None:   # a required one missing is a problem of the shape
            return None
        match = _REF.fullmatch(str(value).strip())
        if not match or match.group(1) != section:
            self.problem(key, f"{value!r}: a reference such as ${{{{{section}.<name>}}}}")
            return None
        if match.group(2) not in known:
            self.problem(key, f"{section}.{match.group(2)} is not defined; {section}: "
                         f"{', '.join(known) or 'none'}")
            return None
        return match.group(2)

    def _check_task(self, task: dict, inputs: dict, outputs: dict) -> None:
        code = self._local(str(task.get("code") or "."))
        if not os.path.isdir(code):
            self.problem("task.code", f"{task.get('code')!r}: no folder at {code}")
        script = task.get("entry_script")
        if isinstance(script, (str, int, float)) and str(script).strip():   # else: the shape's
            try:
                check_script_name("task.entry_script", str(script))   # config.py's rule
            except ConfigurationError as exc:
                self.problem("task.entry_script", f"{script!r}: {exc.allowed}")
            else:
                if os.path.isdir(code) and not os.path.isfile(os.path.join(code, str(script))):
                    self.problem("task.entry_script", f"{script!r}: no such file in {code}")
        self._reference("task.append_row_to", task.get("append_row_to"), "outputs", outputs)
        arguments = task.get("program_arguments")
        if isinstance(arguments, (str, list)):   # anything else is a problem of the shape
            text = " ".join(map(str, arguments)) if isinstance(arguments, list) else arguments
            for match in _REF.finditer(text):
                section, name = match.groups()
                if name not in (inputs if section == "inputs" else outputs):
                    self.problem("task.program_arguments",
                                 f"{match.group(0)} names no {section[:-1]} ({section}: "
                                 f"{', '.join(inputs if section == 'inputs' else outputs) or 'none'})")
            self._parallel_options(arguments)
        environment = task.get("environment")
        if isinstance(environment, dict):
            conda = environment.get("conda_file")
            if conda and not os.path.isfile(self._local(str(conda))):
                self.problem("task.environment.conda_file", f"{conda!r}: no such file")

    def _parallel_options(self, arguments: Any) -> tuple[dict, list[str]]:
        """Azure ML's parallel options in ``program_arguments`` (``--error_threshold 5``...):
        the ParallelRunConfig values they set, and the arguments left for the script. Options
        with no meaning here are dropped and noted in ``self.notes``."""
        if arguments is None:
            return {}, []
        tokens = split_arguments(arguments)
        if tokens is None:
            self.problem("task.program_arguments", f"{arguments!r}: a command line whose quotes "
                         "are closed, or a list of arguments")
            return {}, []
        options: dict[str, Any] = {}
        rest: list[str] = []
        self.notes = []
        i = 0
        while i < len(tokens):
            token = tokens[i]
            flag, _, inline = token.partition("=")
            name = flag[2:] if flag.startswith("--") else None
            if name not in PARALLEL_OPTIONS:
                rest.append(token)
                i += 1
                continue
            if inline:
                value, i = inline, i + 1
            elif i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
                value, i = tokens[i + 1], i + 2
            else:
                self.problem("task.program_arguments", f"--{name} needs a value")
                i += 1
                continue
            field = PARALLEL_OPTIONS[name]
            if field is None:
                self.notes.append(f"--{name} {value}: accepted; {_OPTION_NOTES[name]}")
                continue
            number = _number(value)
            if number is None:
                self.problem("task.program_arguments", f"--{name} {value!r}: a number")
                continue
            try:
                options[field] = check_field(field, number, name=f"--{name}")   # config.py's rule
            except ConfigurationError as exc:
                self.problem("task.program_arguments", f"--{name} {value!r}: {exc.allowed}")
        try:
            check_arguments(rest)   # the script's own arguments, by config.py's rule
        except ConfigurationError as exc:
            self.problem("task.program_arguments", f"{exc.value!r}: {exc.allowed}")
        return options, rest


def split_arguments(arguments: Any) -> list[str] | None:
    """``program_arguments`` (a command line or a list) as a list of strings; None where a
    command line's quotes are not closed."""
    if isinstance(arguments, list):
        return [str(a) for a in arguments]
    try:
        return shlex.split(str(arguments))
    except ValueError:
        return None


def _mapping(value: Any) -> dict:
    """A section that should be a mapping, or {} (the shape check reports it otherwise)."""
    return value if isinstance(value, dict) else {}


def _number(text: str) -> int | float | None:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return None


def _is_reference(path: str) -> bool:
    return path.startswith("azureml:") or is_url(path)
