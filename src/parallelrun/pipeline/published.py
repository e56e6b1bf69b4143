"""``pipeline.publish()`` and ``PublishedPipeline``: a pipeline kept in the workspace under an
id, submitted again by that id, after Azure ML's ``azureml.pipeline.core.PublishedPipeline``.

Example::

    published = pipeline.publish(name="nightly scoring", version="1.0")
    run = PublishedPipeline.get(ws, published.id).submit(ws, "nightly",
                                                         pipeline_parameters={"batch": "10"})

Publishing checks the pipeline as submit would (scripts, arguments, compute targets), then
keeps the pickled pipeline in ``<workspace>/.parallelrun/published/<id>/pipeline.pkl`` and a
record in the catalog, with the folder it was published from (relative paths in the pipeline
resolve there, whoever submits it). A submission is an ordinary run of an experiment; its
``pipeline_parameters`` replace the PipelineParameters' defaults as ``Experiment.submit`` does
(plain values, as a REST call gives them). It can be submitted from Python
(:meth:`PublishedPipeline.submit`, ``Experiment(ws, name).submit(published)``), the terminal
(``parallelrun pipeline submit ID``), the dashboard's API (``POST
/api/published-pipelines/{id}/submit``) and by a :class:`~parallelrun.pipeline.schedules.Schedule`.
A disabled published pipeline refuses submissions until it is enabled again.
"""

from __future__ import annotations

import json
import os
import pickle
import time
import uuid
from typing import Any

from parallelrun.errors import ConfigurationError, WorkspaceError

ACTIVE, DISABLED = "Active", "Disabled"
PUBLISHED_FOLDER = os.path.join(".parallelrun", "published")


class PublishedPipeline:
    """A published pipeline of a workspace: ``id``, ``name``, ``description``, ``version``,
    ``status`` (``Active`` or ``Disabled``), ``endpoint`` and ``parameters`` (its
    PipelineParameters' defaults).

    Example: ``PublishedPipeline.get(ws, id).submit(ws, "nightly")``.
    """

    def __init__(self, workspace: Any, record: dict):
        self.workspace = workspace
        self._record = record

    # the record ------------------------------------------------------------------------------
    id = property(lambda self: self._record["id"], doc="The published pipeline's id.")
    name = property(lambda self: self._record["name"], doc="Its name.")
    description = property(lambda self: self._record["description"], doc="Its description.")
    version = property(lambda self: self._record["version"], doc="Its version text.")
    status = property(lambda self: self._record["status"], doc="Active or Disabled.")
    continue_on_step_failure = property(
        lambda self: bool(self._record["continue_on_step_failure"]),
        doc="Whether a submission goes on with independent steps after a step failed.")

    @property
    def parameters(self) -> dict:
        """The pipeline's PipelineParameters and their defaults (as recorded)."""
        return dict(self._record["parameters"])

    @property
    def endpoint(self) -> str:
        """Where the dashboard's API submits it (Azure ML gives a REST URL here)."""
        return f"/api/published-pipelines/{self.id}/submit"

    @property
    def graph_id(self) -> str:
        return self.id

    # lookups ---------------------------------------------------------------------------------
    @staticmethod
    def get(workspace: Any, id: str, _workflow_provider: Any = None,
            _service_endpoint: Any = None) -> "PublishedPipeline":
        """The published pipeline ``id`` of ``workspace``."""
        rows = workspace.catalog.query("SELECT * FROM published_pipelines WHERE id = ?", (id,))
        if not rows:
            known = [r["id"] for r in workspace.catalog.query(
                "SELECT id FROM published_pipelines ORDER BY created_at DESC LIMIT 5")]
            raise WorkspaceError(
                f"no published pipeline {id!r} in workspace {workspace.name!r}; "
                + (f"recent ones: {', '.join(known)}" if known else
                   "publish one with pipeline.publish(name=...)")
                + " (parallelrun pipeline list shows them all)")
        return PublishedPipeline(workspace, _decode(rows[0]))

    @staticmethod
    def list(workspace: Any, active_only: bool = True,
             _service_endpoint: Any = None) -> list["PublishedPipeline"]:
        """The workspace's published pipelines, newest first (only active ones unless
        ``active_only=False``)."""
        sql = "SELECT * FROM published_pipelines"
        if active_only:
            sql += f" WHERE status = '{ACTIVE}'"
        rows = workspace.catalog.query(sql + " ORDER BY created_at DESC")
        return [PublishedPipeline(workspace, _decode(row)) for row in rows]

    get_all = list

    # actions ---------------------------------------------------------------------------------
    def submit(self, workspace: Any, experiment_name: str, pipeline_parameters: dict | None = None,
               _workflow_provider: Any = None, _service_endpoint: Any = None,
               parent_run_id: str | None = None, continue_on_step_failure: bool | None = None,
               tags: dict | None = None):
        """Run it as a new run of experiment ``experiment_name``; returns the PipelineRun at
        once. ``pipeline_parameters`` give its PipelineParameters' values for this run."""
        from parallelrun.pipeline.experiment import Experiment

        self._refresh()
        if self.status != ACTIVE:
            raise ConfigurationError(
                "published pipeline", self.id,
                f"an active published pipeline; {self.name!r} is disabled. Enable it first: "
                f"PublishedPipeline.get(ws, {self.id!r}).enable() or "
                f"parallelrun pipeline enable {self.id}")
        pipeline = self.load()
        pipeline_parameters = self.typed_parameters(pipeline_parameters)
        keep_going = self.continue_on_step_failure if continue_on_step_failure is None \
            else continue_on_step_failure
        return Experiment(workspace, experiment_name).submit(
            pipeline, pipeline_parameters=pipeline_parameters, continue_on_step_failure=keep_going,
            tags={**(tags or {}), "published_pipeline_id": self.id},
            _cwd=self._record["cwd"])

    def typed_parameters(self, values: dict | None) -> dict | None:
        """``values`` with text turned into the type of each parameter's default (the
        terminal and a REST call give text: ``"2"`` for an int parameter is 2)."""
        if not values:
            return values
        typed = {}
        for name, value in values.items():
            default = self.parameters.get(name)
            if isinstance(value, str) and not isinstance(default, str) and default is not None:
                kind = type(default)
                try:
                    if kind is bool:
                        if value.lower() not in ("true", "false", "1", "0"):
                            raise ValueError(value)
                        value = value.lower() in ("true", "1")
                    elif kind in (int, float):
                        value = kind(value)
                except ValueError:
                    raise ConfigurationError(f"pipeline_parameters[{name!r}]", value,
                                             f"a {kind.__name__} like its default "
                                             f"({default!r})") from None
            typed[name] = value
        return typed

    def load(self) -> Any:
        """The published Pipeline object, as it was published."""
        path = os.path.join(self.workspace.path, self._record["pipeline_file"])
        try:
            with open(path, "rb") as fh:
                pipeline = pickle.load(fh)
        except (OSError, pickle.UnpicklingError, EOFError) as exc:
            raise WorkspaceError(f"published pipeline {self.id!r}: its file {path} cannot be "
                                 f"read ({exc}); publish the pipeline again") from None
        pipeline.workspace = self.workspace
        return pipeline

    def disable(self) -> None:
        """Refuse submissions (schedules of it skip their runs) until :meth:`enable`."""
        self._set_status(DISABLED)

    def enable(self) -> None:
        """Accept submissions again."""
        self._set_status(ACTIVE)

    def _set_status(self, status: str) -> None:
        with self.workspace.catalog.write() as db:
            db.execute("UPDATE published_pipelines SET status = ? WHERE id = ?", (status, self.id))
        self._refresh()

    def _refresh(self) -> None:
        self._record = PublishedPipeline.get(self.workspace, self.id)._record

    def to_dict(self) -> dict:
        """What the dashboard's API and ``parallelrun pipeline list --json`` show."""
        return {"id": self.id, "name": self.name, "description": self.description,
                "version": self.version, "status": self.status, "endpoint": self.endpoint,
                "parameters": self.parameters, "created_at": self._record["created_at"],
                "continue_on_step_failure": self.continue_on_step_failure,
                "steps": [s["name"] for s in self._record["graph"].get("steps", [])]}

    def __repr__(self) -> str:
        return (f"PublishedPipeline(id={self.id!r}, name={self.name!r}, "
                f"version={self.version!r}, status={self.status!r})")


