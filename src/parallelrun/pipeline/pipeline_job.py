"""v2 pipeline jobs in YAML (``type: pipeline``), after Azure ML's ``pipelineJob`` schema.

Example (Microsoft's ``3a_mnist_batch_identification/pipeline.yml``, shortened)::

    type: pipeline
    experiment_name: hello-world-parallel-job
    settings: {default_compute: azureml:cpu-cluster, default_datastore: azureml:workspaceblobstore}
    jobs:
      prepare_data:
        type: command
        component: ./script/prepare_data.yml          # or inline: code, command, environment
      predict_digits_mnist:
        type: parallel
        inputs:
          job_data_path: {type: uri_folder, path: ${{parent.jobs.prepare_data.outputs.mnist_png}}}
          score_model: {type: uri_folder, path: ./mnist_models}
        outputs:
          job_output_file:
            type: uri_file
            path: azureml://datastores/${{default_datastore}}/paths/${{name}}/aggregated_returns.csv
        input_data: ${{inputs.job_data_path}}
        task: {type: run_function, code: ./script, entry_script: digit_identification.py,
               program_arguments: --model ${{inputs.score_model}}, append_row_to: ${{outputs.job_output_file}}}

Each node is a step of one pipeline run: a ``parallel`` node a ParallelRunStep (the keys of a
``type: parallel`` job, :mod:`parallelrun.pipeline.yaml_job`), a ``command`` node a script step
that runs its ``command`` in its ``code`` folder, ``${{inputs.x}}`` and ``${{outputs.y}}`` in it
replaced by local paths and values. ``component: ./file.yml`` takes the node from a component
file (``commandComponent`` / ``parallelComponent``; the node's own keys override it, its
``inputs`` give the component's inputs their values). Bindings: ``${{parent.inputs.x}}`` (the
pipeline's inputs), ``${{parent.jobs.<node>.outputs.<y>}}`` (another node's output: the node
runs after it), ``${{parent.outputs.z}}`` as a node's output (the pipeline's output ``z``, its
``path`` deciding where it goes). Step names are node names with ``_`` as ``-`` (Azure ML's step
name rule). A job runs every time it is submitted (no reuse). Every problem is reported at
once, with its line in the pipeline file.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from parallelrun.data.urls import is_url
from parallelrun.errors import ParallelRunError
from parallelrun.pipeline.job_schema import CommandJobSpec, PipelineJobSpec
from parallelrun.pipeline.pipeline_data import LocalPlacement, PipelineData
from parallelrun.pipeline.yaml_job import (
    _DATA_TYPES, _LITERAL_TYPES, _MODEL_TYPES, _REF, JobFile, JobSpecError, ParallelJob,
    _line_map, new_job_name,
)

_COMPONENT_ONLY = {"$schema", "name", "version", "display_name", "is_deterministic", "tags",
                   "description"}
_PARENT_INPUT = re.compile(r"\$\{\{\s*parent\.inputs\.([A-Za-z0-9_]+)\s*\}\}")
_PARENT_OUTPUT = re.compile(r"\$\{\{\s*parent\.outputs\.([A-Za-z0-9_]+)\s*\}\}")
_NODE_OUTPUT = re.compile(
    r"\$\{\{\s*parent\.jobs\.([A-Za-z0-9_]+)\.outputs\.([A-Za-z0-9_]+)\s*\}\}")
#: the runner runs a script step as ``python <script> <arguments>``; command nodes' script
SHIM = str(Path(__file__).with_name("command_shim.py"))


def step_name_of(node: str) -> str:
    """A node's step name: ``predict_digits_mnist`` -> ``predict-digits-mnist``."""
    name = re.sub(r"[^a-z0-9-]+", "-", node.lower()).strip("-")
    if not name or not name[0].isalpha():
        name = "job-" + name
    name = name[:32].rstrip("-")
    return name if len(name) >= 3 else f"{name}-job"


