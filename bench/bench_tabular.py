"""Tabular workload: a linear model over millions of numeric rows in CSV and Parquet files.

Three runners score the same rows (``X @ w`` over 8 float columns, numpy) and write (id, score)
to Parquet, side by side in one run:

* parallelrun, 2 processes, ``mini_batch_size`` 1MB (default) and 8MB, ``append_row_format="parquet"``;
* a hand-written ``multiprocessing.Pool(2)`` over the same chunks (parallelrun's plan: the same
  byte ranges / row ranges, read with pyarrow the same way), the parent writing the Parquet file;
* Ray Data: ``read_csv`` / ``read_parquet`` + ``map_batches`` + ``write_parquet`` on a local
  2-CPU Ray (``ray.init`` counted separately).

Then the memory part: peak RSS of the coordinator and of each worker while parallelrun scores
one ~2 GB CSV file (a worker should hold about one mini-batch, not the file).

    python bench/bench_tabular.py [--rows 4000000] [--files 4] [--big-gb 2] [--repeat 1]
                                  [--no-ray] [--no-big] [--only-big]
"""

from __future__ import annotations

import argparse
import os
import shutil
import threading
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from _common import WORK, bar_chart, parse_args, require, table

from parallelrun import Dataset, ParallelRunConfig, run_job

FEATURES = [f"f{i}" for i in range(8)]
WEIGHTS = np.linspace(-1.0, 1.0, len(FEATURES))
DATA = WORK / "tabular"
SCRIPT = '''
import numpy as np
import pandas as pd

FEATURES = [f"f{i}" for i in range(8)]
W = None


def init():
    global W
    W = np.linspace(-1.0, 1.0, len(FEATURES))


def run(df):
    scores = df[FEATURES].to_numpy(dtype=np.float64) @ W
    return pd.DataFrame({"id": df["id"].to_numpy(), "score": scores})
'''


# Data -----------------------------------------------------------------------------------------
def _rows(first: int, count: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    values = np.round(rng.normal(size=(count, len(FEATURES))), 5)
    columns = {"id": pa.array(np.arange(first, first + count, dtype=np.int64))}
    columns.update({name: pa.array(values[:, i]) for i, name in enumerate(FEATURES)})
    return pa.table(columns)


def make_data(rows: int, files: int) -> tuple[Path, Path]:
    csv_dir, pq_dir = DATA / f"csv-{rows}-{files}", DATA / f"parquet-{rows}-{files}"
    if csv_dir.exists() and pq_dir.exists():
        return csv_dir, pq_dir
    for d in (csv_dir, pq_dir):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    per = rows // files
    for f in range(files):
        t = _rows(f * per, per, f)
        pa_csv.write_csv(t, csv_dir / f"part-{f:02d}.csv")
        pq.write_table(t, pq_dir / f"part-{f:02d}.parquet", row_group_size=131_072)
    return csv_dir, pq_dir


def make_big_csv(gigabytes: float) -> Path:
    path = DATA / f"big-{gigabytes}gb.csv"
    if path.exists():
        return path
    target = gigabytes * 2**30
    with pa_csv.CSVWriter(str(path) + ".tmp", _rows(0, 1, 0).schema) as writer:
        first, seed = 0, 100
        while os.path.getsize(str(path) + ".tmp") < target:
            writer.write_table(_rows(first, 1_000_000, seed))
            first += 1_000_000
            seed += 1
    os.replace(str(path) + ".tmp", path)
    return path


def script_dir() -> Path:
    folder = DATA / "script"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "score.py").write_text(SCRIPT)
    return folder


# Runners --------------------------------------------------------------------------------------
def parallelrun_job(dataset, out: Path, size: str) -> tuple[float, int]:
    started = time.perf_counter()
    config = ParallelRunConfig(source_directory=str(script_dir()), entry_script="score.py",
                               mini_batch_size=size, error_threshold=0,
                               output_action="append_row", append_row_format="parquet",
                               process_count_per_node=2)
    result = run_job(config, [dataset], out, overwrite=True)
    assert result.succeeded, result.error
    return time.perf_counter() - started, result.items_succeeded


def _pool_run(payload) -> pa.Table:
    df = payload.load()                      # the same pyarrow read of the same byte/row range
    scores = df[FEATURES].to_numpy(dtype=np.float64) @ WEIGHTS
    return pa.table({"id": df["id"].to_numpy(), "score": scores})


def pool_baseline(dataset, out: Path, size: str) -> tuple[float, int]:
    started = time.perf_counter()
    payloads = [mb.payload for mb in dataset.plan(size)]
    rows = 0
    out.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([("id", pa.int64()), ("score", pa.float64())])
    with get_context("spawn").Pool(2) as pool, pq.ParquetWriter(out / "scores.parquet", schema) as writer:
        for t in pool.imap_unordered(_pool_run, payloads):
            writer.write_table(t)
            rows += t.num_rows
    return time.perf_counter() - started, rows


