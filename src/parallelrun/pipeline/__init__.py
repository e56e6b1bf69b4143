"""Pipelines: steps linked by data, submitted to an experiment, run in the background.

One module per concept:

* :mod:`~parallelrun.pipeline.pipeline_data` ``PipelineData`` (a step's output folder, a later
  step's input) and ``PortDataReference`` (a finished step's output, to download);
* :mod:`~parallelrun.pipeline.steps` ``ParallelRunStep``, ``PythonScriptStep``;
* :mod:`~parallelrun.pipeline.graph` ``Pipeline`` and the order of its steps (cycles refused);
* :mod:`~parallelrun.pipeline.environment` ``Environment``, ``CondaDependencies`` and the
  virtualenvs they become;
* :mod:`~parallelrun.pipeline.reuse` what ``allow_reuse`` hashes;
* :mod:`~parallelrun.pipeline.records` the runs in the workspace catalog;
* :mod:`~parallelrun.pipeline.runs` ``Run``, ``PipelineRun``, ``StepRun``;
* :mod:`~parallelrun.pipeline.experiment` ``Experiment(ws, name).submit(pipeline)``;
* :mod:`~parallelrun.pipeline.runner` the background process that executes a run, with
  :mod:`~parallelrun.pipeline.executor` (the run) and one execution per step kind
  (:mod:`~parallelrun.pipeline.step_execution`);
* :mod:`~parallelrun.pipeline.yaml_job` v2-style ``type: parallel`` job files;
* :mod:`~parallelrun.pipeline.watch` what ``wait_for_completion(show_output=True)`` shows.

Nothing here is imported by ``import parallelrun``; the public names load on first use.
"""
