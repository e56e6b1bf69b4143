"""A ``type: parallel`` job file's checks: every key, value, reference and local path in the
file, all problems reported at once with their lines (:class:`ParallelJobFile`). The keys and
their meaning are in :mod:`parallelrun.pipeline.yaml_job`. Separate from building the step
(:mod:`parallelrun.pipeline.parallel_job`): checking looks at the file and the disk only, never
at a workspace.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
from typing import Any

from parallelrun.config import LOGGING_LEVELS, is_mini_batch_size
from parallelrun.data.urls import is_url
from parallelrun.errors import ConfigurationError
from parallelrun.pipeline.job_file import _DATA_TYPES, _LITERAL_TYPES, _MODEL_TYPES, _REF, JobFile

_TOP_KEYS = {"$schema", "type", "name", "display_name", "description", "tags", "experiment_name",
             "compute", "inputs", "outputs", "input_data", "mini_batch_size", "partition_keys",
             "mini_batch_error_threshold", "error_threshold", "logging_level", "resources",
             "max_concurrency_per_instance", "retry_settings", "environment_variables", "task",
             "identity", "settings", "properties", "is_deterministic"}
_TASK_KEYS = {"type", "code", "entry_script", "environment", "program_arguments",
              "append_row_to", "model"}
_RESOURCE_KEYS = {"instance_count", "instance_type", "properties", "shm_size", "docker_args",
                  "locations"}
_RETRY_KEYS = {"max_retries", "timeout"}
_INPUT_KEYS = {"type", "path", "mode", "description", "optional", "default", "value"}
_OUTPUT_KEYS = {"type", "path", "mode", "description", "name", "version"}
# Azure ML's access modes. Here data is read where it lies (local paths) or fetched by the
# workers (URLs), and outputs are written in place on a local datastore (rw_mount) or staged and
# uploaded when the step ends (upload): each mode is accepted and has that one local meaning.
_INPUT_MODES = ("ro_mount", "download", "direct", "eval_mount", "eval_download")
_OUTPUT_MODES = ("rw_mount", "upload", "direct")
_OUTPUT_TYPES = ("uri_folder", "uri_file", "mltable")
#: what ``${{default_datastore}}``, ``${{name}}`` and ``${{output_name}}`` stand for in outputs' paths
_PATH_TOKEN = re.compile(r"\$\{\{\s*(default_datastore|name|output_name)\s*\}\}")
_DATASTORE_PATH = re.compile(r"azureml://datastores/([^/]+)/paths/(.*)")
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

    # problems -----------------------------------------------------------------------------------

    def _unknown_keys(self, mapping: dict, allowed: set[str], prefix: str) -> None:
        for key in mapping:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else \
                    f"; known keys: {', '.join(sorted(allowed))}"
                self.problem(f"{prefix}{key}", f"unknown key{hint}")

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
        data = self.data
        self._unknown_keys(data, _TOP_KEYS, "")
        if data.get("type") != "parallel":
            self.problem("type", f"{data.get('type')!r}: a parallel job needs 'type: parallel'")
        inputs = data.get("inputs") or {}
        outputs = data.get("outputs") or {}
        if not isinstance(inputs, dict):
            self.problem("inputs", "a mapping of input names to inputs")
            inputs = {}
        if not isinstance(outputs, dict):
            self.problem("outputs", "a mapping of output names to outputs")
            outputs = {}
        for name, spec in inputs.items():
            self._check_input(name, spec)
        for name, spec in outputs.items():
            if spec is not None and not isinstance(spec, dict):
                self.problem(f"outputs.{name}", "a mapping such as {type: uri_folder}")
                continue
            spec = spec or {}
            self._unknown_keys(spec, _OUTPUT_KEYS, f"outputs.{name}.")
            if spec.get("mode", "rw_mount") not in _OUTPUT_MODES:
                self.problem(f"outputs.{name}.mode",
                             f"{spec.get('mode')!r}: one of {', '.join(_OUTPUT_MODES)}")
            if spec.get("type", "uri_folder") not in _OUTPUT_TYPES:
                self.problem(f"outputs.{name}.type",
                             f"{spec.get('type')!r}: {', '.join(_OUTPUT_TYPES)}")
            path = spec.get("path")
            if path is not None:
                for token in re.findall(r"\$\{\{[^}]*\}\}", str(path)):
                    if not _PATH_TOKEN.fullmatch(token):
                        self.problem(f"outputs.{name}.path",
                                     f"{token} in {path!r}: paths may use ${{{{default_datastore}}}}, "
                                     "${{name}} and ${{output_name}}")
                text = str(path)
                if text.startswith("azureml://") and not _DATASTORE_PATH.fullmatch(text):
                    self.problem(f"outputs.{name}.path",
                                 f"{path!r}: azureml://datastores/<name>/paths/<path>")
                elif is_url(text) and not text.startswith("azureml://"):
                    self.problem(f"outputs.{name}.path", f"{path!r}: a local folder or "
                                 "azureml://datastores/<name>/paths/<path>")
        ref = self._reference("input_data", data.get("input_data"), "inputs", inputs, required=True)
        if ref is not None:
            spec = inputs.get(ref)
            kind = spec.get("type", "uri_folder") if isinstance(spec, dict) else "string"
            if kind not in _DATA_TYPES:
                self.problem("input_data", f"inputs.{ref} is of type {kind}; the data to split "
                             "into mini-batches must be uri_folder, uri_file or mltable")
        self._check_int("mini_batch_error_threshold", -1)
        self._check_int("error_threshold", -1)
        self._check_int("max_concurrency_per_instance", 1)
        size = data.get("mini_batch_size")
        if size is not None and not is_mini_batch_size(size):   # config.py's rule
            self.problem("mini_batch_size", f"{size!r}: a count of files ('10') or a data size "
                         "('1MB', '10KB') for tables")
        keys = data.get("partition_keys")
        if keys is not None and (not isinstance(keys, list)
                                 or not all(isinstance(k, str) for k in keys)):
            self.problem("partition_keys", "a list of column names, e.g. [region, date]")
        level = data.get("logging_level")
        if level is not None and str(level).upper() not in LOGGING_LEVELS:
            self.problem("logging_level", f"{level!r}: {', '.join(LOGGING_LEVELS[:-1])} or "
                         f"{LOGGING_LEVELS[-1]}")
        for section, allowed in (("resources", _RESOURCE_KEYS), ("retry_settings", _RETRY_KEYS)):
            value = data.get(section)
            if value is None:
                continue
            if not isinstance(value, dict):
                self.problem(section, "a mapping")
                continue
            self._unknown_keys(value, allowed, f"{section}.")
        self._check_int("resources.instance_count", 1)
        self._check_int("retry_settings.max_retries", 0)
        timeout = self._get("retry_settings.timeout")
        if timeout is not None:
            from parallelrun.config import check_seconds   # the one rule for timeouts

            try:
                check_seconds("retry_settings.timeout", timeout)
            except ConfigurationError:
                self.problem("retry_settings.timeout",
                             f"{timeout!r}: seconds one run() may take, > 0 and finite")
        env_vars = data.get("environment_variables")
        if env_vars is not None and not isinstance(env_vars, dict):
            self.problem("environment_variables", "a mapping of names to values")
        task = data.get("task")
        if not isinstance(task, dict):
            self.problem("task", "required: a mapping with type: run_function, code, entry_script")
        else:
            self._check_task(task, inputs, outputs)

    def _get(self, dotted: str) -> Any:
        value: Any = self.data
        for part in dotted.split("."):
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return value

    def _check_int(self, dotted: str, minimum: int) -> None:
        value = self._get(dotted)
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.problem(dotted, f"{value!r}: a whole number >= {minimum}")

    def _check_input(self, name: str, spec: Any) -> None:
        key = f"inputs.{name}"
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", str(name)):
            self.problem(key, "input names are letters, digits and '_'")
        if not isinstance(spec, dict):
            return  # a literal value
        self._unknown_keys(spec, _INPUT_KEYS, f"{key}.")
        if spec.get("mode", "ro_mount") not in _INPUT_MODES:
            self.problem(f"{key}.mode", f"{spec.get('mode')!r}: one of {', '.join(_INPUT_MODES)}")
        if name in self.bound:
            return  # another node's output: it exists once that node ran
        kind = spec.get("type", "uri_folder")
        if kind not in _DATA_TYPES | _MODEL_TYPES | _LITERAL_TYPES:
            known = ", ".join(sorted(_DATA_TYPES | _MODEL_TYPES | _LITERAL_TYPES))
            self.problem(f"{key}.type", f"{kind!r}: one of {known}")
        elif kind in _DATA_TYPES | _MODEL_TYPES:
            path = spec.get("path")
            if not path:
                self.problem(f"{key}.path", f"required for a {kind} input")
            elif not _is_reference(str(path)):
                local = self._local(str(path))
                if not os.path.exists(local):
                    self.problem(f"{key}.path", f"{path!r}: nothing at {local}")

    def _local(self, path: str) -> str:
        return path if os.path.isabs(path) else os.path.normpath(os.path.join(self.folder, path))

    def _reference(self, key: str, value: Any, section: str, known: dict,
                   required: bool = False) -> str | None:
        if value is None:
            if required:
                self.problem(key, f"required: ${{{{{section}.<name>}}}}")
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
        self._unknown_keys(task, _TASK_KEYS, "task.")
        if task.get("type", "run_function") != "run_function":
            self.problem("task.type", f"{task.get('type')!r}: only run_function")
        code = self._local(str(task.get("code") or "."))
        if not os.path.isdir(code):
            self.problem("task.code", f"{task.get('code')!r}: no folder at {code}")
        script = task.get("entry_script")
        if not script:
            self.problem("task.entry_script", "required: the .py file with init() and run()")
        elif os.path.isdir(code) and not os.path.isfile(os.path.join(code, str(script))):
            self.problem("task.entry_script", f"{script!r}: no such file in {code}")
        self._reference("task.append_row_to", task.get("append_row_to"), "outputs", outputs)
        arguments = task.get("program_arguments")
        if arguments is not None:
            text = " ".join(arguments) if isinstance(arguments, list) else str(arguments)
            for match in _REF.finditer(text):
                section, name = match.groups()
                if name not in (inputs if section == "inputs" else outputs):
                    self.problem("task.program_arguments",
                                 f"{match.group(0)} names no {section[:-1]} ({section}: "
                                 f"{', '.join(inputs if section == 'inputs' else outputs) or 'none'})")
        if arguments is not None:
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
        tokens = [str(a) for a in arguments] if isinstance(arguments, list) else \
            shlex.split(str(arguments))
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
            options[field] = number
        return options, rest


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
