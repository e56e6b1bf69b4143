"""A ParallelRunStep runs as a job of the engine (``run_job``) in the runner process: its
config with the compute resolved, its inputs as datasets (an earlier step's PipelineData as the
files, or the table, it holds), its side inputs as folders. The job's counts reach the catalog
through the run's watch thread. On resume it goes on with ``run_job(resume=True)`` over the same
output and log folders, so committed mini-batches are not run again and each output row is
written once."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from parallelrun.backends import backend_of
from parallelrun.pipeline.environment import engine_config, materialise, storage_requirements
from parallelrun.pipeline.output_datasets import OutputDatasetConfig
from parallelrun.pipeline.pipeline_data import PipelineData
from parallelrun.pipeline.records import progress_fields
from parallelrun.pipeline.run_folder import RUN_LOG, step_default_output_dir
from parallelrun.pipeline.step_compute import effective_config
from parallelrun.pipeline.step_execution import StepContext, StepExecution, StepOutcome


class ParallelStepExecution(StepExecution):
    """Runs ParallelRunSteps."""

    kind = "parallel"

    def environment(self, step) -> Any:
        return step.parallel_run_config.environment

    def folder_inputs(self, step) -> list[Any]:
        # the main datasets reach the workers as mini-batches; listing them to make a folder
        # would cost as much as the job's own planning
        return [*[i for i in step.inputs if isinstance(i, PipelineData)], *step.side_inputs]

    def execute(self, step, context: StepContext) -> StepOutcome:
        from parallelrun.engine.job import run_job
        from parallelrun.metrics import collect_metrics

        config = effective_config(step.parallel_run_config, context.workspace)
        env = config.environment
        python = None
        if backend_of(config.compute_target) == "local" and env is not None:
            python = materialise(env, context.workspace,
                                 log_file=os.path.join(context.run_dir, RUN_LOG),
                                 extra_requirements=storage_requirements(step.inputs))
        config = engine_config(config, python)   # the Environment as a plain RuntimeSpec
        env_vars = dict(config.environment_variables or {})
        env_vars.update(context.references(step, self.folder_inputs(step)))
        env_vars.setdefault("AZUREML_RUN_ID", context.step_run_id)
        config = dataclasses.replace(config, environment_variables=env_vars)
        inputs = [_as_dataset(item, context) for item in step.inputs]
        side_inputs = {getattr(item, "name", None) or f"side_input_{index}":
                       context.local_path(item, own_outputs=False)
                       for index, item in enumerate(step.side_inputs)}
        output_dir = context.outputs[step.output.name]["local_path"] if step.output is not None \
            else step_default_output_dir(context.run_dir, step.name)
        if context.resuming:
            context.log.info("[%s] going on from the journal in %s", step.name, context.log_dir)
        with context.watcher.track(context.step_run_id) as live:
            result = run_job(config, inputs, output_dir, context.arguments(step),
                             log_dir=context.log_dir, models=step.models or None,
                             side_inputs=side_inputs or None, listeners=[live],
                             resume=context.resuming, cancel=context.cancel, python=python,
                             run_id=context.step_run_id, workspace_path=context.workspace.path)
        if result.output_file and step.output is not None and step.output.data_type == "MLTable":
            from parallelrun.data.mltable import output_mltable   # an output of type: mltable

            output_mltable(result.output_file, config.append_row_format)
        fields = progress_fields(live.progress) if live.progress is not None else {}
        fields["metrics"] = collect_metrics(context.log_dir)
        context.log.info("[%s] %s", step.name, result.summary().replace("\n", "; "))
        return StepOutcome(result.status, result.error, fields)


def _as_dataset(item: Any, context: StepContext) -> Any:
    """A main input as the job reads it: an earlier step's output as the data it holds."""
    if isinstance(item, OutputDatasetConfig):    # as_input() of an earlier output
        return item.dataset_at(context.data_folder(item)).as_named_input(item.input_name)
    if isinstance(item, PipelineData) and item.data_type == "MLTable":
        from parallelrun.data.mltable import load_mltable   # an mltable output

        return load_mltable(context.data_folder(item)).as_named_input(item.name)
    if isinstance(item, PipelineData):
        from parallelrun.data.files import FileDataset

        return FileDataset.from_files(context.data_folder(item)).as_named_input(item.name)
    return item
