"""One definition of a step run's counts (pipeline/step_counts.StepCounts): a job's result,
its step run in the catalog, ``StepRun.get_counts`` and the dashboard's API give the same
counts under the same names, and the catalog's table holds a column of the right type for
each (issue #16, item 1)."""

from __future__ import annotations

import sqlite3

from fastapi.testclient import TestClient

from parallelrun import Dataset, ParallelRunConfig, Run, Workspace, run_job
from parallelrun.engine.progress import JobProgress
from parallelrun.pipeline.records import RunStore
from parallelrun.pipeline.step_counts import COLUMNS, StepCounts
from parallelrun.ui.app import create_app

SCORE = """
import os
def init(): pass
def run(mini_batch):
    if any(p.endswith("item_3.txt") for p in mini_batch):
        raise ValueError("bad item")
    return [open(p).read() for p in mini_batch]
"""
# what the job below counts: 5 mini-batches of 1 file, the one with item_3 failing both tries
EXPECTED = {"minibatches_total": 5, "minibatches_succeeded": 4, "minibatches_failed": 1,
            "items_succeeded": 4, "items_failed": 1, "retries": 1, "planning_done": True}


def test_a_jobs_counts_are_recorded_and_served_under_one_set_of_names(tmp_path, make_script):
    assert set(EXPECTED) | {"items_per_second"} == set(COLUMNS)
    ws = Workspace.create("counts", path=tmp_path / "ws")
    data = tmp_path / "data"
    data.mkdir()
    for i in range(5):
        (data / f"item_{i}.txt").write_text(str(i))
    config = ParallelRunConfig(source_directory=str(make_script(SCORE)), entry_script="score.py",
                               mini_batch_size="1", error_threshold=-1, run_max_try=2,
                               output_action="append_row", process_count_per_node=1)
    result = run_job(config, [Dataset.File.from_files(str(data))], tmp_path / "out",
                     workspace=ws)

    # the engine's result
    assert {name: getattr(result, name) for name in EXPECTED if name != "planning_done"} == \
        {name: value for name, value in EXPECTED.items() if name != "planning_done"}
    # the step run, as Python reads it
    [step] = RunStore(ws).steps(result.run_id)
    counts = Run.get(ws, step["id"]).get_counts()
    assert {name: counts[name] for name in EXPECTED} == EXPECTED
    assert counts["items_per_second"] > 0
    assert StepCounts.of_row(step).as_json() == counts
    # the dashboard's API: the step, and the step in its run
    app = create_app(ws, cancel_token=None)
    with TestClient(app, base_url="http://127.0.0.1:8787") as client:
        served = client.get(f"/api/steps/{step['id']}").json()
        run = client.get(f"/api/runs/{result.run_id}").json()
    assert {name: served[name] for name in COLUMNS} == counts
    assert {name: run["steps"][0][name] for name in COLUMNS} == counts
    assert (run["items_succeeded"], run["items_failed"], run["minibatches_total"]) == (4, 1, 5)


def test_the_catalog_has_a_column_of_each_counts_type(tmp_path):
    ws = Workspace.create("schema", path=tmp_path)
    RunStore(ws).runs()   # the run tables exist once the store is used
    with sqlite3.connect(ws.catalog.path) as db:
        columns = {row[1]: row[2] for row in db.execute("PRAGMA table_info(step_runs)")}
    sql_type = {int: "INTEGER", float: "REAL", bool: "INTEGER"}
    hints = {"int": int, "float": float, "bool": bool}
    for name, field in StepCounts.__dataclass_fields__.items():
        assert columns.get(name) == sql_type[hints[field.type]], name


def test_a_step_followed_from_its_row_shows_the_counts_the_job_had():
    # what 'parallelrun runs watch' does: the row's counts back into a JobProgress
    job = JobProgress(planned_minibatches=7, planning_done=True, minibatches_succeeded=5,
                      minibatches_failed=1, items_succeeded=50, items_failed=3, retries=2)
    row = StepCounts.of_progress(job).columns()
    followed = JobProgress()
    StepCounts.of_row(row).fill(followed)
    again = StepCounts.of_progress(followed).columns()
    assert {k: v for k, v in again.items() if k != "items_per_second"} == \
        {k: v for k, v in row.items() if k != "items_per_second"}    # a rate is of its own times
    assert (followed.planned_minibatches, followed.minibatches_done, followed.items_done,
            followed.retries, followed.planning_done) == (7, 6, 53, 2, True)
