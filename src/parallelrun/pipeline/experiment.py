"""``Experiment(ws, name).submit(pipeline)``: record the run, start its runner, return at once.

Submitting checks everything that can be checked here (step names and links, scripts,
arguments, environments' Python version, compute targets), so a mistake is an exception in the
submitter, not a failed run later. Then it pickles the pipeline into the run's folder, records
the run and its steps (``NotStarted``) in the catalog, and starts
``python -m parallelrun.pipeline.runner RUN_ID --workspace PATH`` in a new session, in the
submitter's working folder (relative paths in the pipeline resolve as they did here). The run
is ``Queued`` until the runner takes it.
"""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import time
import uuid
from typing import Any

from parallelrun.errors import BackendError, ConfigurationError
from parallelrun.pipeline.graph import Pipeline
from parallelrun.pipeline.parameters import resolve_parameters
from parallelrun.pipeline.processes import start_run_process
from parallelrun.pipeline.records import RunStore
from parallelrun.pipeline.run_folder import PIPELINE_FILE, RUN_LOG
from parallelrun.pipeline.runs import PipelineRun
from parallelrun.pipeline.step_compute import node_count_problem
from parallelrun.statuses import RunStatus

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")
# runner processes this process started; polled so that they never linger as zombies
_CHILDREN: list[subprocess.Popen] = []


class Experiment:
    """A named group of runs in a workspace.

    Example (the original document's code)::

        pipeline_run = Experiment(ws, "digit_identification").submit(pipeline)
        pipeline_run.wait_for_completion(show_output=True)
    """

    def __init__(self, workspace: Any, name: str, _skip_name_validation: bool = False, **kwargs: Any):
        if workspace is None or not hasattr(workspace, "catalog"):
            raise ConfigurationError("workspace", workspace, "a Workspace (Workspace.from_config())")
        if not _skip_name_validation and (not isinstance(name, str) or not _NAME.match(name)):
            raise ConfigurationError(
                "experiment name", name,
                "1 to 255 letters, digits, '_' or '-', starting with a letter or digit "
                "(e.g. 'digit_identification')")
        self.workspace = workspace
        self.name = name

    def submit(self, config: Any, tags: dict | None = None, **kwargs: Any) -> PipelineRun:
        """Start ``config`` (a Pipeline, or a job from ``load_job``) in the background and
        return its run at once.

        ``regenerate_outputs=True`` turns reuse off for this run; ``continue_on_step_failure``
        lets independent steps go on after a step failed. ``pipeline_parameters={"name":
        value}`` gives the pipeline's ``PipelineParameter`` values for this run (their defaults
        otherwise); an unknown name or a value of the wrong kind is a ConfigurationError.
        """
        from parallelrun.pipeline.published import PublishedPipeline

        if isinstance(config, PublishedPipeline):
            return config.submit(self.workspace, self.name,
                                 pipeline_parameters=kwargs.get("pipeline_parameters"),
                                 continue_on_step_failure=kwargs.get("continue_on_step_failure"),
                                 tags=tags)
        to_pipeline = getattr(config, "to_pipeline", None)
        kind = "pipeline"
        if not isinstance(config, Pipeline) and callable(to_pipeline):
            config, kind = to_pipeline(self.workspace), "job"
        if not isinstance(config, Pipeline):
            raise ConfigurationError("config", config,
                                     "a Pipeline(workspace=ws, steps=[...]) or a YAML job "
                                     "(parallelrun.load_job('job.yml'))")
        # the run is a copy of the pipeline with its PipelineParameters' values in place
        config, parameters = resolve_parameters(config, kwargs.get("pipeline_parameters"))
        options = {"regenerate_outputs": bool(kwargs.get("regenerate_outputs")),
                   "continue_on_step_failure": bool(
                       kwargs.get("continue_on_step_failure") or config.continue_on_step_failure),
                   "pipeline_parameters": {name: _shown(value) for name, value in parameters.items()}}
        return submit_pipeline(self, config, kind=kind, tags=tags, options=options,
                               description=kwargs.get("description") or config.description,
                               cwd=kwargs.get("_cwd"))

    def get_runs(self, limit: int = 50) -> list[PipelineRun]:
        """This experiment's runs, newest first."""
        store = RunStore(self.workspace)
        return [PipelineRun(self, r["id"], _store=store) for r in store.runs(self.name, limit=limit)]

    @staticmethod
    def list(workspace: Any) -> list["Experiment"]:
        """Every experiment with at least one run."""
        return [Experiment(workspace, name, _skip_name_validation=True)
                for name in RunStore(workspace).experiments()]

    def __repr__(self) -> str:
        return f"Experiment(name={self.name!r}, workspace={self.workspace.name!r})"


