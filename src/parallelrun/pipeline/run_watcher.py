"""The runner's watch thread: about once a second it writes the live counts of the running
ParallelRunSteps to the catalog (what ``get_details``, the CLI and the dashboard show while a
step runs) and reads the run's cancel flag from it (``Run.cancel()``, ``parallelrun run
cancel``), setting the runner's cancel event."""

from __future__ import annotations

import contextlib
import logging
import threading
import traceback
from collections.abc import Iterator

from parallelrun.engine.progress import JobProgress, ProgressListener
from parallelrun.pipeline.records import RunStore, progress_fields

FLUSH_EVERY = 1.0


class LiveStep(ProgressListener):
    """Holds a running ParallelRunStep's JobProgress for the watch thread."""

    def __init__(self, step_run_id: str):
        self.step_run_id = step_run_id
        self.progress: JobProgress | None = None

    def on_start(self, progress: JobProgress) -> None:
        self.progress = progress


class RunWatcher:
    """Live counts to the catalog and the cancel flag from it, for one run."""

    def __init__(self, store: RunStore, run_id: str, cancel: threading.Event,
                 log: logging.Logger):
        self.store = store
        self.run_id = run_id
        self.cancel = cancel
        self.log = log
        self._live: dict[str, LiveStep] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def track(self, step_run_id: str) -> Iterator[LiveStep]:
        """A listener for a step's job; its counts reach the catalog while the block runs."""
        live = LiveStep(step_run_id)
        with self._lock:
            self._live[step_run_id] = live
        try:
            yield live
        finally:
            with self._lock:
                self._live.pop(step_run_id, None)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """The watch thread, for the duration of the block."""
        stop = threading.Event()
        thread = threading.Thread(target=self._watch, args=(stop,), daemon=True,
                                  name="parallelrun-run-watch")
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)

    def _watch(self, stop: threading.Event) -> None:
        while not stop.wait(FLUSH_EVERY):
            try:
                if not self.cancel.is_set() and self.store.cancel_requested(self.run_id):
                    self.log.info("cancel requested: stopping the running steps")
                    self.cancel.set()
                with self._lock:
                    live = list(self._live.values())
                for step in live:
                    if step.progress is not None:
                        self.store.update_step(step.step_run_id, **progress_fields(step.progress))
            except Exception:  # noqa: BLE001 - a busy catalog must not kill the run
                self.log.info("catalog update failed (will retry): %s",
                              traceback.format_exc(limit=1).strip().splitlines()[-1])
