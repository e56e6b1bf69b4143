"""What the dashboard and the notebook widget show, read from one workspace.

Everything comes from the catalog (runs and step runs, whose counts the runner updates about
once a second, datasets, models, compute targets) and from the step log folders, so a run
started by any process on this machine shows up. Lists are pages (``LIMIT``/``OFFSET`` over the
catalog's indexes) and per-run numbers are aggregated by SQLite over the page's runs only, so a
workspace with thousands of runs costs what one page costs. Nothing here writes.

Example::

    view = WorkspaceView(Workspace.from_config())
    page = view.runs(experiment="digit_identification", limit=20)
    step = view.step(page["items"][0]["steps"][0]["id"])
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any

from parallelrun.config import JOB_MARKER_NAME
from parallelrun.errors import UnknownNameError as NotFound  # the API's 404; its old name here
from parallelrun.errors import WorkspaceError
from parallelrun.pipeline import step_counts
from parallelrun.pipeline.records import RunStore
from parallelrun.pipeline.runs import runner_alive
from parallelrun.statuses import IN_PROGRESS_STATUSES, TERMINAL_STATUSES, RunStatus

MAX_LIMIT = 200
#: ids that may appear in URLs; anything else is refused before it reaches SQL or a path
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,299}$")
STEP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
_RUN_COLUMNS = ("id, experiment, kind, status, description, tags, created_at, started_at, "
                "finished_at, error, pid, pid_started, host, cancel_requested, attempts, updated_at")


def runs_sql(by_experiment: bool, by_status: bool) -> tuple[str, str]:
    """The count and the page query of a list of runs (newest first). Both walk an index:
    ``runs_by_experiment (experiment, created_at)`` or ``runs_by_created``."""
    where = [w for w, on in (("experiment = ?", by_experiment), ("status = ?", by_status)) if on]
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    return (f"SELECT COUNT(*) FROM runs{clause}",
            f"SELECT {_RUN_COLUMNS} FROM runs{clause} ORDER BY created_at DESC LIMIT ? OFFSET ?")


EXPERIMENTS_SQL = (
    "SELECT e.name, e.created_at, "
    "(SELECT COUNT(*) FROM runs r WHERE r.experiment = e.name) AS run_count, "
    "(SELECT r.id FROM runs r WHERE r.experiment = e.name "
    " ORDER BY r.created_at DESC LIMIT 1) AS latest_run "
    "FROM experiments e ORDER BY e.name LIMIT ? OFFSET ?")

# the statuses are our own constants, written into the text: the page's run ids are the parameters
STEP_TOTALS_SQL = (
    f"SELECT run_id, COUNT(*) AS steps, SUM(status = '{RunStatus.FINISHED}') AS steps_finished, "
    f"SUM(status = '{RunStatus.FAILED}') AS steps_failed, "
    + "".join(f"SUM({column}) AS {column}, " for column in step_counts.SUMMED) +
    "SUM(minibatches_succeeded + minibatches_failed) AS minibatches_done "
    "FROM step_runs WHERE run_id IN ({marks}) GROUP BY run_id")


def check_id(kind: str, value: str, pattern: re.Pattern = STEP_ID) -> str:
    """``value`` when it has the shape of a ``kind`` id, else NotFound (never a path)."""
    if not isinstance(value, str) or not pattern.match(value) or ".." in value:
        raise NotFound(f"no {kind} {value!r}: {kind} ids are letters, digits, '_' and '-'")
    return value


def page_bounds(limit: int, offset: int) -> tuple[int, int]:
    return max(1, min(int(limit), MAX_LIMIT)), max(0, int(offset))


def inside(path: str | None, root: str) -> bool:
    """Whether ``path`` resolves (symlinks followed) to ``root`` or below it."""
    if not path:
        return False
    real, base = os.path.realpath(path), os.path.realpath(root)
    return real == base or real.startswith(base + os.sep)


def duration(record: dict, now: float | None = None) -> float | None:
    if not record.get("started_at"):
        return None
    return round((record.get("finished_at") or now or time.time()) - record["started_at"], 3)


def eta_seconds(step: dict, now: float | None = None) -> float | None:
    """Seconds left at the rate so far (as JobProgress.eta_seconds), None when unknown."""
    progress = step.get("progress") or {}
    if step.get("status") != RunStatus.RUNNING:
        return 0.0 if step.get("status") == RunStatus.FINISHED else None
    if progress.get("eta_seconds") is not None and step.get("updated_at"):
        # the snapshot is up to a second old: count the time since it was written
        age = max(0.0, (now or time.time()) - step["updated_at"])
        return max(0.0, progress["eta_seconds"] - age)
    return None


class WorkspaceView:
    """Read-only views of one workspace for the dashboard and the widget (see module doc)."""

    def __init__(self, workspace: Any):
        self.ws = workspace
        self.store = RunStore(workspace)
        self.catalog = workspace.catalog

    def _query(self, sql: str, params: tuple = ()) -> list:
        self.store._ready()  # a catalog from before pipelines has no run tables: say so
        return self.catalog.query(sql, params)

    # workspace ------------------------------------------------------------------------------
    def summary(self) -> dict:
        counts = self._query(
            "SELECT (SELECT COUNT(*) FROM experiments) AS experiments, "
            "(SELECT COUNT(*) FROM runs) AS runs, "
            "(SELECT COUNT(*) FROM runs WHERE status IN (?, ?)) AS active_runs, "
            "(SELECT COUNT(DISTINCT name) FROM datasets) AS datasets, "
            "(SELECT COUNT(DISTINCT name) FROM models) AS models, "
            "(SELECT COUNT(*) FROM compute_targets) AS compute_targets",
            (RunStatus.QUEUED, RunStatus.RUNNING))[0]
        return {"name": self.ws.name, "path": self.ws.path, **dict(counts)}

    # experiments ----------------------------------------------------------------------------
    def experiments(self, limit: int = 50, offset: int = 0) -> dict:
        """A page of experiments by name, each with its run count and latest run."""
        limit, offset = page_bounds(limit, offset)
        total = self._query("SELECT COUNT(*) FROM experiments")[0][0]
        rows = self._query(EXPERIMENTS_SQL, (limit, offset))
        latest = self._runs_by_id([r["latest_run"] for r in rows if r["latest_run"]])
        items = []
        for row in rows:
            run = latest.get(row["latest_run"])
            items.append({"name": row["name"], "created_at": row["created_at"],
                          "run_count": row["run_count"],
                          "latest_run": _run_brief(run) if run else None})
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    def experiment(self, name: str) -> dict:
        check_id("experiment", name, NAME)
        rows = self._query("SELECT name, created_at FROM experiments WHERE name = ?", (name,))
        if not rows:
            raise NotFound(f"no experiment {name!r} in workspace {self.ws.name!r}")
        return dict(rows[0])

    # runs -----------------------------------------------------------------------------------
    def runs(self, experiment: str | None = None, status: str | None = None, limit: int = 50,
             offset: int = 0) -> dict:
        """A page of runs, newest first, each with its steps' aggregated counts and items/s."""
        limit, offset = page_bounds(limit, offset)
        params: tuple = ()
        if experiment is not None:
            self.experiment(experiment)
            params += (experiment,)
        if status:
            params += (status,)
        count_sql, page_sql = runs_sql(experiment is not None, bool(status))
        total = self._query(count_sql, params)[0][0]
        rows = self._query(page_sql, params + (limit, offset))
        runs = [self._run_row(row) for row in rows]
        totals = self._step_totals([r["id"] for r in runs])
        now = time.time()
        for run in runs:
            run.update(_with_rate(run, totals.get(run["id"]), now))
        return {"items": runs, "total": total, "limit": limit, "offset": offset}

    def _runs_by_id(self, ids: list[str]) -> dict[str, dict]:
        if not ids:
            return {}
        marks = ", ".join("?" * len(ids))
        rows = self._query(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id IN ({marks})", tuple(ids))
        return {row["id"]: self._run_row(row) for row in rows}

    def _step_totals(self, run_ids: list[str]) -> dict[str, dict]:
        """Per run: steps, finished steps, items done, summed over its step runs (one query)."""
        if not run_ids:
            return {}
        marks = ", ".join("?" * len(run_ids))
        rows = self._query(STEP_TOTALS_SQL.format(marks=marks), tuple(run_ids))
        return {row["run_id"]: dict(row) for row in rows}

    def _run_row(self, row) -> dict:
        data = dict(row)
        if isinstance(data.get("tags"), str):
            data["tags"] = json.loads(data["tags"])
        data["cancel_requested"] = bool(data.get("cancel_requested"))
        # a runner that died leaves Running behind; say so without writing (read-only view)
        data["runner_lost"] = data["status"] in IN_PROGRESS_STATUSES and not runner_alive(data)
        for private in ("pid_started",):
            data.pop(private, None)
        data["duration"] = duration(data)
        return data

    def run(self, run_id: str) -> dict:
        """One run: its record, its steps with their counts, and the graph as submitted."""
        check_id("run", run_id, RUN_ID)
        rows = self._query(f"SELECT {_RUN_COLUMNS}, graph, run_dir FROM runs WHERE id = ?",
                           (run_id,))
        if not rows:
            raise NotFound(f"no run {run_id!r} in workspace {self.ws.name!r}")
        data = self._run_row(rows[0])
        graph = data.pop("graph")
        data["graph"] = json.loads(graph) if isinstance(graph, str) else graph
        data["run_dir"] = self.store.abs(data["run_dir"])
        data["steps"] = self.steps(run_id)
        totals = self._step_totals([run_id]).get(run_id)
        data.update(_with_rate(data, totals, time.time()))
        return data

    def run_dir(self, run_id: str) -> str:
        check_id("run", run_id, RUN_ID)
        rows = self._query("SELECT run_dir FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise NotFound(f"no run {run_id!r} in workspace {self.ws.name!r}")
        return self.store.abs(rows[0]["run_dir"])

    # steps ----------------------------------------------------------------------------------
    def steps(self, run_id: str) -> list[dict]:
        rows = self._query(
            "SELECT id, run_id, name, kind, position, status, depends_on, reused_from, "
            f"{', '.join(step_counts.COLUMNS)}, error, started_at, finished_at, updated_at "
            "FROM step_runs WHERE run_id = ? ORDER BY position", (run_id,))
        steps = []
        for row in rows:
            data = dict(row)
            data["depends_on"] = json.loads(data["depends_on"] or "[]")
            data.update(step_counts.StepCounts.of_row(data).as_json())
            data["duration"] = duration(data)
            data["error"] = _first_lines(data.get("error"))
            steps.append(data)
        return steps

    def step_row(self, step_id: str) -> dict:
        """The step run as RunStore records it (paths absolute), or NotFound."""
        check_id("step run", step_id)
        try:
            return self.store.step(step_id)
        except WorkspaceError:
            raise NotFound(f"no step run {step_id!r} in workspace {self.ws.name!r}") from None

    def step(self, step_id: str) -> dict:
        """One step run with live counts, rate, ETA, per-worker activity and outputs."""
        row = self.step_row(step_id)
        now = time.time()
        progress = row.get("progress") or {}
        workers = []
        for name, info in sorted((progress.get("workers") or {}).items()):
            workers.append({"process": name, "node": info.get("node"),
                            "state": info.get("state"), "current": info.get("current"),
                            "done": info.get("done", 0)})
        done_items = row["items_succeeded"] + row["items_failed"]
        data = {
            "id": row["id"], "run_id": row["run_id"], "name": row["name"], "kind": row["kind"],
            "status": row["status"], "position": row["position"],
            "depends_on": row.get("depends_on") or [], "reused_from": row.get("reused_from"),
            "started_at": row.get("started_at"), "finished_at": row.get("finished_at"),
            "updated_at": row.get("updated_at"), "duration": duration(row, now),
            **step_counts.StepCounts.of_row(row).as_json(),
            "minibatches_done": row["minibatches_succeeded"] + row["minibatches_failed"],
            "items_done": done_items,
            "planned_items": progress.get("planned_items") or 0,
            "eta_seconds": eta_seconds(row, now),
            "workers_total": progress.get("workers_total", len(workers)),
            "workers_ready": progress.get("workers_ready", 0),
            "worker_restarts": progress.get("worker_restarts", 0),
            "minibatches_resumed": progress.get("minibatches_resumed", 0),
            "workers": workers,
            "outputs": self._outputs(row),
            "logs_available": inside(row.get("log_dir"), self.ws.path),
            "error": row.get("error"),
            "metrics": (row.get("metrics") or {}).get("metrics") or {},
        }
        run = self._query("SELECT experiment, status FROM runs WHERE id = ?", (row["run_id"],))
        if run:
            data["experiment"] = run[0]["experiment"]
            data["run_status"] = run[0]["status"]
        return data

    def _outputs(self, row: dict) -> list[dict]:
        outputs = []
        for name, output in sorted((row.get("outputs") or {}).items()):
            local = output.get("local_path")
            entry = {"name": name, "datastore": output.get("datastore"),
                     "path_on_datastore": output.get("path_on_datastore"), "local_path": local,
                     "files": [], "more_files": False}
            if local and inside(local, self.ws.path) and os.path.isdir(local):
                # a glance at what is there; the folder may hold millions of files
                with os.scandir(local) as it:
                    for i, item in enumerate(it):
                        if i >= 20:
                            entry["more_files"] = True
                            break
                        if item.is_file(follow_symlinks=False) and item.name != JOB_MARKER_NAME:
                            entry["files"].append({"name": item.name,
                                                   "size": item.stat(follow_symlinks=False).st_size})
                entry["files"].sort(key=lambda f: f["name"])
            outputs.append(entry)
        return outputs

    # datasets, models, compute --------------------------------------------------------------
    def datasets(self, limit: int = 50, offset: int = 0) -> dict:
        limit, offset = page_bounds(limit, offset)
        total = self._query("SELECT COUNT(DISTINCT name) FROM datasets")[0][0]
        rows = self._query(
            "SELECT name, COUNT(*) AS versions, MAX(version) AS latest_version, "
            "MAX(created_at) AS updated_at FROM datasets GROUP BY name ORDER BY name "
            "LIMIT ? OFFSET ?", (limit, offset))
        items = []
        for row in rows:
            latest = self._query("SELECT * FROM datasets WHERE name = ? AND version = ?",
                                 (row["name"], row["latest_version"]))[0]
            items.append({**dict(row), "latest": _dataset_version(latest)})
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    def dataset_versions(self, name: str, limit: int = 50, offset: int = 0) -> dict:
        check_id("dataset", name, NAME)
        limit, offset = page_bounds(limit, offset)
        total = self._query("SELECT COUNT(*) FROM datasets WHERE name = ?", (name,))[0][0]
        if not total:
            raise NotFound(f"no dataset {name!r} in workspace {self.ws.name!r}")
        rows = self._query("SELECT * FROM datasets WHERE name = ? ORDER BY version DESC "
                           "LIMIT ? OFFSET ?", (name, limit, offset))
        return {"items": [_dataset_version(r) for r in rows], "total": total, "limit": limit,
                "offset": offset}

    def models(self, limit: int = 50, offset: int = 0) -> dict:
        limit, offset = page_bounds(limit, offset)
        total = self._query("SELECT COUNT(DISTINCT name) FROM models")[0][0]
        rows = self._query(
            "SELECT name, COUNT(*) AS versions, MAX(version) AS latest_version, "
            "MAX(created_at) AS updated_at FROM models GROUP BY name ORDER BY name "
            "LIMIT ? OFFSET ?", (limit, offset))
        items = []
        for row in rows:
            latest = self._query("SELECT * FROM models WHERE name = ? AND version = ?",
                                 (row["name"], row["latest_version"]))[0]
            items.append({**dict(row), "latest": _model_version(latest)})
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    def model_versions(self, name: str, limit: int = 50, offset: int = 0) -> dict:
        check_id("model", name, NAME)
        limit, offset = page_bounds(limit, offset)
        total = self._query("SELECT COUNT(*) FROM models WHERE name = ?", (name,))[0][0]
        if not total:
            raise NotFound(f"no model {name!r} in workspace {self.ws.name!r}")
        rows = self._query("SELECT * FROM models WHERE name = ? ORDER BY version DESC "
                           "LIMIT ? OFFSET ?", (name, limit, offset))
        return {"items": [_model_version(r) for r in rows], "total": total, "limit": limit,
                "offset": offset}

    def compute_targets(self) -> dict:
        items = []
        for row in self._query("SELECT name, record FROM compute_targets ORDER BY name"):
            record = json.loads(row["record"])
            items.append({"name": row["name"], "kind": record.get("kind"),
                          "properties": {k: v for k, v in record.items()
                                         if k not in ("name", "kind")}})
        return {"items": items, "total": len(items), "limit": len(items), "offset": 0}

    def datastores(self) -> dict:
        # the config column never holds secrets (they live in the secrets table, not read here)
        items = [{"name": r["name"], "kind": r["kind"], "config": json.loads(r["config"])}
                 for r in self._query("SELECT name, kind, config FROM datastores ORDER BY name")]
        return {"items": items, "total": len(items), "limit": len(items), "offset": 0}


def _first_lines(text: str | None, count: int = 3) -> str | None:
    if not text:
        return text
    lines = [line for line in str(text).splitlines() if line.strip()]
    return "\n".join(lines[:count]) + ("\n..." if len(lines) > count else "")


def _run_brief(run: dict) -> dict:
    return {k: run.get(k) for k in ("id", "status", "created_at", "started_at", "finished_at",
                                    "duration", "runner_lost")}


def _with_rate(run: dict, totals: dict | None, now: float) -> dict:
    totals = dict(totals or {})
    totals.pop("run_id", None)
    items = (totals.get("items_succeeded") or 0) + (totals.get("items_failed") or 0)
    seconds = duration(run, now)
    return {"steps_total": totals.get("steps") or 0,
            "steps_finished": totals.get("steps_finished") or 0,
            "steps_failed": totals.get("steps_failed") or 0,
            **{column: totals.get(column) or 0 for column in step_counts.SUMMED},
            "minibatches_done": totals.get("minibatches_done") or 0,
            "items_per_second": round(items / seconds, 3) if seconds else 0.0}


def _dataset_version(row) -> dict:
    record = json.loads(row["record"])
    return {"id": row["id"], "name": row["name"], "version": row["version"], "kind": row["kind"],
            "file_count": row["file_count"], "total_bytes": row["total_bytes"],
            "description": row["description"], "tags": json.loads(row["tags"] or "{}"),
            "created_at": row["created_at"], "paths": [str(p) for p in record.get("paths", [])][:20]}


def _model_version(row) -> dict:
    return {"name": row["name"], "version": row["version"], "id": f"{row['name']}:{row['version']}",
            "entry": row["entry"], "source": row["source"], "tags": json.loads(row["tags"] or "{}"),
            "properties": json.loads(row["properties"] or "{}"), "description": row["description"],
            "file_count": row["file_count"], "total_bytes": row["total_bytes"],
            "created_at": row["created_at"]}


def is_terminal(status: str | None) -> bool:
    return status in TERMINAL_STATUSES


__all__ = ["WorkspaceView", "NotFound", "check_id", "is_terminal", "inside", "MAX_LIMIT"]
