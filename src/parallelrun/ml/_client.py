"""``MLClient`` (``azure.ai.ml.MLClient``): the workspace, and its operations ``jobs``, ``data``,
``models``, ``environments``, ``compute``.

The credential, subscription and resource group are accepted and ignored; the workspace is the
parallelrun workspace found as ``Workspace.from_config()`` finds it (``config.json`` in the
current folder or a parent), or at ``path=``.
"""

from __future__ import annotations

import os
import shutil
from typing import Any, Iterator

from parallelrun.errors import ConfigurationError, WorkspaceError
from parallelrun.ml._assets import AmlCompute, Data, Environment, Model
from parallelrun.ml._nodes import Command, Parallel, _Node
from parallelrun.ml._pipeline import PipelineJob, base_folder
from parallelrun.statuses import JobStatus


class MLClient:
    """The workspace's client.

    Example (the line that changes from Azure ML: the credential is ignored)::

        ml_client = MLClient.from_config(credential=None)
        run = ml_client.jobs.create_or_update(job, experiment_name="digits")
        ml_client.jobs.stream(run.name)
    """

    def __init__(self, credential: Any = None, subscription_id: str | None = None,
                 resource_group_name: str | None = None, workspace_name: str | None = None,
                 *, path: str | os.PathLike | None = None, **kwargs: Any):
        from parallelrun.workspace.workspace import Workspace

        if workspace_name is not None:
            self.workspace = Workspace.get(workspace_name, path=path)
        else:
            self.workspace = Workspace.from_config(path)
        self.subscription_id = subscription_id
        self.resource_group_name = resource_group_name
        self.workspace_name = workspace_name or self.workspace.name
        self.jobs = JobOperations(self.workspace)
        self.data = DataOperations(self.workspace)
        self.models = ModelOperations(self.workspace)
        self.environments = EnvironmentOperations(self.workspace)
        self.compute = ComputeOperations(self.workspace)

    @classmethod
    def from_config(cls, credential: Any = None, *, path: str | os.PathLike | None = None,
                    file_name: str | None = None, **kwargs: Any) -> "MLClient":
        """The client of the workspace whose ``config.json`` is in ``path`` (default: the current
        folder) or a parent."""
        from parallelrun.workspace.workspace import Workspace

        client = cls.__new__(cls)
        workspace = Workspace.from_config(path, _file_name=file_name)
        client.__init__(credential, path=workspace.path)
        return client

    def create_or_update(self, entity: Any, **kwargs: Any) -> Any:
        """Create or update any entity (a job, data, a model, an environment, a compute)."""
        for kind, operations in ((PipelineJob, self.jobs), (_Node, self.jobs),
                                 (Data, self.data), (Model, self.models),
                                 (Environment, self.environments),
                                 (AmlCompute, self.compute)):
            if isinstance(entity, kind):
                return operations.create_or_update(entity, **kwargs)
        raise ConfigurationError("entity", type(entity).__name__,
                                 "a job, Data, Model, Environment or AmlCompute")

    begin_create_or_update = create_or_update

    def __repr__(self) -> str:
        return f"MLClient(workspace={self.workspace.path!r})"


class _Poller:
    """What Azure ML's ``begin_*`` calls return: ``result()`` is ready at once here."""

    def __init__(self, value: Any):
        self._value = value

    def result(self, timeout: float | None = None) -> Any:
        return self._value

    def wait(self, timeout: float | None = None) -> None:
        return None

    def done(self) -> bool:
        return True


