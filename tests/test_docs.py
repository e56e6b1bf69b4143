"""The documentation site (docs/, mkdocs.yml): it builds without a warning, its references cover
every public name, command and configuration field, it loads nothing from the internet, and a
stale name in a page breaks the build instead of misleading a reader."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import parallelrun
from parallelrun.config import ParallelRunConfig

ROOT = Path(__file__).resolve().parents[1]
MKDOCS = Path(sys.executable).with_name("mkdocs")

pytestmark = pytest.mark.skipif(not MKDOCS.exists(), reason="needs the docs extra: pip install -e '.[docs]'")


def build(project: Path, site: Path) -> subprocess.CompletedProcess:
    """``mkdocs build --strict`` of ``project``'s mkdocs.yml into ``site``."""
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    return subprocess.run([str(MKDOCS), "build", "--strict", "--site-dir", str(site)],
                          cwd=project, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    result = build(ROOT, site)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output, output
    return site


def test_every_public_name_is_in_the_api_reference(site):
    page = (site / "reference" / "api.html").read_text()
    missing = [name for name in parallelrun.__all__ if f'id="parallelrun.{name}"' not in page]
    assert not missing, f"add '::: parallelrun.<name>' to docs/reference/api.md for {missing}"


def test_every_command_is_in_the_cli_reference(site):
    sys.path.insert(0, str(ROOT / "docs" / "hooks"))
    try:
        import cli_reference
    finally:
        sys.path.remove(str(ROOT / "docs" / "hooks"))
    page = (site / "reference" / "cli.html").read_text()
    paths = [path for path, _ in cli_reference.commands()]
    assert len(paths) > 10
    for path in paths:
        name = " ".join(["parallelrun", *path])
        assert f"<code>{name}</code>" in page, name
        assert f"Usage: {name} " in page, name


def test_every_config_field_is_in_the_configuration_reference(site):
    page = (site / "reference" / "configuration.html").read_text()
    for field in dataclasses.fields(ParallelRunConfig):
        assert f'id="{field.name}"' in page, field.name
        help_text = field.metadata.get("help", "")
        assert help_text and help_text.split()[0] in page, field.name
    assert "<code>--error-threshold</code>" in page


def test_pages_load_nothing_from_the_internet(site):
    pages = list(site.rglob("*.html"))
    assert len(pages) >= 15
    remote = re.compile(r"""<(?:link|script|img|iframe)\b[^>]*\b(?:href|src)=["'](?:https?:)?//""")
    for page in pages:
        text = page.read_text()
        assert not remote.search(text), f"{page.relative_to(site)} loads {remote.search(text).group(0)}"
        assert "fonts.googleapis" not in text and "googletagmanager" not in text


def test_the_start_page_links_every_section(site):
    page = (site / "index.html").read_text()
    for target in ("getting-started.html", "concepts/mini-batches.html", "concepts/failures.html",
                   "migration/azureml-v1.html", "reference/cli.html", "reference/api.html",
                   "reference/configuration.html"):
        assert f'href="{target}"' in page, target


def test_a_stale_name_in_a_page_breaks_the_build(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(ROOT / "docs", project / "docs")
    shutil.copy(ROOT / "mkdocs.yml", project / "mkdocs.yml")
    (project / "src").symlink_to(ROOT / "src")
    api = project / "docs" / "reference" / "api.md"
    api.write_text(api.read_text().replace("::: parallelrun.run_job\n", "::: parallelrun.run_jobs\n"))
    start = project / "docs" / "getting-started.md"
    start.write_text(start.read_text() + "\n`parallelrun run --entry-scrpt score.py`\n\n"
                     "```bash\nparallelrun runz list\n```\n")
    result = build(project, tmp_path / "site")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "has no option --entry-scrpt" in output
    assert "no command 'runz'" in output
    assert "parallelrun.run_jobs" in output
