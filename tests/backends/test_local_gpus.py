"""GPU placement of local workers: one visible GPU per worker, from what CUDA_VISIBLE_DEVICES
allows. The devices need not exist for this: the worker reports what it was given."""

from __future__ import annotations

from pathlib import Path

from parallelrun import Dataset, ParallelRunConfig, run_job

#: slow enough that every worker gets mini-batches before the others finish them all
SCRIPT = """
import os, time
def init():
    pass
def run(mini_batch):
    time.sleep(0.3)
    return [f"{os.getpid()} {os.environ.get('CUDA_VISIBLE_DEVICES')}" for _ in mini_batch]
"""


def _devices_by_worker(tmp_path, make_script, make_files, **overrides) -> dict[str, str]:
    src = make_script(SCRIPT)
    values = dict(source_directory=str(src), entry_script="score.py", mini_batch_size=1,
                  error_threshold=0, output_action="append_row")
    values.update(overrides)
    result = run_job(ParallelRunConfig(**values), [Dataset.File.from_files(str(make_files(12)))],
                     tmp_path / "out")
    assert result.status == "Finished"
    return dict(line.split() for line in Path(result.output_file).read_text().splitlines())


def test_one_worker_per_visible_gpu_each_with_its_own(tmp_path, make_script, make_files,
                                                      monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    devices = _devices_by_worker(tmp_path, make_script, make_files)
    assert sorted(devices.values()) == ["3", "5"]   # process_count_per_node defaults to 2 GPUs


def test_more_workers_than_gpus_share_them_round_robin(tmp_path, make_script, make_files,
                                                       monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")
    devices = _devices_by_worker(tmp_path, make_script, make_files, process_count_per_node=2)
    assert sorted(devices.values()) == ["7", "7"]


def test_no_gpu_visible_means_no_gpu_given(tmp_path, make_script, make_files, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    devices = _devices_by_worker(tmp_path, make_script, make_files, process_count_per_node=2)
    assert sorted(devices.values()) == ["-1", "-1"]   # left as the user set it