class JobOperations:
    """``ml_client.jobs``: submit, follow, list, cancel and download jobs (runs)."""

    def __init__(self, workspace: Any):
        self._ws = workspace

    def _runnable(self, job: Any):
        """The job as the YAML runner's job: a pipeline file's PipelineJob, or a parallel job."""
        from parallelrun.pipeline.pipeline_job import PipelineJob as PipelineFile
        from parallelrun.pipeline.yaml_job import ParallelJob, _line_map

        source = getattr(job, "_source", None)
        lines = {}
        if source and os.path.isfile(source):
            with open(source, encoding="utf-8") as handle:
                lines = _line_map(handle.read())
        if isinstance(job, PipelineJob):
            path = source or os.path.join(base_folder(job),
                                          f"{job.display_name or 'pipeline'} (dsl.pipeline)")
            runnable = PipelineFile(path, job._to_dict(), lines)
        elif isinstance(job, Parallel):
            data = job._to_dict()
            path = source or os.path.join(os.getcwd(), f"{job.name or 'parallel'} (parallel job)")
            runnable = ParallelJob(path, data, lines)
        elif isinstance(job, Command):
            name = job.name or "command"
            wrapper = PipelineJob(jobs={name: job}, experiment_name=job.experiment_name,
                                  display_name=job.display_name, compute=job.compute)
            runnable = PipelineFile(os.path.join(os.getcwd(), f"{name} (command job)"),
                                    wrapper._to_dict(), {})
        else:
            raise ConfigurationError("job", type(job).__name__,
                                     "a PipelineJob (@pipeline, load_job), a parallel node "
                                     "(parallel_run_function) or a command node (command)")
        runnable.check()
        runnable.raise_problems()
        return runnable

    def validate(self, job: Any) -> Any:
        """Check ``job`` as submitting it would (raises JobSpecError listing each problem)."""
        runnable = self._runnable(job)
        runnable.to_pipeline(self._ws)
        return job

    def create_or_update(self, job: Any, *, description: str | None = None,
                         compute: str | None = None, tags: dict | None = None,
                         experiment_name: str | None = None, skip_validation: bool = False,
                         **kwargs: Any) -> Any:
        """Submit ``job``; returns it with ``name`` (the run's id) and ``status`` set."""
        from parallelrun.pipeline.experiment import Experiment

        if compute is not None:
            job.compute = compute
        if description is not None:
            job.description = description
        if tags:
            job.tags.update(tags)
        runnable = self._runnable(job)
        experiment = experiment_name or getattr(job, "experiment_name", None) or \
            "Default"
        run = Experiment(self._ws, experiment).submit(runnable, tags=dict(job.tags or {}) or None)
        job.name = run.id
        job.experiment_name = experiment
        job.status = JobStatus.of(run.get_status())
        job.studio_url = f"file://{run.run_dir}" if getattr(run, "run_dir", None) else None
        return job

    def _run(self, name: str):
        from parallelrun.pipeline.runs import Run

        return Run.get(self._ws, name)

    def get(self, name: str) -> "JobSummary":
        """The job (run) ``name``: its ``status``, ``experiment_name``, ``display_name``."""
        return JobSummary(self._run(name))

    def list(self, parent_job_name: str | None = None, **kwargs: Any) -> Iterator["JobSummary"]:
        """Jobs of the workspace (the newest first), or the steps of ``parent_job_name``."""
        from parallelrun.pipeline.runs import PipelineRun

        if parent_job_name is not None:
            return iter([JobSummary(step) for step in self._run(parent_job_name).get_steps()])
        return iter([JobSummary(run) for run in PipelineRun.list(self._ws)])

    def stream(self, name: str) -> None:
        """Print the job's progress until it ends; a failed job raises JobFailedError."""
        self._run(name).wait_for_completion(show_output=True)

    def cancel(self, name: str) -> None:
        self._run(name).cancel()

    begin_cancel = cancel

    def download(self, name: str, download_path: str | os.PathLike = ".",
                 output_name: str | None = None, all: bool = False) -> None:
        """Copy a job's outputs: ``output_name`` into ``<download_path>/named-outputs/<name>``,
        its logs into ``<download_path>/artifacts`` (the default), ``all=True`` both and every
        named output."""
        run = self._run(name)
        target = os.path.abspath(os.fspath(download_path))
        outputs = _named_outputs(run)
        if output_name is not None and output_name not in outputs:
            raise ConfigurationError("output_name", output_name,
                                     f"an output of job {name}: {', '.join(outputs) or 'none'}")
        wanted = list(outputs) if all else [output_name] if output_name else []
        for each in wanted:
            _copy_tree(outputs[each], os.path.join(target, "named-outputs", each))
        if all or output_name is None:
            folder = getattr(run, "run_dir", None) or getattr(run, "log_dir", None)
            if folder and os.path.isdir(folder):
                _copy_tree(folder, os.path.join(target, "artifacts"))


def _named_outputs(run: Any) -> dict[str, str]:
    """Output name -> local folder, over the steps of a pipeline run (or a step run's own)."""
    steps = list(run.get_steps()) if hasattr(run, "get_steps") else [run]
    found: dict[str, str] = {}
    for step in steps:
        try:
            outputs = step.get_outputs()
        except (WorkspaceError, ConfigurationError):
            continue
        for output, reference in outputs.items():
            found.setdefault(output, reference.local_path)
    return found


def _copy_tree(source: str, target: str) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.isdir(source):
        shutil.copytree(source, target, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".parallelrun"))
    elif os.path.exists(source):
        shutil.copy2(source, target)


class JobSummary:
    """A submitted job as ``ml_client.jobs.get`` gives it."""

    def __init__(self, run: Any):
        self._run = run
        self.name = run.id
        self.status = JobStatus.of(run.get_status())
        experiment = getattr(run, "experiment", None)
        self.experiment_name = getattr(experiment, "name", None)
        self.display_name = getattr(run, "name", None) or run.id

    def __repr__(self) -> str:
        return f"Job(name={self.name!r}, status={self.status!r}, " \
               f"experiment_name={self.experiment_name!r})"


