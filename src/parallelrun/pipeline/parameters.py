"""``PipelineParameter``: a value of a pipeline chosen when it is submitted, after Azure ML's
``azureml.pipeline.core.PipelineParameter``.

A parameter may stand wherever its default could: a step's ``arguments``, a
``ParallelRunConfig`` field (``mini_batch_size``, ``process_count_per_node``,
``error_threshold``...), a ``DatasetConsumptionConfig``'s dataset. ``Experiment.submit(pipeline,
pipeline_parameters={"name": value})`` (and ``Pipeline.submit``) runs a copy of the pipeline in
which every parameter is replaced by the submitted value or its default, checked as the value
itself would be (a bad ``mini_batch_size`` is a ConfigurationError at submit).

A parameter with an ``int``, ``float`` or ``str`` default *is* that value too (an instance of a
subclass of ``int``, ``float`` or ``str``), so ``ParallelRunConfig`` checks the default where the
pipeline is defined, as Azure ML does, without knowing about parameters.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from typing import Any

from parallelrun.data.base import AbstractDataset
from parallelrun.errors import ConfigurationError
from parallelrun.pipeline.dataset_inputs import DatasetConsumptionConfig

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$")


class PipelineParameter:
    """A named value of a pipeline, given at submit (``default_value`` otherwise).

    Example (the MNIST notebook's)::

        batch_size = PipelineParameter(name="batch_size_param", default_value="5")
        config = ParallelRunConfig(..., mini_batch_size=batch_size, ...)
        experiment.submit(pipeline, pipeline_parameters={"batch_size_param": "1"})

    ``default_value``: int, float, str, bool, or a dataset.
    """

    def __new__(cls, name: str, default_value: Any):
        kind = _TYPED.get(type(default_value), cls) if cls is PipelineParameter else cls
        for base in (int, float, str):
            if issubclass(kind, base):
                return base.__new__(kind, default_value)
        return object.__new__(kind)

    def __init__(self, name: str, default_value: Any):
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigurationError("PipelineParameter.name", name,
                                     "letters, digits, '_', '.' and '-' (e.g. 'batch_size_param')")
        if not isinstance(default_value, (int, float, str, bool, AbstractDataset)):
            raise ConfigurationError(
                f"PipelineParameter {name!r}: default_value", default_value,
                "an int, float, str, bool or a dataset (Dataset.File.from_files(...))")
        self.name = name
        self.default_value = default_value

    def __reduce__(self):
        return (PipelineParameter, (self.name, self.default_value))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __repr__(self) -> str:
        return f"PipelineParameter(name={self.name!r}, default_value={self.default_value!r})"


class _IntParameter(int, PipelineParameter):
    __repr__ = PipelineParameter.__repr__


class _FloatParameter(float, PipelineParameter):
    __repr__ = PipelineParameter.__repr__


class _StrParameter(str, PipelineParameter):
    __repr__ = PipelineParameter.__repr__


_TYPED = {int: _IntParameter, float: _FloatParameter, str: _StrParameter}


def parameters_of(pipeline: Any) -> dict[str, PipelineParameter]:
    """Every PipelineParameter of the pipeline's steps, by name (one name, one parameter)."""
    found: dict[str, PipelineParameter] = {}
    for step in pipeline.steps:
        for item in _places(step):
            if isinstance(item, DatasetConsumptionConfig):
                item = item.dataset
            if isinstance(item, PipelineParameter):
                other = found.setdefault(item.name, item)
                if other is not item and other.default_value is not item.default_value \
                        and other.default_value != item.default_value:
                    raise ConfigurationError(
                        "PipelineParameter", item.name,
                        f"one default per name; it has {other.default_value!r} and "
                        f"{item.default_value!r}. Use one PipelineParameter object, or two names")
    return found


def _places(step: Any) -> list:
    items = [*step.inputs, *getattr(step, "side_inputs", []), *step.arguments]
    config = getattr(step, "parallel_run_config", None)
    if config is not None:
        items += [getattr(config, f.name) for f in dataclasses.fields(config)]
    return items


def resolve_parameters(pipeline: Any, submitted: dict | None) -> tuple[Any, dict]:
    """A copy of ``pipeline`` whose parameters are replaced by their values in ``submitted``
    (or their defaults), and those values by name. Unknown names and values of the wrong kind
    are a ConfigurationError naming them."""
    parameters = parameters_of(pipeline)
    submitted = dict(submitted or {})
    unknown = sorted(set(submitted) - set(parameters))
    if unknown:
        raise ConfigurationError("pipeline_parameters", unknown,
                                 f"names of the pipeline's PipelineParameters "
                                 f"({', '.join(sorted(parameters)) or 'it has none'})")
    values = {}
    for name, parameter in parameters.items():
        value = submitted.get(name, parameter.default_value)
        if isinstance(value, PipelineParameter):
            value = value.default_value
        if isinstance(parameter.default_value, AbstractDataset) != isinstance(value, AbstractDataset):
            raise ConfigurationError(f"pipeline_parameters[{name!r}]", value,
                                     f"a value of the kind of its default "
                                     f"({type(parameter.default_value).__name__})")
        values[name] = value
    if not parameters:
        return pipeline, {}

    def value_of(item: Any) -> Any:
        return values[item.name] if isinstance(item, PipelineParameter) else item

    def resolved(item: Any) -> Any:
        if isinstance(item, DatasetConsumptionConfig):
            return item.resolve(value_of)
        return value_of(item)

    copies = {}
    for step in pipeline.steps:
        new = copy.copy(step)
        new.inputs = [resolved(i) for i in step.inputs]
        new.arguments = [resolved(a) for a in step.arguments]
        if hasattr(step, "side_inputs"):
            new.side_inputs = [resolved(i) for i in step.side_inputs]
        config = getattr(step, "parallel_run_config", None)
        if config is not None:
            changes = {f.name: values[getattr(config, f.name).name]
                       for f in dataclasses.fields(config)
                       if isinstance(getattr(config, f.name), PipelineParameter)}
            if changes:
                new.parallel_run_config = _replace_config(step.name, config, changes)
        copies[step.name] = new
    for new in copies.values():
        new._run_after = [copies[other.name] for other in new._run_after]
    result = copy.copy(pipeline)
    result.__init__(pipeline.workspace, [copies[s.name] for s in pipeline.steps],
                    description=pipeline.description, default_datastore=pipeline.default_datastore,
                    continue_on_step_failure=pipeline.continue_on_step_failure)
    return result, values


def _replace_config(step_name: str, config: Any, changes: dict) -> Any:
    try:
        return dataclasses.replace(config, **changes)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{step_name}: {exc.parameter} (a PipelineParameter)",
                                 exc.value, exc.allowed) from None
