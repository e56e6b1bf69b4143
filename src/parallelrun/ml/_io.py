"""``Input`` and ``Output`` (as in ``azure.ai.ml``), and the references that bind nodes together:
a node's output given to another node (``${{parent.jobs.a.outputs.b}}``), and a pipeline's
input given to a node (``${{parent.inputs.x}}``)."""

from __future__ import annotations

import os
from typing import Any

from parallelrun.data.urls import is_url

#: input types that hold a value rather than data
LITERAL_TYPES = ("string", "integer", "number", "boolean")


def absolute(path: Any, base: str | None = None) -> Any:
    """A local relative path made absolute from ``base`` (default: the current folder); URLs,
    ``azureml:`` names and ``${{...}}`` bindings kept."""
    if not isinstance(path, (str, os.PathLike)):
        return path
    text = os.fspath(path)
    if "${{" in text or is_url(text) or text.startswith("azureml:") or os.path.isabs(text):
        return text
    return os.path.normpath(os.path.join(base or os.getcwd(), text))


def plain(value: Any) -> Any:
    """``value`` as YAML-shaped data: entities by their ``_to_dict()``, mappings and lists
    through, ``None`` entries left out."""
    if hasattr(value, "_to_dict"):
        return value._to_dict()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


class _Fields:
    """Keyword fields with attribute access; ``_to_dict()`` gives those that are set."""

    _FIELDS: tuple[str, ...] = ()

    def __init__(self, **fields: Any):
        for name in self._FIELDS:
            setattr(self, name, fields.pop(name, None))
        self._extra = fields

    def _to_dict(self) -> dict:
        values = {name: plain(getattr(self, name)) for name in self._FIELDS}
        values.update(plain(self._extra))
        return {k: v for k, v in values.items() if v is not None}

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._to_dict().items())
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._to_dict() == other._to_dict()


class Input(_Fields):
    """A job's input: data (``uri_folder``, ``uri_file``, ``mltable``, model types) with a
    ``path``, or a literal (``string``, ``integer``, ``number``, ``boolean``) with a ``default``.

    Example: ``Input(type=AssetTypes.URI_FOLDER, path="./mnist_models", mode="download")``.
    Relative local paths are taken from the current folder.
    """

    _FIELDS = ("type", "path", "mode", "default", "optional", "description", "min", "max",
               "enum")

    def __init__(self, *, type: str = "uri_folder", path: str | os.PathLike | None = None,
                 mode: str | None = None, default: Any = None, optional: bool | None = None,
                 description: str | None = None, min: Any = None, max: Any = None,
                 enum: Any = None, **kwargs: Any):
        super().__init__(type=type, path=absolute(path), mode=mode, default=default,
                         optional=optional, description=description, min=min, max=max,
                         enum=enum, **kwargs)


class Output(_Fields):
    """A job's output: ``uri_folder`` (default), ``uri_file`` or ``mltable``, with an optional
    ``path`` (``azureml://datastores/${{default_datastore}}/paths/${{name}}/...``).

    Example: ``Output(type=AssetTypes.URI_FILE, mode=InputOutputModes.RW_MOUNT)``.
    """

    _FIELDS = ("type", "path", "mode", "description", "name", "version")

    def __init__(self, *, type: str = "uri_folder", path: str | None = None,
                 mode: str | None = None, description: str | None = None,
                 name: str | None = None, version: str | None = None, **kwargs: Any):
        super().__init__(type=type, path=absolute(path), mode=mode, description=description,
                         name=name, version=version, **kwargs)


class NodeOutput:
    """``node.outputs.<name>``: an output of a node in a pipeline. Give it to another node as an
    input (it runs after this one); set ``.path`` / ``.mode`` / ``.type`` to place it."""

    def __init__(self, node: Any, name: str, spec: Output | None = None):
        self._node = node
        self._name = name
        spec = spec or Output()
        self.type = spec.type
        self.path = spec.path
        self.mode = spec.mode
        #: the pipeline output this one is (``pipeline_output`` of a @pipeline's return value)
        self._pipeline_output: str | None = None

    def _binding(self) -> str:
        if not getattr(self._node, "name", None):
            raise ValueError(f"output {self._name!r} belongs to a node that is not in a pipeline")
        return f"${{{{parent.jobs.{self._node.name}.outputs.{self._name}}}}}"

    def _to_dict(self) -> Any:
        if self._pipeline_output:
            return f"${{{{parent.outputs.{self._pipeline_output}}}}}"
        return {k: v for k, v in (("type", self.type), ("path", absolute(self.path)),
                                  ("mode", self.mode)) if v is not None}

    def __repr__(self) -> str:
        return f"<output {self._name} of {getattr(self._node, 'name', None) or 'a node'}>"


class PipelineInput:
    """A parameter of a ``@pipeline`` function inside its body: given to a node, it is
    ``${{parent.inputs.<name>}}``."""

    def __init__(self, name: str, value: Any):
        self._name = name
        self._value = value

    def _binding(self) -> str:
        return f"${{{{parent.inputs.{self._name}}}}}"

    def __repr__(self) -> str:
        return f"<pipeline input {self._name}>"


def input_value(declared: Any, value: Any) -> Any:
    """What a node input is in the job's YAML shape: ``value`` (an Input, a literal, another
    node's output, a pipeline input) given to the input ``declared`` (its Input, or None)."""
    if isinstance(value, PipelineInput) and getattr(declared, "type", None) in LITERAL_TYPES:
        return value._binding()
    if isinstance(value, (NodeOutput, PipelineInput)):
        spec = plain(declared) if declared is not None else {}
        spec = {k: v for k, v in spec.items() if k in ("type", "mode")}
        return {**spec, "path": value._binding()} if spec else value._binding()
    if isinstance(value, Input):
        mine = plain(value)
        if declared is None:
            return mine
        base = {k: v for k, v in plain(declared).items() if k in ("type", "mode")}
        return {**base, **mine}
    if declared is not None and getattr(declared, "type", None) in LITERAL_TYPES:
        return value
    if declared is not None and value is not None:
        return {**{k: v for k, v in plain(declared).items() if k in ("type", "mode")},
                "path": absolute(value)}
    return value
