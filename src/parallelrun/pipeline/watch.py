"""What ``wait_for_completion(show_output=True)`` and ``parallelrun runs watch`` show: the run's
log lines as they come, and a progress bar per running ParallelRunStep fed from the counts the
runner writes to the catalog (a plain progress line every 10 s when not on a terminal).

The pipeline layer sits below the terminal layer, so this is its own small rich display rather
than the CLI's ``TerminalProgress``; both show the same counts.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from parallelrun.engine.logs import progress_line
from parallelrun.engine.progress import JobProgress
from parallelrun.pipeline.run_folder import RUN_LOG
from parallelrun.pipeline.step_counts import StepCounts
from parallelrun.statuses import TERMINAL_STATUSES, RunStatus

_PROGRESS_FIELDS = {f.name for f in dataclasses.fields(JobProgress)} - {"workers"}
PLAIN_EVERY = 10.0


def describe(progress: JobProgress) -> str:
    """The bar's text: mini-batches, items, failures, retries, rate, ETA."""
    total = str(progress.planned_minibatches) if progress.planning_done else \
        f"{progress.planned_minibatches}+"
    eta = progress.eta_seconds()
    failed = progress.items_failed
    return (f"mini-batches {progress.minibatches_done}/{total}  items {progress.items_done}  "
            f"[{'red' if failed else 'green'}]failed {failed}[/]  retried {progress.retries}  "
            f"{progress.items_per_second():,.1f} items/s"
            + (f"  ETA {int(eta) // 60}:{int(eta) % 60:02d}" if eta is not None else ""))


class RunWatcher:
    """Call :meth:`update` every so often while the run goes on, :meth:`close` at the end."""

    def __init__(self, run: Any, console: Console | None = None):
        self.run = run
        self.console = console or Console(highlight=False)
        record = run._store.run(run.id)
        self.log_path = os.path.join(record["run_dir"], RUN_LOG)
        self.offset = 0
        #: step run id -> [its JobProgress, its bar task, when a plain line was printed, name]
        self.steps: dict[str, list] = {}
        self.bar: Progress | None = None
        self.console.print(f"RunId: {run.id}")
        self.console.print(f"Experiment: {record['experiment']}   workspace: "
                           f"{run.workspace.path}", soft_wrap=True)
        self.console.print(f"Run folder: {record['run_dir']}", soft_wrap=True)
        self.console.print("")

    def update(self) -> None:
        self._print_new_lines()
        for row in self.run._store.steps(self.run.id):
            if row["kind"] != "parallel":
                continue
            known = self.steps.get(row["id"])
            if known is None:
                if row["status"] != RunStatus.RUNNING or not row.get("progress"):
                    continue
                known = self._start(row)
            progress = known[0]
            _fill(progress, row)
            if row["status"] in TERMINAL_STATUSES:
                progress.status = row["status"]
                progress.finished_at = row.get("finished_at") or time.time()
            self._show(row, known)
            if row["status"] in TERMINAL_STATUSES:
                self._finish(row["id"])

    def _start(self, row: dict) -> list:
        progress = JobProgress(started_at=row.get("started_at") or time.time())
        task = None
        if self.console.is_terminal:
            if self.bar is None:
                self.bar = Progress(TextColumn("[bold]{task.fields[step]}"), BarColumn(),
                                    TextColumn("{task.description}"), TimeElapsedColumn(),
                                    console=self.console, transient=False)
                self.bar.start()
            task = self.bar.add_task("", total=None, step=row["name"])
        known = [progress, task, 0.0, row["name"]]
        self.steps[row["id"]] = known
        return known

    def _show(self, row: dict, known: list) -> None:
        progress, task, last, name = known
        if task is not None and self.bar is not None:
            self.bar.update(task, description=describe(progress),
                            completed=progress.minibatches_done,
                            total=progress.planned_minibatches if progress.planning_done else None)
        elif time.monotonic() - last >= PLAIN_EVERY or row["status"] in TERMINAL_STATUSES:
            self.console.print(f"[{name}] {progress_line(progress)}", markup=False,
                               soft_wrap=True)
            known[2] = time.monotonic()

    def _finish(self, step_run_id: str) -> None:
        self.steps.pop(step_run_id, None)
        if not self.steps and self.bar is not None:
            self.bar.stop()
            self.bar = None

    def _print_new_lines(self) -> None:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except OSError:
            return
        end = data.rfind(b"\n")
        if end < 0:
            return
        self.offset += end + 1
        for line in data[:end].decode("utf-8", errors="replace").splitlines():
            self.console.print(line, markup=False, soft_wrap=True)

    def close(self) -> None:
        self.update()
        for step_run_id in list(self.steps):
            self._finish(step_run_id)
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
        record = self.run._store.run(self.run.id)
        self.console.print("")
        took = (f" in {record['finished_at'] - record['started_at']:.1f} s"
                if record.get("finished_at") and record.get("started_at") else "")
        self.console.print(f"Run {record['id']}: {record['status']}{took}", markup=False)
        for row in self.run._store.steps(self.run.id):
            self.console.print("  " + step_summary(row), markup=False, soft_wrap=True)
        if record.get("error"):
            self.console.print(f"error: {record['error']}", markup=False, soft_wrap=True)


def _fill(progress: JobProgress, row: dict) -> None:
    snapshot = row.get("progress") or {}
    for key, value in snapshot.items():
        if key in _PROGRESS_FIELDS and key not in ("started_at", "finished_at", "status"):
            setattr(progress, key, value)
    StepCounts.of_row(row).fill(progress)


def step_summary(row: dict) -> str:
    """One line about a step run: status, counts, time, reuse, the first line of its error."""
    parts = [f"{row['name']}: {row['status']}"]
    if row["kind"] == "parallel" and (row["minibatches_total"] or row["items_succeeded"]):
        parts.append(f"mini-batches {row['minibatches_succeeded'] + row['minibatches_failed']}/"
                     f"{row['minibatches_total']}, items {row['items_succeeded']} succeeded "
                     f"{row['items_failed']} failed")
    if row.get("started_at") and row.get("finished_at"):
        parts.append(f"{row['finished_at'] - row['started_at']:.1f} s")
    if row.get("reused_from"):
        parts.append(f"reused step run {row['reused_from']}")
    if row.get("error") and row["status"] != RunStatus.FINISHED:
        parts.append(str(row["error"]).strip().splitlines()[0])
    return "; ".join(parts)