def publish(pipeline: Any, name: str | None = None, description: str | None = None,
            version: str | None = None, continue_on_step_failure: bool | None = None
            ) -> PublishedPipeline:
    """Keep ``pipeline`` in its workspace as a new published pipeline; see ``Pipeline.publish``."""
    from parallelrun.pipeline.experiment import _shown, check_pipeline
    from parallelrun.pipeline.parameters import parameters_of

    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ConfigurationError("publish: name", name, "a non-empty name, e.g. 'nightly scoring'")
    check_pipeline(pipeline)
    ws = pipeline.workspace
    published_id = str(uuid.uuid4())
    relative = os.path.join(PUBLISHED_FOLDER, published_id, "pipeline.pkl")
    os.makedirs(os.path.dirname(os.path.join(ws.path, relative)))
    try:
        payload = pickle.dumps(pipeline)
    except Exception as exc:  # noqa: BLE001 - say which object cannot be kept
        raise ConfigurationError(
            "pipeline", pipeline, f"objects that can be pickled to be published; this one holds "
            f"something that cannot ({type(exc).__name__}: {exc})") from None
    with open(os.path.join(ws.path, relative), "wb") as fh:
        fh.write(payload)
    keep_going = pipeline.continue_on_step_failure if continue_on_step_failure is None \
        else continue_on_step_failure
    parameters = {n: _shown(p.default_value) for n, p in parameters_of(pipeline).items()}
    with ws.catalog.write() as db:
        db.execute(
            "INSERT INTO published_pipelines (id, name, description, version, status, "
            "continue_on_step_failure, pipeline_file, parameters, graph, cwd, created_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (published_id, name or pipeline.description or "pipeline", description, version,
             ACTIVE, int(bool(keep_going)), relative, json.dumps(parameters),
             json.dumps(pipeline.graph.describe(), default=str), os.getcwd(), time.time()))
    return PublishedPipeline.get(ws, published_id)


def _decode(row: Any) -> dict:
    data = dict(row)
    for field in ("parameters", "graph"):
        data[field] = json.loads(data[field] or "{}")
    return data