def ray_data(kind: str, folder: Path, out: Path) -> tuple[float, float, int]:
    import ray

    started = time.perf_counter()
    # address="local": a fresh 2-CPU Ray of our own, never a cluster someone else started
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR", configure_logging=False)
    ready = time.perf_counter()

    def score(batch):
        x = np.column_stack([batch[name] for name in FEATURES]).astype(np.float64)
        return {"id": batch["id"], "score": x @ WEIGHTS}

    try:
        files = sorted(str(p) for p in folder.iterdir())
        ds = ray.data.read_csv(files) if kind == "csv" else ray.data.read_parquet(files)
        shutil.rmtree(out, ignore_errors=True)
        ds.map_batches(score, batch_format="numpy").write_parquet(str(out))
        rows = pq.read_table(out).num_rows
    finally:
        ray.shutdown()
    return time.perf_counter() - ready, ready - started, rows


# Memory ---------------------------------------------------------------------------------------
class PeakRss(threading.Thread):
    """Samples the RSS of this process and of each of its child processes."""

    def __init__(self, every: float = 0.05):
        super().__init__(daemon=True)
        self.every = every
        self.coordinator = 0
        self.workers: dict[int, int] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        me = psutil.Process()
        while not self._halt.wait(self.every):
            self.coordinator = max(self.coordinator, me.memory_info().rss)
            for child in me.children(recursive=True):
                try:
                    rss = child.memory_info().rss
                except psutil.Error:
                    continue
                self.workers[child.pid] = max(self.workers.get(child.pid, 0), rss)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def memory_run(path: Path, size: str) -> list[list[object]]:
    ds = Dataset.Tabular.from_delimited_files(str(path))
    sampler = PeakRss()
    base = psutil.Process().memory_info().rss
    sampler.start()
    seconds, rows = parallelrun_job(ds, WORK / "tabular-out" / "big", size)
    sampler.stop()
    mb = 2**20
    worst = max(sampler.workers.values()) if sampler.workers else 0
    return [[f"{path.stat().st_size / 2**30:.2f} GB CSV, {rows:,} rows", size, f"{seconds:.1f}",
             rows / seconds, f"{sampler.coordinator / mb:,.0f} (+{(sampler.coordinator - base) / mb:,.0f})",
             f"{worst / mb:,.0f}"]]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--big-gb", type=float, default=2.0)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--no-big", action="store_true")
    parser.add_argument("--only-big", action="store_true")
    parser.add_argument("--repeat", type=int, default=1, help="best of N for parallelrun and Pool")
    args = parse_args(parser)
    require("matplotlib", *([] if args.no_ray else ["ray"]))
    csv_dir, pq_dir = make_data(args.rows, args.files)
    out = WORK / "tabular-out"
    rows_table = []
    for kind, folder in () if args.only_big else (("CSV", csv_dir), ("Parquet", pq_dir)):
        ds = (Dataset.Tabular.from_delimited_files(str(folder)) if kind == "CSV"
              else Dataset.Tabular.from_parquet_files(str(folder)))
        mb = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
        results: dict[str, tuple[float, int]] = {}

        def keep(name: str, outcome: tuple[float, int]) -> None:
            if name not in results or outcome[0] < results[name][0]:
                results[name] = outcome

        for _ in range(args.repeat):  # interleaved, best of N, so drift hits all alike
            for size in ("1MB", "8MB"):
                keep(f"parallelrun, 2 processes, {size}",
                     parallelrun_job(ds, out / f"pr-{kind}-{size}", size))
                keep(f"Pool(2) by hand, same {size} chunks",
                     pool_baseline(ds, out / f"pool-{kind}-{size}", size))
        if not args.no_ray:
            seconds, start, n = ray_data(kind.lower(), folder, out / f"ray-{kind}")
            results[f"Ray Data read_{kind.lower()} + map_batches (+{start:.1f} s ray.init)"] = (seconds, n)
        pool = results["Pool(2) by hand, same 1MB chunks"][0]
        for name, (seconds, n) in results.items():
            assert n == args.rows // args.files * args.files, (name, n)
            rows_table.append([f"{kind} ({mb:,.0f} MB)", name, f"{seconds:.2f}", n / seconds,
                               f"{pool / seconds:.2f}x"])
        bar_chart(f"tabular-{kind.lower()}", f"{args.rows:,} rows of {kind}, linear model "
                  "(higher is better)", {name: n / seconds for name, (seconds, n) in results.items()},
                  "rows/s", baseline="Pool(2) by hand, same 1MB chunks")
    if rows_table:
        table(f"Tabular: {args.rows:,} rows x 8 float columns in {args.files} files, linear model, "
              f"Parquet output, best of {args.repeat} (wall time incl. worker start-up)",
              ["input", "runner", "seconds", "rows/s", "vs Pool(2) 1MB"], rows_table)
    if not args.no_big:
        big = make_big_csv(args.big_gb)
        table("Memory: one big CSV file, parallelrun with 2 processes (peak RSS, MiB)",
              ["input", "mini_batch_size", "seconds", "rows/s", "coordinator (growth)", "worst worker"],
              memory_run(big, "1MB"))


if __name__ == "__main__":
    main()
