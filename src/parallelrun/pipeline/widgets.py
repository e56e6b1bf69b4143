"""``RunDetails(run).show()``: the original document's notebook widget, in its simplest form.

In a notebook it shows an HTML table of the run's steps (status, counts, time); elsewhere the
same as text. It is a snapshot: call ``show()`` again, or use
``run.wait_for_completion(show_output=True)`` for a live view.
"""

from __future__ import annotations

import html
from typing import Any

from parallelrun.pipeline.watch import step_summary


class RunDetails:
    """Example (the original document's code)::

        RunDetails(pipeline_run).show()
    """

    def __init__(self, run_instance: Any):
        self.run = run_instance

    def _rows(self) -> list[dict]:
        store = self.run._store
        run_id = getattr(self.run, "pipeline_run_id", self.run.id)
        return store.steps(run_id)

    def _text(self) -> str:
        record = self.run._store.run(getattr(self.run, "pipeline_run_id", self.run.id))
        lines = [f"Run {record['id']} ({record['experiment']}): {self.run.get_status()}"]
        lines += ["  " + step_summary(row) for row in self._rows()]
        return "\n".join(lines)

    def _html(self) -> str:
        cells = []
        for row in self._rows():
            items = f"{row['items_succeeded']} / {row['items_failed']}" if row["kind"] == "parallel" else ""
            batches = (f"{row['minibatches_succeeded'] + row['minibatches_failed']}/"
                       f"{row['minibatches_total']}") if row["kind"] == "parallel" else ""
            cells.append(f"<tr><td>{html.escape(row['name'])}</td><td>{row['status']}</td>"
                         f"<td>{batches}</td><td>{items}</td>"
                         f"<td>{'reused' if row.get('reused_from') else ''}</td></tr>")
        return ("<table><tr><th>step</th><th>status</th><th>mini-batches</th>"
                "<th>items ok / failed</th><th></th></tr>" + "".join(cells) + "</table>")

    def show(self) -> None:
        """Display the run's state (HTML in a notebook, text elsewhere)."""
        try:
            from IPython import get_ipython
            from IPython.display import HTML, display

            if get_ipython() is not None:
                display(HTML(f"<b>{html.escape(self.run.id)}</b>: {self.run.get_status()}"
                             + self._html()))
                return
        except ImportError:
            pass
        print(self._text())
