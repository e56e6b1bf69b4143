"""The SQLite catalog: versioned schema with migrations, WAL, 0600, several processes at once."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import textwrap

import pytest

from parallelrun import Workspace, WorkspaceError
from parallelrun.workspace.catalog import MIGRATIONS, SCHEMA_VERSION, Catalog


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_catalog_is_private_in_wal_mode_at_the_current_schema(tmp_path):
    ws = Workspace.create("ws1", path=tmp_path)
    assert _mode(ws.catalog.path) == 0o600
    assert ws.catalog.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
    db = sqlite3.connect(ws.catalog.path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        # while a connection is open SQLite keeps its -wal and -shm files: private as well
        db.execute("SELECT COUNT(*) FROM datastores").fetchone()
        for suffix in ("-wal", "-shm"):
            if os.path.exists(ws.catalog.path + suffix):
                assert _mode(ws.catalog.path + suffix) == 0o600
        versions = [r[0] for r in db.execute("SELECT version FROM schema_version ORDER BY version")]
    finally:
        db.close()
    assert versions == list(range(1, SCHEMA_VERSION + 1))


def test_a_later_migration_is_applied_once_to_an_existing_catalog_keeping_its_data(tmp_path):
    path = str(tmp_path / "catalog.db")
    first = Catalog(path)
    with first.write() as db:
        db.execute("INSERT INTO meta (key, value) VALUES ('kept', 'yes')")
    # the next release adds a column; opening the old file migrates it, once
    upgraded = MIGRATIONS + ["ALTER TABLE models ADD COLUMN framework TEXT"]
    assert Catalog(path, upgraded).schema_version() == len(upgraded)
    assert Catalog(path, upgraded).schema_version() == len(upgraded)  # nothing applied twice
    assert Catalog(path, upgraded).query("SELECT value FROM meta WHERE key = 'kept'")[0][0] == "yes"
    columns = [r[1] for r in Catalog(path, upgraded).query("PRAGMA table_info(models)")]
    assert "framework" in columns


def test_a_catalog_from_a_newer_release_is_refused(tmp_path):
    path = str(tmp_path / "catalog.db")
    Catalog(path, MIGRATIONS + ["CREATE TABLE later (x)"]).schema_version()
    with pytest.raises(WorkspaceError, match="newer than this parallelrun knows"):
        Catalog(path).schema_version()


def test_processes_opening_a_new_catalog_at_once_migrate_it_once(tmp_path):
    path = str(tmp_path / "catalog.db")
    code = textwrap.dedent(f"""
        from parallelrun.workspace.catalog import Catalog
        print(Catalog({path!r}).schema_version())
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    outputs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert outputs == [str(SCHEMA_VERSION)] * 4
    rows = Catalog(path).query("SELECT version FROM schema_version")
    assert sorted(r[0] for r in rows) == list(range(1, SCHEMA_VERSION + 1))


def test_a_missing_workspace_folder_is_a_clear_error(tmp_path):
    with pytest.raises(WorkspaceError, match="does not exist"):
        Catalog(str(tmp_path / "nowhere" / "catalog.db")).schema_version()