class PipelineJob(JobFile):
    """A parsed, checked ``type: pipeline`` file; ``Experiment(ws, job.experiment_name).submit(job)``
    runs it (``to_pipeline`` builds the steps).

    Example::

        job = load_job("pipeline.yml")
        run = Experiment(ws, job.experiment_name).submit(job)
    """

    def __init__(self, path: str | os.PathLike, data: dict, lines: dict[str, int]):
        super().__init__(path, data, lines)
        #: node name -> its resolved definition (component merged, parent inputs filled in)
        self.nodes: dict[str, dict] = {}

    @property
    def step_name(self) -> str:
        return ", ".join(step_name_of(n) for n in self.nodes) or "no steps"

    def _settings(self) -> dict:
        settings = self.data.get("settings") or {}
        return settings if isinstance(settings, dict) else {}

    # checking -----------------------------------------------------------------------------------
    def check(self) -> None:
        """Check the file's shape, its components and bindings (not yet the workspace)."""
        data = self.data
        self.check_shape(PipelineJobSpec)
        jobs = data.get("jobs")
        if not isinstance(jobs, dict):
            return   # a problem of the shape
        self.nodes = {}
        for name, node in jobs.items():
            if not isinstance(node, dict):
                continue   # a problem of the shape
            resolved = self._resolve_node(name, node)
            if resolved is not None:
                self.nodes[name] = resolved
        names = [step_name_of(n) for n in self.nodes]
        for name in self.nodes:
            if names.count(step_name_of(name)) > 1:
                self.problem(f"jobs.{name}", f"two nodes would be step {step_name_of(name)!r}; "
                             "rename one")
        for name, node in self.nodes.items():
            self._check_bindings(name, node)
            if node["type"] == "parallel":
                job = self._parallel(name, node)
                job.check()
                self.problems.extend(job.problems)
            else:
                self._check_command(name, node)

    def _resolve_node(self, name: str, node: dict) -> dict | None:
        """The node with its component merged in and ``${{parent.inputs.x}}`` filled in; paths
        absolute (component paths are relative to the component file)."""
        key = f"jobs.{name}"
        node = dict(node)
        component = node.pop("component", None)
        if component is not None:
            base = self._component(key, component)
            if base is None:
                return None
            merged = {k: v for k, v in base.items() if k not in _COMPONENT_ONLY}
            declared = dict(merged.get("inputs") or {})
            # the node's own values are relative to the pipeline file, not the component's
            given = {k: absolute_input(v, self.folder) for k, v in
                     (node.pop("inputs", None) or {}).items()}
            for input_name in given:
                if input_name not in declared:
                    self.problem(f"{key}.inputs.{input_name}",
                                 f"the component has no input {input_name!r}; it has "
                                 f"{', '.join(declared) or 'none'}")
            inputs = {}
            for input_name, spec in declared.items():
                value = given.get(input_name)
                inputs[input_name] = _with_value(spec, value) if input_name in given else \
                    _default_of(spec)
            outputs = dict(merged.get("outputs") or {})
            for output_name, spec in (node.pop("outputs", None) or {}).items():
                outputs[output_name] = spec if not isinstance(spec, dict) else \
                    {**(outputs.get(output_name) or {}), **spec}
            merged.update(node)
            merged["inputs"], merged["outputs"] = inputs, outputs
            node = merged
        else:
            node["inputs"] = {k: absolute_input(v, self.folder) for k, v in
                              (node.get("inputs") or {}).items()}
            for field in ("code",):
                if isinstance(node.get(field), str):
                    node[field] = _local(node[field], self.folder)
            task = node.get("task")
            if isinstance(task, dict):
                node["task"] = absolute_task(task, self.folder)
            if isinstance(node.get("environment"), dict):
                node["environment"] = _absolute_environment(node["environment"], self.folder)
        kind = node.get("type")
        if kind not in ("parallel", "command"):
            self.problem(f"{key}.type", f"{kind!r}: parallel or command")
            return None
        parent_inputs = self.data.get("inputs") or {}
        for input_name, spec in list((node.get("inputs") or {}).items()):
            text = spec.get("path") if isinstance(spec, dict) else spec
            match = _PARENT_INPUT.fullmatch(str(text).strip()) if isinstance(text, str) else None
            if match:
                if match.group(1) not in parent_inputs:
                    self.problem(f"{key}.inputs.{input_name}",
                                 f"{text}: the pipeline has no input {match.group(1)!r} (inputs: "
                                 f"{', '.join(parent_inputs) or 'none'})")
                    continue
                value = absolute_input(parent_inputs[match.group(1)], self.folder)
                node["inputs"][input_name] = _with_value(spec, value)
        return node

    def _component(self, key: str, reference: Any) -> dict | None:
        if not isinstance(reference, str) or reference.startswith("azureml:") and \
                not reference.startswith("azureml://") and "file:" not in reference:
            self.problem(f"{key}.component", f"{reference!r}: a component file (./component.yml); "
                         "registered components (azureml:name:version) are not supported")
            return None
        path = _local(reference[len("file:"):] if reference.startswith("file:") else reference,
                      self.folder)
        try:
            return component_spec(path)
        except OSError as exc:
            self.problem(f"{key}.component", f"{reference!r}: cannot read {path} ({exc.strerror})")
        except yaml.YAMLError as exc:
            self.problem(f"{key}.component", f"{reference!r}: {path} does not parse: {exc}")
        except ValueError:
            self.problem(f"{key}.component", f"{reference!r}: not a YAML mapping")
        return None

    def _check_bindings(self, name: str, node: dict) -> None:
        for input_name, spec in (node.get("inputs") or {}).items():
            text = spec.get("path") if isinstance(spec, dict) else spec
            if not isinstance(text, str) or "${{" not in text:
                continue
            match = _NODE_OUTPUT.fullmatch(text.strip())
            key = f"jobs.{name}.inputs.{input_name}"
            if not match:
                self.problem(key, f"{text}: bindings are ${{{{parent.inputs.<name>}}}} or "
                             "${{parent.jobs.<node>.outputs.<name>}}")
                continue
            other, output = match.groups()
            if other not in (self.data.get("jobs") or {}):
                self.problem(key, f"{text}: no node {other!r} (nodes: "
                             f"{', '.join(self.data.get('jobs') or {})})")
            elif other == name:
                self.problem(key, f"{text}: a node cannot read its own output")
            elif other in self.nodes and output not in (self.nodes[other].get("outputs") or {}):
                self.problem(key, f"{text}: node {other!r} has no output {output!r} (outputs: "
                             f"{', '.join(self.nodes[other].get('outputs') or {}) or 'none'})")
        parent_outputs = self.data.get("outputs") or {}
        for output_name, spec in (node.get("outputs") or {}).items():
            if isinstance(spec, str):
                match = _PARENT_OUTPUT.fullmatch(spec.strip())
                if not match or match.group(1) not in parent_outputs:
                    self.problem(f"jobs.{name}.outputs.{output_name}",
                                 f"{spec}: ${{{{parent.outputs.<name>}}}} naming an output of the "
                                 f"pipeline (outputs: {', '.join(parent_outputs) or 'none'})")

    def _check_command(self, name: str, node: dict) -> None:
        key = f"jobs.{name}"
        self.check_shape(CommandJobSpec, node, key_prefix=f"{key}.")
        # by hand: the disk and references between keys
        command = node.get("command")
        if not isinstance(command, str):
            return
        code = node.get("code") or self.folder
        if not os.path.isdir(code):
            self.problem(f"{key}.code", f"{node.get('code')!r}: no such folder")
        inputs, outputs = node.get("inputs") or {}, node.get("outputs") or {}
        for match in _REF.finditer(command):
            section, ref = match.groups()
            if ref not in (inputs if section == "inputs" else outputs):
                self.problem(f"{key}.command", f"{match.group(0)} names no {section[:-1]} "
                             f"({section}: {', '.join(inputs if section == 'inputs' else outputs) or 'none'})")
        for input_name, spec in inputs.items():
            if isinstance(spec, dict) and spec.get("type", "uri_folder") in _DATA_TYPES | _MODEL_TYPES:
                path = spec.get("path")
                if path is None and not spec.get("optional"):
                    self.problem(f"{key}.inputs.{input_name}", "required: a path or a binding")
                elif isinstance(path, str) and not is_url(path) and "${{" not in path and \
                        not path.startswith("azureml:") and not os.path.exists(path):
                    self.problem(f"{key}.inputs.{input_name}.path", f"{path!r}: no such file or folder")

    # building -----------------------------------------------------------------------------------
    def _parallel(self, name: str, node: dict, bound: dict | None = None) -> ParallelJob:
        """The node as a parallel job; ``bound``: its inputs bound to other nodes' outputs
        (PipelineData once built; while checking, None each)."""
        if bound is None:
            bound = {k: None for k in _bound_inputs(node)}
        parent_outputs = self.data.get("outputs") or {}
        outputs = {}
        for output, spec in (node.get("outputs") or {}).items():
            match = _PARENT_OUTPUT.fullmatch(spec.strip()) if isinstance(spec, str) else None
            # ${{parent.outputs.z}}: the pipeline's output z, its spec deciding where it goes
            outputs[output] = dict(parent_outputs.get(match.group(1)) or {}) if match else spec
        node = {**node, "outputs": outputs}
        return ParallelJob(self.path, node, self.lines, key_prefix=f"jobs.{name}.", bound=bound,
                           folder=self.folder)

    def to_pipeline(self, workspace: Any):
        """The Pipeline this job is: one step per node, in data order."""
        from parallelrun.pipeline.graph import Pipeline

        self.problems = []
        self.check()
        self.raise_problems()
        settings = self._settings()
        datastore = str(settings.get("default_datastore") or "").removeprefix("azureml:") or None
        if datastore is not None and datastore not in workspace.datastores:
            self.problem("settings.default_datastore",
                         f"{datastore!r}: no such datastore; registered: "
                         f"{', '.join(workspace.datastores) or 'none'}")
            self.raise_problems()
        compute = settings.get("default_compute") or self.data.get("compute")
        produced = self._outputs()
        order = self._order()
        steps = []
        for name in order:
            node = self.nodes[name]
            bound = {k: produced[source] for k, source in _bound_inputs(node).items()}
            own = {output: produced[(name, output)] for output in (node.get("outputs") or {})
                   if (name, output) in produced}
            try:
                if node["type"] == "parallel":
                    job = self._parallel(name, node, bound)
                    steps.append(job.to_step(workspace, step_name=step_name_of(name),
                                             job_name=new_job_name(name),
                                             default_datastore=datastore,
                                             default_compute=compute, outputs=own))
                else:
                    steps.append(self._command_step(workspace, name, node, bound, own, compute))
            except JobSpecError as exc:
                self.problems.extend(exc.problems)
        self.raise_problems()
        return Pipeline(workspace=workspace, steps=steps, description=self.data.get("description"),
                        continue_on_step_failure=bool(settings.get("continue_on_step_failure")))

    def _order(self) -> list[str]:
        """Nodes in file order (the graph orders them by their data)."""
        return list(self.nodes)

    def _outputs(self) -> dict[tuple[str, str], PipelineData]:
        """PipelineData for every node output another node reads or the pipeline exposes
        (named after the output, or ``<node>_<output>`` where two nodes share the name)."""
        counts: dict[str, int] = {}
        for node in self.nodes.values():
            for output in node.get("outputs") or {}:
                counts[output] = counts.get(output, 0) + 1
        made = {}
        parent_outputs = self.data.get("outputs") or {}
        for name, node in self.nodes.items():
            for output, spec in (node.get("outputs") or {}).items():
                match = _PARENT_OUTPUT.fullmatch(spec.strip()) if isinstance(spec, str) else None
                if match:
                    spec = parent_outputs.get(match.group(1)) or {}
                    data_name = match.group(1)
                else:
                    data_name = output if counts[output] == 1 else f"{name}_{output}"
                spec = spec if isinstance(spec, dict) else {}
                data = PipelineData(data_name, data_type="MLTable"
                                    if spec.get("type") == "mltable" else None)
                path = spec.get("path")
                if path and node["type"] == "command" and not is_url(str(path)):
                    data.place_at(LocalPlacement(_local(str(path), self.folder)))
                if node["type"] == "parallel" and path:
                    continue   # the parallel node makes it from its spec (tokens in the path)
                made[(name, output)] = data
        return made

    def _command_step(self, workspace: Any, name: str, node: dict, bound: dict, outputs: dict,
                      compute: Any):
        from parallelrun.pipeline.steps import PythonScriptStep

        key = f"jobs.{name}"
        helper = ParallelJob(self.path, node, self.lines, key_prefix=f"{key}.", folder=self.folder)
        values: dict[str, Any] = {}
        datasets = []
        for input_name, spec in (node.get("inputs") or {}).items():
            if input_name in bound:
                values[input_name] = bound[input_name]
                continue
            if isinstance(spec, dict) and spec.get("path") is None and \
                    spec.get("type", "uri_folder") in _DATA_TYPES:
                values[input_name] = None        # an optional input left out
                continue
            values[input_name] = helper._input(workspace, input_name, spec, {})
            if not isinstance(values[input_name], str):
                datasets.append(values[input_name])
        helper._compute(workspace, compute)
        environment = helper._environment(workspace, node.get("environment"))
        self.problems.extend(helper.problems)
        tokens = []
        for token in shlex.split(str(node["command"])):
            whole = _REF.fullmatch(token)
            if whole:
                section, ref = whole.groups()
                value = values.get(ref) if section == "inputs" else outputs[ref]
                if value is not None:
                    tokens.append(value)
                continue

            def literal(match: re.Match) -> str:
                section, ref = match.groups()
                value = values.get(ref) if section == "inputs" else None
                if isinstance(value, str):
                    return value
                self.problem(f"{key}.command", f"{match.group(0)} inside {token!r}: data and "
                             "outputs must be arguments of their own")
                return match.group(0)

            tokens.append(_REF.sub(literal, token))
        self.raise_problems()
        if environment is not None and node.get("environment_variables"):
            environment.environment_variables.update(
                {str(k): str(v) for k, v in node["environment_variables"].items()})
        elif node.get("environment_variables"):
            from parallelrun.pipeline.environment import Environment

            environment = Environment(f"{step_name_of(name)}-env")
            environment.environment_variables.update(
                {str(k): str(v) for k, v in node["environment_variables"].items()})
        step = PythonScriptStep(script_name=SHIM, name=step_name_of(name), arguments=tokens,
                                inputs=[v for v in values.values()
                                        if isinstance(v, PipelineData)] + datasets,
                                outputs=list(outputs.values()),
                                source_directory=node.get("code") or self.folder,
                                allow_reuse=False, environment=environment)
        return step


