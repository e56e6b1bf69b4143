"""A v2-style parallel job in YAML (``parallelrun job submit job.yml``), after Azure ML's
``type: parallel`` jobs.

Example ``job.yml``::

    type: parallel
    experiment_name: digits
    inputs:
      images: {type: uri_folder, path: ./data/images}
      model: {type: custom_model, path: azureml:mnist:1}
    outputs:
      predictions: {type: uri_folder}
    input_data: ${{inputs.images}}
    mini_batch_size: "10"
    mini_batch_error_threshold: 5      # failed mini-batches tolerated (-1: all)
    error_threshold: -1                # failed items tolerated (-1: all)
    logging_level: INFO
    resources: {instance_count: 1}
    max_concurrency_per_instance: 2
    retry_settings: {max_retries: 2, timeout: 60}
    environment_variables: {OMP_NUM_THREADS: "1"}
    task:
      type: run_function
      code: ./src
      entry_script: score.py
      environment: {conda_file: ./env.yml}     # or azureml:name:version; none: this Python
      program_arguments: --model ${{inputs.model}} --threshold 0.5
      append_row_to: ${{outputs.predictions}}

How keys map onto parallelrun: ``mini_batch_error_threshold`` -> ``allowed_failed_count``,
``retry_settings.max_retries`` (default 2) -> ``run_max_try = max_retries + 1``,
``retry_settings.timeout`` (default 60) -> ``run_invocation_timeout``,
``resources.instance_count`` -> ``node_count``, ``max_concurrency_per_instance`` ->
``process_count_per_node``, ``append_row_to`` given -> ``append_row`` into that output, else
``summary_only``. Input paths: local paths (relative to the YAML file), ``azureml:name:version``
/ ``azureml:name@latest`` (registered datasets and, for model inputs, models),
``azureml://datastores/<name>/paths/<path>`` and ``az://`` / ``s3://`` URLs. ``mltable`` inputs
read the folder's ``MLTable`` file (``paths`` and a ``read_delimited`` / ``read_parquet`` /
``read_json_lines`` transformation). Model inputs reach the script through
``AZUREML_MODEL_DIR`` and ``${{inputs.model}}``. A job runs every time it is submitted (no
reuse). Every problem found is reported at once, each with its line in the file.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from parallelrun.data.urls import is_url
from parallelrun.errors import ConfigurationError, JobSpecError, ParallelRunError  # noqa: F401 (re-exported)
from parallelrun.pipeline.pipeline_data import PipelineData

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
_DATA_TYPES = {"uri_folder", "uri_file", "mltable"}
_MODEL_TYPES = {"custom_model", "mlflow_model", "triton_model"}
_LITERAL_TYPES = {"string", "integer", "number", "boolean"}
_REF = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z0-9_]+)\s*\}\}")
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


class ParallelJob(JobFile):
    """A parsed, checked job file. ``Experiment(ws, job.experiment_name).submit(job)`` runs it.

    Example::

        job = load_job("job.yml")
        run = Experiment(ws, job.experiment_name).submit(job)
    """

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
        if size is not None and not re.match(r"^\d+([kKmMgG][bB])?$", str(size).strip()):
            self.problem("mini_batch_size", f"{size!r}: a count of files ('10') or a data size "
                         "('1MB', '10KB') for tables")
        keys = data.get("partition_keys")
        if keys is not None and (not isinstance(keys, list)
                                 or not all(isinstance(k, str) for k in keys)):
            self.problem("partition_keys", "a list of column names, e.g. [region, date]")
        level = data.get("logging_level")
        if level is not None and str(level).upper() not in ("WARNING", "INFO", "DEBUG"):
            self.problem("logging_level", f"{level!r}: WARNING, INFO or DEBUG")
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

    # building -----------------------------------------------------------------------------------
    def to_pipeline(self, workspace: Any):
        """The one-step Pipeline this job is; workspace names (datasets, models, environments,
        compute) are looked up now and any miss is reported with its line."""
        from parallelrun.pipeline.graph import Pipeline

        step = self.to_step(workspace)
        return Pipeline(workspace=workspace, steps=[step], description=self.data.get("description"))

    def to_step(self, workspace: Any, step_name: str | None = None, job_name: str | None = None,
                default_datastore: str | None = None, default_compute: Any = None,
                outputs: dict[str, PipelineData] | None = None):
        """The ParallelRunStep this job is (a node of a pipeline job, or the whole job).

        ``job_name`` is what ``${{name}}`` stands for in output paths (default: a new unique
        name), ``default_datastore`` what ``${{default_datastore}}`` does (default: the
        workspace's). ``outputs`` gives PipelineData for some outputs (those bound to the
        pipeline's outputs); the others are made here.
        """
        from parallelrun.config import ParallelRunConfig
        from parallelrun.pipeline.steps import ParallelRunStep

        self.problems = []
        self.check()
        self.raise_problems()
        data, task = self.data, self.data["task"]
        inputs_spec = data.get("inputs") or {}
        outputs_spec = data.get("outputs") or {}
        tokens = {"name": job_name or new_job_name(self.step_name),
                  "default_datastore": default_datastore or _default_datastore_name(workspace)}
        values: dict[str, Any] = {}
        models: dict[str, Any] = {}
        for name, spec in inputs_spec.items():
            values[name] = self._input(workspace, name, spec, models)
        given = dict(outputs or {})
        outputs = {}
        for name, spec in outputs_spec.items():
            outputs[name] = given.get(name) or self._output(workspace, name, spec or {}, tokens)
        compute = self._compute(workspace, default_compute)
        environment = self._environment(workspace, task.get("environment"))
        options, script_arguments = self._parallel_options(task.get("program_arguments"))
        arguments = self._arguments(script_arguments, values, outputs)
        self.raise_problems()

        data_ref = _REF.fullmatch(str(data["input_data"]).strip()).group(2)
        append = task.get("append_row_to")
        output_name = _REF.fullmatch(str(append).strip()).group(2) if append else \
            (next(iter(outputs)) if outputs else None)
        file_name = None
        if append and (outputs_spec.get(output_name) or {}).get("type") == "uri_file":
            path = str((outputs_spec[output_name] or {}).get("path") or "")
            file_name = os.path.basename(path) or None
        retries = self._get("retry_settings.max_retries")
        timeout = self._get("retry_settings.timeout")
        try:
            settings = dict(
                source_directory=self._local(str(task.get("code") or ".")),
                entry_script=str(task["entry_script"]),
                mini_batch_size=(None if data.get("mini_batch_size") is None
                                 else str(data["mini_batch_size"])),
                error_threshold=data.get("error_threshold", -1),
                allowed_failed_count=data.get("mini_batch_error_threshold"),
                output_action="append_row" if append else "summary_only",
                append_row_file_name=file_name,
                compute_target=compute, environment=environment,
                node_count=self._get("resources.instance_count") or 1,
                process_count_per_node=data.get("max_concurrency_per_instance"),
                run_max_try=(2 if retries is None else retries) + 1,
                run_invocation_timeout=60 if timeout is None else timeout,
                logging_level=str(data.get("logging_level") or "INFO").upper(),
                partition_keys=data.get("partition_keys"),
                environment_variables={str(k): str(v) for k, v in
                                       (data.get("environment_variables") or {}).items()} or None)
            settings.update(options)
            config = ParallelRunConfig(**settings)
        except ParallelRunError as exc:
            key = {"run_max_try": "retry_settings.max_retries",
                   "run_invocation_timeout": "retry_settings.timeout",
                   "node_count": "resources.instance_count",
                   "process_count_per_node": "max_concurrency_per_instance",
                   "allowed_failed_count": "mini_batch_error_threshold",
                   "entry_script": "task.entry_script", "source_directory": "task.code",
                   **{field: "task.program_arguments" for field in options}}.get(
                getattr(exc, "parameter", ""), getattr(exc, "parameter", "task"))
            self.problem(key, str(exc))
            self.raise_problems()
        main = values[data_ref]
        output = outputs.get(output_name) if output_name else None
        try:
            step = ParallelRunStep(name=step_name or self.step_name, parallel_run_config=config,
                                   inputs=[main], output=output, models=models or None,
                                   arguments=arguments, allow_reuse=False)
        except ParallelRunError as exc:
            self.problem("task.program_arguments" if "arguments" in str(getattr(exc, "parameter", ""))
                         else "input_data", str(exc))
            self.raise_problems()
        for name, extra in outputs.items():
            if extra is not output:
                step.outputs.append(extra)   # further outputs: folders the script writes
        self._check_nodes(workspace, config)
        self.raise_problems()
        step.notes = list(self.notes)
        return step

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

    def _check_nodes(self, workspace: Any, config: Any) -> None:
        from parallelrun.pipeline.step_compute import node_count_problem

        target, problem = node_count_problem(config, workspace)
        if problem:
            self.problem("resources.instance_count",
                         f"{config.node_count}: compute {getattr(target, 'name', target)!r}: "
                         f"{problem}; use fewer, an AmlCompute target (compute: azureml:<name>) "
                         "or a Ray cluster")

    def _input(self, workspace: Any, name: str, spec: Any, models: dict) -> Any:
        key = f"inputs.{name}"
        if not isinstance(spec, dict):
            return str(spec).lower() if isinstance(spec, bool) else str(spec)
        kind = spec.get("type", "uri_folder")
        if kind in _LITERAL_TYPES:
            value = spec.get("value", spec.get("default"))
            return str(value).lower() if isinstance(value, bool) else str(value)
        if name in self.bound:
            return self.bound[name]
        path = str(spec["path"])
        try:
            if kind in _MODEL_TYPES:
                model = self._model(workspace, path)
                if isinstance(model, str):
                    models[name] = model
                    return model
                # a registered model: found by its own name (and name:version) in init()
                models[model.name] = model.path
                models[f"{model.name}:{model.version}"] = model.path
                return model.model_path   # the registered file or folder itself
            if kind == "mltable":
                return self._mltable(workspace, path).as_named_input(name)
            return self._files(workspace, path, kind).as_named_input(name)
        except ParallelRunError as exc:
            self.problem(f"{key}.path", str(exc))
            return None

    def _model(self, workspace: Any, path: str) -> Any:
        if path.startswith("azureml:") and not path.startswith("azureml://"):
            from parallelrun.workspace.models import Model

            name, version = _name_version(path[len("azureml:"):])
            return Model(workspace, name, version=None if version == "latest" else int(version))
        return os.path.abspath(self._local(path))

    def _files(self, workspace: Any, path: str, kind: str) -> Any:
        from parallelrun.data.files import FileDataset

        if path.startswith("azureml://"):
            return FileDataset.from_files(self._datastore_path(workspace, path), validate=True)
        if path.startswith("azureml:"):
            from parallelrun.data.dataset import Dataset

            name, version = _name_version(path[len("azureml:"):])
            return Dataset.get_by_name(workspace, name, version=version)
        if is_url(path):
            return FileDataset.from_files(path)
        return FileDataset.from_files(self._local(path))

    def _datastore_path(self, workspace: Any, path: str) -> Any:
        match = re.fullmatch(r"azureml://datastores/([^/]+)/paths/(.*)", path)
        if not match:
            raise ConfigurationError("path", path, "azureml://datastores/<name>/paths/<path>")
        from parallelrun.workspace.datastore import Datastore

        return Datastore.get(workspace, match.group(1)).path(match.group(2))

    def _mltable(self, workspace: Any, path: str) -> Any:
        from parallelrun.data.mltable import load_mltable

        if is_url(path):
            raise ConfigurationError("path", path, "a local folder holding an MLTable file")
        return load_mltable(self._local(path))

    def _output(self, workspace: Any, name: str, spec: dict, tokens: dict) -> PipelineData:
        data = PipelineData(name, data_type="MLTable" if spec.get("type") == "mltable" else None)
        path = spec.get("path")
        if path:
            values = {**tokens, "output_name": name}
            path = _PATH_TOKEN.sub(lambda m: values[m.group(1)], str(path))
            if spec.get("type") == "uri_file":
                path = path.rsplit("/", 1)[0] if "/" in path else "."
            if path.startswith("azureml://"):
                match = _DATASTORE_PATH.fullmatch(path)
                if not match:
                    self.problem(f"outputs.{name}.path",
                                 f"{path!r}: azureml://datastores/<name>/paths/<path>")
                else:
                    data._destination = ("datastore", match.group(1), match.group(2))
            elif is_url(path):
                self.problem(f"outputs.{name}.path", f"{path!r}: a local folder or "
                             "azureml://datastores/<name>/paths/<path>")
            else:
                data._destination = ("local", self._local(path))
        return data

    def _compute(self, workspace: Any, default: Any = None) -> Any:
        compute = self.data.get("compute") or default
        if compute in (None, "", "local", "azureml:local"):
            return None
        name = str(compute)
        name = name[len("azureml:"):] if name.startswith("azureml:") else name
        if name not in workspace.compute_targets:
            self.problem("compute", f"{compute!r}: no such compute target; registered: "
                         f"{', '.join(workspace.compute_targets) or 'none'}")
            return None
        return workspace.compute_targets[name]

    def _environment(self, workspace: Any, spec: Any) -> Any:
        from parallelrun.pipeline.environment import Environment

        if spec is None:
            return None
        try:
            if isinstance(spec, dict):
                conda = spec.get("conda_file")
                name = str(spec.get("name") or f"{self.step_name}-env")
                env = Environment.from_conda_specification(name, self._local(str(conda))) if conda \
                    else Environment(name)
                if spec.get("image"):
                    env.docker.base_image = spec["image"]
                env.validate()
                return env
            text = str(spec)
            if text.startswith("azureml:"):
                text = text[len("azureml:"):]
            name, version = _name_version(text)
            return Environment.get(workspace, name, None if version == "latest" else version)
        except ParallelRunError as exc:
            self.problem("task.environment", str(exc))
            return None

    def _arguments(self, arguments: Any, values: dict, outputs: dict) -> list[Any]:
        if arguments is None:
            return []
        tokens = [str(a) for a in arguments] if isinstance(arguments, list) else \
            shlex.split(str(arguments))
        result: list[Any] = []
        for token in tokens:
            whole = _REF.fullmatch(token)
            if whole:
                section, name = whole.groups()
                result.append(values.get(name) if section == "inputs" else outputs.get(name))
                continue

            def literal(match: re.Match) -> str:
                section, name = match.groups()
                value = values.get(name) if section == "inputs" else None
                if isinstance(value, str):
                    return value
                self.problem("task.program_arguments",
                             f"{match.group(0)} inside {token!r}: data and outputs must be "
                             "arguments of their own (e.g. --data ${{inputs.images}})")
                return match.group(0)

            result.append(_REF.sub(literal, token))
        return result


def new_job_name(base: str) -> str:
    """A unique job name, as Azure ML gives every job (what ``${{name}}`` stands for)."""
    import secrets

    return f"{re.sub(r'[^a-z0-9_]+', '_', base.lower()).strip('_') or 'job'}_{secrets.token_hex(5)}"


def _default_datastore_name(workspace: Any) -> str:
    return workspace.get_default_datastore().name


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


def _name_version(text: str) -> tuple[str, str]:
    """``name:3``, ``name@latest``, ``name`` -> (name, version or "latest")."""
    if "@" in text:
        name, _, label = text.partition("@")
        return name, label or "latest"
    if ":" in text:
        name, _, version = text.rpartition(":")
        return name, version
    return text, "latest"


def load_job(path: str | os.PathLike) -> Any:
    """Read and check a job file (``type: parallel``, or ``type: pipeline``: a
    :class:`~parallelrun.pipeline.pipeline_job.PipelineJob`); raises JobSpecError listing every
    problem with its line.

    Example: ``job = load_job("job.yml")``.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError("job file", os.fspath(path),
                                 f"a readable YAML file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = f"the file does not parse: {getattr(exc, 'problem', exc)}"
        raise JobSpecError(os.fspath(path),
                           [(mark.line + 1 if mark else None, "yaml", problem)]) from None
    if not isinstance(data, dict):
        raise JobSpecError(os.fspath(path), [(1, "file", "a YAML mapping (type: parallel, ...)")])
    if data.get("type") == "pipeline":
        from parallelrun.pipeline.pipeline_job import load_pipeline_job

        return load_pipeline_job(path, text, data)
    job = ParallelJob(path, data, _line_map(text))
    job.check()
    job.raise_problems()
    return job


def submit_job(path: str | os.PathLike, workspace: Any, experiment_name: str | None = None):
    """Submit the job in ``path``; returns its PipelineRun at once.

    Example: ``run = submit_job("job.yml", ws); run.wait_for_completion(show_output=True)``.
    """
    from parallelrun.pipeline.experiment import Experiment

    job = load_job(path)
    return Experiment(workspace, experiment_name or job.experiment_name).submit(job)
