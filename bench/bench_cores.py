"""Issue 20, item 4 ("Beyond 2 cores"): the whole comparison against the bound with workers =
cores, in one prepared command.

Runs, one after another, each as its own process (their own tables go to the log):

* ``bench_images.py``: the demo's PNG digits, 10,000 per worker (the 20,000-image job has
  10,000 per worker on 2): parallelrun's local backend, a hand-written ``Pool(N)``, the bound;
* ``bench_dispatch.py``: 100,000 trivial one-file mini-batches, the issue's size at any
  worker count (it measures the coordinator's cost per mini-batch, which more workers only
  press harder): local backend, ``Pool(N)`` with chunksize 1 and 64, the bound;
* ``bench_tabular.py``: 1,000,000 CSV rows x 20 floats per worker in max(8, N) files, 1 MB
  mini-batches, both ``MINI_BATCH_FORMAT`` values: local backend, ``Pool(N)``, the bound;
* ``bench_ray.py``: 30,000 images per worker (Ray's 60,000-image job has 30,000 per worker on
  2) on an N-CPU Ray instance: local backend, Ray backend, Ray Data ``map_batches`` with N
  actors at batch sizes 100, 500 and 2,000 (its best kept in the summary), the bound.

then prints one table, each runner's whole job (start-up included) and steady rate (10%-90%
of the items) as fractions of the bound beside issue 20's target, and writes it to ``--out``
as ``summary.md`` and ``summary.json``, with every bench's output in ``log.txt`` (rewritten
after each bench, so a run cut short keeps what it measured). Best of 2, interleaved.

    python bench/bench_cores.py [--workers N] [--out DIR] [--repeat 2] [--no-ray] [--quick]

``--workers`` defaults to the machine's cores. About 5 minutes on 16 cores (data made in
parallel included). It stops at start when Ray is missing; ``--no-ray`` runs everything but the
Ray rows, and the table says so. ``--quick`` runs everything tiny (a minute on 2 cores), to
check the script, not to measure.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import TARGETS, WORK, machine, require

BENCH = Path(__file__).resolve().parent
#: work per worker: what the 2-worker jobs of issue 20 give each worker
IMAGES_PER_WORKER = 10_000        # bench_images.py: 20,000 images on 2
RAY_IMAGES_PER_WORKER = 30_000    # bench_ray.py --images 60000 on 2
ROWS_PER_WORKER = 1_000_000       # bench_tabular.py: 2,000,000 rows on 2
DISPATCH_MINI_BATCHES = 100_000   # issue 20's dispatch job, at any worker count
RAY_DATA_BATCH_SIZES = (100, 500, 2000)
#: --quick: everything tiny, to check the script on 2 cores (no figure means anything)
QUICK = {"images": 100, "ray_images": 100, "rows": 10_000, "dispatch": 400,
         "ray_data_batch_sizes": (10, 50)}
#: issue 20's target for the tables' local backend: a fraction of the bound (whole job) and a
#: speed-up over the hand-written Pool
TABLES_TARGET = {"whole": 0.80, "vs_pool": 1.10}


def plan(workers: int, quick: bool, repeat: int, ray: bool) -> list[dict]:
    """The benches to run: name, script and arguments, with the sizes chosen for ``workers``."""
    images = (QUICK["images"] if quick else IMAGES_PER_WORKER) * workers
    ray_images = (QUICK["ray_images"] if quick else RAY_IMAGES_PER_WORKER) * workers
    rows = (QUICK["rows"] if quick else ROWS_PER_WORKER) * workers
    files = 2 if quick else max(8, workers)
    dispatch = QUICK["dispatch"] if quick else DISPATCH_MINI_BATCHES
    sizes = QUICK["ray_data_batch_sizes"] if quick else RAY_DATA_BATCH_SIZES
    common = ["--workers", str(workers), "--repeat", str(repeat)]
    benches = [
        {"bench": "images", "script": "bench_images.py",
         "args": ["--images", str(images), "--no-one-process", *common],
         "size": f"{images:,} images ({images // workers:,} per worker), mini_batch_size=5"},
        {"bench": "dispatch", "script": "bench_dispatch.py", "args": ["--files", str(dispatch), *common],
         "size": f"{dispatch:,} one-file mini-batches, trivial run()"},
        {"bench": "tables", "script": "bench_tabular.py",
         "args": ["--rows", str(rows), "--files", str(files), *common],
         "size": f"{rows:,} CSV rows x 20 floats ({rows // workers:,} per worker) in {files} files, "
                 "1 MB mini-batches, pandas and pyarrow"},
        {"bench": "ray", "script": "bench_ray.py",
         "args": ["--images", str(ray_images), "--no-fresh-process",
                  "--ray-data-batch-sizes", ",".join(map(str, sizes)), *common],
         "size": f"{ray_images:,} images ({ray_images // workers:,} per worker) on a "
                 f"{workers}-CPU Ray instance; Ray Data batch sizes {', '.join(map(str, sizes))}"},
    ]
    for bench in benches:
        bench["run"] = ray or bench["bench"] != "ray"
    return benches


def run_bench(bench: dict, json_path: Path, charts: Path, log) -> int:
    """One bench as its own process, its output echoed and logged; its exit status."""
    command = [sys.executable, str(BENCH / bench["script"]), *bench["args"],
               "--json", str(json_path), "--charts", str(charts)]
    header = f"\n=== {bench['bench']}: {' '.join(command[1:])}\n"
    print(header, end="", flush=True)
    log.write(header)
    with subprocess.Popen(command, cwd=BENCH, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as child:
        for line in child.stdout:
            print(line, end="", flush=True)
            log.write(line)
    log.flush()
    return child.returncode


def _target(bench: str, kind: str) -> dict | None:
    """Issue 20's target for a runner of a workload, or None (the baselines have none)."""
    if kind == "local":
        return TABLES_TARGET if bench == "tables" else TARGETS["local"]
    if kind == "ray":
        return TARGETS["ray"]
    return None


