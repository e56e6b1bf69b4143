"""The shape of v2 job files as pydantic models: a parallel job (:class:`ParallelJobSpec`), a
pipeline job (:class:`PipelineJobSpec`) and its command nodes (:class:`CommandJobSpec`), with
``extra="forbid"`` wherever Azure ML refuses keys it does not know. Values that become
ParallelRunConfig fields are checked by config.py's own rules (:func:`parallelrun.config.
check_field`), never restated here. :func:`document_problems` turns pydantic's errors into
``(key, message)`` pairs; :class:`~parallelrun.pipeline.job_file.JobFile` adds each one's line.

What a model cannot see stays in the job modules: references between keys (``${{inputs.x}}``),
files on disk, a pipeline's bindings and components.
"""

from __future__ import annotations

import difflib
import re
import types
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator, BaseModel, ConfigDict, Field, StrictBool, ValidationError, model_validator,
)

from parallelrun.config import check_field, check_max_retries
from parallelrun.data.urls import is_url
from parallelrun.errors import ConfigurationError

DATA_TYPES = ("uri_folder", "uri_file", "mltable")
MODEL_TYPES = ("custom_model", "mlflow_model", "triton_model")
LITERAL_TYPES = ("string", "integer", "number", "boolean")
# Azure ML's access modes. Here data is read where it lies (local paths) or fetched by the
# workers (URLs), and outputs are written in place on a local datastore (rw_mount) or staged and
# uploaded when the step ends (upload): each mode is accepted and has that one local meaning.
INPUT_MODES = ("ro_mount", "download", "direct", "eval_mount", "eval_download")
OUTPUT_MODES = ("rw_mount", "upload", "direct")
OUTPUT_TYPES = DATA_TYPES
#: what ``${{default_datastore}}``, ``${{name}}`` and ``${{output_name}}`` stand for in outputs' paths
PATH_TOKEN = re.compile(r"\$\{\{\s*(default_datastore|name|output_name)\s*\}\}")
DATASTORE_PATH = re.compile(r"azureml://datastores/([^/]+)/paths/(.*)")


def _one_of(values: tuple[str, ...]) -> Any:
    return Literal.__getitem__(values)


#: the keys of a parallel job that become ParallelRunConfig fields: key -> field. The models
#: check each such value by the field's own rule (config.check_field); building the step
#: (pipeline/parallel_job.py) names the key of a field the config refuses.
CONFIG_FIELDS = {
    "mini_batch_size": "mini_batch_size",
    "partition_keys": "partition_keys",
    "mini_batch_error_threshold": "allowed_failed_count",
    "error_threshold": "error_threshold",
    "logging_level": "logging_level",
    "max_concurrency_per_instance": "process_count_per_node",
    "resources.instance_count": "node_count",
    "retry_settings.timeout": "run_invocation_timeout",
    # retries, not tries: run_max_try = max_retries + 1 (config.check_max_retries)
    "retry_settings.max_retries": "run_max_try",
    "task.code": "source_directory",
    "task.entry_script": "entry_script",
}


def _config(key: str) -> Any:
    """The value of ``key``, a ParallelRunConfig field's (CONFIG_FIELDS): config.py's rule."""
    field = CONFIG_FIELDS[key]
    return Annotated[Any, AfterValidator(lambda v: v if v is None else check_field(field, v))]


def _max_retries(value: Any) -> Any:
    return value if value is None else check_max_retries("max_retries", value)


def _input_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"{name!r}: input names are letters, digits and '_', not starting "
                         "with a digit")
    return name


def _not_empty(text: str) -> str:
    if not text.strip():
        raise ValueError("required: it is empty")
    return text


def _output_path(path: str) -> str:
    for token in re.findall(r"\$\{\{[^}]*\}\}", path):
        if not PATH_TOKEN.fullmatch(token):
            raise ValueError(f"{token} in {path!r}: paths may use ${{{{default_datastore}}}}, "
                             "${{name}} and ${{output_name}}")
    if path.startswith("azureml://") and not DATASTORE_PATH.fullmatch(path):
        raise ValueError(f"{path!r}: azureml://datastores/<name>/paths/<path>")
    if is_url(path) and not path.startswith("azureml://"):
        raise ValueError(f"{path!r}: a local folder or azureml://datastores/<name>/paths/<path>")
    return path


def _arguments(value: Any) -> Any:
    if value is None or isinstance(value, str) or (
            isinstance(value, list) and all(isinstance(a, (str, int, float)) for a in value)):
        return value
    raise ValueError(f"{_show(value)}: a command line (a string) or a list of arguments")


def _environment(value: Any) -> Any:
    if value is None or isinstance(value, (str, dict)):
        return value
    raise ValueError(f"{_show(value)}: azureml:<name>:<version>, or a mapping such as "
                     "{conda_file: ./env.yml}")


def _jobs(jobs: dict) -> dict:
    if not jobs:
        raise ValueError("required: a mapping of node names to parallel or command jobs "
                         "(it has none)")
    return jobs