def component_spec(path: str | os.PathLike) -> dict:
    """A component file (``commandComponent`` / ``parallelComponent``) as a dict, its relative
    paths (code, environment, task, inputs) made absolute from the file's folder. Raises
    OSError, yaml.YAMLError, or ValueError when the file is not a mapping."""
    path = os.path.abspath(os.fspath(path))
    spec = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: not a YAML mapping")
    folder = os.path.dirname(path)
    spec = dict(spec)
    if isinstance(spec.get("code"), str):
        spec["code"] = _local(spec["code"], folder)
    if isinstance(spec.get("environment"), dict):
        spec["environment"] = _absolute_environment(spec["environment"], folder)
    if isinstance(spec.get("task"), dict):
        spec["task"] = absolute_task(spec["task"], folder)
    spec["inputs"] = {k: absolute_input(v, folder) for k, v in (spec.get("inputs") or {}).items()}
    return spec


def _bound_inputs(node: dict) -> dict[str, tuple[str, str]]:
    """The node's inputs bound to other nodes' outputs: input -> (node, output)."""
    found = {}
    for name, spec in (node.get("inputs") or {}).items():
        text = spec.get("path") if isinstance(spec, dict) else spec
        match = _NODE_OUTPUT.fullmatch(text.strip()) if isinstance(text, str) else None
        if match:
            found[name] = match.groups()
    return found


