"""Progress on the terminal: a rich live bar on a TTY, a plain line every few seconds elsewhere."""

from __future__ import annotations

import sys
import threading
import time

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from parallelrun.engine.logs import progress_line
from parallelrun.engine.progress import JobProgress, ProgressListener


def _eta(progress: JobProgress) -> str:
    eta = progress.eta_seconds()
    if eta is None:
        return "ETA -:--:--"
    eta = int(eta)
    return f"ETA {eta // 3600}:{eta % 3600 // 60:02d}:{eta % 60:02d}"


def describe(progress: JobProgress) -> str:
    total = str(progress.planned_minibatches) if progress.planning_done else f"{progress.planned_minibatches}+ (listing)"
    failed = progress.items_failed
    return (f"mini-batches {progress.minibatches_done}/{total}  items {progress.items_done}"
            f"  [{'red' if failed else 'green'}]failed {failed}[/]  retried {progress.retries}"
            f"  {progress.items_per_second():,.1f} items/s  {_eta(progress)}")


class TerminalProgress(ProgressListener):
    """Shows a job's progress (mini-batches, items, failures, rate, ETA) while it runs."""

    def __init__(self, console: Console | None = None, every: float = 0.25, plain_every: float = 10.0):
        self.console = console or Console(stderr=True)
        self.every = every if self.console.is_terminal else plain_every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def on_start(self, progress: JobProgress) -> None:
        self._thread = threading.Thread(target=self._loop, args=(progress,), daemon=True,
                                        name="parallelrun-progress")
        self._thread.start()

    def _loop(self, progress: JobProgress) -> None:
        if not self.console.is_terminal:
            while not self._stop.wait(self.every):
                print(progress_line(progress), file=sys.stderr, flush=True)
            return
        bar = Progress(TextColumn("[bold]parallelrun"), BarColumn(), TextColumn("{task.description}"),
                       TimeElapsedColumn(), console=self.console, transient=False)
        with bar:
            task = bar.add_task(describe(progress), total=None)
            while True:
                stopping = self._stop.wait(self.every)
                bar.update(task, description=describe(progress), completed=progress.minibatches_done,
                           total=progress.planned_minibatches if progress.planning_done else None)
                if stopping:
                    break

    def on_end(self, progress: JobProgress, result) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if not self.console.is_terminal:
            print(progress_line(progress), file=sys.stderr, flush=True)
