"""Outputs on a datastore while the job runs: its files are uploaded every
PARALLELRUN_CHECKPOINT_SECONDS, so a job lost with its machine is resumed, anywhere, from the
work uploaded last, each row still written once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from parallelrun import Dataset, ParallelRunConfig, run_job
from fixtures.waiting import wait_for

SCORE = """
    import os, time
    def init(): pass
    def run(mini_batch):
        time.sleep(float(os.environ.get("SLOW", "0")))
        return [os.path.basename(p) for p in mini_batch]
"""


def _journal_lines(fs, path: str) -> int:
    fs.invalidate_cache()
    return len(fs.cat(path).decode().splitlines()) if fs.exists(path) else 0


def test_a_job_lost_with_its_machine_resumes_from_its_last_upload(store, make_script,
                                                                  job_in_its_own_process):
    store, fs, root = store
    scripts = make_script(SCORE)
    lost = job_in_its_own_process(scripts, {"SLOW": "0.5"}, PARALLELRUN_CHECKPOINT_SECONDS="0.3")
    journal = f"{root}/res/logs/sys/journal.txt"
    wait_for(lambda: _journal_lines(fs, journal) >= 2, timeout=60)
    stage = json.loads(fs.cat(f"{root}/res/.parallelrun.lock"))["stage"]
    lost.kill()
    lost.wait()
    shutil.rmtree(stage)   # the machine is gone, and its disk with it
    config = ParallelRunConfig(source_directory=str(scripts), entry_script="score.py",
                               mini_batch_size=1, error_threshold=-1,
                               output_action="append_row", process_count_per_node=1)
    result = run_job(config, [Dataset.File.from_files(store.path("in/"))], store.path("res/"),
                     resume=True)
    assert result.status == "Finished"
    fs.invalidate_cache()
    rows = fs.cat(f"{root}/res/parallel_run_step.txt").decode().split()
    assert sorted(rows) == [f"{i}.txt" for i in range(6)]   # every row once
    log = fs.cat(f"{root}/res/logs/sys/master_role.txt").decode()
    assert "resuming: " in log and not Path(stage).exists()


def test_a_checkpoint_interval_that_is_no_number_is_refused_before_any_work(
        store, make_script, monkeypatch):
    from parallelrun import ConfigurationError

    store, fs, root = store
    monkeypatch.setenv("PARALLELRUN_CHECKPOINT_SECONDS", "every minute")
    config = ParallelRunConfig(source_directory=str(make_script(SCORE)), entry_script="score.py",
                               mini_batch_size=1, error_threshold=-1, output_action="append_row")
    with pytest.raises(ConfigurationError, match="PARALLELRUN_CHECKPOINT_SECONDS"):
        run_job(config, [Dataset.File.from_files(store.path("in/"))], store.path("res/"))
    fs.invalidate_cache()
    assert not fs.exists(f"{root}/res")
