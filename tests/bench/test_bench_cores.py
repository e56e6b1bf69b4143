"""bench/bench_cores.py, issue 20's one prepared command for many cores, checked tiny on 2."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"


def test_quick_run_summarises_every_workload_and_runner_against_the_bound(tmp_path, monkeypatch):
    # a Ray cluster started by another test exports RAY_ADDRESS (ray.init does): the bench
    # must start its own instance all the same
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    out = tmp_path / "cores"
    result = subprocess.run([sys.executable, str(BENCH / "bench_cores.py"), "--quick",
                             "--workers", "2", "--out", str(out), "--charts", str(tmp_path)],
                            cwd=BENCH, capture_output=True, text=True, timeout=280, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    kinds_of = {}
    for row in summary["rows"]:
        kinds_of.setdefault(row["workload"].split(",")[0], set()).add(row["kind"])
        assert row["workers"] == 2
        for measure in ("seconds", "of_bound_whole", "of_bound_steady"):
            assert isinstance(row[measure], float) and row[measure] > 0, row
        if row["kind"] == "bound":
            assert math.isclose(row["of_bound_whole"], 1.0)
        if row["kind"] in ("local", "ray"):
            assert row["target"].startswith(">= ") and row["met"] in ("yes", "NO"), row
    assert kinds_of == {"images": {"local", "pool", "bound"},
                        "dispatch": {"local", "pool", "bound"},
                        "tables (pandas)": {"local", "pool", "bound"},
                        "tables (pyarrow)": {"local", "pool", "bound"},
                        "Ray's images": {"local", "ray", "ray-data", "bound"}}, kinds_of
    # Ray Data: one row, its fastest batch size of those swept
    (ray_data,) = [r for r in summary["rows"] if r["kind"] == "ray-data"]
    assert "fastest of batch sizes 10, 50" in ray_data["runner"]
    table = (out / "summary.md").read_text()
    assert "| workload " in table and "| of bound, whole | of bound, steady | target" in table
    assert table in result.stdout                 # printed as written
    assert "=== ray:" in (out / "log.txt").read_text()


def test_without_ray_it_stops_at_start_naming_the_way_out(tmp_path):
    result = subprocess.run([sys.executable, "-c", f"""
import runpy, sys
sys.modules["ray"] = None
sys.path.insert(0, {str(BENCH)!r})
sys.argv = ["bench_cores.py", "--quick", "--out", {str(tmp_path / "cores")!r}]
runpy.run_path({str(BENCH / "bench_cores.py")!r}, run_name="__main__")
"""], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "bench_cores.py needs ray" in result.stderr and "--no-ray" in result.stderr
    assert result.stdout == "" and not (tmp_path / "cores").exists()   # nothing measured
