"""Nodes of v2 jobs, as ``azure.ai.ml`` builds them: ``Parallel`` (``parallel_run_function``,
a ``parallelComponent``), ``Command`` (``command``, a ``commandComponent``), and the components
``load_component`` returns.

A node is the Python face of one entry of a pipeline job's ``jobs:`` (or of a whole
``type: parallel`` / ``type: command`` job): ``_to_dict()`` gives that entry in the YAML shape
that :mod:`parallelrun.pipeline.pipeline_job` and :mod:`parallelrun.pipeline.yaml_job` run, and
``_from_dict`` builds the node from it. So a job written in Python and the same job loaded from
YAML are the same objects and run through the same code.
"""

from __future__ import annotations

import copy
from typing import Any

from parallelrun.errors import ConfigurationError
from parallelrun.ml._io import (
    LITERAL_TYPES, Input, NodeOutput, Output, PipelineInput, _Fields, absolute, input_value, plain,
)

#: the @pipeline functions being called (innermost last): nodes made or called there join it
_BUILDERS: list[list] = []


def _join_pipeline(node: "_Node") -> None:
    if _BUILDERS:
        _BUILDERS[-1].append(node)


class ResourceConfiguration(_Fields):
    """``resources`` of a job: ``instance_count`` (nodes), ``instance_type``, ... ."""

    _FIELDS = ("instance_count", "instance_type", "properties", "shm_size", "docker_args")


JobResourceConfiguration = ResourceConfiguration


class BatchRetrySettings(_Fields):
    """``retry_settings`` of a parallel job: ``max_retries`` (default 2) and ``timeout``
    (seconds one mini-batch may take, default 60)."""

    _FIELDS = ("max_retries", "timeout")


class RunFunction(_Fields):
    """The task of a parallel job: ``code`` (a folder), ``entry_script`` (``init()`` and
    ``run()``), ``program_arguments``, ``append_row_to`` (``${{outputs.<name>}}``),
    ``environment``.

    Example: ``RunFunction(code="./script", entry_script="score.py",
    program_arguments="--model ${{inputs.model}}", append_row_to="${{outputs.scores}}")``.
    """

    _FIELDS = ("type", "code", "entry_script", "program_arguments", "model", "append_row_to",
               "environment")

    def __init__(self, *, code: Any = None, entry_script: str | None = None,
                 program_arguments: str | None = None, model: str | None = None,
                 append_row_to: str | None = None, environment: Any = None, **kwargs: Any):
        super().__init__(type=kwargs.pop("type", "run_function"), code=absolute(code),
                         entry_script=entry_script, program_arguments=program_arguments,
                         model=model, append_row_to=append_row_to,
                         environment=_environment(environment), **kwargs)


def _environment(environment: Any) -> Any:
    """An environment as the YAML holds it: ``azureml:name:version`` or a mapping."""
    if environment is None or isinstance(environment, str):
        return environment
    if hasattr(environment, "_reference"):
        reference = environment._reference()      # a registered Environment entity
        if reference:
            return reference
    if isinstance(environment, dict):
        environment = dict(environment)
        if environment.get("conda_file"):
            environment["conda_file"] = absolute(environment["conda_file"])
        return environment
    return environment


class _IO:
    """``node.inputs`` / ``node.outputs``: names as attributes and as keys."""

    def __init__(self, values: dict):
        object.__setattr__(self, "_values", values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"no {name!r}; there are {', '.join(self._values) or 'none'}") \
                from None

    def __setattr__(self, name: str, value: Any) -> None:
        self._values[name] = value

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self._values[name] = value

    def __iter__(self):
        return iter(self._values)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __len__(self) -> int:
        return len(self._values)

    def items(self):
        return self._values.items()

    def keys(self):
        return self._values.keys()

    def __repr__(self) -> str:
        return repr(self._values)


