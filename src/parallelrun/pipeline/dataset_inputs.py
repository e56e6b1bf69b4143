"""``DatasetConsumptionConfig``: how a step consumes a dataset, after Azure ML's
``azureml.data.dataset_consumption_config``.

It names a step's input and may hold a :class:`~parallelrun.pipeline.parameters.PipelineParameter`
whose value is a dataset, so that a pipeline can be submitted again on other data::

    pipeline_param = PipelineParameter(name="mnist_param", default_value=input_mnist_ds)
    input_config = DatasetConsumptionConfig("minist_param_config", pipeline_param).as_mount()
    step = ParallelRunStep(..., inputs=[input_config], ...)
    experiment.submit(pipeline, pipeline_parameters={"mnist_param": other_ds})

At submit the step gets the parameter's value as ``dataset.as_named_input(name)``. ``mode``
(``direct``, ``mount``, ``download``) is kept as information: workers always receive local paths.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from parallelrun.data.base import AbstractDataset
from parallelrun.errors import ConfigurationError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
MODES = ("direct", "mount", "download", "hdfs")


class DatasetConsumptionConfig:
    """A dataset (or a PipelineParameter holding one) as the named input of a step.

    Example: ``DatasetConsumptionConfig("images", Dataset.File.from_files(...)).as_mount()``.
    """

    def __init__(self, name: str, dataset: Any, mode: str = "direct",
                 path_on_compute: str | None = None):
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigurationError("DatasetConsumptionConfig.name", name,
                                     "letters, digits and underscores, starting with a letter "
                                     "or underscore (the script finds the input by this name)")
        if not (isinstance(dataset, AbstractDataset)
                or isinstance(getattr(dataset, "default_value", None), AbstractDataset)):
            raise ConfigurationError(
                "DatasetConsumptionConfig.dataset", dataset,
                "a dataset (Dataset.File.from_files(...), Dataset.Tabular...) or a "
                "PipelineParameter whose default_value is one")
        if mode not in MODES:
            raise ConfigurationError("mode", mode, f"one of {', '.join(MODES)}")
        self.name = name
        self.dataset = dataset
        self.mode = mode
        self.path_on_compute = path_on_compute

    def _with_mode(self, mode: str, path_on_compute: str | None) -> "DatasetConsumptionConfig":
        changed = copy.copy(self)
        changed.mode = mode
        changed.path_on_compute = path_on_compute or self.path_on_compute
        return changed

    def as_mount(self, path_on_compute: str | None = None) -> "DatasetConsumptionConfig":
        """The same input, mode ``mount`` (workers see local paths in any mode)."""
        return self._with_mode("mount", path_on_compute)

    def as_download(self, path_on_compute: str | None = None) -> "DatasetConsumptionConfig":
        """The same input, mode ``download``."""
        return self._with_mode("download", path_on_compute)

    @property
    def kind(self) -> str:
        """The kind (``file`` or ``tabular``) of the dataset it stands for now."""
        return getattr(self.dataset, "kind", None) or self.dataset.default_value.kind

    def resolve(self, value_of) -> AbstractDataset:
        """The dataset this input is in a submitted run: ``value_of(parameter)`` gives a
        parameter's value there."""
        dataset = self.dataset
        if not isinstance(dataset, AbstractDataset):
            dataset = value_of(dataset)
        return dataset.as_named_input(self.name)

    def __repr__(self) -> str:
        return f"DatasetConsumptionConfig(name={self.name!r}, mode={self.mode!r})"