def _shown(value: Any) -> Any:
    """A parameter's value as the run records it (datasets by their description)."""
    if isinstance(value, (int, float, str, bool)):
        return value
    registration = getattr(value, "registration", None) or {}
    if registration:
        return f"dataset {registration.get('name')}:{registration.get('version')}"
    describe = getattr(value, "describe", None)
    return describe() if callable(describe) else repr(value)


def check_pipeline(pipeline: Pipeline) -> None:
    """What submit checks before anything is recorded."""
    from parallelrun.pipeline.environment_build import resolve_environment

    pipeline.validate()
    for step in pipeline.steps:
        if step.kind != "parallel":
            # a conflict of its pins with the worker's needs, refused before anything runs
            resolve_environment(getattr(step, "environment", None), pipeline.workspace)
            continue
        config = step.parallel_run_config
        target, problem = node_count_problem(config, pipeline.workspace)
        if getattr(target, "backend", "local") == "local":   # as the runner decides
            resolve_environment(config.environment, pipeline.workspace)
        if problem:
            raise BackendError(
                f"step {step.name!r}: node_count={config.node_count} on compute "
                f"{getattr(target, 'name', target)!r}: {problem}. Use a node_count it has, an "
                "AmlCompute target (its max_nodes become worker slots here), or a Ray cluster "
                "(RayCompute.attach(ws, 'ray-cluster'))")


def submit_pipeline(experiment: Experiment, pipeline: Pipeline, *, kind: str = "pipeline",
                    tags: dict | None = None, options: dict | None = None,
                    description: str | None = None, cwd: str | None = None) -> PipelineRun:
    """Record ``pipeline`` as a new run of ``experiment`` and start its runner, in ``cwd``
    (relative paths of the pipeline resolve there; the current folder by default)."""
    ws = experiment.workspace
    if pipeline.workspace != ws:
        raise ConfigurationError("pipeline.workspace", pipeline.workspace.path,
                                 f"the experiment's workspace ({ws.path})")
    check_pipeline(pipeline)
    store = RunStore(ws)
    run_id = f"{experiment.name}_{int(time.time())}_{uuid.uuid4().hex[:8]}"
    run_dir = os.path.join(ws.path, ".parallelrun", "runs", run_id)
    os.makedirs(run_dir)
    try:
        payload = pickle.dumps({"pipeline": pipeline, "options": dict(options or {})})
    except Exception as exc:  # noqa: BLE001 - say which object cannot travel to the runner
        raise ConfigurationError(
            "pipeline", pipeline, f"objects that can be pickled for the run's process; this one "
            f"holds something that cannot ({type(exc).__name__}: {exc}), e.g. an open file or a "
            "lambda in a step's arguments") from None
    with open(os.path.join(run_dir, PIPELINE_FILE), "wb") as fh:
        fh.write(payload)
    open(os.path.join(run_dir, RUN_LOG), "a").close()  # there from the start, for watchers
    graph = pipeline.graph.describe()
    # listed in running order (the graph's topological order)
    steps = [{"id": uuid.uuid4().hex, "name": name, "kind": pipeline.graph.by_name[name].kind,
              "position": i, "depends_on": sorted(pipeline.graph.dependencies[name])}
             for i, name in enumerate(pipeline.graph.order)]
    store.create_run({"id": run_id, "experiment": experiment.name, "kind": kind,
                      "description": description, "tags": tags or {}, "graph": graph,
                      "run_dir": run_dir, "cwd": cwd or os.getcwd()}, steps)
    store.update_run(run_id, only_if_status=(RunStatus.NOT_STARTED,), status=RunStatus.QUEUED)
    process = start_runner(ws, run_id, resume=False)
    return PipelineRun(experiment, run_id, _store=store, _process=process)


def start_runner(workspace: Any, run_id: str, resume: bool) -> subprocess.Popen:
    """Start the runner process of a Queued run, in its own session (it outlives us)."""
    for child in list(_CHILDREN):
        if child.poll() is not None:
            _CHILDREN.remove(child)
    store = RunStore(workspace)
    process = start_run_process(
        store, store.run(run_id), ["parallelrun.pipeline.runner", run_id, "--workspace",
                                   workspace.path] + (["--resume"] if resume else []),
        "the run's process")
    _CHILDREN.append(process)
    return process
