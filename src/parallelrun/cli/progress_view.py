"""Progress on the terminal: a live view on a TTY, a plain labelled line every few seconds
elsewhere.

The live view is three short lines (the bar with the mini-batch count; the items; the time and
rate), not one row of columns: a row of columns shrinks the bar to nothing and cuts its text at
80 columns, where three lines each fit whole. In a pipe or a file the view is the log's own
progress line (``engine.logs.progress_line``), printed every ``plain_every`` seconds and at the
end. The end of a job (status and :meth:`JobResult.summary`, failures included) is printed by
the command that ran it, after this view has stopped.
"""

from __future__ import annotations

import sys
import threading

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from parallelrun.engine.logs import progress_line
from parallelrun.engine.progress import JobProgress, ProgressListener


def clock(seconds: float | None) -> str:
    """``H:MM:SS`` of a duration; ``-:--:--`` when unknown."""
    if seconds is None:
        return "-:--:--"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def render(progress: JobProgress) -> Group:
    """The live view of ``progress``: three lines that each fit in 80 columns::

    ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━  mini-batches 12/40 (30%)
    items: 120 succeeded, 3 failed; retried: 1; workers: 2/2
    elapsed: 0:00:12; rate: 45.2 items/s; ETA: 0:00:30
    """
    done = progress.minibatches_done
    if progress.planning_done:
        total = progress.planned_minibatches
        share = f" ({100 * done // total}%)" if total else ""
        count = f"mini-batches {done}/{total}{share}"
    else:
        total = None  # the bar pulses while the inputs are still being listed
        count = f"mini-batches {done}/{progress.planned_minibatches}+ (listing)"
    top = Table.grid(expand=True, padding=(0, 0, 0, 2))
    top.add_column(ratio=1)
    top.add_column(no_wrap=True, justify="right")
    # the bar's own colours: rich's default pink reads as "failed" next to a red failure count
    bar = ProgressBar(total=total, completed=done, complete_style="cyan", finished_style="green")
    top.add_row(bar, Text(count, style="bold"))
    failed = progress.items_failed
    items = Text.assemble(
        "items: ", f"{progress.items_succeeded:,} succeeded, ",
        (f"{failed:,} failed", "bold red" if failed else ""),
        f"; retried: {progress.retries:,}; "
        f"workers: {progress.workers_ready}/{progress.workers_total}")
    timing = Text(f"elapsed: {clock(progress.elapsed)}; rate: {progress.items_per_second():,.1f} "
                  f"items/s; ETA: {clock(progress.eta_seconds())}")
    return Group(top, items, timing)


class TerminalProgress(ProgressListener):
    """Shows a job's progress (mini-batches, items, failures, retries, elapsed, rate, ETA) while
    it runs: live on a terminal, a line every ``plain_every`` seconds in a pipe."""

    def __init__(self, console: Console | None = None, every: float = 0.25,
                 plain_every: float = 10.0):
        self.console = console or Console(stderr=True)
        self.every = every if self.console.is_terminal else plain_every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: Live | None = None

    def on_start(self, progress: JobProgress) -> None:
        if self.console.is_terminal:
            self._live = Live(console=self.console, get_renderable=lambda: render(progress),
                              refresh_per_second=1 / self.every, transient=False)
            self._live.start()
            return
        self._thread = threading.Thread(target=self._print_lines, args=(progress,), daemon=True,
                                        name="parallelrun-progress")
        self._thread.start()

    def _print_lines(self, progress: JobProgress) -> None:
        while not self._stop.wait(self.every):
            print(progress_line(progress), file=sys.stderr, flush=True)

    def on_end(self, progress: JobProgress, result) -> None:
        self._stop.set()
        if self._live is not None:
            self._live.stop()  # draws the last counts and leaves them on the screen
            return
        if self._thread is not None:
            self._thread.join(timeout=5)
        print(progress_line(progress), file=sys.stderr, flush=True)
