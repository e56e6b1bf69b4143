"""The dashboard on a big workspace, beside what a user would otherwise do.

A workspace with 5,000 runs in 50 experiments, and one step with a million mini-batches of one
item each: a ``processed_mini-batches.csv`` of 1,000,000 tries, 50,000 of them failed (in
``sys/job_report/failures.jsonl`` and the per-process traceback files), and a 200 MiB worker log. The dashboard
serves it on 127.0.0.1 (uvicorn, one keep-alive HTTP connection); each figure is the median of
repeated requests. Baselines, in this process:

* a page of an experiment's runs: the public API, ``Experiment.get_runs(limit=50)`` and
  ``get_details()`` of each (what ``parallelrun run show`` / a notebook does per run);
* the error summary: pandas reading ``processed_mini-batches.csv`` and grouping the failed tries
  by error category, as one would to summarise a step's errors, again at every refresh;
* the end of a large log: reading the file (a naive log endpoint) and ``tail -n 500``.

    python bench/bench_ui.py [--runs 5000] [--tries 1000000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import time

from _common import WORK, require, table

from parallelrun.engine.logs import FAILURES_FILE

PROCESSES = 8


def build(root, runs: int, experiments: int, tries: int, log_mb: int):
    from parallelrun import Workspace

    marker = root / ".complete"
    ws_path = root / "ws"
    if marker.exists():
        return Workspace(ws_path)
    shutil.rmtree(root, ignore_errors=True)
    ws = Workspace.create(name="bench-ui", path=ws_path)
    now = time.time() - runs
    graph = json.dumps({"steps": [{"name": "score", "kind": "parallel", "inputs": [],
                                   "outputs": [], "depends_on": []}], "order": ["score"]})
    log_dir = ws_path / ".parallelrun" / "runs" / "big" / "steps" / "score" / "logs"
    run_rows, step_rows = [], []
    for i in range(runs):
        run_id = f"exp{i % experiments:02d}_{i:06d}"
        run_dir = ws_path / ".parallelrun" / "runs" / run_id
        run_rows.append((run_id, f"exp{i % experiments:02d}", "pipeline", "Finished", "{}", graph,
                         os.path.relpath(run_dir, ws_path), str(ws_path), now + i, now + i,
                         now + i + 30, now + i + 30))
        step_rows.append((f"s{i:07d}", run_id, "score", "parallel", 0, "Finished", 100, 99, 1,
                          990, 10, 2, 33.0, 1, now + i, now + i + 30, now + i + 30,
                          os.path.relpath(run_dir / "steps" / "score" / "logs", ws_path)))
    big = "exp00_big"
    run_rows.append((big, "exp00", "pipeline", "Finished", "{}", graph, ".parallelrun/runs/big",
                     str(ws_path), now + runs, now + runs, now + runs + 3600, now + runs + 3600))
    failed = tries // 20
    step_rows.append(("bigstep", big, "score", "parallel", 0, "Finished", tries,
                      tries - failed // 2, failed // 2, tries - failed // 2, failed // 2,
                      failed // 2, tries / 3600, 1, now + runs, now + runs + 3600,
                      now + runs + 3600, os.path.relpath(log_dir, ws_path)))
    with ws.catalog.write() as db:
        db.executemany("INSERT INTO experiments (name, created_at) VALUES (?, ?)",
                       [(f"exp{e:02d}", now) for e in range(experiments)])
        db.executemany(
            "INSERT INTO runs (id, experiment, kind, status, tags, graph, run_dir, cwd, created_at,"
            " started_at, finished_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", run_rows)
        db.executemany(
            "INSERT INTO step_runs (id, run_id, name, kind, position, status, minibatches_total, "
            "minibatches_succeeded, minibatches_failed, items_succeeded, items_failed, retries, "
            "items_per_second, planning_done, started_at, finished_at, updated_at, log_dir) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", step_rows)
    # the step's logs, in the engine's formats (engine/logs.py)
    (log_dir / "sys" / "job_report").mkdir(parents=True)
    (log_dir / "user" / "error" / "node0").mkdir(parents=True)
    (log_dir / "user" / "stdout" / "node0").mkdir(parents=True)
    kinds = ("ValueError", "KeyError", "RUN_TIMEOUT", "OSError")
    with open(log_dir / "sys" / "job_report" / "processed_mini-batches.csv", "w") as csv_file, \
            open(log_dir / FAILURES_FILE, "w") as errors:
        csv_file.write("mini_batch_id,attempt,node,process,start_time,total_items,succeeded_items,"
                       "failed_items,elapsed_seconds,run_seconds,status,error_category,"
                       "error_message\n")
        blocks, sizes = {p: [] for p in range(PROCESSES)}, [0] * PROCESSES
        for n in range(tries):
            process = n % PROCESSES
            stamp = "2026-01-01T00:00:00.000+00:00"
            if n % 20:
                csv_file.write(f"{n},1,node0,process{process:03d},{stamp},1,1,0,0.0100,0.0090,"
                               "RUN_DONE,,\n")
                continue
            kind = kinds[(n // 20) % len(kinds)]
            attempt = (n // 20) % 2 + 1
            outcome = "failed" if attempt == 2 else "will be retried"
            csv_file.write(f"{n},{attempt},node0,process{process:03d},{stamp},1,0,1,0.0100,0.0090,"
                           f"RUN_EXCEPTION,{kind},problem with item {n}\n")
            block = (
                f"--- mini-batch {n}, try {attempt}, RUN_EXCEPTION, {stamp}\nTraceback (most recent "
                f"call last):\n  File \"score.py\", line 12, in run\n    check(item)\n{kind}: "
                f"problem with item {n}\n\n").encode()
            errors.write(json.dumps({   # engine/logs.py's try_record
                "v": 1, "mini_batch": n, "attempt": attempt, "node": "node0",
                "process": f"process{process:03d}", "started_at": 1767225600.0,
                "finished_at": 1767225600.0, "items": 1, "succeeded": 0, "failed": 1,
                "run_seconds": 0.009, "status": "RUN_EXCEPTION", "final": attempt == 2,
                "outcome": outcome, "error_type": kind, "error_message": f"problem with item {n}",
                "item_names": None, "traceback": {
                    "file": f"user/error/node0/process{process:03d}.txt",
                    "offset": sizes[process], "length": len(block)}}) + "\n")
            blocks[process].append(block)
            sizes[process] += len(block)
    for process, parts in blocks.items():
        (log_dir / "user" / "error" / "node0" / f"process{process:03d}.txt").write_bytes(
            b"".join(parts))
    line = ("2026-01-01 00:00:00,000|score|INFO|1234|MainThread|run()|" + "x" * 120 + "\n").encode()
    with open(log_dir / "user" / "stdout" / "node0" / "process000.stdout.txt", "wb") as fh:
        block, written = line * 8192, 0
        while written < log_mb * 1024 * 1024:
            written += fh.write(block)
    (log_dir / "job_result.txt").write_text("status: Finished\n")
    marker.touch()
    return ws


class Client:
    def __init__(self, port: int):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def get(self, path: str) -> dict:
        self.connection.request("GET", path, headers={"Host": "127.0.0.1"})
        response = self.connection.getresponse()
        body = response.read()
        assert response.status == 200, (path, response.status, body[:300])
        return json.loads(body)


def ratio(baseline: float, ours: float) -> str:
    value = baseline / ours
    return f"{value:,.1f}x" if value < 10 else f"{value:,.0f}x"


def median_ms(call, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--experiments", type=int, default=50)
    parser.add_argument("--tries", type=int, default=1_000_000)
    parser.add_argument("--log-mb", type=int, default=200)
    args = parser.parse_args()
    require("fastapi", "uvicorn")

    import pandas as pd

    from parallelrun import Experiment
    from parallelrun.ui.logfiles import file_id
    from parallelrun.ui.server import Dashboard

    root = WORK / f"ui_{args.runs}_{args.tries}_{args.log_mb}"
    started = time.perf_counter()
    ws = build(root, args.runs, args.experiments, args.tries, args.log_mb)
    print(f"workspace ready in {time.perf_counter() - started:.1f} s ({root})", flush=True)
    log_dir = root / "ws" / ".parallelrun" / "runs" / "big" / "steps" / "score" / "logs"
    server = Dashboard(ws, port=0).start()
    client = Client(server.port)
    rows = []
    try:
        # a page of an experiment's runs ------------------------------------------------------
        experiment = f"exp{min(7, args.experiments - 1):02d}"
        page = client.get(f"/api/experiments/{experiment}/runs?limit=50&offset=50")
        assert len(page["items"]) == 50
        dashboard_ms = median_ms(
            lambda: client.get(f"/api/experiments/{experiment}/runs?limit=50&offset=50"), 20)

        def public_api():
            for run in Experiment(ws, experiment).get_runs(limit=100)[50:]:
                details = run.get_details()
                assert details["steps"][0]["counts"]["items_succeeded"] == 990

        baseline_ms = median_ms(public_api, 3)
        rows.append([f"a page of 50 runs ({args.runs:,} runs in the workspace)",
                     dashboard_ms, "get_runs + get_details each", baseline_ms,
                     ratio(baseline_ms, dashboard_ms)])
        last_page = median_ms(lambda: client.get(
            f"/api/runs?limit=50&offset={args.runs - 50}"), 20)
        rows.append([f"the last page of all {args.runs:,} runs", last_page, "-", "-", "-"])

        # the error summary -------------------------------------------------------------------
        start = time.perf_counter()
        calls = 0
        while True:
            summary = client.get("/api/steps/bigstep/errors")
            calls += 1
            if summary["complete"]:
                break
        first_ms = (time.perf_counter() - start) * 1000
        assert summary["failures"] == args.tries // 20
        again_ms = median_ms(lambda: client.get("/api/steps/bigstep/errors"), 20)

        def pandas_summary():
            frame = pd.read_csv(log_dir / "sys" / "job_report" / "processed_mini-batches.csv",
                                usecols=["mini_batch_id", "attempt", "status", "error_category"])
            failed = frame[frame["status"] != "RUN_DONE"]
            counts = failed.groupby("error_category").size()
            assert int(counts.sum()) == args.tries // 20

        pandas_ms = median_ms(pandas_summary, 3)
        rows.append([f"error summary, first look ({args.tries // 20:,} failed of {args.tries:,} "
                     f"tries; {calls} requests)", first_ms, "pandas read_csv + groupby",
                     pandas_ms, ratio(pandas_ms, first_ms)])
        rows.append(["error summary, each refresh after that", again_ms,
                     "pandas read_csv + groupby", pandas_ms, ratio(pandas_ms, again_ms)])
        entry = args.tries // 20 - 1
        trace_ms = median_ms(lambda: client.get(f"/api/steps/bigstep/errors/{entry}"), 20)
        target = f"--- mini-batch {args.tries - 20}, try"
        path = log_dir / "user" / "error" / "node0" / f"process{(args.tries - 20) % PROCESSES:03d}.txt"

        def scan_traceback():
            with open(path, encoding="utf-8") as fh:
                for text_line in fh:
                    if text_line.startswith(target):
                        return
            raise AssertionError("not found")

        scan_ms = median_ms(scan_traceback, 3)
        rows.append(["the traceback of the last failure", trace_ms,
                     "read its process's file to it", scan_ms, ratio(scan_ms, trace_ms)])

        # the end of a large log ----------------------------------------------------------------
        name = "user/stdout/node0/process000.stdout.txt"
        url = f"/api/steps/bigstep/logs/{file_id(name)}?limit=65536"
        tail = client.get(url)
        assert tail["at_end"] and tail["size"] >= args.log_mb * 1024 * 1024
        tail_ms = median_ms(lambda: client.get(url), 20)
        whole = log_dir / name

        def read_whole():
            with open(whole, "rb") as fh:
                assert len(fh.read()) == tail["size"]

        read_ms = median_ms(read_whole, 3)
        shell_ms = median_ms(lambda: subprocess.run(["tail", "-n", "500", str(whole)],
                                                    capture_output=True, check=True), 10)
        rows.append([f"the last 64 KiB of a {args.log_mb} MiB log", tail_ms,
                     "read the whole file", read_ms, ratio(read_ms, tail_ms)])
        rows.append(["", "", "tail -n 500 (a shell on the machine)", shell_ms,
                     ratio(shell_ms, tail_ms)])
    finally:
        server.stop()
    table(f"dashboard: {args.runs:,} runs, a step of {args.tries:,} tries, a {args.log_mb} MiB log "
          "(milliseconds, median)", ["what", "dashboard ms", "baseline", "baseline ms",
                                     "dashboard faster by"], rows)


if __name__ == "__main__":
    main()
