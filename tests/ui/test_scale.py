"""Big workspaces stay cheap: thousands of runs are paged through indexes, a step with a
million items is shown from the catalog's counts, and its error log (100,000 failed tries) and
a large log file are read in bounded pieces. Outcomes and query plans are asserted, never
timings."""

from __future__ import annotations

import json
import os
import sqlite3
import time

import pytest
from fastapi.testclient import TestClient

from parallelrun import Workspace
from parallelrun.engine.logs import FAILURES_FILE
from parallelrun.ui import failures
from parallelrun.ui.app import create_app
from parallelrun.ui.logfiles import MAX_CHUNK, file_id
from parallelrun.ui.state import EXPERIMENTS_SQL, STEP_TOTALS_SQL, runs_sql

RUNS = 3000
EXPERIMENTS = 20
FAILURES = 100_000
PROCESSES = 4


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A workspace with RUNS runs in EXPERIMENTS experiments, one step each; the newest run's
    step has a million items and a log folder with FAILURES failed tries."""
    root = tmp_path_factory.mktemp("big-ws")
    ws = Workspace.create(name="big", path=root)
    now = time.time() - RUNS
    log_dir = root / ".parallelrun" / "runs" / "big_run" / "steps" / "huge" / "logs"
    (log_dir / "user" / "error" / "node0").mkdir(parents=True)
    runs, steps = [], []
    for i in range(RUNS):
        run_id = f"exp{i % EXPERIMENTS:02d}_{i:06d}"
        runs.append((run_id, f"exp{i % EXPERIMENTS:02d}", "pipeline", "Finished", "{}",
                     json.dumps({"steps": [{"name": "score", "kind": "parallel", "inputs": [],
                                            "outputs": [], "depends_on": []}], "order": ["score"]}),
                     f".parallelrun/runs/{run_id}", str(root), now + i, now + i, now + i + 10,
                     now + i + 10))
        steps.append((f"step{i:06d}", run_id, "score", "parallel", 0, "Finished", 100, 100, 0,
                      1000, 0, 0, 100.0, 1, now + i, now + i + 10, now + i + 10, None))
    huge = "exp00_huge"
    runs.append((huge, "exp00", "pipeline", "Running", "{}", json.dumps({"steps": []}),
                 ".parallelrun/runs/big_run", str(root), now + RUNS, now + RUNS, None, now + RUNS))
    steps.append(("hugestep", huge, "huge", "parallel", 0, "Running", 100_000, 89_000, 1_000,
                  990_000, 10_000, 5_000, 5000.0, 1, now + RUNS, None, time.time(),
                  os.path.relpath(log_dir, root)))
    with ws.catalog.write() as db:
        db.executemany("INSERT INTO experiments (name, created_at) VALUES (?, ?)",
                       [(f"exp{e:02d}", now) for e in range(EXPERIMENTS)])
        db.executemany(
            "INSERT INTO runs (id, experiment, kind, status, tags, graph, run_dir, cwd, "
            "created_at, started_at, finished_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            runs)
        db.executemany(
            "INSERT INTO step_runs (id, run_id, name, kind, position, status, minibatches_total, "
            "minibatches_succeeded, minibatches_failed, items_succeeded, items_failed, retries, "
            "items_per_second, planning_done, started_at, finished_at, updated_at, log_dir) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", steps)
    # the engine's failure records (engine/logs.py), tracebacks per process in order
    records, blocks, sizes = [], {p: [] for p in range(PROCESSES)}, [0] * PROCESSES
    for n in range(FAILURES):
        process = n % PROCESSES
        kind = ("ValueError", "KeyError", "RUN_TIMEOUT")[n % 3]
        block = (f"--- mini-batch {n // 2}, try {n % 2 + 1}, RUN_EXCEPTION, t\n"
                 f"Traceback (most recent call last):\n  File \"score.py\", line "
                 f"{n % 50}, in run\n{kind}: problem number {n}\n\n").encode()
        records.append(json.dumps({
            "v": 1, "mini_batch": n // 2, "attempt": n % 2 + 1, "node": "node0",
            "process": f"process{process:03d}", "started_at": 1767225600.0,
            "finished_at": 1767225600.0, "items": 1, "succeeded": 0, "failed": 1,
            "run_seconds": 0.01, "status": "RUN_EXCEPTION", "final": bool(n % 2),
            "outcome": "failed" if n % 2 else "will be retried", "error_type": kind,
            "error_message": f"problem number {n}", "item_names": None,
            "traceback": {"file": f"user/error/node0/process{process:03d}.txt",
                          "offset": sizes[process], "length": len(block)}}) + "\n")
        blocks[process].append(block)
        sizes[process] += len(block)
    (log_dir / "sys" / "job_report").mkdir(parents=True)
    (log_dir / FAILURES_FILE).write_text("".join(records), encoding="utf-8")
    for process, parts in blocks.items():
        (log_dir / "user" / "error" / "node0" / f"process{process:03d}.txt").write_bytes(
            b"".join(parts))
    with open(log_dir / "job_result.txt", "wb") as fh:   # a 20 MiB log
        for i in range(200_000):
            fh.write(f"line {i:07d} {'x' * 90}\n".encode())
    with TestClient(create_app(ws), base_url="http://127.0.0.1") as client:
        yield ws, client, log_dir


def plan(ws, sql: str, params: tuple) -> str:
    db = sqlite3.connect(ws.catalog.path)
    try:
        return " | ".join(row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params))
    finally:
        db.close()


def test_thousands_of_runs_page_through_indexes(big):
    ws, client, _ = big
    page = client.get("/api/experiments/exp07/runs", params={"limit": 50, "offset": 100}).json()
    assert page["total"] == RUNS // EXPERIMENTS and len(page["items"]) == 50
    created = [r["created_at"] for r in page["items"]]
    assert created == sorted(created, reverse=True)
    assert all(r["experiment"] == "exp07" for r in page["items"])
    assert all(r["items_succeeded"] == 1000 and r["steps_finished"] == 1 and
               r["items_per_second"] == 100.0 for r in page["items"])
    last = client.get("/api/runs", params={"limit": 200, "offset": RUNS - 199}).json()
    assert last["total"] == RUNS + 1 and len(last["items"]) == 200
    assert last["items"][-1]["id"] == "exp00_000000"
    experiments = client.get("/api/experiments", params={"limit": 5, "offset": 5}).json()
    assert experiments["total"] == EXPERIMENTS
    assert [e["name"] for e in experiments["items"]] == [f"exp{i:02d}" for i in range(5, 10)]
    assert all(e["run_count"] == RUNS // EXPERIMENTS for e in experiments["items"])
    assert experiments["items"][0]["latest_run"]["id"] == f"exp05_{RUNS - 15:06d}"
    # the queries behind those pages walk indexes: no scan of runs, no sort of all of them
    for by_experiment, params, index in ((True, ("exp07",), "runs_by_experiment"),
                                         (False, (), "runs_by_created")):
        count_sql, page_sql = runs_sql(by_experiment, False)
        text = plan(ws, page_sql, params + (50, 0))
        assert f"INDEX {index}" in text and "TEMP B-TREE" not in text, text
        counted = plan(ws, count_sql, params)
        if by_experiment:   # one experiment's runs are counted by a search of its index
            assert f"SEARCH runs USING COVERING INDEX {index}" in counted, counted
        else:   # all runs: a walk of a small index, never of the table's rows
            assert counted == f"SCAN runs USING COVERING INDEX {index}", counted
    text = plan(ws, EXPERIMENTS_SQL, (50, 0))
    assert "INDEX runs_by_experiment" in text and "SCAN r" not in text, text
    text = plan(ws, STEP_TOTALS_SQL.format(marks="?,?"), ("a", "b"))
    assert "SCAN step_runs" not in text, text


def test_a_step_with_a_million_items_comes_from_the_catalog_counts(big):
    _, client, _ = big
    step = client.get("/api/steps/hugestep").json()
    assert step["items_done"] == 1_000_000 and step["minibatches_done"] == 90_000
    assert step["status"] == "Running" and step["minibatches_total"] == 100_000
    run = client.get("/api/runs/exp00_huge").json()
    assert run["items_succeeded"] == 990_000 and run["items_failed"] == 10_000


def test_a_huge_error_log_is_indexed_in_bounded_pieces(big):
    _, client, log_dir = big
    size = (log_dir / FAILURES_FILE).stat().st_size
    assert size > failures.SCAN_BYTES
    first = client.get("/api/steps/hugestep/errors", params={"tracebacks": False}).json()
    assert not first["complete"] and first["scanned_bytes"] <= failures.SCAN_BYTES
    assert 0 < first["failures"] < FAILURES
    for _ in range(size // failures.SCAN_BYTES + 1):
        summary = client.get("/api/steps/hugestep/errors").json()
        if summary["complete"]:
            break
    assert summary["complete"] and summary["failures"] == FAILURES
    groups = {g["type"]: g for g in summary["groups"]}
    assert set(groups) == {"ValueError", "KeyError", "RUN_TIMEOUT"}
    assert sum(g["tries"] for g in groups.values()) == FAILURES
    assert sum(g["minibatches_failed"] for g in groups.values()) == FAILURES // 2
    assert groups["KeyError"]["traceback"].endswith("KeyError: problem number 1")
    # far into the item list, and the traceback of one near the end of its process's file
    page = client.get("/api/steps/hugestep/errors/items",
                      params={"type": "ValueError", "offset": 33_000, "limit": 5}).json()
    assert [i["message"] for i in page["items"]] == [
        f"problem number {n}" for n in range(99_000, 99_015, 3)]
    one = client.get(f"/api/steps/hugestep/errors/{page['items'][-1]['entry']}").json()
    assert one["traceback"].endswith("ValueError: problem number 99012")
    last = client.get(f"/api/steps/hugestep/errors/{FAILURES - 1}").json()
    assert last["traceback"].endswith("ValueError: problem number 99999")


def test_a_large_log_is_read_by_byte_ranges(big):
    _, client, log_dir = big
    size = (log_dir / "job_result.txt").stat().st_size
    url = f"/api/steps/hugestep/logs/{file_id('job_result.txt')}"
    tail = client.get(url).json()
    assert tail["size"] == size and tail["at_end"] and len(tail["text"]) <= 64 * 1024
    assert tail["text"].endswith(f"line 0199999 {'x' * 90}\n")
    assert tail["text"].startswith("line ")  # starts on a line
    middle = client.get(url, params={"offset": size // 2, "limit": MAX_CHUNK}).json()
    assert len(middle["text"].encode()) <= MAX_CHUNK and middle["text"].endswith("\n")
    assert client.get(url, params={"limit": MAX_CHUNK + 1}).status_code == 422
