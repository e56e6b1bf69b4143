"""GPU placement of local workers: one visible GPU per worker, from what CUDA_VISIBLE_DEVICES
allows. The devices need not exist for this: the worker reports what it was given."""

from __future__ import annotations

import os
from pathlib import Path

from parallelrun import Dataset, ParallelRunConfig, run_job

#: every worker's first run() waits until WORKERS workers are inside run() (each leaves a file
#: named after its pid in BARRIER), so each worker reports its device whatever the timing
SCRIPT = """
import os, time
def init():
    pass
def run(mini_batch):
    barrier = os.environ["BARRIER"]
    open(os.path.join(barrier, str(os.getpid())), "w").close()
    deadline = time.monotonic() + 60   # a worker that never comes fails the test, not hangs it
    while len(os.listdir(barrier)) < int(os.environ["WORKERS"]) and time.monotonic() < deadline:
        time.sleep(0.01)
    return [f"{os.getpid()} {os.environ.get('CUDA_VISIBLE_DEVICES')}" for _ in mini_batch]
"""


def _devices_by_worker(tmp_path, make_script, make_files, workers: int,
                       **overrides) -> dict[str, str]:
    src = make_script(SCRIPT)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    values = dict(source_directory=str(src), entry_script="score.py", mini_batch_size=1,
                  error_threshold=0, output_action="append_row",
                  environment_variables={"BARRIER": str(barrier), "WORKERS": str(workers)})
    values.update(overrides)
    result = run_job(ParallelRunConfig(**values), [Dataset.File.from_files(str(make_files(12)))],
                     tmp_path / "out")
    assert result.status == "Finished"
    return dict(line.split() for line in Path(result.output_file).read_text().splitlines())


def test_one_worker_per_visible_gpu_each_with_its_own(tmp_path, make_script, make_files,
                                                      monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5,6")
    # more cores than GPUs, so a count that followed the cores would show
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    devices = _devices_by_worker(tmp_path, make_script, make_files, workers=3)
    assert sorted(devices.values()) == ["3", "5", "6"]  # process_count_per_node defaults to 3 GPUs


def test_more_workers_than_gpus_share_them_round_robin(tmp_path, make_script, make_files,
                                                       monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")
    devices = _devices_by_worker(tmp_path, make_script, make_files, workers=2,
                                 process_count_per_node=2)
    assert sorted(devices.values()) == ["7", "7"]


def test_no_gpu_visible_means_no_gpu_given(tmp_path, make_script, make_files, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    devices = _devices_by_worker(tmp_path, make_script, make_files, workers=2,
                                 process_count_per_node=2)
    assert sorted(devices.values()) == ["-1", "-1"]   # left as the user set it
