"""Shared test fixtures. Fixture plugins of each area (servers, clusters) are listed here."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

# Each area's heavier fixtures (Azurite, moto, Ray, Chromium) live in tests/fixtures/ as plugins.
pytest_plugins: list[str] = ["fixtures.ray_cluster", "fixtures.storage_servers", "fixtures.ui_server"]


@pytest.fixture(scope="session", autouse=True)
def default_workspace_in_tmp(tmp_path_factory):
    """Jobs run outside a workspace are recorded in the default workspace: a temporary one here
    (PARALLELRUN_HOME, which the CLI processes tests start inherit), never ~/.parallelrun."""
    old = os.environ.get("PARALLELRUN_HOME")
    os.environ["PARALLELRUN_HOME"] = str(tmp_path_factory.mktemp("parallelrun-home"))
    yield
    if old is None:
        os.environ.pop("PARALLELRUN_HOME", None)
    else:
        os.environ["PARALLELRUN_HOME"] = old


@pytest.fixture
def make_script(tmp_path: Path):
    """Write an entry script into ``tmp_path/scripts`` and return its folder.

    Example: ``src = make_script("def init(): pass\\ndef run(mb): return mb")``
    """

    def write(body: str, name: str = "score.py", folder: str = "scripts") -> Path:
        directory = tmp_path / folder
        directory.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(textwrap.dedent(body), encoding="utf-8")
        return directory

    return write


@pytest.fixture
def make_files(tmp_path: Path):
    """Create ``count`` small text files ``item_0000.txt``... holding their number; returns the folder."""

    def write(count: int, folder: str = "data", suffix: str = ".txt") -> Path:
        directory = tmp_path / folder
        directory.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            (directory / f"item_{i:04d}{suffix}").write_text(str(i), encoding="utf-8")
        return directory

    return write
