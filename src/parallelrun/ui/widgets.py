"""``RunDetails(run).show()``: a live view of a run in a notebook (the name of Azure ML's
``azureml.widgets.RunDetails``).

With ipywidgets installed it is an ``ipywidgets.HTML`` updated in place; without, a plain HTML
display (``IPython.display``) refreshed through its display id. Either way a background thread
re-reads the run from the workspace catalog every ``refresh`` seconds until the run ends, so
the notebook stays usable meanwhile. Outside IPython, ``show()`` prints the same as text once.

It shows each step: status, a progress bar, mini-batches and items done/failed/retried, items/s,
ETA, worker activity, the failures grouped by exception type, and the first error of a failed
step. The web stack is not needed (``parallelrun ui`` is the full dashboard).

Example (the original document's code)::

    from parallelrun import RunDetails
    RunDetails(pipeline_run).show()
"""

from __future__ import annotations

import html
import os
import threading
from typing import Any, Callable

from parallelrun.engine.logs import FAILURES_FILE
from parallelrun.statuses import RunStatus
from parallelrun.ui.failures import IndexCache
from parallelrun.ui.state import WorkspaceView, inside, is_terminal

_COLOURS = {RunStatus.FINISHED: "#1a7f37", RunStatus.FAILED: "#c62828",
            RunStatus.RUNNING: "#1769d1", RunStatus.CANCELED: "#b26a00"}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(max(0, seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds}s"


def _badge(status: str) -> str:
    colour = _COLOURS.get(status, "#8a94a6")
    return (f'<span style="background:{colour};color:#fff;border-radius:9px;padding:1px 8px;'
            f'font-size:12px;font-weight:600">{html.escape(status)}</span>')


def _bar(done: int, failed: int, total: int) -> str:
    whole = total if total > 0 else max(done, 1)
    ok = min(100.0, max(0.0, 100.0 * (done - failed) / whole))
    bad = min(100.0 - ok, max(0.0, 100.0 * failed / whole))
    return ('<div style="position:relative;height:10px;width:160px;background:#e8edf3;'
            'border-radius:5px;overflow:hidden">'
            f'<div style="position:absolute;left:0;top:0;bottom:0;width:{ok:.1f}%;'
            'background:#1a7f37"></div>'
            f'<div style="position:absolute;left:{ok:.1f}%;top:0;bottom:0;width:{bad:.1f}%;'
            'background:#c62828"></div></div>')


class RunDetails:
    """A live view of a run (a PipelineRun, or a StepRun: then only that step).

    Example::

        details = RunDetails(pipeline_run)
        details.show()            # returns at once; the view updates until the run ends
        details.wait()            # optional: block until it has ended
    """

    def __init__(self, run_instance: Any, refresh: float = 1.0):
        self.run = run_instance
        self.refresh = refresh
        self.run_id = getattr(run_instance, "pipeline_run_id", None) or run_instance.id
        self.only_step = run_instance.id if hasattr(run_instance, "pipeline_run_id") else None
        self.view = WorkspaceView(run_instance.workspace)
        self._failures = IndexCache(size=16)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: the ipywidgets.HTML shown, when ipywidgets is there
        self.widget: Any = None
        self.mode: str | None = None

    # what is shown ------------------------------------------------------------------------
    def snapshot(self) -> dict:
        """The run and the steps to show, with each step's failures by exception type."""
        run = self.view.run(self.run_id)
        steps = [s for s in run["steps"] if self.only_step in (None, s["id"])]
        for step in steps:
            detail = self.view.step(step["id"]) if step["kind"] == "parallel" else None
            step["detail"] = detail
            step["errors"] = []
            row_log = self.view.step_row(step["id"]).get("log_dir") if detail else None
            if row_log and inside(row_log, self.view.ws.path) and \
                    os.path.exists(os.path.join(row_log, *FAILURES_FILE.split("/"))):
                index = self._failures.get(row_log)
                index.refresh()
                step["errors"] = index.groups()[:5]
        run["steps"] = steps
        return run

    def render_html(self, snap: dict | None = None) -> str:
        """The view as self-contained HTML (inline styles: notebooks load no stylesheet)."""
        snap = snap or self.snapshot()
        cell = 'style="padding:4px 8px;border-bottom:1px solid #e3e7ee;text-align:{}"'
        left, right = cell.format("left"), cell.format("right")
        rows = []
        for step in snap["steps"]:
            d = step.get("detail")
            parallel = d is not None
            done = step["minibatches_succeeded"] + step["minibatches_failed"]
            eta = _duration(d["eta_seconds"]) if parallel and step["status"] == RunStatus.RUNNING \
                and d.get("eta_seconds") is not None else "-"
            counts = ["", "", "", "", "", ""]
            if parallel:
                counts = [_bar(done, step["minibatches_failed"], step["minibatches_total"]),
                          f"{done}/{step['minibatches_total']}", str(step["items_succeeded"]),
                          str(step["items_failed"]), str(step["retries"]),
                          f"{step['items_per_second']:.1f}"]
            rows.append(
                f"<tr><td {left}><b>{html.escape(step['name'])}</b></td>"
                f"<td {left}>{_badge(step['status'])}</td><td {left}>{counts[0]}</td>"
                + "".join(f"<td {right}>{value}</td>" for value in counts[1:])
                + f"<td {right}>{eta}</td><td {right}>{_duration(step['duration'])}</td></tr>")
            notes = []
            if parallel and step["status"] == RunStatus.RUNNING and d["workers"]:
                busy = [f"{w['process']}: mini-batch {w['current']}" for w in d["workers"]
                        if w.get("current") is not None]
                notes.append(f"workers {d['workers_ready']}/{d['workers_total']} ready"
                             + (f"; {', '.join(busy[:8])}" if busy else "; idle"))
            for group in step.get("errors") or []:
                first = group.get("first") or {}
                notes.append(f"<span style='color:#c62828'>{html.escape(group['type'])}</span> "
                             f"x{group['tries']} ({group['minibatches_failed']} mini-batches "
                             f"failed, {group['retried']} retried), e.g. "
                             f"<code>{html.escape(str(first.get('message', ''))[:200])}</code>")
            if step.get("error") and step["status"] != RunStatus.FINISHED:
                notes.append("<pre style='background:#fff4f4;color:#7a1212;padding:6px;"
                             f"margin:2px 0;white-space:pre-wrap'>{html.escape(step['error'])}</pre>")
            if notes:
                rows.append(f"<tr><td></td><td colspan='9' style='padding:0 8px 6px;color:#556;"
                            f"font-size:12px'>{'<br>'.join(notes)}</td></tr>")
        head = "".join(f"<th {right if i > 2 else left}>{name}</th>" for i, name in enumerate(
            ["step", "status", "progress", "mini-batches", "items ok", "items failed",
             "retried", "items/s", "ETA", "duration"]))
        error = (f"<pre style='background:#fff4f4;color:#7a1212;padding:6px;white-space:pre-wrap'>"
                 f"{html.escape(snap['error'])}</pre>" if snap.get("error") else "")
        return (
            "<div style='font-family:system-ui,sans-serif;font-size:13px' class='parallelrun-run'>"
            f"<div style='margin-bottom:6px'><b>Run</b> <code>{html.escape(snap['id'])}</code> "
            f"{_badge(snap['status'])} &nbsp; experiment <b>{html.escape(snap['experiment'])}</b>"
            f" &nbsp; {_duration(snap['duration'])} &nbsp; {snap['items_succeeded']} items "
            f"succeeded, {snap['items_failed']} failed, {snap['items_per_second']:.1f} items/s"
            "</div>"
            f"<table style='border-collapse:collapse'><tr>{head}</tr>{''.join(rows)}</table>"
            f"{error}</div>")

    def render_text(self, snap: dict | None = None) -> str:
        snap = snap or self.snapshot()
        lines = [f"Run {snap['id']} ({snap['experiment']}): {snap['status']}, "
                 f"{_duration(snap['duration'])}"]
        for step in snap["steps"]:
            text = f"  {step['name']}: {step['status']}"
            if step["kind"] == "parallel":
                done = step["minibatches_succeeded"] + step["minibatches_failed"]
                text += (f"; mini-batches {done}/{step['minibatches_total']}; items "
                         f"{step['items_succeeded']} succeeded, {step['items_failed']} failed; "
                         f"{step['retries']} retried; {step['items_per_second']:.1f} items/s")
            lines.append(text)
            for group in step.get("errors") or []:
                lines.append(f"    {group['type']} x{group['tries']} "
                             f"({group['minibatches_failed']} mini-batches failed)")
            if step.get("error") and step["status"] != RunStatus.FINISHED:
                lines.append("    error: " + step["error"].splitlines()[0])
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return self.render_html()

    # showing --------------------------------------------------------------------------------
    def show(self, use_widgets: bool | None = None) -> None:
        """Display the view and keep it updated until the run ends (returns at once).

        ``use_widgets=False`` forces the plain HTML display even when ipywidgets is there.
        """
        try:
            from IPython import get_ipython
            from IPython.display import HTML, display
        except ImportError:
            get_ipython = None  # type: ignore[assignment]
        if get_ipython is None or get_ipython() is None:
            self.mode = "text"
            print(self.render_text())
            return
        snap = self.snapshot()
        widgets = None
        if use_widgets is not False:
            try:
                import ipywidgets as widgets
            except ImportError:
                widgets = None
        if widgets is not None:
            self.mode = "widget"
            self.widget = widgets.HTML(value=self.render_html(snap))
            display(self.widget)
            update: Callable[[str], None] = lambda value: setattr(self.widget, "value", value)
        else:
            self.mode = "html"
            handle = display(HTML(self.render_html(snap)), display_id=True)
            update = lambda value: handle.update(HTML(value))
        if not is_terminal(snap["status"]):
            self._stop.clear()
            self._thread = threading.Thread(target=self._follow, args=(update,), daemon=True,
                                            name="parallelrun-run-details")
            self._thread.start()

    def _follow(self, update: Callable[[str], None]) -> None:
        last = None
        while not self._stop.wait(self.refresh):
            try:
                snap = self.snapshot()
                value = self.render_html(snap)
            except Exception as exc:  # noqa: BLE001 - a busy catalog: show why, try again
                value, snap = f"<pre>{html.escape(str(exc))}</pre>", None
            if value != last:
                update(value)
                last = value
            if snap is not None and is_terminal(snap["status"]):
                return

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the live view has shown the end of the run; False on timeout."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self) -> None:
        """Stop updating the view."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