def summary_rows(bench: str, entry: dict) -> list[dict]:
    """Rows of the summary for one workload: each runner's fractions of the bound and its
    target; of Ray Data's batch sizes only the fastest whole job."""
    runners = entry["runners"]
    (bound,) = [r for r in runners if r["kind"] == "bound"]
    ray_data = [r for r in runners if r["kind"] == "ray-data"]
    if ray_data:
        fastest = min(ray_data, key=lambda r: r["seconds"])
        swept = ", ".join(str(r["batch_size"]) for r in ray_data)
        named = {**fastest, "name": f"{fastest['name']} (fastest of batch sizes {swept})"}
        runners = [named if r is fastest else r for r in runners
                   if r["kind"] != "ray-data" or r is fastest]
    pools = [r for r in runners if r["kind"] == "pool"]
    rows = []
    for r in runners:
        whole, steady = bound["seconds"] / r["seconds"], r["steady"] / bound["steady"]
        row = {"workload": entry["workload"], "runner": r["name"], "kind": r["kind"],
               "workers": entry["workers"], "seconds": r["seconds"], "of_bound_whole": whole,
               "of_bound_steady": steady, "target": "", "met": ""}
        target = _target(bench, r["kind"])
        if target:
            checks = [(f">= {target['whole']:.2f} whole", whole >= target["whole"])]
            if "steady" in target:
                checks.append((f">= {target['steady']:.2f} steady", steady >= target["steady"]))
            if "vs_pool" in target and pools:
                vs_pool = pools[0]["seconds"] / r["seconds"]
                row["vs_pool"] = vs_pool
                checks.append((f">= {target['vs_pool']:.2f}x Pool (is {vs_pool:.2f}x)",
                               vs_pool >= target["vs_pool"]))
            row["target"] = ", ".join(text for text, _ in checks)
            row["met"] = "yes" if all(ok for _, ok in checks) else "NO"
        rows.append(row)
    return rows


def missing_rows(bench: dict, why: str, workers: int) -> list[dict]:
    return [{"workload": bench["bench"], "runner": why, "kind": "", "workers": workers,
             "seconds": None, "of_bound_whole": None, "of_bound_steady": None, "target": "",
             "met": ""}]


