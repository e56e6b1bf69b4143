"""``RunDetails(run).show()``: live in a notebook (an ipywidgets.HTML updated in place, or a
plain HTML display refreshed by its display id), text elsewhere. The notebook is a real
IPython shell in this process; what it displays is collected by an IPython display publisher."""

from __future__ import annotations

import subprocess
import sys
from html.parser import HTMLParser

import pytest
from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import InteractiveShell

from parallelrun import RunDetails

from fixtures.ui_server import SCORE, output_rows, submit, wait_for


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


class _Cells(HTMLParser):
    """The rows of an HTML table as cell texts, and the whole text without its tags."""

    def __init__(self, markup: str):
        super().__init__()
        self.rows: list[list[str]] = []
        self.text: list[str] = []
        self._cell: list[str] | None = None
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def step_row(markup: str, name: str) -> dict[str, str]:
    """The widget's row of step ``name``, by column heading."""
    cells = _Cells(markup)
    heading = next(row for row in cells.rows if row and row[0] == "step")
    row = next(row for row in cells.rows if row and row[0] == name)
    return dict(zip(heading, row))


#: the ui_workspace's scoring script, whose mini-batches from item 10 on wait for the file GATE:
#: the run stays Running, part done, until the test has seen that in the widget
GATED_SCORE = SCORE.replace("    rows = []\n", """    rows = []
    gate = os.environ["GATE"]
    deadline = time.monotonic() + 120   # a test that never opens the gate fails, not hangs
    while int(open(mini_batch[0]).read()) >= 10 and not os.path.exists(gate) \\
            and time.monotonic() < deadline:
        time.sleep(0.02)
""")


def test_widget_updates_in_place_until_the_run_ends(ui_workspace, notebook, tmp_path):
    from parallelrun import (Dataset, Experiment, ParallelRunConfig, ParallelRunStep, Pipeline,
                             PipelineData)

    assert GATED_SCORE != SCORE
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "score.py").write_text(GATED_SCORE, encoding="utf-8")
    gate = tmp_path / "gate"
    ws = ui_workspace.ws
    config = ParallelRunConfig(
        source_directory=str(tmp_path / "scripts"), entry_script="score.py", mini_batch_size="2",
        error_threshold=-1, output_action="append_row", process_count_per_node=2, run_max_try=2,
        environment_variables={"GATE": str(gate)})
    step = ParallelRunStep(name="score-files", parallel_run_config=config,
                           inputs=[Dataset.File.from_files(
                               path=str(ui_workspace.root / "data" / "*.txt")).as_named_input("numbers")],
                           output=PipelineData("scores", datastore=ws.get_default_datastore()),
                           allow_reuse=False)
    run = Experiment(ws, "widget").submit(Pipeline(workspace=ws, steps=[step]))
    details = RunDetails(run, refresh=0.2)
    try:
        details.show()
        assert details.mode == "widget"
        values = [details.widget.value]
        details.widget.observe(lambda change: values.append(change["new"]), names="value")

        def running_part_done():
            row = step_row(details.widget.value, "score-files")
            done, total = (int(n) for n in row["mini-batches"].split("/"))
            return row["status"] == "Running" and 0 < done < total and row
        seen_running = wait_for(running_part_done, timeout=120)
    finally:
        gate.touch()
    assert details.wait(timeout=120)
    step_run = run.find_step_run("score-files")[0]
    final = step_row(values[-1], "score-files")
    assert final["status"] == "Finished" and final["mini-batches"] == "15/15"
    assert (final["items ok"], final["items failed"], final["retried"]) == (
        str(len(output_rows(step_run))), "8", "4")
    assert "ValueError x8 (4 mini-batches failed, 4 retried)" in "".join(_Cells(values[-1]).text)
    # the same widget, its value replaced in place: displayed once, the running view among them
    assert len(notebook.shown) == 1
    assert any(step_row(v, "score-files") == seen_running for v in values)


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