class _Node:
    """What parallel and command nodes share: names, inputs, outputs, compute."""

    type = ""
    #: node fields other than name, inputs and outputs, in the order the YAML writes them
    _KEYS: tuple[str, ...] = ("display_name", "description", "tags", "properties",
                              "experiment_name", "compute", "environment_variables")

    def __init__(self, *, name: str | None = None, inputs: dict | None = None,
                 outputs: dict | None = None, **fields: Any):
        self.name = name
        for key in self._KEYS:
            setattr(self, key, fields.pop(key, None))
        self._extra = fields
        #: the inputs the node declares (an Input each; None for a bare value)
        self._declared: dict[str, Input | None] = {}
        values: dict[str, Any] = {}
        for input_name, value in (inputs or {}).items():
            self._declared[input_name] = value if isinstance(value, Input) else None
            values[input_name] = value if not isinstance(value, Input) or value.path is not None \
                or value.default is not None else None
        self.inputs = _IO(values)
        self.outputs = _IO({n: self._output(n, spec) for n, spec in (outputs or {}).items()})
        _join_pipeline(self)

    def _output(self, name: str, spec: Any) -> NodeOutput:
        if isinstance(spec, NodeOutput):
            out = NodeOutput(self, name, Output(type=spec.type or "uri_folder", path=spec.path,
                                                mode=spec.mode))
            out._pipeline_output = spec._pipeline_output
            return out
        if isinstance(spec, str):               # ${{parent.outputs.x}}, as YAML writes it
            out = NodeOutput(self, name)
            out._pipeline_output = spec.strip()[len("${{parent.outputs."):-2].strip()
            return out
        return NodeOutput(self, name, spec if isinstance(spec, Output) else
                          Output(**spec) if isinstance(spec, dict) else None)

    # as a function: a copy with inputs given, joining the pipeline being built ----------------
    def __call__(self, *args: Any, **inputs: Any) -> "_Node":
        if args:
            raise ConfigurationError("inputs", args, "keyword arguments (name=value) for the "
                                     f"inputs {', '.join(self._declared) or '(none)'}")
        unknown = [n for n in inputs if n not in self._declared]
        if unknown:
            raise ConfigurationError("inputs", ", ".join(unknown),
                                     f"inputs of {self.name or self.type}: "
                                     f"{', '.join(self._declared) or 'none'}")
        node = self._copy()
        for input_name, value in inputs.items():
            node.inputs[input_name] = value
        if _BUILDERS and self in _BUILDERS[-1]:
            _BUILDERS[-1].remove(self)            # a template called inside: only its copy runs
        _join_pipeline(node)
        return node

    def _copy(self) -> "_Node":
        node = copy.copy(self)
        for key, value in vars(self).items():
            if isinstance(value, (_Fields, dict, list)):
                setattr(node, key, copy.deepcopy(value))
        node._declared = dict(self._declared)
        node.inputs = _IO(dict(self.inputs._values))
        node.outputs = _IO({n: node._output(n, out) for n, out in self.outputs.items()})
        return node

    # the YAML shape ------------------------------------------------------------------------------
    def _io_dict(self) -> dict:
        inputs = {}
        for input_name, declared in self._declared.items():
            value = self.inputs._values.get(input_name)
            if value is None and declared is not None:
                if declared.type in LITERAL_TYPES and declared.default is None:
                    continue                                  # an optional literal left out
                value = declared
            inputs[input_name] = input_value(declared, value)
        for input_name, value in self.inputs.items():        # inputs set after the fact
            if input_name not in self._declared:
                inputs[input_name] = input_value(None, value)
        return {"inputs": inputs, "outputs": {n: out._to_dict() for n, out in self.outputs.items()}}

    def _to_dict(self) -> dict:
        data: dict[str, Any] = {"type": self.type}
        for key in self._KEYS:
            value = plain(getattr(self, key))
            if value not in (None, {}, []):
                data[key] = value
        data.update(self._io_dict())
        data.update(plain(self._extra))
        if isinstance(data.get("environment"), (dict, str)) or "environment" in data:
            data["environment"] = _environment(data.get("environment"))
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def _from_dict(cls, data: dict) -> "_Node":
        """A node from its YAML shape (relative paths already absolute)."""
        data = dict(data)
        data.pop("type", None)
        inputs = {}
        for input_name, value in (data.pop("inputs", None) or {}).items():
            inputs[input_name] = Input(**value) if isinstance(value, dict) else value
        outputs = {}
        for output_name, value in (data.pop("outputs", None) or {}).items():
            outputs[output_name] = value if isinstance(value, str) else \
                Output(**(value or {}))
        for key, kind in cls._NESTED.items():
            if isinstance(data.get(key), dict):
                data[key] = kind(**data[key])
        return cls(inputs=inputs, outputs=outputs, **data)

    _NESTED: dict[str, type] = {}

    def __repr__(self) -> str:
        import yaml

        return yaml.safe_dump(self._to_dict(), sort_keys=False, default_flow_style=False)


