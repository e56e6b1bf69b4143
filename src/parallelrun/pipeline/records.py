"""Runs in the workspace catalog: experiments, runs, step runs, registered environments.

The tables come from migration 2 in ``parallelrun.workspace.catalog.MIGRATIONS``. Everything
a run is, while it runs and after, is a row here, so that any process (a notebook,
``parallelrun runs show`` in another terminal, the dashboard) sees the same state:

* ``runs``: one row per submitted pipeline or YAML job, and per job started by ``run_job`` or
  ``parallelrun run`` (kind ``run_job``, see :mod:`parallelrun.pipeline.job_runs`): status,
  timings, the process running it (pid, its start time, host) and a cancel flag it polls;
* ``step_runs``: one row per step of a run: status, timings, counts of mini-batches and items
  (updated about once a second while the step runs), the reuse key and what it was made of,
  output folders, metrics, the first error.

Paths inside the workspace folder are stored relative to it, so a workspace can move.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from typing import Any, Iterable

from parallelrun.errors import WorkspaceError
from parallelrun.pipeline import step_counts
from parallelrun.statuses import TERMINAL_STATUSES, RunStatus

#: re-exported for callers that import it from here; the statuses live in parallelrun.statuses
TERMINAL = TERMINAL_STATUSES
#: what started a run (``runs.kind``): Experiment.submit, a YAML job file, run_job / the CLI
PIPELINE_KIND, JOB_FILE_KIND, JOB_KIND = "pipeline", "job", "run_job"

# The tables are created by migration 2 of parallelrun.workspace.catalog.MIGRATIONS.

_RUN_FIELDS = ("status", "description", "tags", "graph", "pid", "pid_started", "host",
               "cancel_requested", "attempts", "error", "started_at", "finished_at")
_STEP_FIELDS = ("status", "reuse_key", "reuse_parts", "reused_from", "outputs", "log_dir",
                *step_counts.COLUMNS, "progress", "metrics", "error", "started_at", "finished_at")
_JSON_FIELDS = {"tags", "graph", "reuse_parts", "outputs", "progress", "metrics", "depends_on"}


def _check_schema(catalog) -> None:
    rows = catalog.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'runs'")
    if not rows:
        raise WorkspaceError(
            f"the workspace catalog {catalog.path!r} has no runs table: it predates "
            "pipelines; upgrade parallelrun")


def _encode(field: str, value: Any) -> Any:
    if field in _JSON_FIELDS and value is not None and not isinstance(value, str):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _decode(row) -> dict:
    data = dict(row)
    for field in _JSON_FIELDS & set(data):
        if isinstance(data[field], str):
            data[field] = json.loads(data[field])
    return data


# catalog path -> an idle connection this process keeps open (see hold_catalog_open); the
# oldest is closed beyond _HELD_MAX (a process running jobs in many workspaces, e.g. tests)
_HELD: dict[str, sqlite3.Connection] = {}
_HELD_MAX = 8
_HELD_LOCK = threading.Lock()


def hold_catalog_open(catalog) -> None:
    """Keep one idle connection to ``catalog`` open for the rest of this process.

    The catalog opens a connection per call; in WAL mode the last connection to close
    checkpoints the WAL and removes it, which syncs the disk (about 5 ms a close on the
    development machine). A job records itself in three writes: with this connection open
    none of them is the last, and recording costs about 2 ms a job instead of about 25. An idle
    connection holds no lock that stops writers or checkpoints.
    """
    with _HELD_LOCK:
        if catalog.path in _HELD:
            return
        try:
            db = sqlite3.connect(catalog.path, check_same_thread=False)
            db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # maps the WAL index
        except sqlite3.Error:
            return  # only a matter of speed
        _HELD[catalog.path] = db
        while len(_HELD) > _HELD_MAX:
            _HELD.pop(next(iter(_HELD))).close()


def progress_fields(progress) -> dict:
    """The step_runs columns a JobProgress fills (its counts and the live snapshot)."""
    return {**step_counts.StepCounts.of_progress(progress).columns(),
            "progress": progress.snapshot()}


class RunStore:
    """Reads and writes the run tables of one workspace. Cheap to create; picklable.

    Example::

        store = RunStore(ws)
        store.run("digit_identification_1700000000_1a2b3c")["status"]   # 'Running'
    """

    def __init__(self, workspace):
        self.workspace = workspace
        self.catalog = workspace.catalog
        self._checked = False

    def _ready(self):
        if not self._checked:
            _check_schema(self.catalog)
            self._checked = True
        return self.catalog

    # paths ------------------------------------------------------------------------------------
    def rel(self, path: str | None) -> str | None:
        """``path`` relative to the workspace when it lies inside it, else absolute."""
        if path is None:
            return None
        path = os.path.abspath(path)
        root = self.workspace.path
        return os.path.relpath(path, root) if path == root or path.startswith(root + os.sep) else path

    def abs(self, path: str | None) -> str | None:
        if path is None:
            return None
        return path if os.path.isabs(path) else os.path.join(self.workspace.path, path)

    # experiments and runs ---------------------------------------------------------------------
    def create_run(self, run: dict, steps: Iterable[dict]) -> None:
        """Insert a run and its step runs (all NotStarted) in one transaction."""
        catalog = self._ready()
        now = time.time()
        with catalog.write() as db:
            self._insert_run(db, run, RunStatus.NOT_STARTED, now)
            for step in steps:
                db.execute(
                    "INSERT INTO step_runs (id, run_id, name, kind, position, status, depends_on, "
                    "updated_at) VALUES (?,?,?,?,?,?,?,?)",
                    (step["id"], run["id"], step["name"], step["kind"], step["position"],
                     RunStatus.NOT_STARTED, _encode("depends_on", step.get("depends_on") or []),
                     now))

    def create_started_run(self, run: dict, step: dict) -> None:
        """Insert a run that is already Running in this process, with its one step run (also
        Running), in one transaction: what a job started by ``run_job`` records."""
        catalog = self._ready()
        now = time.time()
        with catalog.write() as db:
            self._insert_run(db, run, RunStatus.RUNNING, now, pid=run["pid"],
                             pid_started=run.get("pid_started"), host=run.get("host"),
                             attempts=1, started_at=now)
            db.execute(
                "INSERT INTO step_runs (id, run_id, name, kind, position, status, log_dir, "
                "outputs, started_at, updated_at) VALUES (?,?,?,?,0,?,?,?,?,?)",
                (step["id"], run["id"], step["name"], step["kind"], RunStatus.RUNNING,
                 self.rel(step.get("log_dir")),
                 _encode("outputs", step.get("outputs") or {}), now, now))

    def _insert_run(self, db, run: dict, status: str, now: float, **columns) -> None:
        """The run's row (and its experiment's, the first time), with any further ``columns``."""
        db.execute("INSERT OR IGNORE INTO experiments (name, created_at) VALUES (?, ?)",
                   (run["experiment"], now))
        values = {"id": run["id"], "experiment": run["experiment"], "kind": run["kind"],
                  "status": status, "description": run.get("description"),
                  "tags": _encode("tags", run.get("tags") or {}),
                  "graph": _encode("graph", run["graph"]), "run_dir": self.rel(run["run_dir"]),
                  "cwd": run["cwd"], "created_at": now, "updated_at": now, **columns}
        db.execute(f"INSERT INTO runs ({', '.join(values)}) "
                   f"VALUES ({', '.join('?' * len(values))})", tuple(values.values()))

    def job_run_with_log_dir(self, log_dir: str) -> dict | None:
        """The latest job run (kind ``run_job``) whose step wrote its logs to ``log_dir``: the
        run a ``run_job(..., resume=True)`` of that job goes on with."""
        rows = self._ready().query(
            "SELECT r.id FROM step_runs s JOIN runs r ON r.id = s.run_id WHERE s.log_dir = ? "
            "AND r.kind = ? ORDER BY r.created_at DESC LIMIT 1", (self.rel(log_dir), JOB_KIND))
        return self.run(rows[0]["id"]) if rows else None

    def run(self, run_id: str) -> dict:
        rows = self._ready().query("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            like = [r["id"] for r in self.catalog.query(
                "SELECT id FROM runs ORDER BY created_at DESC LIMIT 5")]
            raise WorkspaceError(
                f"no run {run_id!r} in workspace {self.workspace.name!r} ({self.workspace.path}); "
                f"latest runs: {', '.join(like) or 'none'} (parallelrun runs list shows them all)")
        data = _decode(rows[0])
        data["run_dir"] = self.abs(data["run_dir"])
        return data

    def find_run(self, prefix: str) -> str:
        """The id of the run whose id is ``prefix`` or starts with it (unique)."""
        rows = self._ready().query("SELECT id FROM runs WHERE id = ?", (prefix,))
        if rows:
            return rows[0]["id"]
        rows = self.catalog.query("SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\' LIMIT 3",
                                  (prefix.replace("\\", "\\\\").replace("%", "\\%")
                                   .replace("_", "\\_") + "%",))
        if len(rows) == 1:
            return rows[0]["id"]
        if len(rows) > 1:
            raise WorkspaceError(f"run id {prefix!r} is ambiguous: {', '.join(r['id'] for r in rows)}"
                                 " ...; give more of it")
        return self.run(prefix)["id"]  # raises with the latest runs named

    def runs(self, experiment: str | None = None, limit: int = 50, offset: int = 0) -> list[dict]:
        sql = "SELECT * FROM runs"
        params: tuple = ()
        if experiment is not None:
            sql += " WHERE experiment = ?"
            params = (experiment,)
        sql += " ORDER BY created_at DESC LIMIT ? OFFSET ?"
        result = []
        for row in self._ready().query(sql, params + (limit, offset)):
            data = _decode(row)
            data["run_dir"] = self.abs(data["run_dir"])
            result.append(data)
        return result

    def experiments(self) -> list[str]:
        return [r["name"] for r in self._ready().query("SELECT name FROM experiments ORDER BY name")]

    def update_run(self, run_id: str, *, only_if_status: Iterable[str] | None = None,
                   **fields: Any) -> bool:
        """Set ``fields`` of a run; with ``only_if_status`` only while its status is one of
        those (a compare-and-set, so two processes never both win a transition)."""
        unknown = set(fields) - set(_RUN_FIELDS)
        if unknown:
            raise ValueError(f"unknown run fields {sorted(unknown)}")
        sets = ", ".join(f"{name} = ?" for name in fields) + ", updated_at = ?"
        params = [_encode(k, v) for k, v in fields.items()] + [time.time(), run_id]
        sql = f"UPDATE runs SET {sets} WHERE id = ?"
        if only_if_status is not None:
            states = list(only_if_status)
            sql += f" AND status IN ({', '.join('?' * len(states))})"
            params += states
        with self._ready().write() as db:
            return db.execute(sql, params).rowcount > 0

    def request_cancel(self, run_id: str) -> None:
        with self._ready().write() as db:
            db.execute("UPDATE runs SET cancel_requested = 1, updated_at = ? WHERE id = ?",
                       (time.time(), run_id))

    def cancel_requested(self, run_id: str) -> bool:
        rows = self._ready().query("SELECT cancel_requested FROM runs WHERE id = ?", (run_id,))
        return bool(rows and rows[0]["cancel_requested"])

    # step runs --------------------------------------------------------------------------------
    def steps(self, run_id: str) -> list[dict]:
        rows = self._ready().query("SELECT * FROM step_runs WHERE run_id = ? ORDER BY position",
                                   (run_id,))
        return [self._step(row) for row in rows]

    def step(self, step_run_id: str) -> dict:
        rows = self._ready().query("SELECT * FROM step_runs WHERE id = ?", (step_run_id,))
        if not rows:
            raise WorkspaceError(f"no step run {step_run_id!r} in workspace {self.workspace.name!r}")
        return self._step(rows[0])

    def _step(self, row) -> dict:
        data = _decode(row)
        data["log_dir"] = self.abs(data["log_dir"])
        for output in (data.get("outputs") or {}).values():
            if output.get("local_path"):
                output["local_path"] = self.abs(output["local_path"])
        return data

    def update_step(self, step_run_id: str, **fields: Any) -> None:
        sql, params = self._step_update(step_run_id, fields)
        with self._ready().write() as db:
            db.execute(sql, params)

    def _step_update(self, step_run_id: str, fields: dict) -> tuple[str, list]:
        unknown = set(fields) - set(_STEP_FIELDS)
        if unknown:
            raise ValueError(f"unknown step run fields {sorted(unknown)}")
        if "log_dir" in fields:
            fields["log_dir"] = self.rel(fields["log_dir"])
        if "outputs" in fields:
            fields["outputs"] = {name: {**o, "local_path": self.rel(o.get("local_path"))}
                                 for name, o in fields["outputs"].items()}
        sets = ", ".join(f"{name} = ?" for name in fields) + ", updated_at = ?"
        params = [_encode(k, v) for k, v in fields.items()] + [time.time(), step_run_id]
        return f"UPDATE step_runs SET {sets} WHERE id = ?", params

    def end_job_run(self, run_id: str, step_run_id: str, status: str, error: str | None,
                    **step_fields: Any) -> None:
        """A job's run and its one step run end ``status`` (with the step's last counts), in
        one transaction."""
        now = time.time()
        sql, params = self._step_update(step_run_id, {**step_fields, "status": status,
                                                      "error": error, "finished_at": now})
        with self._ready().write() as db:
            db.execute(sql, params)
            db.execute("UPDATE runs SET status = ?, error = ?, finished_at = ?, updated_at = ? "
                       "WHERE id = ?", (status, error, now, now, run_id))

    def reusable(self, reuse_key: str) -> list[dict]:
        """Finished step runs made with ``reuse_key``, newest first (reused ones excluded:
        they point at the original)."""
        rows = self._ready().query(
            "SELECT * FROM step_runs WHERE reuse_key = ? AND status = ? AND "
            "reused_from IS NULL ORDER BY finished_at DESC LIMIT 20",
            (reuse_key, RunStatus.FINISHED))
        return [self._step(row) for row in rows]

    def previous_step(self, name: str, before: float) -> dict | None:
        """The latest earlier step run of that name with a reuse key (to explain a miss)."""
        rows = self._ready().query(
            "SELECT * FROM step_runs WHERE name = ? AND reuse_key IS NOT NULL AND started_at < ? "
            "ORDER BY started_at DESC LIMIT 1", (name, before))
        return self._step(rows[0]) if rows else None

    # environments -----------------------------------------------------------------------------
    def register_environment(self, name: str, spec: dict, spec_hash: str) -> int:
        """Store an environment's spec; a new version only when the spec changed."""
        with self._ready().write() as db:
            row = db.execute("SELECT version, spec_hash FROM environments WHERE name = ? "
                             "ORDER BY version DESC LIMIT 1", (name,)).fetchone()
            if row is not None and row["spec_hash"] == spec_hash:
                return int(row["version"])
            version = (int(row["version"]) + 1) if row is not None else 1
            db.execute("INSERT INTO environments (name, version, spec, spec_hash, created_at) "
                       "VALUES (?,?,?,?,?)", (name, version, json.dumps(spec, sort_keys=True),
                                              spec_hash, time.time()))
            return version

    def environment(self, name: str, version: int | str | None = None) -> dict:
        if version in (None, "latest"):
            rows = self._ready().query("SELECT * FROM environments WHERE name = ? ORDER BY "
                                       "version DESC LIMIT 1", (name,))
        else:
            rows = self._ready().query("SELECT * FROM environments WHERE name = ? AND version = ?",
                                       (name, int(version)))
        if not rows:
            names = [r["name"] for r in self.catalog.query(
                "SELECT DISTINCT name FROM environments ORDER BY name")]
            raise WorkspaceError(
                f"no environment {name!r}" + (f" version {version}" if version not in
                                              (None, "latest") else "")
                + f" in workspace {self.workspace.name!r}; registered: {', '.join(names) or 'none'}"
                " (env.register(ws) registers one)")
        data = dict(rows[0])
        data["spec"] = json.loads(data["spec"])
        return data
