"""The benchmark scripts check their extras before measuring, and draw charts where asked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"


def python(code: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_a_benchmark_without_its_chart_library_stops_at_start_naming_the_extra():
    # matplotlib made unimportable, as after `make test` alone (the bench extra not installed)
    result = python(f"""
import runpy, sys
sys.modules["matplotlib"] = None
sys.path.insert(0, {str(BENCH)!r})
sys.argv = ["bench_dispatch.py", "--files", "50"]
runpy.run_path({str(BENCH / "bench_dispatch.py")!r}, run_name="__main__")
""")
    assert result.returncode == 1
    assert "bench_dispatch.py needs matplotlib" in result.stderr
    assert "make bench" in result.stderr and "pip install -e '.[bench]'" in result.stderr
    assert result.stdout == ""          # nothing measured first


def test_charts_go_to_the_folder_given_and_by_default_not_over_the_committed_ones(tmp_path):
    draw = f"""
import argparse, sys
sys.path.insert(0, {str(BENCH)!r})
import _common
_common.parse_args(argparse.ArgumentParser(), sys.argv[1:])
print(_common.bar_chart("check", "a test chart", {{"parallelrun": 2.0, "other": 1.0}}, "items/s"))
"""
    given = subprocess.run([sys.executable, "-c", draw, "--charts", str(tmp_path / "charts")],
                           capture_output=True, text=True, timeout=120)
    assert given.returncode == 0, given.stderr
    assert (tmp_path / "charts" / "check.png").stat().st_size > 0
    default = python(f"""
import argparse, sys
sys.path.insert(0, {str(BENCH)!r})
import _common
_common.parse_args(argparse.ArgumentParser(), [])
print(_common.charts_dir())
""")
    assert Path(default.stdout.strip()) == BENCH / "_work" / "charts"
    ignored = subprocess.run(["git", "check-ignore", "-q", "bench/_work/charts/x.png"], cwd=ROOT)
    assert ignored.returncode == 0


def bench(script: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH / script), *args], cwd=BENCH,
                          capture_output=True, text=True, timeout=timeout)


def test_steady_rate_leaves_out_the_start_up_and_the_last_stragglers():
    sys.path.insert(0, str(BENCH))
    from _common import steady_rate

    # 1 item every 0.1 s, after 5 s of start-up and before one straggler 10 s late: 10 items/s
    done = [(5 + 0.1 * i, 1) for i in range(99)] + [(30.0, 1)]
    assert abs(steady_rate(list(reversed(done))) - 10.0) < 1e-6


def test_dispatch_quick_mode_measures_the_bound_and_prints_each_target_met_or_not(tmp_path):
    result = bench("bench_dispatch.py", "--files", "300", "--repeat", "1",
                   "--charts", str(tmp_path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "| bound: run() alone in 2 processes, no engine | 300 " in out
    assert "whole job, of bound" in out and "steady, of bound" in out
    for measure, target in (("whole job, start-up included", "0.90"),
                            ("steady, 10%-90% of the mini-batches", "0.95")):
        (line,) = [line for line in out.splitlines() if line.startswith(f"| {measure} ")]
        assert f">= {target}" in line and ("| met" in line or "| NOT met" in line)
    assert (tmp_path / "dispatch.png").stat().st_size > 0


def test_listing_prints_every_run_and_the_targets(tmp_path):
    result = bench("bench_listing.py", "--files", "3000", "--runs", "2")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for number in (1, 2):
        assert f"run {number}: parallelrun (2 processes): first run() after " in out
        assert f"run {number}: sorted(glob) + Pool(2), by hand: first run() after " in out
    assert "first run(), slowest of 2 runs (s)" in out and "< 1 in every run" in out
    assert "coordinator peak RSS, largest of 2 runs (MB)" in out and "< 200" in out


def test_the_bound_benchmarks_take_a_repeat_count_for_a_quick_rerun():
    for script in ("bench_images.py", "bench_dispatch.py", "bench_ray.py"):
        result = bench(script, "--help", timeout=60)
        assert result.returncode == 0, result.stderr
        assert "--repeat" in result.stdout, script
    assert "--runs" in bench("bench_listing.py", "--help", timeout=60).stdout
