"""Progress events: listeners see every try, and the counters add up to the output."""

from __future__ import annotations

from pathlib import Path

from parallelrun import Dataset, ParallelRunConfig, ProgressListener, run_job


class Recorder(ProgressListener):
    def __init__(self):
        self.started = self.ended = 0
        self.records = []
        self.snapshots = []

    def on_start(self, progress):
        self.started += 1

    def on_record(self, progress, record):
        self.records.append(record)
        self.snapshots.append(progress.snapshot())

    def on_end(self, progress, result):
        self.ended += 1
        self.final = progress.snapshot()


def test_listener_sees_every_try_and_final_counts(make_script, make_files, tmp_path):
    src = make_script("""
        def init(): pass
        def run(mini_batch):
            numbers = [int(open(p).read()) for p in mini_batch]
            if 4 in numbers:
                raise ValueError("four")
            return numbers[1:] if 8 in numbers else numbers
    """)
    data = make_files(10)
    recorder = Recorder()
    config = ParallelRunConfig(source_directory=str(src), entry_script="score.py", mini_batch_size=2,
                               error_threshold=-1, output_action="append_row",
                               process_count_per_node=2, run_max_try=2)
    result = run_job(config, [Dataset.File.from_files(str(data))], tmp_path / "out", listeners=[recorder])
    assert recorder.started == recorder.ended == 1
    final = [r for r in recorder.records if r.final]
    assert len(final) == 5 and len(recorder.records) == 6           # one retry of the failing batch
    assert sum(r.succeeded for r in final if r.status == "RUN_DONE") == result.items_succeeded == 7
    assert recorder.final["items_failed"] == result.items_failed == 3
    assert recorder.final["minibatches_done"] == 5 and recorder.final["planning_done"]
    assert recorder.final["retries"] == 1
    assert sum(w["done"] for w in recorder.final["workers"].values()) == 5
    done = [s["minibatches_done"] for s in recorder.snapshots]
    assert done == sorted(done)
    lines = Path(result.output_file).read_text().split()
    assert len(lines) == 7
    overview = list(Path(result.log_dir).glob("job_progress_overview.*.txt"))
    assert overview and "mini-batches: 5/5 done (1 failed, 1 retried)" in overview[0].read_text()
    assert "status: Finished" in (Path(result.log_dir) / "job_result.txt").read_text()
