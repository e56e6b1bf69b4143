"""parallelrun as a package: a wheel built from the sources, installed into a fresh virtualenv
outside the repository, runs a job (with the Azure ML stand-ins) and serves the dashboard.

The wheel is built offline (``--no-build-isolation`` with the setuptools of the test's own
environment) and installed without its dependencies; the fresh environment sees those through
a path file pointing at the test environment's site-packages, so nothing is downloaded.
"""

from __future__ import annotations

import os
import re
import shutil
import site
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# the package's files: what `pip install .` reads (a copy, so the build writes nothing here)
SOURCES = ["pyproject.toml", "README.md", "LICENSE", "src"]

SCRIPT = """
from azureml.core import Run          # the Azure ML stand-ins, from the installed package

def init():
    global context
    context = Run.get_context()

def run(mini_batch):
    return [f"{context.id} {open(path).read()}" for path in mini_batch]
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtualenv outside the repository with the built wheel installed; its bin/."""
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(ROOT / name, source / name)
    dist = work / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-index",
                    "--no-build-isolation", str(source), "-w", str(dist)],
                   check=True, cwd=work, timeout=300)
    (wheel,) = dist.glob("parallelrun-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
    assert "parallelrun/ui/static/app.js" in names
    assert "parallelrun/compat/modules/azureml/core/run.py" in names
    assert b"\nLicense-Expression: MIT\n" in metadata    # the SPDX form, not the deprecated table
    venv = work / "venv"
    base_python = Path(sys.base_prefix) / "bin" / "python3"
    subprocess.run([str(base_python), "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    (venv_site,) = venv.glob("lib/python*/site-packages")
    # the dependencies, from the test environment, after the fresh site-packages on sys.path
    (venv_site / "test-dependencies.pth").write_text(
        "\n".join(site.getsitepackages()) + "\n", encoding="utf-8")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                    "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, timeout=300)
    return venv / "bin"


def in_venv(bin_dir: Path, *args: str, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(cwd), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=180, **kwargs)


def test_the_installed_package_is_the_wheel_not_the_repository(installed, tmp_path):
    where = in_venv(installed, "python", "-c", "import parallelrun; print(parallelrun.__file__)",
                    cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(installed.parent)
    for command in (["parallelrun"], ["python", "-m", "parallelrun"]):
        version = in_venv(installed, *command, "--version", cwd=tmp_path)
        assert version.returncode == 0, version.stderr
        assert version.stdout.startswith("parallelrun, version ")


def test_the_installed_command_runs_a_job_with_the_azureml_stand_ins(installed, tmp_path):
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "score.py").write_text(SCRIPT, encoding="utf-8")
    (tmp_path / "data").mkdir()
    for i in range(4):
        (tmp_path / "data" / f"{i}.txt").write_text(str(i), encoding="utf-8")
    result = in_venv(installed, "parallelrun", "run", "--source-directory", "scripts",
                     "--entry-script", "score.py", "--input", "data/*.txt", "--output", "out",
                     "--mini-batch-size", "2", "--process-count-per-node", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = (tmp_path / "out" / "parallel_run_step.txt").read_text().split("\n")
    assert sorted(row.split()[-1] for row in rows if row) == ["0", "1", "2", "3"]


def test_the_installed_command_serves_the_dashboard_and_its_assets(installed, tmp_path):
    created = in_venv(installed, "parallelrun", "workspace", "create", "packaged", "--workspace",
                      "ws", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    env = {**os.environ, "HOME": str(tmp_path)}
    server = subprocess.Popen([str(installed / "parallelrun"), "ui", "--workspace", "ws",
                               "--port", "0"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            found = re.match(r"URL: (http://127\.0\.0\.1:\d+/?)", line)
            url = found and found.group(1).rstrip("/")
        assert url, "the dashboard printed no URL"
        page = _get_when_up(url + "/")
        assert "<script src=\"/static/app.js\"" in page
        assert "function" in _get_when_up(url + "/static/app.js")
    finally:
        server.terminate()
        server.wait(timeout=30)


def _get_when_up(url: str) -> str:
    """The body of ``url``, retried while the server is still starting (its URL is printed
    just before it listens)."""
    for _ in range(100):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode("utf-8")
        except (ConnectionError, urllib.error.URLError):
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer")
