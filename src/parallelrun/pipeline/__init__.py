"""Pipelines: steps linked by data, submitted to an experiment, run in the background.

One module per concept:

* :mod:`~parallelrun.pipeline.pipeline_data` ``PipelineData`` (a step's output folder, a later
  step's input) and ``PortDataReference`` (a finished step's output, to download);
* :mod:`~parallelrun.pipeline.steps` ``ParallelRunStep``, ``PythonScriptStep``;
* :mod:`~parallelrun.pipeline.graph` ``Pipeline`` and the order of its steps (cycles refused);
* :mod:`~parallelrun.pipeline.environment` ``Environment``, ``CondaDependencies``;
* :mod:`~parallelrun.pipeline.reuse` what ``allow_reuse`` hashes;
* :mod:`~parallelrun.pipeline.records` the runs in the workspace catalog;
* :mod:`~parallelrun.pipeline.runs` ``Run``, ``PipelineRun``, ``StepRun``;
* :mod:`~parallelrun.pipeline.experiment` ``Experiment(ws, name).submit(pipeline)``;
* :mod:`~parallelrun.pipeline.runner` the background process that executes a run, with
  :mod:`~parallelrun.pipeline.executor` (the run) and one execution per step kind
  (:mod:`~parallelrun.pipeline.step_execution`);
* :mod:`~parallelrun.pipeline.yaml_job` v2 job files (``job_file``, ``job_schema``, ``parallel_job_checks``,
  ``parallel_job`` for ``type: parallel``; ``pipeline_job`` and ``command_shim`` for
  ``type: pipeline``);
* :mod:`~parallelrun.pipeline.job_runs` the public ``run_job``: every job a run;
* :mod:`~parallelrun.pipeline.parameters`, ``dataset_inputs``, ``output_datasets``,
  ``data_reference``, ``published``, ``schedules``: Azure ML v1's pipeline objects;
* :mod:`~parallelrun.pipeline.environment_build` and ``interpreters``: job environments as
  virtualenvs of their own;
* :mod:`~parallelrun.pipeline.watch` what ``wait_for_completion(show_output=True)`` shows.

Nothing here is imported by ``import parallelrun``; the public names load on first use.
"""
