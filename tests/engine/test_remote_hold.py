"""One job per datastore folder, as locally: a second job into a remote output that a job is
writing is refused; the hold of a job that is gone (killed on this machine, or silent for
longer than a hold lasts) does not block the next one, and a job killed on this machine is
resumed from the work it finished; the hold is never data."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from parallelrun import (ConfigurationError, Dataset, Datastore, FolderInUseError,
                         ParallelRunConfig, ParallelRunError, StorageError, Workspace,
                         run_job)
from parallelrun.engine import remote_hold
from fixtures.waiting import wait_for

SCORE = """
    import os, time
    def init(): pass
    def run(mini_batch):
        time.sleep(float(os.environ.get("SLOW", "0")))
        return [os.path.basename(p) for p in mini_batch]
"""
LOCK = ".parallelrun.lock"


def _config(scripts, **overrides) -> ParallelRunConfig:
    values = dict(source_directory=str(scripts), entry_script="score.py", mini_batch_size=1,
                  error_threshold=-1, output_action="append_row", process_count_per_node=1)
    values.update(overrides)
    return ParallelRunConfig(**values)


def _start_job(store, scripts, slow: str, outcomes: list,
               start: threading.Barrier | None = None) -> threading.Thread:
    """``run_job`` over the store's ``in/`` into ``res/`` on a thread of its own, ``slow``
    seconds a mini-batch (after ``start``, if given); its result, or the ParallelRunError that
    refused or ended it, goes to ``outcomes``."""
    def job():
        if start is not None:
            start.wait()
        try:
            outcomes.append(run_job(_config(scripts, environment_variables={"SLOW": slow}),
                                    [Dataset.File.from_files(store.path("in/"))],
                                    store.path("res/")))
        except ParallelRunError as exc:
            outcomes.append(exc)

    thread = threading.Thread(target=job)
    thread.start()
    return thread


def _kept_folder(error: Exception) -> str:
    """The local folder that a StorageError at upload says keeps the job's files."""
    return str(error).split("kept in ")[-1].strip("'")


def _beat(fs, root) -> float:
    """When the hold on ``res/`` was last renewed."""
    fs.invalidate_cache()
    return json.loads(fs.cat(f"{root}/res/{LOCK}"))["beat"]


def _wait_for_a_renewal(fs, root) -> None:
    """Until a job holds ``res/`` and has renewed its hold once."""
    wait_for(lambda: fs.exists(f"{root}/res/{LOCK}"), timeout=60)
    first_beat = _beat(fs, root)
    wait_for(lambda: _beat(fs, root) > first_beat, timeout=30)


def _rows(fs, root) -> list[str]:
    fs.invalidate_cache()
    return sorted(fs.cat(f"{root}/res/parallel_run_step.txt").decode().split())


def test_a_second_job_into_a_remote_output_being_written_is_refused(store, make_script):
    store, fs, root = store
    scripts = make_script(SCORE)
    inputs = [Dataset.File.from_files(store.path("in/"))]
    results = []
    first = _start_job(store, scripts, "0.4", results)
    wait_for(lambda: fs.exists(f"{root}/res/{LOCK}"), timeout=60)
    for overwrite in (False, True):
        with pytest.raises(FolderInUseError) as refused:
            run_job(_config(scripts), inputs, store.path("res/"), overwrite=overwrite)
        assert "pid" in str(refused.value) and "started" in str(refused.value)
    first.join(120)
    assert results[0].status == "Finished"
    assert _rows(fs, root) == [f"{i}.txt" for i in range(6)]
    # the first job's logs only, and its hold gone with it
    tries = fs.cat(f"{root}/res/logs/sys/job_report/processed_mini-batches.csv").decode()
    assert len(tries.strip().splitlines()) == 1 + 6
    assert not fs.exists(f"{root}/res/{LOCK}")


