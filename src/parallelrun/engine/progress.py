"""One progress interface for everyone who watches a job: the terminal, the logs, the dashboard.

The scheduler updates a :class:`JobProgress` and tells each :class:`ProgressListener`; the engine
itself never prints. Listeners must be quick: they are called on the scheduler's thread.
"""

from __future__ import annotations

import dataclasses
import time

from parallelrun.statuses import RunStatus


@dataclasses.dataclass
class MiniBatchRecord:
    """One finished try of one mini-batch (a row of processed_mini-batches.csv)."""

    index: int
    attempt: int
    node_name: str
    process_name: str
    started_at: float
    finished_at: float
    items: int
    succeeded: int
    run_seconds: float
    status: str                     # an OutcomeStatus
    final: bool                     # True when this try decides the mini-batch's outcome
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    item_names: str = ""            # what the mini-batch held, filled in for failed tries only

    @property
    def failed(self) -> int:
        return max(0, self.items - self.succeeded)

    @property
    def elapsed(self) -> float:
        return self.finished_at - self.started_at


@dataclasses.dataclass
class JobProgress:
    """Live counters of a job, read by listeners and by the terminal's refresh thread."""

    started_at: float = dataclasses.field(default_factory=time.time)
    planned_minibatches: int = 0
    planned_items: int = 0          # known for files; tables count rows as they are read
    planning_done: bool = False
    minibatches_succeeded: int = 0
    minibatches_failed: int = 0
    minibatches_resumed: int = 0    # committed by an earlier attempt of this job
    items_succeeded: int = 0
    items_failed: int = 0
    retries: int = 0
    workers_total: int = 0
    workers_ready: int = 0
    worker_restarts: int = 0
    finished_at: float | None = None
    status: str = RunStatus.RUNNING
    #: per worker: its current mini-batch index (None when idle) and counts, for activity views
    workers: dict[str, dict] = dataclasses.field(default_factory=dict)

    @property
    def minibatches_done(self) -> int:
        return self.minibatches_succeeded + self.minibatches_failed

    @property
    def items_done(self) -> int:
        return self.items_succeeded + self.items_failed

    @property
    def elapsed(self) -> float:
        return (self.finished_at or time.time()) - self.started_at

    def items_per_second(self) -> float:
        elapsed = self.elapsed
        return self.items_done / elapsed if elapsed > 0 else 0.0

    def eta_seconds(self) -> float | None:
        """Seconds left at the rate so far; None until planning is done and work has started."""
        done = self.minibatches_done - self.minibatches_resumed
        if not self.planning_done or done <= 0:
            return None
        left = self.planned_minibatches - self.minibatches_done
        return left * self.elapsed / done

    def snapshot(self) -> dict:
        data = dataclasses.asdict(self)
        data.update(minibatches_done=self.minibatches_done, items_done=self.items_done,
                    items_per_second=self.items_per_second(), eta_seconds=self.eta_seconds(),
                    elapsed=self.elapsed)
        return data


class ProgressListener:
    """Override what you need; every method does nothing by default."""

    def on_start(self, progress: JobProgress) -> None:
        pass

    def on_record(self, progress: JobProgress, record: MiniBatchRecord) -> None:
        """A try finished (``record.final`` says whether it decided the mini-batch)."""

    def on_tick(self, progress: JobProgress) -> None:
        """Called about once a second while the job runs."""

    def on_end(self, progress: JobProgress, result: object) -> None:
        pass
