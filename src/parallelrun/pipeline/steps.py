"""Pipeline steps: ``ParallelRunStep`` (the batch inference step) and ``PythonScriptStep``.

A step is a description; nothing runs until its pipeline is submitted. Inputs are datasets
(``Dataset.File...``, ``Dataset.Tabular...``, registered or not) or ``PipelineData`` written by
an earlier step; a step's ``PipelineData`` outputs are folders later steps read.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterable

from parallelrun.config import ParallelRunConfig, check_arguments
from parallelrun.data.base import AbstractDataset
from parallelrun.errors import ConfigurationError
from parallelrun.pipeline.dataset_inputs import DatasetConsumptionConfig
from parallelrun.pipeline.output_datasets import OutputDatasetConfig
from parallelrun.pipeline.parameters import PipelineParameter
from parallelrun.pipeline.pipeline_data import PipelineData

# Azure ML's rule for ParallelRunStep names (they become part of its compute job names)
STEP_NAME_RULE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def check_parallel_step_name(name: Any) -> str:
    """``name`` if it is a valid ParallelRunStep name: 3-32 characters, lowercase letters,
    digits and ``-``, starting with a letter and not ending with ``-``."""
    if not isinstance(name, str) or not 3 <= len(name) <= 32 or not STEP_NAME_RULE.match(name):
        hint = ""
        if isinstance(name, str):
            fixed = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
            if fixed and not fixed[0].isalpha():
                fixed = "step-" + fixed
            fixed = fixed[:32].rstrip("-")
            if len(fixed) >= 3 and STEP_NAME_RULE.match(fixed):
                hint = f" (e.g. {fixed!r})"
        raise ConfigurationError(
            "name", name,
            "3 to 32 characters matching ^[a-z]([-a-z0-9]*[a-z0-9])?$: lowercase letters, digits "
            f"and '-', starting with a letter, not ending with '-'{hint}")
    return name


def _dataset_of(item: Any) -> AbstractDataset | None:
    """The dataset an input stands for where the pipeline is defined: itself, a
    DatasetConsumptionConfig's, or a PipelineParameter's default (None for anything else)."""
    if isinstance(item, DatasetConsumptionConfig):
        item = item.dataset
    if isinstance(item, PipelineParameter):
        item = item.default_value
    return item if isinstance(item, AbstractDataset) else None


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


class PipelineStep:
    """What every step has: a name, inputs, outputs, arguments, reuse, explicit ordering."""

    kind = ""

    def __init__(self, name: str, inputs: Iterable[Any], outputs: Iterable[PipelineData],
                 arguments: list[Any] | None, allow_reuse: bool):
        self.name = name
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.arguments = list(arguments or [])
        # as in Azure ML, an OutputFileDatasetConfig in the arguments is an output of the step
        # (its as_input() copies are inputs)
        for item in self.arguments:
            if isinstance(item, OutputDatasetConfig) and not item.is_input and \
                    item.name not in {output.name for output in self.outputs}:
                self.outputs.append(item)
        if not isinstance(allow_reuse, bool):
            raise ConfigurationError("allow_reuse", allow_reuse, "True or False")
        self.allow_reuse = allow_reuse
        #: what run.log notes about the step before it runs (settings accepted with no effect)
        self.notes: list[str] = []
        self._run_after: list[PipelineStep] = []
        for item in self.outputs:
            if not isinstance(item, PipelineData):
                raise ConfigurationError(f"{self.name}: outputs", item,
                                         "PipelineData objects, e.g. PipelineData('results', ds)")
            if isinstance(item, OutputDatasetConfig) and item.is_input:
                raise ConfigurationError(f"{self.name}: outputs", item,
                                         f"the output itself, not its as_input({item.input_name!r}) "
                                         "(that is how a later step reads it)")

    def run_after(self, step: "PipelineStep") -> None:
        """Run this step only after ``step`` finished, even without data between them."""
        if not isinstance(step, PipelineStep):
            raise ConfigurationError("run_after", step, "a step of the same pipeline")
        self._run_after.append(step)

    # the data links the graph follows
    def consumed(self) -> list[PipelineData]:
        """PipelineData this step reads (inputs and arguments)."""
        seen: dict[str, PipelineData] = {}
        own = {output.name for output in self.outputs}
        for item in self.inputs:
            if isinstance(item, PipelineData):
                seen.setdefault(item.name, item)
        # arguments also name the step's own outputs (where to write): those are not inputs
        for item in [*self.arguments, *self._side_inputs()]:
            if isinstance(item, PipelineData) and item.name not in own:
                seen.setdefault(item.name, item)
        return list(seen.values())

    def _side_inputs(self) -> list:
        return []

    def datasets(self) -> list[AbstractDataset]:
        """Datasets this step reads (not PipelineData)."""
        return [item for item in [*self.inputs, *self._side_inputs(), *self.arguments]
                if isinstance(item, AbstractDataset)]

    def validate(self) -> None:
        """Checks done at submit time (files exist, arguments allowed...)."""

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind,
                "inputs": [_describe_input(i) for i in self.inputs],
                "outputs": [o.name for o in self.outputs], "allow_reuse": self.allow_reuse}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _describe_input(item: Any) -> str:
    if isinstance(item, PipelineData):
        return f"PipelineData {item.name}"
    if isinstance(item, DatasetConsumptionConfig):
        return f"dataset input {item.name} ({item.mode})"
    if isinstance(item, PipelineParameter):
        return f"PipelineParameter {item.name}"
    if isinstance(item, AbstractDataset):
        registration = item.registration or {}
        if registration:
            return f"dataset {registration.get('name')}:{registration.get('version')}"
        return item.describe()
    return str(item)


class ParallelRunStep(PipelineStep):
    """Run an entry script over the inputs in parallel, as a step of a pipeline.

    Example (the original document's code)::

        parallelrun_step = ParallelRunStep(
            name="batch-mnist", models=[model], parallel_run_config=parallel_run_config,
            inputs=[named_mnist_ds], output=output_dir, arguments=[], allow_reuse=True)

    ``inputs``: datasets (all files or all tables) or ``PipelineData`` of an earlier step (its
    files become the input). ``side_inputs``: further datasets or PipelineData each worker can
    read whole (pass them in ``arguments`` to get their local path). ``output``: the
    PipelineData holding ``parallel_run_step.txt`` (append_row) or the script's own files
    (summary_only). ``models``: registered models (``Model.get_model_path(name)`` in ``init()``)
    or a dict of name to folder. ``arguments``: the script's ``sys.argv``, starting with a flag;
    datasets and PipelineData in it become local paths.
    """

    kind = "parallel"

    def __init__(self, name: str, parallel_run_config: ParallelRunConfig, inputs: list[Any],
                 output: PipelineData | None = None, side_inputs: list[Any] | None = None,
                 models: Any = None, arguments: list[Any] | None = None, allow_reuse: bool = True,
                 tags: dict | None = None, properties: dict | None = None):
        check_parallel_step_name(name)
        if not isinstance(parallel_run_config, ParallelRunConfig):
            raise ConfigurationError("parallel_run_config", parallel_run_config,
                                     "a ParallelRunConfig(...)")
        inputs = _as_list(inputs)
        if not inputs:
            raise ConfigurationError(f"{name}: inputs", inputs,
                                     "at least one dataset or PipelineData, e.g. "
                                     "[ds.as_named_input('mnist')]")
        for item in inputs:
            if not isinstance(item, PipelineData) and _dataset_of(item) is None:
                raise ConfigurationError(
                    f"{name}: inputs", item,
                    "datasets (Dataset.File.from_files(...), Dataset.Tabular...), "
                    "DatasetConsumptionConfig, or PipelineData")
        if output is not None and not isinstance(output, PipelineData):
            raise ConfigurationError(f"{name}: output", output,
                                     "a PipelineData, e.g. PipelineData('inferences', datastore=ds)")
        super().__init__(name, inputs, [output] if output is not None else [], arguments,
                         allow_reuse)
        self.parallel_run_config = parallel_run_config
        self.output = output
        self.side_inputs = _as_list(side_inputs)
        for item in self.side_inputs:
            if not isinstance(item, PipelineData) and _dataset_of(item) is None:
                raise ConfigurationError(f"{name}: side_inputs", item, "datasets or PipelineData")
        self.models = models if isinstance(models, dict) else _as_list(models)
        self.tags = dict(tags or {})
        self.properties = dict(properties or {})
        _check_step_arguments(name, self.arguments)

    def _side_inputs(self) -> list:
        return list(self.side_inputs)

    def validate(self) -> None:
        from parallelrun.script import inspect_entry_script

        config = self.parallel_run_config
        if not config.script_path.is_file():
            raise ConfigurationError(f"{self.name}: entry_script", str(config.entry_script),
                                     f"an existing .py file (nothing at {config.script_path})")
        inspect_entry_script(config.script_path)
        datasets = [_dataset_of(d) for d in self.inputs if _dataset_of(d) is not None]
        kinds = {d.kind for d in datasets}
        for item in self.inputs:
            if isinstance(item, PipelineData):   # a table after read_*_files(), else files
                kinds.add("tabular" if isinstance(item, OutputDatasetConfig) and item.is_tabular
                          else "file")
        if len(kinds) > 1:
            raise ConfigurationError(f"{self.name}: inputs", [_describe_input(i) for i in self.inputs],
                                     "inputs of one kind: all files or all tables")
        for dataset in datasets:
            dataset.check_mini_batch_size(config.mini_batch_size)
        if config.environment is not None and hasattr(config.environment, "validate"):
            config.environment.validate()

    def describe(self) -> dict:
        data = super().describe()
        config = self.parallel_run_config
        data.update(entry_script=str(config.entry_script),
                    source_directory=str(config.source_path),
                    side_inputs=[_describe_input(i) for i in self.side_inputs],
                    models=sorted(_model_names(self.models)))
        return data


class PythonScriptStep(PipelineStep):
    """Run a plain Python script once, e.g. to prepare data before scoring or to report after.

    Example::

        prep = PythonScriptStep(script_name="prep.py", source_directory="scripts",
                                arguments=["--raw", raw_ds.as_mount(), "--out", images],
                                inputs=[raw_ds], outputs=[images])

    Datasets and PipelineData in ``arguments`` become local folders; each is also in the
    environment as ``AZUREML_DATAREFERENCE_<name>``. The script runs with ``source_directory``
    as its working folder, in ``runconfig.environment`` (or ``environment=``) when given.
    ``name`` defaults to the script name.
    """

    kind = "python"

    def __init__(self, script_name: str, name: str | None = None, arguments: list[Any] | None = None,
                 compute_target: Any = None, runconfig: Any = None,
                 runconfig_pipeline_params: Any = None, inputs: list[Any] | None = None,
                 outputs: list[PipelineData] | None = None, params: dict | None = None,
                 source_directory: str | os.PathLike | None = None, allow_reuse: bool = True,
                 version: str | None = None, hash_paths: list[str] | None = None,
                 environment: Any = None):
        if not isinstance(script_name, str) or not script_name.endswith(".py"):
            raise ConfigurationError("script_name", script_name, "a Python file name ending in .py")
        step_name = name if name is not None else script_name
        if not isinstance(step_name, str) or not step_name.strip() or len(step_name) > 128:
            raise ConfigurationError("name", step_name, "a non-empty step name of at most 128 characters")
        super().__init__(step_name, _as_list(inputs), _as_list(outputs), arguments, allow_reuse)
        for item in self.inputs:
            if not isinstance(item, PipelineData) and _dataset_of(item) is None:
                raise ConfigurationError(f"{step_name}: inputs", item, "datasets or PipelineData")
        self.script_name = script_name
        self.source_directory = source_directory
        self.compute_target = compute_target
        self.runconfig = runconfig
        self.environment = environment if environment is not None else getattr(
            runconfig, "environment", None)
        self.params = dict(params or {})

    @property
    def source_path(self) -> Path:
        return Path(self.source_directory or ".").resolve()

    @property
    def script_path(self) -> Path:
        return self.source_path / self.script_name

    def validate(self) -> None:
        if self.source_directory is not None and not self.source_path.is_dir():
            raise ConfigurationError(f"{self.name}: source_directory", str(self.source_directory),
                                     f"an existing folder (nothing at {self.source_path})")
        if not self.script_path.is_file():
            raise ConfigurationError(f"{self.name}: script_name", self.script_name,
                                     f"an existing script (nothing at {self.script_path})")
        if self.environment is not None and hasattr(self.environment, "validate"):
            self.environment.validate()

    def describe(self) -> dict:
        data = super().describe()
        data.update(script_name=self.script_name, source_directory=str(self.source_path))
        return data


def _check_step_arguments(name: str, arguments: list[Any]) -> None:
    # datasets and PipelineData stand for paths: check the rest the way run_job will
    stands_for_path = (AbstractDataset, PipelineData, DatasetConsumptionConfig, PipelineParameter)
    as_text = [a if isinstance(a, str) else "x" if isinstance(a, stands_for_path) else str(a)
               for a in arguments]
    try:
        check_arguments(as_text)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{name}: arguments", arguments, exc.allowed) from None


def _model_names(models: Any) -> list[str]:
    if isinstance(models, dict):
        return [str(k) for k in models]
    return [f"{getattr(m, 'name', m)}:{getattr(m, 'version', '')}".rstrip(":") for m in models]