class _Keys(BaseModel):
    """A mapping of a job file with known keys only (Azure ML refuses the others)."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)
    #: what a value of this kind looks like, for a message about one that is not a mapping
    shape: ClassVar[str] = "a mapping"


class InputSpec(_Keys):
    """``inputs.<name>``: data (``{type: uri_folder, path: ./data}``), a model, or a literal."""

    shape: ClassVar[str] = "a mapping such as {type: uri_folder, path: ./data}, or a value"
    type: _one_of(DATA_TYPES + MODEL_TYPES + LITERAL_TYPES) = "uri_folder"
    path: str | None = None
    mode: _one_of(INPUT_MODES) | None = None
    description: str | None = None
    optional: StrictBool | None = None
    default: Any = None
    value: Any = None

    @model_validator(mode="before")
    @classmethod
    def _literal(cls, data: Any) -> Any:
        # Azure ML's literal inputs (scale: 3) are values, not mappings
        return data if isinstance(data, dict) else {"type": "string", "value": data}


InputName = Annotated[str, AfterValidator(_input_name)]


class OutputSpec(_Keys):
    """``outputs.<name>``: where a job writes (``{type: uri_folder}``; empty: a new folder)."""

    shape: ClassVar[str] = "a mapping such as {type: uri_folder}"
    type: _one_of(OUTPUT_TYPES) = "uri_folder"
    path: Annotated[str, AfterValidator(_output_path)] | None = None
    mode: _one_of(OUTPUT_MODES) | None = None
    description: str | None = None
    name: str | None = None
    version: str | None = None


class Resources(_Keys):
    """``resources`` of a parallel job."""

    instance_count: _config("resources.instance_count") = None
    instance_type: str | None = None
    properties: dict[str, Any] | None = None
    shm_size: str | None = None
    docker_args: str | None = None
    locations: list[str] | None = None


class RetrySettings(_Keys):
    """``retry_settings`` of a parallel job."""

    max_retries: Annotated[Any, AfterValidator(_max_retries)] = None
    timeout: _config("retry_settings.timeout") = None


class RunFunction(_Keys):
    """``task`` of a parallel job: the entry script and how it is called."""

    shape: ClassVar[str] = "a mapping with type: run_function, code, entry_script"
    type: _one_of(("run_function",)) = Field("run_function", description="only run_function")
    code: str | None = None
    entry_script: Annotated[str, AfterValidator(_not_empty)] = Field(
        description="the .py file with init() and run()")
    environment: Annotated[Any, AfterValidator(_environment)] = None
    program_arguments: Annotated[Any, AfterValidator(_arguments)] = None
    append_row_to: str | None = None
    model: Any = None


_MAPPING_OF_INPUTS = "a mapping of input names to inputs"
_MAPPING_OF_OUTPUTS = "a mapping of output names to outputs"


class _JobKeys(_Keys):
    """The keys every job document has (Azure ML's job base), whatever its type."""

    schema_: Any = Field(None, alias="$schema")
    name: str | None = None
    display_name: str | None = None
    description: str | None = None
    tags: dict[str, Any] | None = None
    compute: str | None = None
    identity: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None


class ParallelJobSpec(_JobKeys):
    """A ``type: parallel`` job file (or a pipeline job's parallel node)."""

    type: _one_of(("parallel",)) = Field(description="a parallel job needs 'type: parallel'")
    experiment_name: str | None = None
    inputs: dict[InputName, InputSpec] | None = Field(None, description=_MAPPING_OF_INPUTS)
    outputs: dict[str, OutputSpec | None] | None = Field(None, description=_MAPPING_OF_OUTPUTS)
    input_data: str = Field(description="${{inputs.<name>}}")
    mini_batch_size: _config("mini_batch_size") = None
    partition_keys: _config("partition_keys") = None
    mini_batch_error_threshold: _config("mini_batch_error_threshold") = None
    error_threshold: _config("error_threshold") = None
    logging_level: _config("logging_level") = None
    resources: Resources | None = None
    max_concurrency_per_instance: _config("max_concurrency_per_instance") = None
    retry_settings: RetrySettings | None = None
    environment_variables: dict[str, Any] | None = Field(
        None, description="a mapping of names to values")
    task: RunFunction = Field(description=RunFunction.shape)
    settings: dict[str, Any] | None = None
    is_deterministic: StrictBool | None = None


class PipelineSettings(_Keys):
    """``settings`` of a pipeline job."""

    shape: ClassVar[str] = "a mapping (default_compute, default_datastore, ...)"
    default_compute: str | None = None
    default_datastore: str | None = None
    continue_on_step_failure: StrictBool | None = None
    force_rerun: StrictBool | None = None
    default_environment: Any = None


class _Node(BaseModel):
    """A node of ``jobs``: its keys are checked once its component is merged in (the pipeline
    job module checks a parallel node with ParallelJobSpec, a command node with CommandJobSpec)."""

    model_config = ConfigDict(extra="allow")
    shape: ClassVar[str] = "a mapping with type: parallel or type: command"


class PipelineJobSpec(_JobKeys):
    """A ``type: pipeline`` job file; its nodes are checked one by one."""

    type: _one_of(("pipeline",)) = Field(description="a pipeline job needs 'type: pipeline'")
    experiment_name: str | None = None
    settings: PipelineSettings | None = None
    inputs: dict[InputName, InputSpec] | None = Field(None, description=_MAPPING_OF_INPUTS)
    outputs: dict[str, OutputSpec | None] | None = Field(None, description=_MAPPING_OF_OUTPUTS)
    jobs: Annotated[dict[str, _Node], AfterValidator(_jobs)] = Field(
        description="a mapping of node names to parallel or command jobs")


class CommandJobSpec(_JobKeys):
    """A pipeline job's ``type: command`` node (its component merged in)."""

    type: _one_of(("command",))
    version: str | None = None
    inputs: dict[InputName, Any] | None = Field(None, description=_MAPPING_OF_INPUTS)
    outputs: dict[str, Any] | None = Field(None, description=_MAPPING_OF_OUTPUTS)
    code: str | None = None
    command: Annotated[str, AfterValidator(_not_empty)] = Field(
        description="the command line to run, e.g. python prep.py --out ${{outputs.data}}")
    environment: Annotated[Any, AfterValidator(_environment)] = None
    environment_variables: dict[str, Any] | None = Field(
        None, description="a mapping of names to values")
    resources: dict[str, Any] | None = None
    limits: dict[str, Any] | None = None
    distribution: dict[str, Any] | None = None
    services: dict[str, Any] | None = None
    is_deterministic: StrictBool | None = None
    queue_settings: dict[str, Any] | None = None


# pydantic's errors in words ------------------------------------------------------------------

#: what a value of the expected kind is, by pydantic's error type
_EXPECTED = {
    "string_type": "a string", "bool_type": "true or false, unquoted (quoted, it is text)",
    "bool_parsing": "true or false",
    "int_type": "an integer", "int_parsing": "an integer", "float_type": "a number",
    "float_parsing": "a number", "list_type": "a list", "dict_type": "a mapping",
    "model_type": "a mapping", "model_attributes_type": "a mapping",
}


def document_problems(model: type[BaseModel], data: Any) -> list[tuple[str, str]]:
    """Every way ``data`` differs from ``model``, as ``(key, message)``: the key dotted as the
    file nests it (``retry_settings.timeout``, ``partition_keys[0]``), the message naming the
    offending value and what is allowed."""
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return [_problem(model, error) for error in exc.errors()]
    return []


def _problem(model: type[BaseModel], error: Any) -> tuple[str, str]:
    path, holder, field, kind = _walk(model, error["loc"])
    key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".") or "file"
    kind_of_error, value = error["type"], error.get("input")
    description = field.description if field is not None else None
    if kind_of_error == "extra_forbidden":
        known = sorted(f.alias or name for name, f in holder.model_fields.items()) if holder else []
        close = difflib.get_close_matches(str(path[-1]), known, n=1)
        return key, ("unknown key; did you mean " + repr(close[0]) + "?" if close
                     else "unknown key; known keys: " + ", ".join(known))
    if kind_of_error == "missing":
        return key, f"required: {description or 'a value'}"
    if kind_of_error == "value_error":
        cause = error["ctx"]["error"]
        if isinstance(cause, ConfigurationError):   # config.py's rule, in its words
            return key, f"{_show(value)}: {cause.allowed}"
        return key, str(cause)
    if kind_of_error == "literal_error":
        allowed = description or "one of " + ", ".join(get_args(kind))
        return key, f"{_show(value)}: {allowed}"
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return key, f"{_show(value)}: {getattr(kind, 'shape', 'a mapping')}"
    expected = description or _EXPECTED.get(kind_of_error)
    if expected is None:
        expected = error["msg"][:1].lower() + error["msg"][1:]
    return key, f"{_show(value)}: {expected}"


def _walk(model: type[BaseModel], loc: tuple) -> tuple[list, Any, Any, Any]:
    """Follow an error's location through the models: the file's key path, the model holding
    the last key, that key's field (None for a mapping's entry) and the type expected there."""
    path: list = []
    kind: Any = model
    holder, field = None, None
    for part in loc:
        kind = _plain(kind)
        if part == "[key]":   # the error is in a mapping's key, not its value
            continue
        path.append(part)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            holder = kind
            field = next((f for name, f in kind.model_fields.items()
                          if (f.alias or name) == part), None)
            kind = field.annotation if field is not None else None
        elif get_origin(kind) in (dict, list):
            field = None
            kind = get_args(kind)[-1]
        else:
            kind = None
    return path, holder, field, _plain(kind)


def _plain(kind: Any) -> Any:
    """``X | None`` and ``Annotated[X, ...]`` as ``X``."""
    while True:
        if get_origin(kind) is Annotated:
            kind = get_args(kind)[0]
        elif get_origin(kind) in (Union, types.UnionType):
            others = [a for a in get_args(kind) if a is not type(None)]
            if len(others) != 1:
                return kind
            kind = others[0]
        else:
            return kind


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
