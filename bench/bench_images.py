"""Image workload: parallelrun (1 and 2 processes) beside a hand-written multiprocessing.Pool(2).

All three run the demo's entry script (examples/mnist/digit_identification.py) over the same
PNG files in mini-batches of 5 and write one line per image into one file. The Pool baseline is
what a user would write by hand: an initializer that calls init(), imap_unordered over chunks,
the parent appending the lines.

    python bench/bench_images.py [--images 20000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import time
from multiprocessing import get_context

from _common import (SCRIPT_DIR, WORK, bar_chart, init_demo_script, parse_args, require,
                     table)
from mnist_data import make_images, train_model

from parallelrun import Dataset, ParallelRunConfig, run_job


def _pool_init(model_dir: str) -> None:
    global script
    script = init_demo_script(model_dir)


def _pool_run(chunk: list[str]) -> list[str]:
    return script.run(chunk)


def pool_baseline(files: list[str], model_dir: str, out: str, processes: int = 2) -> float:
    started = time.perf_counter()
    chunks = [files[i:i + 5] for i in range(0, len(files), 5)]
    with get_context("spawn").Pool(processes, initializer=_pool_init, initargs=(model_dir,)) as pool, \
            open(out, "w") as fh:
        for lines in pool.imap_unordered(_pool_run, chunks):
            fh.write("\n".join(lines) + "\n")
    return time.perf_counter() - started


def parallelrun_job(pattern: str, model_dir: str, out: str, processes: int) -> float:
    started = time.perf_counter()
    config = ParallelRunConfig(source_directory=str(SCRIPT_DIR), entry_script="digit_identification.py",
                               mini_batch_size=5, error_threshold=0, output_action="append_row",
                               process_count_per_node=processes)
    result = run_job(config, [Dataset.File.from_files(pattern)], out, models={"mnist": model_dir},
                     overwrite=True)
    assert result.succeeded, result.error
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parse_args(parser)
    require("matplotlib", "sklearn", "PIL")
    data = make_images(WORK / "mnist", args.images)
    model_dir = str(train_model(WORK / "models" / "mnist"))
    pattern = str(data / "images" / "*.png")
    files = sorted(str(p) for p in (data / "images").glob("*.png"))
    best: dict[str, float] = {}
    for _ in range(args.repeat):  # interleaved, best of N, so drift hits all alike
        runs = {
            "parallelrun, 1 process": lambda: parallelrun_job(pattern, model_dir, str(WORK / "out1"), 1),
            "parallelrun, 2 processes": lambda: parallelrun_job(pattern, model_dir, str(WORK / "out2"), 2),
            "multiprocessing.Pool(2) by hand": lambda: pool_baseline(files, model_dir, str(WORK / "pool.txt")),
        }
        for name, job in runs.items():
            best[name] = min(best.get(name, float("inf")), job())
    pool = best["multiprocessing.Pool(2) by hand"]
    rows = [[name, len(files), f"{secs:.2f}", len(files) / secs, f"{pool / secs:.2f}x"]
            for name, secs in best.items()]
    table(f"Images: {len(files)} PNG digits, mini_batch_size=5, best of {args.repeat} (wall time incl. start-up)",
          ["runner", "images", "seconds", "images/s", "vs Pool(2)"], rows)
    bar_chart("images", f"{len(files)} PNG digits, mini_batch_size=5 (higher is better)",
              {name: len(files) / secs for name, secs in best.items()}, "images/s",
              baseline="multiprocessing.Pool(2) by hand")


if __name__ == "__main__":
    main()
