"""Stand-in for ``azureml.core.run``: ``Run.get_context()`` for entry scripts.

Inside a step of a pipeline run, the context knows its workspace: ``run.experiment`` (and its
``.workspace``), ``run.parent`` (the pipeline run), ``run.register_model(...)`` into that
workspace's registry. Metrics, lists, tables and tags land in the job's metrics
(``logs/user/metrics/``); ``upload_file`` copies into the job's log folder
(``logs/user/artifacts/<name>``).
"""

from __future__ import annotations

import logging
import os
import shutil
from typing import Any

from parallelrun import metrics
from parallelrun.compat import module_getattr
from parallelrun.script import current_context
from parallelrun.statuses import ScriptRunStatus

log = logging.getLogger("parallelrun.compat.run")


class Run:
    """The run an entry script belongs to. Metrics and tags land in the job's metrics.

    Outside a worker, ``Run.get_context()`` is an offline run that only logs, as in Azure ML.
    """

    def __init__(self, offline: bool = False, _child: str | None = None):
        self._offline = offline
        self._child = _child
        self._tags: dict[str, Any] = {}

    @classmethod
    def get_context(cls, allow_offline: bool = True) -> "Run":
        return cls(offline=current_context() is None)

    @property
    def id(self) -> str:
        context = current_context()
        base = (context.run_id or "parallelrun-run") if context else "OfflineRun"
        return f"{base}_{self._child}" if self._child else base

    @property
    def input_datasets(self) -> dict[str, Any]:
        """Named inputs of the step (``ds.as_named_input("name")``) by name."""
        context = current_context()
        return dict(context.input_datasets) if context else {}

    # Where the run sits --------------------------------------------------------------------
    def _workspace(self):
        context = current_context()
        if context is None or not context.workspace_path:
            return None
        from parallelrun.workspace.workspace import Workspace

        return Workspace(context.workspace_path)

    def _step_run(self):
        workspace = self._workspace()
        context = current_context()
        if workspace is None or not context.run_id:
            return None
        from parallelrun.errors import WorkspaceError
        from parallelrun.pipeline.runs import Run as CatalogRun

        try:
            return CatalogRun.get(workspace, context.run_id)
        except WorkspaceError:
            return None

    @property
    def experiment(self):
        """The experiment of the pipeline run this step belongs to (``.workspace`` is its
        workspace); None outside a pipeline run (``run_job`` and offline runs)."""
        step = self._step_run()
        return step.experiment if step is not None else None

    @property
    def parent(self):
        """The pipeline run this step belongs to; None outside a pipeline run."""
        step = self._step_run()
        return getattr(step, "parent", None)

    def get_status(self) -> str:
        """``Running`` inside a worker (the step is running), ``Completed`` offline."""
        return ScriptRunStatus.COMPLETED if self._offline else ScriptRunStatus.RUNNING

    def child_run(self, name: str | None = None, run_id: str | None = None,
                  outputs: str | None = None) -> "Run":
        """A child run whose metrics are recorded as ``<name>/<metric>`` in this job."""
        child = name or run_id or "child"
        return Run(offline=self._offline, _child=f"{self._child}/{child}" if self._child else child)

    # Metrics ---------------------------------------------------------------------------------
    def _record(self, kind: str, name: str, value: Any) -> None:
        name = f"{self._child}/{name}" if self._child else name
        if self._offline or not metrics.record(kind, name, value):
            log.info("%s %s = %r", kind, name, value)

    def log(self, name: str, value: Any, description: str = "") -> None:
        self._record("metric", name, value)

    def log_list(self, name: str, value: list, description: str = "") -> None:
        self._record("list", name, list(value))

    def log_row(self, name: str, description: str | None = None, **kwargs: Any) -> None:
        self._record("metric", name, dict(kwargs))

    def log_table(self, name: str, value: dict, description: str = "") -> None:
        """A table as a dict of column name to list of values, recorded whole."""
        self._record("metric", name, {str(k): list(v) for k, v in dict(value).items()})

    def tag(self, key: str, value: Any = None) -> None:
        self._tags[key] = value
        self._record("tag", key, value)

    def set_tags(self, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self.tag(key, value)

    def get_tags(self) -> dict[str, Any]:
        return dict(self._tags)

    # Files and models --------------------------------------------------------------------------
    def _artifacts(self) -> str | None:
        context = current_context()
        return os.path.join(context.log_dir, "user", "artifacts") if context else None

    def upload_file(self, name: str, path_or_stream: Any) -> str:
        """Copy a file (a path or a binary stream) to the job's ``logs/user/artifacts/<name>``;
        returns where it went (``register_model(model_path=name)`` finds it there)."""
        folder = self._artifacts()
        if folder is None:
            log.info("offline run: upload_file(%r) skipped", name)
            return os.fspath(path_or_stream) if not hasattr(path_or_stream, "read") else name
        target = os.path.join(folder, *str(name).replace("\\", "/").split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if hasattr(path_or_stream, "read"):
            with open(target, "wb") as out:
                shutil.copyfileobj(path_or_stream, out)
        else:
            shutil.copyfile(os.fspath(path_or_stream), target)
        return target

    def register_model(self, model_name: str, model_path: str | None = None,
                       tags: dict | None = None, properties: dict | None = None,
                       description: str | None = None, **_azure_arguments: Any):
        """Register ``model_path`` (a file uploaded with :meth:`upload_file`, else a local path)
        as the next version of ``model_name`` in the run's workspace."""
        workspace = self._workspace()
        if workspace is None:
            raise RuntimeError(f"register_model({model_name!r}) needs a workspace: run the script "
                               "as a pipeline step, or call Model.register(ws, ...) yourself")
        from parallelrun.workspace.models import Model

        path = model_path or model_name
        uploaded = os.path.join(self._artifacts() or "", *str(path).split("/"))
        source = uploaded if os.path.exists(uploaded) else path
        return Model.register(workspace, model_path=source, model_name=model_name, tags=tags,
                              properties=properties, description=description)

    def __getattr__(self, name: str):
        raise AttributeError(f"Run.{name} is not provided by parallelrun inside entry scripts "
                             "(provided: get_context, log, log_list, log_row, log_table, tag, "
                             "set_tags, get_tags, input_datasets, id, experiment, parent, "
                             "get_status, child_run, upload_file, register_model)")


__getattr__ = module_getattr("azureml.core.run")
