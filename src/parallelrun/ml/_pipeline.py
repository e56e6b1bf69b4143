"""``PipelineJob`` and the ``@pipeline`` decorator (``azure.ai.ml.dsl.pipeline``).

A ``@pipeline`` function is called once to build the job: the nodes made or called in its body
are its ``jobs``, named after the variables that hold them (as Azure ML names them), its
parameters are the pipeline's ``inputs`` (``${{parent.inputs.<name>}}`` inside), and a dict it
returns names the pipeline's ``outputs``.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
from typing import Any, Callable

from parallelrun.errors import ConfigurationError
from parallelrun.ml._io import Input, NodeOutput, PipelineInput, _Fields, plain
from parallelrun.ml._nodes import _BUILDERS, Command, Parallel, _Node


class PipelineJobSettings(_Fields):
    """``settings`` of a pipeline job: ``default_compute``, ``default_datastore``,
    ``continue_on_step_failure``, ``force_rerun``, ``default_environment``."""

    _FIELDS = ("default_compute", "default_datastore", "continue_on_step_failure",
               "force_rerun", "default_environment")

    def _to_dict(self) -> dict:
        values = super()._to_dict()
        for key in ("default_compute", "default_datastore"):
            if isinstance(values.get(key), str) and not values[key].startswith("azureml:"):
                values[key] = f"azureml:{values[key]}"
        return values


class PipelineJob:
    """A pipeline job: ``jobs`` (nodes by name), ``inputs``, ``outputs``, ``settings``.

    Built by a ``@pipeline`` function or ``load_job("pipeline.yml")``; run by
    ``ml_client.jobs.create_or_update(job, experiment_name=...)``.
    """

    def __init__(self, *, jobs: dict[str, _Node] | None = None, inputs: dict | None = None,
                 outputs: dict | None = None, settings: Any = None, name: str | None = None,
                 display_name: str | None = None, description: str | None = None,
                 tags: dict | None = None, properties: dict | None = None,
                 experiment_name: str | None = None, compute: str | None = None,
                 source: str | None = None, **kwargs: Any):
        self.jobs: dict[str, _Node] = dict(jobs or {})
        self.inputs: dict[str, Any] = dict(inputs or {})
        self.outputs: dict[str, Any] = dict(outputs or {})
        if isinstance(settings, dict):
            settings = PipelineJobSettings(**settings)
        self.settings = settings or PipelineJobSettings()
        self.name = name
        self.display_name = display_name
        self.description = description
        self.tags = dict(tags or {})
        self.properties = dict(properties or {})
        self.experiment_name = experiment_name
        self.compute = compute
        #: the YAML file it was loaded from (its folder anchors relative paths, its lines
        #: number the messages); None when built in Python
        self._source = source
        self._extra = kwargs
        #: set once submitted
        self.status: str | None = None
        self.studio_url: str | None = None

    @property
    def type(self) -> str:
        return "pipeline"

    def _to_dict(self) -> dict:
        data: dict[str, Any] = {"type": "pipeline"}
        for key in ("display_name", "description", "tags", "properties", "experiment_name",
                    "compute"):
            value = plain(getattr(self, key))
            if value not in (None, {}, []):
                data[key] = value
        settings = plain(self.settings)
        if settings:
            data["settings"] = settings
        if self.inputs:
            data["inputs"] = {k: plain(v) for k, v in self.inputs.items()}
        if self.outputs:
            data["outputs"] = {k: plain(v) for k, v in self.outputs.items()}
        data["jobs"] = {name: node._to_dict() for name, node in self.jobs.items()}
        data.update(plain(self._extra))
        return data

    @classmethod
    def _from_dict(cls, data: dict, nodes: dict[str, dict], source: str | None = None
                   ) -> "PipelineJob":
        """The job of a checked pipeline file: ``nodes`` are its resolved nodes."""
        fields = {k: v for k, v in data.items() if k not in ("jobs", "type", "$schema")}
        jobs = {}
        for name, node in nodes.items():
            kind = Parallel if node.get("type") == "parallel" else Command
            built = kind._from_dict({k: v for k, v in node.items() if k != "component"})
            built.name = name
            jobs[name] = built
        return cls(jobs=jobs, source=source, **fields)

    def __repr__(self) -> str:
        import yaml

        return yaml.safe_dump(self._to_dict(), sort_keys=False, default_flow_style=False)

    def __str__(self) -> str:
        return repr(self)


def _name_nodes(nodes: list[_Node], scope: dict[str, Any]) -> dict[str, _Node]:
    """Nodes by the name of the variable holding each (else their own name, made unique)."""
    by_id = {}
    for variable, value in scope.items():
        if isinstance(value, _Node) and id(value) not in by_id:
            by_id[id(value)] = variable
    named: dict[str, _Node] = {}
    for node in nodes:
        base = by_id.get(id(node)) or node.name or f"{node.type}_node"
        name, n = base, 1
        while name in named:
            name, n = f"{base}_{n}", n + 1
        node.name = name
        named[name] = node
    return named


def pipeline(func: Callable | None = None, *, name: str | None = None,
             version: str | None = None, display_name: str | None = None,
             description: str | None = None, experiment_name: str | None = None,
             tags: dict | None = None, **kwargs: Any) -> Callable:
    """Make a function that builds a pipeline job (Azure ML's ``azure.ai.ml.dsl.pipeline``);
    ``default_compute=`` and ``default_datastore=`` go to the job's settings.

    Example::

        @pipeline(display_name="score digits")
        def digits(images):
            prepared = prepare(raw=images)
            scored = score(images=prepared.outputs.clean)
            return {"scores": scored.outputs.scores}

        job = digits(images=Input(type="uri_folder", path="./images"))
    """
    settings = {k: kwargs.pop(k) for k in list(kwargs) if k in PipelineJobSettings._FIELDS}

    def decorate(function: Callable) -> Callable:
        @functools.wraps(function)
        def build(*args: Any, **values: Any) -> PipelineJob:
            bound = inspect.signature(function).bind(*args, **values)
            bound.apply_defaults()
            parameters = {n: PipelineInput(n, v) for n, v in bound.arguments.items()}
            nodes: list[_Node] = []
            scope: dict[str, Any] = {}

            def watch(frame, event, arg):          # the body's variables when it returns
                if event == "return" and frame.f_code is function.__code__:
                    scope.update(frame.f_locals)

            _BUILDERS.append(nodes)
            previous = sys.getprofile()
            sys.setprofile(watch)
            try:
                returned = function(**parameters)
            finally:
                sys.setprofile(previous)
                _BUILDERS.pop()
            jobs = _name_nodes(nodes, scope)
            outputs = {}
            if returned is not None:
                if not isinstance(returned, dict) or not all(
                        isinstance(v, NodeOutput) for v in returned.values()):
                    raise ConfigurationError(
                        "return value", returned, f"of @pipeline {function.__name__}: None, or "
                        "a dict of pipeline output names to node outputs (node.outputs.x)")
                for output_name, node_output in returned.items():
                    outputs[output_name] = {k: v for k, v in node_output._to_dict().items()}
                    node_output._pipeline_output = output_name
            inputs = {}
            for input_name, value in bound.arguments.items():
                if value is None:
                    continue
                inputs[input_name] = value if isinstance(value, Input) else \
                    plain(value) if hasattr(value, "_to_dict") else value
            return PipelineJob(jobs=jobs, inputs=inputs, outputs=outputs,
                               settings=PipelineJobSettings(**settings),
                               name=name, display_name=display_name or function.__name__,
                               description=description or inspect.getdoc(function),
                               experiment_name=experiment_name, tags=tags)

        return build

    return decorate(func) if func is not None else decorate


def base_folder(job: Any) -> str:
    """The folder a job's relative paths start from: its YAML file's, else the current one."""
    source = getattr(job, "_source", None)
    return os.path.dirname(source) if source else os.getcwd()


__all__ = ["PipelineJob", "PipelineJobSettings", "pipeline"]
