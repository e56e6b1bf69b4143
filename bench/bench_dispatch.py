"""Dispatch rate: a trivial run() and mini_batch_size=1, so only the engine's overhead counts.

Beside it, the same with a hand-written multiprocessing.Pool(2).imap_unordered (chunksize=1 and
a tuned chunksize=64), writing the returned lines to one file in the parent.

    python bench/bench_dispatch.py [--files 100000]
"""

from __future__ import annotations

import argparse
import time
from multiprocessing import get_context

from _common import WORK, bar_chart, parse_args, require, table

from parallelrun import Dataset, ParallelRunConfig, run_job


def trivial(paths: list[str]) -> list[str]:
    return paths


def make_files(folder, count: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    existing = len(list(folder.iterdir()))
    for i in range(existing, count):
        open(folder / f"{i:07d}", "w").close()
    return sorted(str(p) for p in folder.iterdir())[:count]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=100000)
    args = parse_args(parser)
    require("matplotlib")
    folder = WORK / f"dispatch_{args.files}"
    files = make_files(folder, args.files)
    script_dir = WORK / "dispatch_script"
    script_dir.mkdir(parents=True, exist_ok=True)
    (script_dir / "trivial.py").write_text("def init():\n    pass\n\ndef run(mini_batch):\n    return mini_batch\n")

    rows = []
    config = ParallelRunConfig(source_directory=str(script_dir), entry_script="trivial.py",
                               mini_batch_size=1, error_threshold=0, output_action="append_row",
                               process_count_per_node=2)
    result = run_job(config, [Dataset.File.from_files(str(folder))], WORK / "dispatch_out",
                     overwrite=True)
    assert result.succeeded
    # elapsed from the job's own clock; the CSV report has each mini-batch's start
    rows.append(["parallelrun (2 processes)", result.minibatches_succeeded,
                 f"{result.elapsed_seconds:.2f}", result.minibatches_succeeded / result.elapsed_seconds])
    for chunksize in (1, 64):
        started = time.perf_counter()
        with get_context("spawn").Pool(2) as pool, open(WORK / "dispatch_pool.txt", "w") as fh:
            for lines in pool.imap_unordered(trivial, ([f] for f in files), chunksize=chunksize):
                fh.write("\n".join(lines) + "\n")
        secs = time.perf_counter() - started
        rows.append([f"multiprocessing.Pool(2), chunksize={chunksize}", len(files), f"{secs:.2f}",
                     len(files) / secs])
    table(f"Dispatch: {len(files)} mini-batches of 1 file, trivial run() (wall time incl. start-up)",
          ["runner", "mini-batches", "seconds", "mini-batches/s"], rows)
    bar_chart("dispatch", f"{len(files)} one-file mini-batches, trivial run() (higher is better)",
              {row[0]: row[3] for row in rows}, "mini-batches/s",
              baseline="multiprocessing.Pool(2), chunksize=1")


if __name__ == "__main__":
    main()
