"""What a pipeline costs and saves, beside calling run_job directly (what a user would otherwise do).

    python bench/bench_pipeline.py [--files 2000] [--batch 10] [--delay 0.05] [--workers 2]

One workload (``--files`` small files, ``--batch`` per mini-batch, ``run()`` sleeping
``--delay`` per mini-batch to stand for model time, ``--workers`` processes), run:

1. with ``run_job`` in this process (the baseline);
2. as a one-step pipeline: ``Experiment.submit`` (time until it returns) and until Finished;
3. submitted again unchanged: ``allow_reuse`` takes the earlier output;
4. killed with SIGKILL half-way (runner process), then ``resume()``: time after the resume, and
   the output's duplicate rows, beside running the whole job again (what a lost job costs
   without a journal).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import WORK, table  # noqa: E402

SCRIPT = """
import os, time
DELAY = float(os.environ.get("BENCH_DELAY", "0"))
def init(): pass
def run(mini_batch):
    time.sleep(DELAY)
    return [os.path.basename(p) for p in mini_batch]
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from parallelrun import (Dataset, Experiment, ParallelRunConfig, ParallelRunStep, Pipeline,
                             PipelineData, Workspace, run_job)

    root = WORK / "pipeline"
    shutil.rmtree(root, ignore_errors=True)
    (root / "data").mkdir(parents=True)
    (root / "scripts").mkdir()
    (root / "scripts" / "score.py").write_text(SCRIPT)
    for i in range(args.files):
        (root / "data" / f"{i:07d}.txt").write_text(str(i))
    os.chdir(root)
    os.environ["BENCH_DELAY"] = str(args.delay)
    ws = Workspace.create(name="bench", path=".", exist_ok=True)
    data = Dataset.File.from_files(path="data")

    def config() -> ParallelRunConfig:
        return ParallelRunConfig(source_directory="scripts", entry_script="score.py",
                                 mini_batch_size=str(args.batch), error_threshold=0,
                                 output_action="append_row", process_count_per_node=args.workers,
                                 environment_variables={"BENCH_DELAY": str(args.delay)})

    def pipeline(allow_reuse: bool = True) -> Pipeline:
        step = ParallelRunStep(name="score", parallel_run_config=config(), inputs=[data],
                               output=PipelineData("scores"), allow_reuse=allow_reuse)
        return Pipeline(workspace=ws, steps=[step])

    rows = []
    started = time.perf_counter()
    result = run_job(config(), [data], "direct-out", overwrite=True)
    direct = time.perf_counter() - started
    rows.append(["run_job in this process (baseline)", "-", direct, result.items_succeeded, 0])

    started = time.perf_counter()
    run = Experiment(ws, "bench").submit(pipeline())
    submitted = time.perf_counter() - started
    run.wait_for_completion()
    first = time.perf_counter() - started
    step = run.find_step_run("score")[0]
    rows.append(["pipeline: submit, run in its own process", f"{submitted * 1000:.0f} ms", first,
                 step.get_counts()["items_succeeded"], 0])

    started = time.perf_counter()
    again = Experiment(ws, "bench").submit(pipeline())
    again.wait_for_completion()
    reused = time.perf_counter() - started
    reused_step = again.find_step_run("score")[0]
    assert reused_step.get_details()["reusedFrom"] == step.id
    rows.append(["pipeline again, unchanged (allow_reuse)", "-", reused,
                 reused_step.get_counts()["items_succeeded"], 0])

    killed = Experiment(ws, "bench").submit(pipeline(allow_reuse=False))
    killed_step = killed.find_step_run("score")[0]
    half = args.files // args.batch // 2
    while True:
        log_dir = killed_step.get_details()["logDir"]
        journal = Path(log_dir or "none", "sys", "journal.txt")
        if journal.exists() and len(journal.read_text().splitlines()) >= half:
            break
        time.sleep(0.05)
    os.kill(killed._store.run(killed.id)["pid"], signal.SIGKILL)
    while killed.get_status() != "Failed":
        time.sleep(0.05)
    done_before = len(journal.read_text().splitlines())
    started = time.perf_counter()
    killed.resume()
    killed.wait_for_completion()
    resumed = time.perf_counter() - started
    output = Path(killed_step.get_output_data("scores").local_path, "parallel_run_step.txt")
    lines = output.read_text().splitlines()
    duplicates = sum(c - 1 for c in Counter(lines).values())
    rows.append([f"killed at {done_before} of {args.files // args.batch} mini-batches, resumed",
                 "-", resumed, len(set(lines)), duplicates])

    started = time.perf_counter()
    rerun = Experiment(ws, "bench").submit(pipeline(allow_reuse=False))
    rerun.wait_for_completion()
    whole = time.perf_counter() - started
    rows.append(["the whole job again (no journal to resume from)", "-", whole,
                 rerun.find_step_run("score")[0].get_counts()["items_succeeded"], 0])

    table(f"pipeline: {args.files} files, {args.batch} per mini-batch, run() {args.delay * 1000:.0f} "
          f"ms per mini-batch, {args.workers} workers",
          ["how", "submit returns in", "seconds to Finished", "items in output", "duplicate rows"],
          rows)
    print(f"pipeline overhead over run_job: {first - direct:+.2f} s; reuse: {first / reused:.0f}x "
          f"faster than running; resume after kill: {whole - resumed:.2f} s saved")
    return 0


if __name__ == "__main__":
    sys.exit(main())