def test_a_job_killed_on_this_machine_is_resumed_from_the_work_it_finished(
        store, make_script, job_in_its_own_process):
    store, fs, root = store
    scripts = make_script(SCORE)
    # no uploads while it runs: what it finished is only on this machine
    killed = job_in_its_own_process(scripts, {"SLOW": "0.5"}, PARALLELRUN_CHECKPOINT_SECONDS="0")
    wait_for(lambda: fs.exists(f"{root}/res/{LOCK}"), timeout=60)
    stage = json.loads(fs.cat(f"{root}/res/{LOCK}"))["stage"]
    journal = Path(stage, "output", "logs", "sys", "journal.txt")
    wait_for(lambda: journal.exists() and len(journal.read_text().splitlines()) >= 2, timeout=60)
    killed.kill()
    killed.wait()
    inputs = [Dataset.File.from_files(store.path("in/"))]
    # nothing was uploaded, yet the folder is not free: its finished work is on this machine
    with pytest.raises(ConfigurationError, match="--resume") as refused:
        run_job(_config(scripts), inputs, store.path("res/"))
    assert stage in str(refused.value)
    # its resume is not kept waiting by the hold, and runs only what was not finished
    result = run_job(_config(scripts), inputs, store.path("res/"), resume=True)
    assert result.status == "Finished" and _rows(fs, root) == [f"{i}.txt" for i in range(6)]
    assert "resuming: " in fs.cat(f"{root}/res/logs/sys/master_role.txt").decode()
    assert not fs.exists(f"{root}/res/{LOCK}") and not Path(stage).exists()


def test_a_hold_from_another_machine_refuses_until_it_is_stale(store, make_script):
    store, fs, root = store
    scripts = make_script(SCORE)
    inputs = [Dataset.File.from_files(store.path("in/*.txt"))]
    holder = {"host": "another-machine", "pid": 4242, "started": "2026-12-06 07:00:00",
              "id": "theirs"}
    fs.pipe_file(f"{root}/res/{LOCK}", json.dumps({**holder, "beat": time.time()}).encode())
    with pytest.raises(FolderInUseError, match="pid 4242 on another-machine"):
        run_job(_config(scripts), inputs, store.path("res/"))
    assert json.loads(fs.cat(f"{root}/res/{LOCK}"))["id"] == "theirs"   # theirs, still
    stale = time.time() - remote_hold.STALE_SECONDS - 1
    fs.pipe_file(f"{root}/res/{LOCK}", json.dumps({**holder, "beat": stale}).encode())
    result = run_job(_config(scripts), inputs, store.path("res/"))
    assert result.status == "Finished" and _rows(fs, root) == [f"{i}.txt" for i in range(6)]
    assert not fs.exists(f"{root}/res/{LOCK}")


def test_a_hold_is_renewed_while_its_job_runs_and_never_read_as_data(store, make_script,
                                                                     monkeypatch):
    store, fs, root = store
    monkeypatch.setattr(remote_hold, "BEAT_SECONDS", 0.3)
    scripts = make_script(SCORE)
    results = []
    job = _start_job(store, scripts, "0.3", results)
    _wait_for_a_renewal(fs, root)
    # a listing of the folder while the job runs, as another job's input would see it
    listed = [url.rsplit("/", 1)[-1] for url in
              Dataset.File.from_files(store.path("res/"), validate=False).to_path()]
    assert LOCK not in listed and ".parallelrun" not in listed
    job.join(120)
    assert results[0].status == "Finished"


def test_an_output_in_a_missing_container_or_bucket_is_a_clear_error(store, make_script,
                                                                     tmp_path, request):
    store, fs, root = store
    ws = Workspace.create("ws2", path=tmp_path / "ws2")
    if "azure" in request.node.name:
        azurite = request.getfixturevalue("azurite")
        missing = Datastore.register_azure_blob_container(
            ws, datastore_name="gone", container_name="nosuchplace",
            account_name=azurite.account_name, account_key=azurite.account_key,
            endpoint=f"127.0.0.1:{azurite.port}", protocol="http", skip_validation=True)
    else:
        moto = request.getfixturevalue("moto_s3")
        missing = Datastore.register_s3_bucket(
            ws, "gone", bucket="nosuchplace", endpoint_url=moto.endpoint_url,
            access_key_id=moto.access_key_id, secret_access_key=moto.secret_access_key,
            skip_validation=True)
    with pytest.raises(StorageError, match="nosuchplace.* does not exist"):
        run_job(_config(make_script(SCORE)), [Dataset.File.from_files(store.path("in/"))],
                missing.path("res/"))