class DataOperations:
    """``ml_client.data``: data assets, versioned (``uri_folder``, ``uri_file``, ``mltable``)."""

    def __init__(self, workspace: Any):
        self._ws = workspace

    def create_or_update(self, data: Data, **kwargs: Any) -> Data:
        from parallelrun.data.files import FileDataset

        if not data.name or not data.path:
            raise ConfigurationError("data", data, "Data(name=..., path=...)")
        if data.type == "mltable":
            from parallelrun.data.mltable import load_mltable

            dataset = load_mltable(data.path)
        else:
            dataset = FileDataset.from_files(data.path)
        registered = dataset.register(self._ws, data.name, description=data.description,
                                      tags=data.tags or None, create_new_version=True)
        return self._entity(registered, data.type, data.path)

    def _entity(self, dataset: Any, kind: str | None = None, path: str | None = None) -> Data:
        record = dataset.registration or {}
        paths = record.get("paths") or []
        name, version = record.get("name"), str(record.get("version") or "")
        folder = dataset.folder if record.get("kind") == "mltable" else None  # not its first file
        return Data(name=name, version=version, path=path or folder or (paths[0] if paths else None),
                    type=kind or ("mltable" if record.get("kind") == "mltable" else
                                  "uri_folder"),
                    description=record.get("description"), id=f"azureml:{name}:{version}")

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Data:
        from parallelrun.data.dataset import Dataset

        dataset = Dataset.get_by_name(self._ws, name, version=version or "latest")
        return self._entity(dataset)

    def list(self, name: str | None = None, **kwargs: Any) -> Iterator[Data]:
        names = [name] if name else list(self._ws.datasets)
        return iter([self.get(n) for n in names])


class ModelOperations:
    """``ml_client.models``: registered, versioned models."""

    def __init__(self, workspace: Any):
        self._ws = workspace

    def create_or_update(self, model: Model, **kwargs: Any) -> Model:
        from parallelrun.workspace.models import Model as Registry

        if not model.name or not model.path:
            raise ConfigurationError("model", model, "Model(name=..., path=...)")
        registered = Registry.register(self._ws, model.path, model.name, tags=model.tags or None,
                                       description=model.description)
        return self._entity(registered, model.type)

    @staticmethod
    def _entity(registered: Any, kind: str | None = None) -> Model:
        return Model(name=registered.name, version=str(registered.version),
                     path=registered.model_path, type=kind or "custom_model",
                     description=registered.description, tags=registered.tags,
                     id=f"azureml:{registered.name}:{registered.version}")

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Model:
        from parallelrun.workspace.models import Model as Registry

        return self._entity(Registry(self._ws, name, version=int(version) if version else None))

    def list(self, name: str | None = None, **kwargs: Any) -> Iterator[Model]:
        from parallelrun.workspace.models import Model as Registry

        return iter([self._entity(m) for m in Registry.list(self._ws, name=name)])


class EnvironmentOperations:
    """``ml_client.environments``: registered, versioned environments (conda files)."""

    def __init__(self, workspace: Any):
        self._ws = workspace

    def create_or_update(self, environment: Environment, **kwargs: Any) -> Environment:
        from parallelrun.pipeline.environment import Environment as Registry

        if not environment.name:
            raise ConfigurationError("environment.name", None, "a name to register it under")
        registry = Registry.from_conda_specification(environment.name, environment.conda_file) \
            if environment.conda_file else Registry(environment.name)
        if environment.image:
            registry.docker.base_image = environment.image
        registry.register(self._ws)
        return self._entity(registry)

    @staticmethod
    def _entity(registry: Any) -> Environment:
        entity = Environment(name=registry.name, version=str(registry.version),
                             image=getattr(registry.docker, "base_image", None))
        entity._registered = True
        return entity

    def get(self, name: str, version: str | None = None, label: str | None = None
            ) -> Environment:
        from parallelrun.pipeline.environment import Environment as Registry

        return self._entity(Registry.get(self._ws, name, version))

    def list(self, name: str | None = None, **kwargs: Any) -> Iterator[Environment]:
        from parallelrun.pipeline.records import RunStore

        RunStore(self._ws)          # the catalog's run tables (environments among them) exist
        names = [name] if name else [row["name"] for row in self._ws.catalog.query(
            "SELECT DISTINCT name FROM environments ORDER BY name")]
        return iter([self.get(n) for n in names])


class ComputeOperations:
    """``ml_client.compute``: compute targets (an AmlCompute's nodes are local worker groups)."""

    def __init__(self, workspace: Any):
        self._ws = workspace

    def get(self, name: str) -> Any:
        """The compute target ``name`` (KeyError naming those there are when missing)."""
        return self._ws.compute_targets[name]

    def list(self, **kwargs: Any) -> Iterator[Any]:
        return iter(list(self._ws.compute_targets.values()))

    def begin_create_or_update(self, compute: AmlCompute, **kwargs: Any) -> _Poller:
        return _Poller(self.create_or_update(compute))

    def create_or_update(self, compute: AmlCompute, **kwargs: Any) -> Any:
        from parallelrun.compute import AmlCompute as Cluster
        from parallelrun.compute import ComputeTarget

        if not compute.name:
            raise ConfigurationError("compute.name", None, "a name for the compute target")
        config = Cluster.provisioning_configuration(
            vm_size=compute.size or "", min_nodes=compute.min_instances or 0,
            max_nodes=compute.max_instances or 1)
        return ComputeTarget.create(self._ws, compute.name, config)


__all__ = ["MLClient"]