def markdown(rows: list[dict], heading: list[str]) -> str:
    """The summary as a Markdown table under a few lines saying what was run where."""
    def cell(value, digits=2):
        return "" if value is None else f"{value:.{digits}f}"

    header = ["workload", "runner", "workers", "seconds", "of bound, whole", "of bound, steady",
              "target", "met"]
    cells = [header] + [[r["workload"], r["runner"], str(r["workers"]), cell(r["seconds"]),
                         cell(r["of_bound_whole"]), cell(r["of_bound_steady"]), r["target"],
                         r["met"]] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [*heading, ""]
    lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells[1:]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                        help="workers of every contender (default: this machine's cores)")
    parser.add_argument("--out", default=str(WORK / "cores"), metavar="DIR",
                        help="where summary.md, summary.json and log.txt go "
                             "(default bench/_work/cores)")
    parser.add_argument("--charts", default=str(WORK / "cores-charts"), metavar="DIR",
                        help="where the benches' charts go (default bench/_work/cores-charts)")
    parser.add_argument("--repeat", type=int, default=None,
                        help="best of N, interleaved (default 2; 1 with --quick)")
    parser.add_argument("--no-ray", action="store_true",
                        help="run everything but the Ray rows (where Ray cannot be installed)")
    parser.add_argument("--quick", action="store_true",
                        help="everything tiny: checks the script in about a minute, measures nothing")
    args = parser.parse_args(argv)
    if not args.no_ray and importlib.util.find_spec("ray") is None:
        sys.exit(f"bench_cores.py needs ray, which this Python ({sys.executable}) does not have: "
                 "the Ray backend's and Ray Data's rows are half of issue 20's comparison. "
                 "Install it (`pip install -e '.[bench]'`; on a machine with no registry carry "
                 "it as bench/README.md's section 'Beyond 2 cores' says), or pass --no-ray to "
                 "run everything but the Ray rows.")
    require("matplotlib", "sklearn", "PIL")
    repeat = args.repeat or (1 if args.quick else 2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    benches = plan(args.workers, args.quick, repeat, not args.no_ray)
    started = time.time()
    quick_note = " (--quick: sizes too small to mean anything)" if args.quick else ""
    heading = [f"### Against the bound with {args.workers} workers{quick_note}",
               f"_{machine()}; best of {repeat}_", ""]
    heading += [f"- {b['bench']}: {b['size']}" for b in benches]
    rows: list[dict] = []
    entries: list[dict] = []
    failed = []
    with tempfile.TemporaryDirectory(prefix="bench_cores-") as tmp, \
            open(out / "log.txt", "w") as log:
        for bench in benches:
            if not bench["run"]:
                rows += missing_rows(bench, "not run: --no-ray (Ray rows left out)", args.workers)
            else:
                json_path = Path(tmp) / f"{bench['bench']}.json"
                status = run_bench(bench, json_path, Path(args.charts), log)
                if status != 0 or not json_path.exists():
                    failed.append(bench["bench"])
                    rows += missing_rows(bench, f"FAILED (exit status {status}): see log.txt",
                                         args.workers)
                else:
                    for entry in json.loads(json_path.read_text())["workloads"]:
                        entries.append({"bench": bench["bench"], **entry})
                        rows += summary_rows(bench["bench"], entry)
            elapsed = ["", f"_{time.time() - started:.0f} s so far_"]
            (out / "summary.md").write_text(markdown(rows, heading + elapsed))
            (out / "summary.json").write_text(json.dumps(
                {"workers": args.workers, "repeat": repeat, "quick": args.quick,
                 "machine": machine(), "sizes": {b["bench"]: b["size"] for b in benches},
                 "seconds": time.time() - started, "rows": rows, "workloads": entries},
                indent=1))
    text = markdown(rows, heading + ["", f"_whole run: {time.time() - started:.0f} s_"])
    (out / "summary.md").write_text(text)
    print("\n" + text, flush=True)
    print(f"written: {out / 'summary.md'}, {out / 'summary.json'}, {out / 'log.txt'}")
    if failed:
        print(f"FAILED: {', '.join(failed)} (see {out / 'log.txt'})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
