"""The workspace catalog: one SQLite file holding datastores, datasets, models, compute targets.

Several processes may use one workspace at once (a notebook, the CLI, a pipeline's steps):

* WAL journal mode, so readers never block the writer and the writer never blocks readers;
* a busy timeout, so a second writer waits for the first instead of failing with "database is
  locked";
* every change that allocates something (a new version) runs in ``BEGIN IMMEDIATE``, which takes
  the write lock *before* reading the current maximum, so two processes never get one version.

The schema is versioned: ``schema_version`` holds one row per applied migration and
:data:`MIGRATIONS` lists every migration since the first release, in order. Opening a catalog
applies the missing ones inside one write transaction (so concurrent openers apply each once);
a catalog written by a newer parallelrun is refused rather than misread.

The file is created with mode 0600 before SQLite opens it (SQLite gives its ``-wal`` and ``-shm``
files the same mode): it holds datastore secrets.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from typing import Iterator

from parallelrun.errors import WorkspaceError

BUSY_TIMEOUT_MS = 30_000

#: every schema change since the first release; index + 1 is the schema version it brings.
#: Append only: a released migration never changes.
MIGRATIONS: list[str] = [
    # 1: first release
    """
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE datastores (
        name TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        config TEXT NOT NULL,               -- JSON, never secrets
        secret_env TEXT NOT NULL DEFAULT '{}',  -- JSON: secret name -> environment variable
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE secrets (
        owner TEXT NOT NULL,                -- e.g. 'datastore:mnist_datastore'
        name TEXT NOT NULL,                 -- e.g. 'account_key'
        value TEXT NOT NULL,
        PRIMARY KEY (owner, name)
    );
    CREATE TABLE compute_targets (
        name TEXT PRIMARY KEY,
        record TEXT NOT NULL                -- JSON, ComputeTarget.to_record()
    );
    CREATE TABLE datasets (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        kind TEXT NOT NULL,
        record TEXT NOT NULL,               -- JSON, how to re-create the dataset
        fingerprint TEXT NOT NULL,
        file_count INTEGER NOT NULL,
        total_bytes INTEGER NOT NULL,
        description TEXT,
        tags TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL,
        UNIQUE (name, version)
    );
    CREATE TABLE models (
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        path TEXT NOT NULL,                 -- version folder, relative to the workspace folder
        entry TEXT NOT NULL,                -- what get_model_path returns inside the folder
        source TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '{}',
        properties TEXT NOT NULL DEFAULT '{}',
        description TEXT,
        file_count INTEGER NOT NULL,
        total_bytes INTEGER NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (name, version)
    );
    """,
    # 2: experiments, runs, step runs, registered environments (parallelrun.pipeline.records)
    """
    CREATE TABLE experiments (
        name TEXT PRIMARY KEY,
        created_at REAL NOT NULL
    );
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        experiment TEXT NOT NULL REFERENCES experiments (name),
        kind TEXT NOT NULL,                 -- 'pipeline' (Experiment.submit) or 'job' (YAML)
        status TEXT NOT NULL,               -- NotStarted Queued Running Finished Failed Canceled
        description TEXT,
        tags TEXT NOT NULL DEFAULT '{}',
        graph TEXT NOT NULL,                -- JSON: steps, kinds, data links (for views)
        run_dir TEXT NOT NULL,              -- the run's folder, relative to the workspace
        cwd TEXT NOT NULL,                  -- where it was submitted (relative paths resolve there)
        pid INTEGER,                        -- the runner process
        pid_started REAL,                   -- its start time, so a reused pid is not mistaken
        host TEXT,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,    -- runner processes started: 1 + resumes
        error TEXT,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX runs_by_experiment ON runs (experiment, created_at);
    CREATE INDEX runs_by_created ON runs (created_at);
    CREATE TABLE step_runs (
        id TEXT PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs (id),
        name TEXT NOT NULL,
        kind TEXT NOT NULL,                 -- 'parallel' or 'python'
        position INTEGER NOT NULL,
        status TEXT NOT NULL,
        depends_on TEXT NOT NULL DEFAULT '[]',
        reuse_key TEXT,
        reuse_parts TEXT,                   -- JSON: hash of each part of the key
        reused_from TEXT,                   -- the step run whose outputs this one reuses
        outputs TEXT NOT NULL DEFAULT '{}', -- JSON: name -> datastore, path_on_datastore, local
        log_dir TEXT,
        minibatches_total INTEGER NOT NULL DEFAULT 0,
        minibatches_succeeded INTEGER NOT NULL DEFAULT 0,
        minibatches_failed INTEGER NOT NULL DEFAULT 0,
        items_succeeded INTEGER NOT NULL DEFAULT 0,
        items_failed INTEGER NOT NULL DEFAULT 0,
        retries INTEGER NOT NULL DEFAULT 0,
        items_per_second REAL NOT NULL DEFAULT 0,
        planning_done INTEGER NOT NULL DEFAULT 0,
        progress TEXT,                      -- JSON: the live JobProgress snapshot
        metrics TEXT NOT NULL DEFAULT '{}',
        error TEXT,
        started_at REAL,
        finished_at REAL,
        updated_at REAL NOT NULL,
        UNIQUE (run_id, name)
    );
    CREATE INDEX step_runs_by_reuse_key ON step_runs (reuse_key, status);
    CREATE TABLE environments (
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        spec TEXT NOT NULL,                 -- JSON: Environment.spec()
        spec_hash TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (name, version)
    );
    """,
    # 3: published pipelines, schedules and the scheduler processes that run them
    # (parallelrun.pipeline.published, parallelrun.pipeline.schedules)
    """
    CREATE TABLE published_pipelines (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        description TEXT,
        version TEXT,
        status TEXT NOT NULL,               -- Active or Disabled
        continue_on_step_failure INTEGER NOT NULL DEFAULT 0,
        pipeline_file TEXT NOT NULL,        -- the pickled Pipeline, relative to the workspace
        parameters TEXT NOT NULL DEFAULT '{}',  -- JSON: PipelineParameter name -> default
        graph TEXT NOT NULL DEFAULT '{}',   -- JSON: steps and links (for views)
        cwd TEXT NOT NULL,                  -- where it was published (relative paths)
        created_at REAL NOT NULL
    );
    CREATE TABLE schedules (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        pipeline_id TEXT NOT NULL REFERENCES published_pipelines (id),
        experiment TEXT NOT NULL,
        description TEXT,
        status TEXT NOT NULL,               -- Active or Disabled
        recurrence TEXT NOT NULL,           -- JSON: ScheduleRecurrence
        pipeline_parameters TEXT NOT NULL DEFAULT '{}',
        continue_on_step_failure INTEGER,
        next_run_at REAL,                   -- claimed by compare-and-set: one run per due time
        last_run_id TEXT,
        last_error TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE schedulers (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,                 -- 'process' or 'dashboard'
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        pid_started REAL,
        started_at REAL NOT NULL,
        seen_at REAL NOT NULL               -- refreshed every tick; stale means gone
    );
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


def create_private_file(path: str) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (race-free between processes)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class Catalog:
    """Access to one catalog file. Each call opens a short-lived connection (cheap in SQLite),
    so a Catalog can be shared by threads and pickled to other processes.

    Example::

        catalog = Catalog("ws/.parallelrun/catalog.db")
        with catalog.write() as db:
            db.execute("INSERT INTO meta VALUES ('k', 'v')")
        rows = catalog.query("SELECT value FROM meta WHERE key = ?", ("k",))
    """

    def __init__(self, path: str, migrations: list[str] | None = None):
        self.path = path
        self._migrations = MIGRATIONS if migrations is None else migrations
        self._migrated = False

    def _connect(self) -> sqlite3.Connection:
        if not os.path.exists(self.path):
            parent = os.path.dirname(self.path)
            if not os.path.isdir(parent):
                raise WorkspaceError(f"workspace catalog folder {parent!r} does not exist; create "
                                     "the workspace with Workspace.create(name, path=...)")
            create_private_file(self.path)
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA foreign_keys = ON")
        # WAL is a property of the file; switching needs a moment without other writers, so
        # retry for as long as a busy writer would make us wait anyway.
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                db.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        db.execute("PRAGMA synchronous = NORMAL")
        return db

    @contextlib.contextmanager
    def _open(self) -> Iterator[sqlite3.Connection]:
        db = self._connect()
        try:
            if not self._migrated:
                self._migrate(db)
                self._migrated = True
            yield db
        finally:
            db.close()

    def schema_version(self) -> int:
        with self._open() as db:
            return _current_version(db)

    def _migrate(self, db: sqlite3.Connection) -> None:
        target = len(self._migrations)
        if _current_version(db) == target:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            # read again under the write lock: another process may have migrated meanwhile
            current = _current_version(db)
            if current > target:
                raise WorkspaceError(
                    f"workspace catalog {self.path!r} has schema version {current}, newer than "
                    f"this parallelrun knows ({target}); upgrade parallelrun to use it")
            for version in range(current + 1, target + 1):
                for statement in _statements(self._migrations[version - 1]):
                    db.execute(statement)
                db.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                           (version, time.time()))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A connection inside ``BEGIN IMMEDIATE``: the write lock is held from the first read,
        committed on success, rolled back on error."""
        with self._open() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self._open() as db:
            return db.execute(sql, params).fetchall()

    def __getstate__(self):
        return {"path": self.path, "_migrations": self._migrations, "_migrated": False}

    def __repr__(self) -> str:
        return f"Catalog({self.path!r})"


def _current_version(db: sqlite3.Connection) -> int:
    db.execute("CREATE TABLE IF NOT EXISTS schema_version "
               "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
    row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def _statements(script: str) -> list[str]:
    """Split a migration into statements (``executescript`` would commit our transaction)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
