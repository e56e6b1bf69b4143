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
