"""A checked ``type: parallel`` job as a pipeline: :class:`ParallelJob` turns the file's inputs,
models, outputs, compute, environment and arguments into one ParallelRunStep, looking up the
workspace's names (datasets, models, environments, compute targets) and reporting any miss with
its line. The checks it builds on are :mod:`parallelrun.pipeline.parallel_job_checks`; the
file's keys are described in :mod:`parallelrun.pipeline.yaml_job`.
"""

from __future__ import annotations

import os
import re
from typing import Any

from parallelrun.data.urls import is_url
from parallelrun.errors import ConfigurationError, ParallelRunError
from parallelrun.pipeline.job_file import _LITERAL_TYPES, _MODEL_TYPES, _REF, new_job_name
from parallelrun.pipeline.job_schema import CONFIG_FIELDS
from parallelrun.pipeline.job_schema import DATASTORE_PATH as _DATASTORE_PATH
from parallelrun.pipeline.job_schema import PATH_TOKEN as _PATH_TOKEN
from parallelrun.pipeline.parallel_job_checks import ParallelJobFile, split_arguments
from parallelrun.pipeline.pipeline_data import DatastorePlacement, LocalPlacement, PipelineData


class ParallelJob(ParallelJobFile):
    """A parsed, checked job file. ``Experiment(ws, job.experiment_name).submit(job)`` runs it.

    Example::

        job = load_job("job.yml")
        run = Experiment(ws, job.experiment_name).submit(job)
    """

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
                error_threshold=(-1 if data.get("error_threshold") is None
                                 else data["error_threshold"]),
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
            key = {**{field: key for key, field in CONFIG_FIELDS.items()},
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
                    data.place_at(DatastorePlacement(match.group(1), match.group(2)))
            elif is_url(path):
                self.problem(f"outputs.{name}.path", f"{path!r}: a local folder or "
                             "azureml://datastores/<name>/paths/<path>")
            else:
                data.place_at(LocalPlacement(self._local(path)))
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
        tokens = split_arguments(arguments) or []   # check() refused unclosed quotes
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



def _default_datastore_name(workspace: Any) -> str:
    return workspace.get_default_datastore().name


def _name_version(text: str) -> tuple[str, str]:
    """``name:3``, ``name@latest``, ``name`` -> (name, version or "latest")."""
    if "@" in text:
        name, _, label = text.partition("@")
        return name, label or "latest"
    if ":" in text:
        name, _, version = text.rpartition(":")
        return name, version
    return text, "latest"

