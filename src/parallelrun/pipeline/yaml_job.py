"""A v2-style parallel job in YAML (``parallelrun job submit job.yml``), after Azure ML's
``type: parallel`` jobs.

Example ``job.yml``::

    type: parallel
    experiment_name: digits
    inputs:
      images: {type: uri_folder, path: ./data/images}
      model: {type: custom_model, path: azureml:mnist:1}
    outputs:
      predictions: {type: uri_folder}
    input_data: ${{inputs.images}}
    mini_batch_size: "10"
    mini_batch_error_threshold: 5      # failed mini-batches tolerated (-1: all)
    error_threshold: -1                # failed items tolerated (-1: all)
    logging_level: INFO
    resources: {instance_count: 1}
    max_concurrency_per_instance: 2
    retry_settings: {max_retries: 2, timeout: 60}
    environment_variables: {OMP_NUM_THREADS: "1"}
    task:
      type: run_function
      code: ./src
      entry_script: score.py
      environment: {conda_file: ./env.yml}     # or azureml:name:version; none: this Python
      program_arguments: --model ${{inputs.model}} --threshold 0.5
      append_row_to: ${{outputs.predictions}}

How keys map onto parallelrun: ``mini_batch_error_threshold`` -> ``allowed_failed_count``,
``retry_settings.max_retries`` (default 2) -> ``run_max_try = max_retries + 1``,
``retry_settings.timeout`` (default 60) -> ``run_invocation_timeout``,
``resources.instance_count`` -> ``node_count``, ``max_concurrency_per_instance`` ->
``process_count_per_node``, ``append_row_to`` given -> ``append_row`` into that output, else
``summary_only``. Input paths: local paths (relative to the YAML file), ``azureml:name:version``
/ ``azureml:name@latest`` (registered datasets and, for model inputs, models),
``azureml://datastores/<name>/paths/<path>`` and ``az://`` / ``s3://`` URLs. ``mltable`` inputs
read the folder's ``MLTable`` file (``paths`` and a ``read_delimited`` / ``read_parquet`` /
``read_json_lines`` transformation). Model inputs reach the script through
``AZUREML_MODEL_DIR`` and ``${{inputs.model}}``. A job runs every time it is submitted (no
reuse). Every problem found is reported at once, each with its line in the file.

The file is read here (:func:`load_job`); its shape is checked by
:mod:`~parallelrun.pipeline.job_schema`, its references and local paths by
:mod:`~parallelrun.pipeline.parallel_job_checks`, and it is built into a pipeline by
:mod:`~parallelrun.pipeline.parallel_job` (``type: pipeline`` files:
:mod:`~parallelrun.pipeline.pipeline_job`); :mod:`~parallelrun.pipeline.job_file` holds what
every job file has. The names below stay importable from this module.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

# names re-exported from here, where pipeline_job.py, ml/_client.py, tests and users import them
from parallelrun.errors import ConfigurationError, JobSpecError, ParallelRunError  # noqa: F401
from parallelrun.pipeline.job_file import (  # noqa: F401
    _DATA_TYPES, _LITERAL_TYPES, _MODEL_TYPES, _REF, JobFile, _line_map, new_job_name,
)
from parallelrun.pipeline.parallel_job import ParallelJob
from parallelrun.pipeline.parallel_job_checks import PARALLEL_OPTIONS, ParallelJobFile  # noqa: F401


def load_job(path: str | os.PathLike) -> Any:
    """Read and check a job file (``type: parallel``, or ``type: pipeline``: a
    :class:`~parallelrun.pipeline.pipeline_job.PipelineJob`); raises JobSpecError listing every
    problem with its line.

    Example: ``job = load_job("job.yml")``.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError("job file", os.fspath(path),
                                 f"a readable YAML file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = f"the file does not parse: {getattr(exc, 'problem', exc)}"
        raise JobSpecError(os.fspath(path),
                           [(mark.line + 1 if mark else None, "yaml", problem)]) from None
    if not isinstance(data, dict):
        raise JobSpecError(os.fspath(path), [(1, "file", "a YAML mapping (type: parallel, ...)")])
    if data.get("type") == "pipeline":
        from parallelrun.pipeline.pipeline_job import load_pipeline_job

        return load_pipeline_job(path, text, data)
    job = ParallelJob(path, data, _line_map(text))
    job.check()
    job.raise_problems()
    return job


def submit_job(path: str | os.PathLike, workspace: Any, experiment_name: str | None = None):
    """Submit the job in ``path``; returns its PipelineRun at once.

    Example: ``run = submit_job("job.yml", ws); run.wait_for_completion(show_output=True)``.
    """
    from parallelrun.pipeline.experiment import Experiment

    job = load_job(path)
    return Experiment(workspace, experiment_name or job.experiment_name).submit(job)