class Parallel(_Node):
    """A parallel node: ``run()`` over mini-batches of ``input_data``.

    Made by :func:`parallel_run_function` or a ``parallelComponent`` file; called with its
    inputs inside a ``@pipeline`` function, or submitted alone.
    """

    type = "parallel"
    _KEYS = (*_Node._KEYS, "input_data", "mini_batch_size", "partition_keys", "resources",
             "max_concurrency_per_instance", "mini_batch_error_threshold", "error_threshold",
             "logging_level", "retry_settings", "task", "is_deterministic", "identity")
    _NESTED = {"resources": ResourceConfiguration, "retry_settings": BatchRetrySettings,
               "task": RunFunction}

    def __init__(self, **fields: Any):
        super().__init__(**fields)
        if self.resources is None:
            self.resources = ResourceConfiguration()
        if isinstance(self.retry_settings, dict):
            self.retry_settings = BatchRetrySettings(**self.retry_settings)


class Command(_Node):
    """A command node: ``command`` run in ``code`` with its inputs and outputs as paths."""

    type = "command"
    _KEYS = (*_Node._KEYS, "code", "command", "environment", "resources", "distribution",
             "limits", "identity", "is_deterministic")
    _NESTED = {"resources": ResourceConfiguration}

    def __init__(self, **fields: Any):
        code = fields.pop("code", None)
        super().__init__(**fields)
        self.code = absolute(code)
        if self.resources is None:
            self.resources = ResourceConfiguration()


def parallel_run_function(*, name: str | None = None, description: str | None = None,
                          tags: dict | None = None, properties: dict | None = None,
                          display_name: str | None = None, experiment_name: str | None = None,
                          compute: str | None = None, retry_settings: Any = None,
                          environment_variables: dict | None = None,
                          logging_level: str | None = None,
                          max_concurrency_per_instance: int | None = None,
                          error_threshold: int | None = None,
                          mini_batch_error_threshold: int | None = None,
                          task: RunFunction | None = None, mini_batch_size: str | None = None,
                          partition_keys: list | None = None, input_data: str | None = None,
                          inputs: dict | None = None, outputs: dict | None = None,
                          instance_count: int | None = None, instance_type: str | None = None,
                          docker_args: str | None = None, shm_size: str | None = None,
                          identity: Any = None, is_deterministic: bool = True,
                          **kwargs: Any) -> Parallel:
    """A parallel node, to call inside a ``@pipeline`` function or submit as a job (Azure ML's
    ``azure.ai.ml.parallel.parallel_run_function``).

    Example::

        score = parallel_run_function(
            inputs=dict(images=Input(type="uri_folder")), outputs=dict(scores=Output()),
            input_data="${{inputs.images}}", mini_batch_size="10", instance_count=2,
            task=RunFunction(code="./src", entry_script="score.py",
                             append_row_to="${{outputs.scores}}"))
    """
    resources = ResourceConfiguration(instance_count=instance_count, instance_type=instance_type,
                                      docker_args=docker_args, shm_size=shm_size)
    return Parallel(name=name, description=description, tags=dict(tags or {}),
                    properties=properties, display_name=display_name,
                    experiment_name=experiment_name, compute=compute,
                    retry_settings=retry_settings, environment_variables=environment_variables,
                    logging_level=logging_level,
                    max_concurrency_per_instance=max_concurrency_per_instance,
                    error_threshold=error_threshold,
                    mini_batch_error_threshold=mini_batch_error_threshold, task=task,
                    mini_batch_size=mini_batch_size, partition_keys=partition_keys,
                    input_data=input_data, inputs=inputs, outputs=outputs, resources=resources,
                    identity=identity, **kwargs)


