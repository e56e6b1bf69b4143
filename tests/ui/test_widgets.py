"""``RunDetails(run).show()``: live in a notebook (an ipywidgets.HTML updated in place, or a
plain HTML display refreshed by its display id), text elsewhere. The notebook is a real
IPython shell in this process; what it displays is collected by an IPython display publisher."""

from __future__ import annotations

import subprocess
import sys

import pytest
from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import InteractiveShell

from parallelrun import RunDetails

from fixtures.ui_server import output_rows, submit, wait_for


class Collected(DisplayPublisher):
    """Keeps what the shell displays: (html, whether it updated an earlier display)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.shown: list[tuple[str, bool]] = []

    def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kw):
        self.shown.append((data.get("text/html") or data.get("text/plain", ""), update))


@pytest.fixture
def notebook():
    shell = InteractiveShell.instance()
    collected = Collected(shell=shell)
    previous, shell.display_pub = shell.display_pub, collected
    yield collected
    shell.display_pub = previous
    InteractiveShell.clear_instance()


def test_widget_updates_in_place_until_the_run_ends(ui_workspace, notebook):
    run = submit(ui_workspace.ws, ui_workspace.root, experiment="widget", delay=0.1)
    details = RunDetails(run, refresh=0.2)
    details.show()
    assert details.mode == "widget"
    values = [details.widget.value]
    details.widget.observe(lambda change: values.append(change["new"]), names="value")
    assert details.wait(timeout=120)
    step = run.find_step_run("score-files")[0]
    final = values[-1]
    assert "Finished" in final and "score-files" in final
    assert f"<td style=\"padding:4px 8px;border-bottom:1px solid #e3e7ee;text-align:right\">{len(output_rows(step))}</td>" in final
    assert "ValueError</span> x8 (4 mini-batches failed, 4 retried)" in final
    assert len(set(values)) >= 3  # it changed while the run went on, not just at the end
    assert any("Running" in v for v in values)


def test_plain_html_display_is_refreshed_without_ipywidgets(ui_workspace, notebook):
    run = submit(ui_workspace.ws, ui_workspace.root, experiment="widget-html", delay=0.1)
    details = RunDetails(run, refresh=0.2)
    details.show(use_widgets=False)
    assert details.mode == "html"
    assert details.wait(timeout=120)
    first, updated = notebook.shown[0], notebook.shown[1:]
    assert first[1] is False and "parallelrun-run" in first[0]
    assert updated and all(update for _, update in updated)
    assert "Finished" in updated[-1][0] and "22</td>" in updated[-1][0]


def test_a_finished_run_is_shown_once_and_a_step_run_alone(ui_workspace, notebook):
    details = RunDetails(ui_workspace.run)
    details.show()
    assert details.wait(timeout=1) and "Finished" in details.widget.value
    step_only = RunDetails(ui_workspace.step)
    html = step_only.render_html()
    assert "score-files" in html and ui_workspace.run_id in html
    assert step_only._repr_html_() == html


def test_outside_a_notebook_it_prints_text(ui_workspace):
    code = ("from parallelrun import Workspace, Run, RunDetails\n"
            f"ws = Workspace({str(ui_workspace.root)!r})\n"
            f"RunDetails(Run.get(ws, {ui_workspace.run_id!r})).show()\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"Run {ui_workspace.run_id} (scoring): Finished")
    assert "score-files: Finished; mini-batches 15/15; items 22 succeeded, 8 failed" in lines[1]
    assert "ValueError x8 (4 mini-batches failed)" in lines[2]


def test_import_parallelrun_stays_light():
    code = ("import sys, parallelrun\n"
            "parallelrun.RunDetails\n"
            "heavy = [m for m in ('fastapi', 'uvicorn', 'starlette', 'ipywidgets') if m in sys.modules]\n"
            "print(heavy)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.strip() == "[]", result.stderr
