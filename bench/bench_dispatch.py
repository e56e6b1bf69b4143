"""Dispatch rate: a trivial run() and mini_batch_size=1, so only the engine's overhead counts.

Beside it, the same with a hand-written multiprocessing.Pool(2).imap_unordered (chunksize=1 and
a tuned chunksize=64), writing the returned lines to one file in the parent, and the bound
(issue 20): two processes that each call init() and then run() over their half of the same
one-file mini-batches in a plain loop, with no engine. parallelrun's whole job (the run_job
call, listing included) and steady rate (10%-90% of the mini-batches, from the job's
``tries.jsonl``) as fractions of the bound, each beside its target. Interleaved, best of N.

    python bench/bench_dispatch.py [--files 100000] [--repeat 3] [--workers 2]

``--workers N`` (default 2): parallelrun with N processes, Pool(N) and the bound in N processes.
"""

from __future__ import annotations

import argparse
import time
from multiprocessing import get_context

from _common import (TARGETS, WORK, add_workers_option, bar_chart, bound_job, parse_args,
                     require, results_entry, steady_rate, table, target_rows, tries_completions,
                     write_results)

from parallelrun import Dataset, ParallelRunConfig, run_job


def trivial(paths: list[str]) -> list[str]:
    return paths


def make_files(folder, count: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    existing = len(list(folder.iterdir()))
    for i in range(existing, count):
        open(folder / f"{i:07d}", "w").close()
    return sorted(str(p) for p in folder.iterdir())[:count]


def parallelrun_job(config: ParallelRunConfig, folder) -> dict:
    started = time.time()
    result = run_job(config, [Dataset.File.from_files(str(folder))], WORK / "dispatch_out",
                     overwrite=True)
    seconds = time.time() - started
    assert result.succeeded, result.error
    return {"seconds": seconds, "steady": steady_rate(tries_completions(result.log_dir)),
            "items": result.minibatches_succeeded}


def pool_job(files: list[str], chunksize: int, processes: int = 2) -> dict:
    started = time.time()
    done = []
    with get_context("spawn").Pool(processes) as pool, open(WORK / "dispatch_pool.txt", "w") as fh:
        for lines in pool.imap_unordered(trivial, ([f] for f in files), chunksize=chunksize):
            fh.write("\n".join(lines) + "\n")
            done.append((time.time(), len(lines)))
    return {"seconds": time.time() - started, "steady": steady_rate(done), "items": len(done)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=100000)
    parser.add_argument("--repeat", type=int, default=3)
    add_workers_option(parser)
    args = parse_args(parser)
    n = args.workers
    require("matplotlib")
    folder = WORK / f"dispatch_{args.files}"
    files = make_files(folder, args.files)
    script_dir = WORK / "dispatch_script"
    script_dir.mkdir(parents=True, exist_ok=True)
    (script_dir / "trivial.py").write_text("def init():\n    pass\n\ndef run(mini_batch):\n    return mini_batch\n")

    config = ParallelRunConfig(source_directory=str(script_dir), entry_script="trivial.py",
                               mini_batch_size=1, error_threshold=0, output_action="append_row",
                               process_count_per_node=n)
    ours, bound_name = f"parallelrun ({n} processes)", f"bound: run() alone in {n} processes, no engine"
    pool1, pool64 = (f"multiprocessing.Pool({n}), chunksize={c}" for c in (1, 64))
    runs = {
        ours: lambda: parallelrun_job(config, folder),
        pool1: lambda: pool_job(files, 1, n),
        pool64: lambda: pool_job(files, 64, n),
        bound_name: lambda: bound_job(str(script_dir / "trivial.py"), [[f] for f in files], n,
                                      str(WORK / "dispatch_bound")),
    }
    best: dict[str, dict] = {}
    for _ in range(args.repeat):  # interleaved: drift hits all alike; best whole job, best steady
        for name, job in runs.items():
            stats = job()
            kept = best.setdefault(name, stats)
            kept["seconds"] = min(kept["seconds"], stats["seconds"])
            kept["steady"] = max(kept["steady"], stats["steady"])
    bound = best[bound_name]
    rows = [[name, s["items"], f"{s['seconds']:.2f}", s["items"] / s["seconds"],
             f"{bound['seconds'] / s['seconds']:.2f}", s["steady"],
             f"{s['steady'] / bound['steady']:.2f}"] for name, s in best.items()]
    table(f"Dispatch: {len(files)} mini-batches of 1 file, trivial run(), best of {args.repeat} "
          "(wall time incl. start-up)",
          ["runner", "mini-batches", "seconds", "mini-batches/s", "whole job, of bound",
           "mini-batches/s, steady (10%-90%)", "steady, of bound"], rows)
    kinds = {ours: "local", pool1: "pool", pool64: "pool", bound_name: "bound"}
    write_results(args.json, [results_entry(
        f"dispatch, {len(files):,} trivial mini-batches", n, len(files), "mini-batches",
        [{"name": name, "kind": kinds[name], **s} for name, s in best.items()])])
    table(f"Dispatch: parallelrun ({n} processes, local backend) against the bound",
          ["measure", "of bound", "target", "met"],
          target_rows([("whole job, start-up included", bound["seconds"] / best[ours]["seconds"],
                        TARGETS["local"]["whole"]),
                       ("steady, 10%-90% of the mini-batches",
                        best[ours]["steady"] / bound["steady"], TARGETS["local"]["steady"])]))
    bar_chart("dispatch", f"{len(files)} one-file mini-batches, trivial run() (higher is better)",
              {name: s["items"] / s["seconds"] for name, s in best.items()}, "mini-batches/s",
              baseline=pool1)


if __name__ == "__main__":
    main()