def _with_value(spec: Any, value: Any) -> Any:
    """A declared input (``{type: uri_file}``) given a value (a literal, a path, a binding or a
    mapping with path/mode)."""
    if not isinstance(spec, dict):
        return value
    kind = spec.get("type", "uri_folder")
    if kind in _LITERAL_TYPES:
        literal = value.get("value", value.get("default")) if isinstance(value, dict) else value
        return {**spec, "default": literal}
    if isinstance(value, dict):
        return {**spec, **value}
    return {**spec, "path": value}


def _default_of(spec: Any) -> Any:
    return spec


def _local(path: str, folder: str) -> str:
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(folder, path))


def absolute_input(spec: Any, folder: str) -> Any:
    """An input spec (``{type: ..., path: ./x}``) with its relative local path made absolute
    from ``folder`` (the file's); bindings, URLs, ``azureml:`` names and literals kept."""
    if isinstance(spec, dict) and isinstance(spec.get("path"), str):
        path = spec["path"]
        if "${{" not in path and not is_url(path) and not path.startswith("azureml:"):
            return {**spec, "path": _local(path, folder)}
    return spec


def _absolute_environment(environment: dict, folder: str) -> dict:
    environment = dict(environment)
    if isinstance(environment.get("conda_file"), str):
        environment["conda_file"] = _local(environment["conda_file"], folder)
    return environment


def absolute_task(task: dict, folder: str) -> dict:
    """A parallel node's ``task`` with its ``code`` folder (default ``.``) and its environment's
    ``conda_file`` made absolute from ``folder`` (the file's)."""
    task = dict(task)
    task["code"] = _local(str(task.get("code") or "."), folder)
    if isinstance(task.get("environment"), dict):
        task["environment"] = _absolute_environment(task["environment"], folder)
    return task


def load_pipeline_job(path: str | os.PathLike, text: str, data: dict) -> PipelineJob:
    """Check a parsed ``type: pipeline`` file; raises JobSpecError listing every problem."""
    job = PipelineJob(path, data, _line_map(text))
    job.check()
    job.raise_problems()
    return job


__all__ = ["PipelineJob", "absolute_input", "absolute_task", "component_spec",
           "load_pipeline_job", "step_name_of", "ParallelRunError"]