def command(*, name: str | None = None, description: str | None = None,
            tags: dict | None = None, properties: dict | None = None,
            display_name: str | None = None, command: str | None = None,
            experiment_name: str | None = None, environment: Any = None,
            environment_variables: dict | None = None, distribution: Any = None,
            compute: str | None = None, inputs: dict | None = None, outputs: dict | None = None,
            instance_count: int | None = None, instance_type: str | None = None,
            code: Any = None, identity: Any = None, is_deterministic: bool = True,
            **kwargs: Any) -> Command:
    """A command node (Azure ML's ``azure.ai.ml.command``): ``command`` run in ``code``, with
    ``${{inputs.x}}`` / ``${{outputs.y}}`` replaced by paths and values.

    Example: ``prep = command(code="./src", command="python prep.py --out ${{outputs.data}}",
    outputs=dict(data=Output(type="uri_folder")))``.
    """
    for ignored in ("locations", "docker_args", "shm_size", "timeout", "services", "job_tier",
                    "priority", "parent_job_name"):
        kwargs.pop(ignored, None)              # Azure-only settings: nothing to do here
    resources = ResourceConfiguration(instance_count=instance_count, instance_type=instance_type)
    return Command(name=name, description=description, tags=dict(tags or {}),
                   properties=properties, display_name=display_name, command=command,
                   experiment_name=experiment_name, environment=environment,
                   environment_variables=environment_variables, distribution=distribution,
                   compute=compute, inputs=inputs, outputs=outputs, resources=resources,
                   code=code, identity=identity, **kwargs)


class Component:
    """A component file loaded by :func:`load_component`: call it with its inputs to make a
    node (inside a ``@pipeline`` function)."""

    def __init__(self, spec: dict, source: str | None = None):
        self._spec = spec
        self.source = source
        self.name = spec.get("name")
        self.version = spec.get("version")
        self.display_name = spec.get("display_name")
        self.description = spec.get("description")
        self.type = spec.get("type")
        self.inputs = dict(spec.get("inputs") or {})
        self.outputs = dict(spec.get("outputs") or {})

    def _node(self) -> _Node:
        fields = {k: v for k, v in self._spec.items()
                  if k not in ("$schema", "name", "version", "is_deterministic")}
        kind = Parallel if self.type == "parallel" else Command
        saved = list(_BUILDERS)
        _BUILDERS.clear()                        # the template itself joins no pipeline
        try:
            node = kind._from_dict(fields)
        finally:
            _BUILDERS.extend(saved)
        node.name = self.name
        return node

    def __call__(self, *args: Any, **inputs: Any) -> _Node:
        return self._node()(*args, **inputs)

    def __repr__(self) -> str:
        return f"<{self.type} component {self.name} from {self.source}>"


CommandComponent = Component
ParallelComponent = Component


def load_component(source: str | None = None, *, relative_origin: str | None = None,
                   **kwargs: Any) -> Component:
    """A ``commandComponent`` or ``parallelComponent`` file (Azure ML's
    ``azure.ai.ml.load_component``).

    Example: ``prepare = load_component(source="./script/prepare_data.yml")``.
    """
    import yaml

    from parallelrun.pipeline.pipeline_job import component_spec

    if source is None:
        raise ConfigurationError("source", None, "the path of a component YAML file")
    path = absolute(source)
    try:
        spec = component_spec(path)
    except OSError as exc:
        raise ConfigurationError("source", source, f"a readable component file ({exc.strerror})") \
            from None
    except (yaml.YAMLError, ValueError) as exc:
        raise ConfigurationError("source", source, f"a YAML mapping ({exc})") from None
    if spec.get("type") not in ("command", "parallel"):
        raise ConfigurationError("type", spec.get("type"), f"command or parallel (in {source})")
    return Component(spec, path)


__all__ = ["BatchRetrySettings", "Command", "CommandComponent", "Component",
           "JobResourceConfiguration", "Parallel", "ParallelComponent", "PipelineInput",
           "ResourceConfiguration", "RunFunction", "command", "load_component",
           "parallel_run_function"]