def test_one_folder_for_output_and_logs_is_held_once(store, make_script):
    store, fs, root = store
    result = run_job(_config(make_script(SCORE)), [Dataset.File.from_files(store.path("in/"))],
                     store.path("res/"), log_dir=store.path("res"))
    assert result.status == "Finished" and _rows(fs, root) == [f"{i}.txt" for i in range(6)]
    assert not fs.exists(f"{root}/res/{LOCK}")


def test_a_job_whose_hold_was_taken_over_writes_nothing_more_there(store, make_script,
                                                                    monkeypatch):
    store, fs, root = store
    monkeypatch.setattr(remote_hold, "BEAT_SECONDS", 0.2)
    scripts = make_script(SCORE)
    outcome = []
    running = _start_job(store, scripts, "0.4", outcome)
    _wait_for_a_renewal(fs, root)   # the job is past its start
    # its renewals failed long enough for a job on another machine to take the folder over
    theirs = {"host": "another-machine", "pid": 4242, "started": "2026-12-06 08:00:00",
              "id": "theirs", "beat": time.time()}
    fs.pipe_file(f"{root}/res/{LOCK}", json.dumps(theirs).encode())
    running.join(120)
    assert isinstance(outcome[0], StorageError) and "took over" in str(outcome[0])
    fs.invalidate_cache()
    assert not fs.exists(f"{root}/res/parallel_run_step.txt")      # nothing of it uploaded
    assert json.loads(fs.cat(f"{root}/res/{LOCK}"))["id"] == "theirs"
    kept = _kept_folder(outcome[0])
    assert sorted(Path(kept, "output", "parallel_run_step.txt").read_text().split()) == \
        [f"{i}.txt" for i in range(6)]                             # its work kept, locally
    shutil.rmtree(kept)


def test_of_two_jobs_started_at_once_into_one_folder_one_writes_there(store, make_script):
    store, fs, root = store
    scripts = make_script(SCORE)
    outcomes = []
    start = threading.Barrier(2)
    jobs = [_start_job(store, scripts, "0.2", outcomes, start) for _ in range(2)]
    for running in jobs:
        running.join(120)
    finished = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(outcomes) == 2 and len(finished) == 1, outcomes
    # the other was refused at the start, or at its upload (it lost the race late)
    assert all(isinstance(o, (FolderInUseError, StorageError)) for o in outcomes
               if isinstance(o, Exception)), outcomes
    assert _rows(fs, root) == [f"{i}.txt" for i in range(6)]
    tries = fs.cat(f"{root}/res/logs/sys/job_report/processed_mini-batches.csv").decode()
    assert len(tries.strip().splitlines()) == 1 + 6      # one job's logs, not a mix
    for late in [o for o in outcomes if isinstance(o, StorageError)]:
        shutil.rmtree(_kept_folder(late), ignore_errors=True)


def test_a_hold_naming_folders_parallelrun_did_not_stage_never_touches_them(store, make_script,
                                                                            tmp_path):
    store, fs, root = store
    # the user's folders: one anywhere, one that even looks like a staging folder
    theirs = [tmp_path / "precious", Path(tempfile.mkdtemp(prefix="parallelrun-stage-"))]
    for folder in theirs:
        (folder / "output").mkdir(parents=True, exist_ok=True)
        (folder / "output" / "thesis.tex").write_text("years of work")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    try:
        for folder in theirs:   # a stale hold of this machine (its process is gone) names it
            record = {"host": socket.gethostname(), "pid": int(gone), "id": "dead",
                      "started": "2026-12-06 07:00:00", "stage": str(folder), "beat": time.time()}
            fs.pipe_file(f"{root}/res/{LOCK}", json.dumps(record).encode())
            result = run_job(_config(make_script(SCORE)),
                             [Dataset.File.from_files(store.path("in/"))], store.path("res/"),
                             overwrite=True)
            assert result.status == "Finished" and _rows(fs, root) == [f"{i}.txt" for i in range(6)]
            assert (folder / "output" / "thesis.tex").read_text() == "years of work"
    finally:
        shutil.rmtree(theirs[1])
