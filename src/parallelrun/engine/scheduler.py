"""The scheduler: hands mini-batches to workers and decides what every outcome means.

It is the same for every backend. It owns retries (``run_max_try``), timeouts of ``run()`` and
``init()``, replacing dead workers, the error thresholds, and the order of commits: a mini-batch's
rows are committed once, by this thread, after its successful try. Backends only carry
mini-batches out and events back (``parallelrun.backends.base``).

Each worker gets up to ``depth`` mini-batches queued so it never waits for the coordinator;
the one at the head of its queue is the one running, and started when the previous one's
result arrived. The depth follows how long run() takes: two mini-batches until the first
result, then the backend's ``queue_seconds`` of work (between 2 and ``MAX_DEPTH``), so that
quick mini-batches travel many to a message and slow ones are not hoarded by one worker.
A worker that dies or times out fails only its head mini-batch (none, when the backend cannot
tell which one was running); the others in its queue go back to the front of the line
without losing a try. When none was charged, those it held run one at a time (a worker gets
one of them alone, and nothing behind it) until each has an outcome: a backend that sends
outcomes in groups then knows which one ran, so one that kills its worker again is charged.

While every busy worker has more queued, the loop lingers up to ``LINGER`` before it polls, so
that outcomes are handled several at a time: on a machine whose cores the workers fill, each
wake-up of this process takes a core from a worker. ``LINGER`` is long enough that a worker
whose run() takes a millisecond or two reports several outcomes per wake-up (bench/README.md,
"Held to the bound", has the figures).

``run_invocation_timeout`` and ``init_timeout`` are measured on ``timeout_clock``
(``time.monotonic`` unless given): a test passes a scripted clock so that a timeout fires when
it means it to, whatever the load on the machine, while the records keep real times.

Longer than most modules: one concept, the scheduling loop; dispatch, retries, timeouts, thresholds
and the rules for a lost worker all read and change the same worker queues, and split apart they
would pass that state around.
"""

from __future__ import annotations

import collections
import dataclasses
import queue
import threading
import time
from typing import Callable, Iterable, Iterator

from parallelrun.backends.base import (
    Backend, MiniBatchDone, Slot, WorkerInitFailed, WorkerLost, WorkerReady,
)
from parallelrun.data.minibatch import MiniBatch, rows_hint
from parallelrun.engine.journal import Commit, Journal
from parallelrun.engine.outputs import OutputAction
from parallelrun.engine.progress import JobProgress, MiniBatchRecord, ProgressListener
from parallelrun.script import RunOutcome
from parallelrun.statuses import OutcomeStatus, RunStatus

# bound once: on Python 3.11 every lookup of a member on its Enum class costs a Python-level
# call, and this runs for every mini-batch
_RUN_DONE = OutcomeStatus.RUN_DONE


@dataclasses.dataclass
class Limits:
    """The parts of ParallelRunConfig the scheduler enforces."""

    run_max_try: int = 3
    run_invocation_timeout: float = 60
    init_timeout: float = 600
    error_threshold: int = -1
    allowed_failed_count: int | None = None
    allowed_failed_percent: float | None = None
    #: init() failures tolerated before the job fails (the original: 3 x workers)
    init_failures: int = 3


@dataclasses.dataclass
class SchedulerOutcome:
    status: str                 # a RunStatus: Finished | Failed | Canceled
    error: str | None = None


class _Stop(Exception):
    def __init__(self, status: str, error: str | None):
        self.status = status
        self.error = error


class _Worker:
    __slots__ = ("slot", "ready", "started_at", "queue", "current_since", "done", "init_clock",
                 "run_clock", "alone")

    def __init__(self, slot: Slot, started_at: float, clock_now: float):
        self.slot = slot
        self.ready = False
        self.started_at = started_at
        self.queue: collections.deque[tuple[MiniBatch, int]] = collections.deque()
        self.current_since = started_at
        self.done = 0
        #: the timeout clock's reading when init() began and when the head mini-batch began
        self.init_clock = self.run_clock = clock_now
        #: it runs a suspect mini-batch, with nothing queued behind it
        self.alone = False


class _Feeder(threading.Thread):
    """Pulls the planner on its own thread, so listing a huge folder overlaps running.

    It plans ahead at most ``MAX_CHUNKS`` chunks of up to ``CHUNK`` mini-batches or
    ``CHUNK_ITEMS`` items (a table's mini-batch counts as one): enough to keep any number of
    workers fed, and a million-file job does not hold every path in memory at once."""

    CHUNK = 256
    CHUNK_ITEMS = 4096
    MAX_CHUNKS = 16

    def __init__(self, planner: Iterator[MiniBatch], skip: set[int], progress: JobProgress):
        super().__init__(name="parallelrun-planner", daemon=True)
        self.planner = planner
        self.skip = skip
        self.progress = progress
        self.chunks: queue.Queue[list[MiniBatch]] = queue.Queue(maxsize=self.MAX_CHUNKS)
        self.error: BaseException | None = None
        self.exhausted = threading.Event()
        self._halt = threading.Event()

    def run(self) -> None:
        chunk: list[MiniBatch] = []
        weight = 0
        progress = self.progress
        try:
            for mb in self.planner:
                progress.planned_minibatches += 1
                progress.planned_items += mb.items or 0
                if mb.index in self.skip:
                    continue
                chunk.append(mb)
                weight += mb.items or 1
                if len(chunk) >= self.CHUNK or weight >= self.CHUNK_ITEMS or self.chunks.empty():
                    self._put(chunk)
                    chunk, weight = [], 0
                if self._halt.is_set():
                    return
            if chunk:
                self._put(chunk)
        except BaseException as exc:  # noqa: BLE001 - handed to the scheduler thread
            self.error = exc
        finally:
            progress.planning_done = self.error is None
            self.exhausted.set()

    def _put(self, chunk: list[MiniBatch]) -> None:
        while not self._halt.is_set():
            try:
                self.chunks.put(chunk, timeout=0.1)
                return
            except queue.Full:
                continue

    def halt(self) -> None:
        self._halt.set()


class Scheduler:
    """Runs a planned job on a backend until it finishes, fails or is canceled."""

    TICK = 1.0
    #: seconds commits may wait in memory; what a killed coordinator can lose (and resume redoes)
    FLUSH_EVERY = 0.05
    #: seconds a stopping job (threshold exceeded, canceled) waits for outcomes on their way
    STOP_GRACE = 0.5
    #: the most mini-batches queued on one worker (what a lost worker hands back); reached only
    #: below queue_seconds / MAX_DEPTH each: at 128, Ray's calls of 0.6 ms image mini-batches
    #: carried ~40 ms, and its steady state fell from ~0.9 to ~0.8 of the bound (bench/README)
    MAX_DEPTH = 512
    #: the longest the loop waits to gather outcomes before polling; never more than half of
    #: what the least-loaded busy worker has queued after the one it runs
    LINGER = 0.010

    def __init__(self, backend: Backend, slots: list[Slot], planner: Iterator[MiniBatch],
                 output: OutputAction, journal: Journal, limits: Limits,
                 listeners: Iterable[ProgressListener] = (), progress: JobProgress | None = None,
                 skip: set[int] | None = None, cancel: threading.Event | None = None,
                 logger=None, timeout_clock: Callable[[], float] | None = None):
        self.backend = backend
        self.slots = slots
        self.output = output
        self.journal = journal
        self.limits = limits
        self.listeners = list(listeners)
        self.progress = progress or JobProgress()
        self.cancel = cancel or threading.Event()
        self.log = logger
        self._timeout_clock = timeout_clock  # None: time.monotonic, the loop's own readings
        self.progress.minibatches_resumed = len(skip or ())
        self._feeder = _Feeder(planner, set(skip or ()), self.progress)
        self._pending: collections.deque[MiniBatch] = collections.deque()
        self._retry: collections.deque[tuple[MiniBatch, int]] = collections.deque()
        #: mini-batches held by a worker lost when none could be charged: they run alone
        self._suspects: set[int] = set()
        self._workers: dict[int, _Worker] = {}
        self._init_failures = 0
        self._last_init_traceback: str | None = None
        self._first_error: MiniBatchRecord | None = None
        self._depth = 2
        self._work_seconds_avg: float | None = None
        self._next_flush = 0.0
        self._events: collections.deque = collections.deque()  # polled, not yet handled
        self._stopping = False

    # The loop --------------------------------------------------------------------------------
    def run(self) -> SchedulerOutcome:
        for listener in self.listeners:
            listener.on_start(self.progress)
        self._feeder.start()
        for slot in self.slots:
            self._start(slot)
        self.progress.workers_total = len(self.slots)
        next_tick = time.monotonic() + self.TICK
        try:
            while True:
                if self.cancel.is_set():
                    raise _Stop(RunStatus.CANCELED, "the job was canceled")
                self._dispatch()
                if self._finished():
                    break
                now = time.monotonic()
                clock_now = self._clock(now)
                timeout = min(self._next_deadline(clock_now) - clock_now, next_tick - now)
                if self._idle_waiting_for_plan():
                    timeout = min(timeout, 0.005)
                linger = min(self._linger_seconds(), timeout)
                if linger > 0:
                    time.sleep(linger)
                    timeout -= linger
                self._events.extend(self.backend.poll(max(0.0, timeout)))
                while self._events:
                    self._handle(self._events.popleft())
                now = time.monotonic()
                if now >= self._next_flush:
                    self._flush_commits(now)
                self._enforce_deadlines(self._clock(now))
                if now >= next_tick:
                    next_tick = now + self.TICK
                    for listener in self.listeners:
                        listener.on_tick(self.progress)
            self._flush_commits(time.monotonic(), durable=True)  # on disk before the outcome
            outcome = self._final_outcome()
            self.backend.shutdown()
        except _Stop as stop:
            outcome = SchedulerOutcome(stop.status, stop.error)
            try:
                self._keep_finished()
            finally:
                self._abort()
        except BaseException:
            self._abort(raising=True)
            raise
        finally:
            self._feeder.halt()
        return outcome

    def _flush_commits(self, now: float, durable: bool = False) -> None:
        """Write the rows committed since the last call, then hand their journal lines to the
        journal's thread, which appends them once output.sync() has put the rows on disk: a
        journal line never names rows the disk lacks, even after a machine crash. ``durable``
        waits until every line is on disk."""
        self.output.flush()
        self.journal.flush(self.output.sync, wait=durable)
        self._next_flush = now + self.FLUSH_EVERY

    def _keep_finished(self) -> None:
        """A stopping job still commits what finished: outcomes already received, and those
        arriving within STOP_GRACE, while nothing new is handed out or retried."""
        self._stopping = True
        deadline = time.monotonic() + self.STOP_GRACE
        while True:
            while self._events:
                event = self._events.popleft()
                worker = self._workers.get(event.slot)
                if worker is None or not worker.queue:
                    continue
                if isinstance(event, MiniBatchDone):
                    if event.outcome.status == _RUN_DONE:
                        self._on_done(worker, event.outcome)
                    else:
                        worker.queue.popleft()  # outcomes come in queue order: keep them paired
                elif isinstance(event, WorkerLost):
                    worker.queue.clear()
            left = deadline - time.monotonic()
            if left <= 0 or not any(w.queue for w in self._workers.values()):
                return
            self._events.extend(self.backend.poll(left))

    def _abort(self, raising: bool = False) -> None:
        """Commit what finished and stop every worker. ``raising``: an exception is on its way
        out, and an error writing the commits is logged rather than raised over it."""
        try:
            self._flush_commits(time.monotonic(), durable=True)
        except Exception as exc:  # noqa: BLE001 - see raising
            if not raising:
                raise
            self._log("error", "committed mini-batches could not be written: %s", exc)
        finally:
            for worker in list(self._workers.values()):
                self.backend.kill_worker(worker.slot)
            self.backend.shutdown(grace_seconds=0)

    def _finished(self) -> bool:
        if self._retry or self._pending or not self._feeder.exhausted.is_set():
            return False
        if not self._feeder.chunks.empty():
            return False
        if self._feeder.error is not None:
            raise self._feeder.error
        return not any(w.queue for w in self._workers.values())

    def _idle_waiting_for_plan(self) -> bool:
        return not self._feeder.exhausted.is_set() and not self._pending and any(
            w.ready and not w.queue for w in self._workers.values())

    def _next_work(self) -> tuple[MiniBatch, int] | None:
        if self._retry:
            return self._retry.popleft()
        if not self._pending:
            try:
                self._pending.extend(self._feeder.chunks.get_nowait())
            except queue.Empty:
                if self._feeder.error is not None:
                    raise self._feeder.error
                return None
        return self._pending.popleft(), 1

    def _dispatch(self) -> None:
        now = time.monotonic()
        clock_now = None
        for worker in self._workers.values():
            if not worker.ready or worker.alone or len(worker.queue) > self._depth // 2:
                continue  # refilled in groups at half depth: fewer messages and wake-ups
            batch = []
            work = None
            while len(worker.queue) < self._depth:
                if self._suspects and self._retry and self._retry[0][0].index in self._suspects:
                    if worker.queue:
                        break  # a suspect goes alone to a worker with nothing queued
                    work = self._retry.popleft()
                    worker.alone = True
                else:
                    work = self._next_work()
                if work is None:
                    break
                if not worker.queue:
                    worker.current_since = now
                    if clock_now is None:
                        clock_now = self._clock(now)
                    worker.run_clock = clock_now
                    self.progress.workers[worker.slot.process_name]["current"] = work[0].index
                worker.queue.append(work)
                batch.append(work[0])
                if worker.alone:
                    break
            if batch:
                self.backend.submit_many(worker.slot, batch)
            if work is None:
                return  # no work left to hand out right now

    # Events ----------------------------------------------------------------------------------
    def _handle(self, event) -> None:
        worker = self._workers.get(event.slot)
        if worker is None:
            return
        if isinstance(event, MiniBatchDone):
            self._on_done(worker, event.outcome)
        elif isinstance(event, WorkerReady):
            worker.ready = True
            self.progress.workers_ready += 1
            self.progress.workers[worker.slot.process_name]["state"] = "ready"
            self._log("info", "worker %s ready after %.2f s", worker.slot.process_name,
                      time.monotonic() - worker.started_at)
        elif isinstance(event, WorkerInitFailed):
            self._on_init_failed(worker, event.traceback, event.fatal)
        elif isinstance(event, WorkerLost):
            if worker.ready:
                self._on_worker_lost(worker, OutcomeStatus.PROCESS_DIED, event.reason,
                                     event.running_known)
            elif event.node_lost:  # its node died before init() ended: not init()'s failure
                self._retire(worker)
                self._log("warning", "%s: %s before it was ready; starting a new worker",
                          worker.slot.process_name, event.reason)
                self.progress.worker_restarts += 1
                self._start(worker.slot)
            else:
                self._on_init_failed(worker, f"{event.reason} during import or init()", False)

    def _on_done(self, worker: _Worker, outcome: RunOutcome) -> None:
        mb, attempt = worker.queue.popleft()
        if worker.alone:
            worker.alone = False
            self._suspects.discard(mb.index)
        now = time.monotonic()
        started, worker.current_since = worker.current_since, now
        worker.run_clock = self._clock(now)
        worker.done += 1
        self.progress.workers[worker.slot.process_name]["current"] = (
            worker.queue[0][0].index if worker.queue else None)
        self._follow_work_seconds(outcome.work_seconds or outcome.run_seconds)
        mb.items = outcome.items
        record = self._record(worker, mb, attempt, started, now, outcome)
        if outcome.status == _RUN_DONE:
            offset, length = self.output.commit(outcome.payload) if outcome.payload else (0, 0)
            self.journal.record(Commit(mb.index, offset, length, outcome.items, outcome.succeeded,
                                       mb.digest()))
            progress = self.progress
            progress.minibatches_succeeded += 1
            progress.items_succeeded += outcome.succeeded
            progress.items_failed += outcome.failed
            record.final = True
            self._notify(record)
            self._check_thresholds()
        else:
            self._failed_try(mb, attempt, record)

    def _linger_seconds(self) -> float:
        """How long the loop may wait before polling without any worker running dry."""
        if self._work_seconds_avg is None or self._stopping:
            return 0.0
        queued = [len(w.queue) - 1 for w in self._workers.values() if w.ready and w.queue]
        if not queued or len(queued) < sum(w.ready for w in self._workers.values()):
            return 0.0  # an idle worker waits for work (or the job's last outcomes): no delay
        return min(self.LINGER, 0.5 * min(queued) * self._work_seconds_avg)

    def _follow_work_seconds(self, seconds: float) -> None:
        # a worker's whole time per mini-batch (reading a table's piece may take longer than
        # run()): queues sized by run() alone held ~20 pieces each, and at the end one worker
        # drained its queue while the other sat idle
        average = self._work_seconds_avg
        average = seconds if average is None else 0.9 * average + 0.1 * seconds
        self._work_seconds_avg = average
        wanted = self.backend.queue_seconds / max(average, 1e-6)
        self._depth = max(2, min(self.MAX_DEPTH, round(wanted)))

    def _on_worker_lost(self, worker: _Worker, status: str, reason: str,
                        running_known: bool = True) -> None:
        """The worker died or was killed: its running mini-batch failed a try, the rest go back.

        When the backend cannot tell which one was running, none is charged: all go back.
        """
        now = time.monotonic()
        queued = list(worker.queue)
        worker.queue.clear()
        self._retire(worker)
        if queued and not running_known:
            self._retry.extendleft(reversed(queued))
            self._suspects.update(mb.index for mb, _ in queued)
            reason += (f"; which of its {len(queued)} mini-batches was running is not known "
                       "(outcomes come back in groups), so none is charged a try")
        elif queued:
            (mb, attempt), rest = queued[0], queued[1:]
            self._retry.extendleft(reversed(rest))
            # tables: rows as planned, so a killed try still counts failed records
            items = mb.items or rows_hint(mb.payload)
            outcome = RunOutcome(mb.index, status, items, 0, error_type=status,
                                 error_message=reason, traceback=reason,
                                 run_seconds=now - worker.current_since)
            self._failed_try(mb, attempt, self._record(worker, mb, attempt, worker.current_since,
                                                        now, outcome))
        self._log("warning", "%s: %s; starting a new worker", worker.slot.process_name, reason)
        self.progress.worker_restarts += 1
        self._start(worker.slot)

    def _on_init_failed(self, worker: _Worker, traceback_text: str, fatal: bool) -> None:
        self._retire(worker)
        self._last_init_traceback = traceback_text
        if fatal:
            raise _Stop(RunStatus.FAILED, "the entry script could not be imported in a worker; no "
                                  f"mini-batch ran. Fix the script:\n{traceback_text}")
        self._init_failures += 1
        self._log("warning", "init() failed on %s (%d of %d allowed):\n%s", worker.slot.process_name,
                  self._init_failures, self.limits.init_failures, traceback_text)
        if self._init_failures >= self.limits.init_failures:
            raise _Stop(RunStatus.FAILED, f"init() failed {self._init_failures} times (at most "
                                  f"{self.limits.init_failures - 1} failures are tolerated: 3 per "
                                  "worker); the job stopped. Last traceback:\n"
                                  f"{traceback_text}")
        self._start(worker.slot)

    def _failed_try(self, mb: MiniBatch, attempt: int, record: MiniBatchRecord) -> None:
        progress = self.progress
        if attempt < self.limits.run_max_try:
            self._retry.appendleft((mb, attempt + 1))
            progress.retries += 1
            record.final = False
            self._notify(record)
            return
        record.final = True
        progress.minibatches_failed += 1
        progress.items_failed += record.items
        if self._first_error is None:
            self._first_error = record
        self._notify(record)
        self._check_thresholds()

    # Workers ---------------------------------------------------------------------------------
    def _start(self, slot: Slot) -> None:
        now = time.monotonic()
        self._workers[slot.id] = _Worker(slot, now, self._clock(now))
        self.progress.workers.setdefault(slot.process_name, {"node": slot.node_name, "done": 0})
        self.progress.workers[slot.process_name].update(state="starting", current=None)
        self.backend.start_worker(slot)

    def _retire(self, worker: _Worker) -> None:
        self.backend.kill_worker(worker.slot)
        if worker.ready:
            self.progress.workers_ready -= 1
        worker.ready = False
        self.progress.workers[worker.slot.process_name].update(state="restarting", current=None)

    def _clock(self, now: float) -> float:
        """The timeout clock's reading; ``now`` is time.monotonic()'s, read by the caller."""
        return now if self._timeout_clock is None else self._timeout_clock()

    def _next_deadline(self, now: float) -> float:
        """The earliest timeout, on the timeout clock (``now`` is its reading)."""
        deadline = now + 3600.0
        for worker in self._workers.values():
            if not worker.ready:
                deadline = min(deadline, worker.init_clock + self.limits.init_timeout)
            elif worker.queue:
                deadline = min(deadline, worker.run_clock + self.limits.run_invocation_timeout)
        return deadline

    def _enforce_deadlines(self, now: float) -> None:
        """Timeouts that passed by ``now``, the timeout clock's reading."""
        for worker in list(self._workers.values()):
            if not worker.ready:
                if now - worker.init_clock > self.limits.init_timeout:
                    self._on_init_failed(
                        worker, f"init() did not finish within init_timeout={self.limits.init_timeout} s",
                        False)
            elif worker.queue and now - worker.run_clock > self.limits.run_invocation_timeout:
                self._on_worker_lost(
                    worker, OutcomeStatus.RUN_TIMEOUT,
                    f"run() did not return within run_invocation_timeout="
                    f"{self.limits.run_invocation_timeout} s; the worker was killed and replaced",
                    self.backend.running_known(worker.slot))

    # Outcomes --------------------------------------------------------------------------------
    def _record(self, worker: _Worker, mb: MiniBatch, attempt: int, started: float,
                finished: float, outcome: RunOutcome) -> MiniBatchRecord:
        wall = time.time()
        return MiniBatchRecord(
            index=mb.index, attempt=attempt, node_name=worker.slot.node_name,
            process_name=worker.slot.process_name, started_at=wall - (finished - started),
            finished_at=wall, items=outcome.items, succeeded=outcome.succeeded,
            run_seconds=outcome.run_seconds, status=outcome.status, final=False,
            error_type=outcome.error_type, error_message=outcome.error_message,
            traceback=outcome.traceback,
            item_names=mb.item_names() if outcome.status != _RUN_DONE or outcome.error_message
            else "")

    def _notify(self, record: MiniBatchRecord) -> None:
        if record.final:
            self.progress.workers[record.process_name]["done"] += 1
        for listener in self.listeners:
            listener.on_record(self.progress, record)

    def _check_thresholds(self) -> None:
        if self._stopping:
            return  # already stopping: what still arrives is only kept
        p, limits = self.progress, self.limits
        if limits.error_threshold != -1 and p.items_failed > limits.error_threshold:
            raise _Stop(RunStatus.FAILED, self._with_first_error(
                f"error_threshold={limits.error_threshold} exceeded: {p.items_failed} items failed; "
                "the job stopped, finished mini-batches are kept in the output"))
        allowed = limits.allowed_failed_count
        if allowed is not None and allowed != -1 and p.minibatches_failed > allowed:
            raise _Stop(RunStatus.FAILED, self._with_first_error(
                f"allowed_failed_count={allowed} exceeded: {p.minibatches_failed} mini-batches "
                "failed; the job stopped, finished mini-batches are kept in the output"))

    def _final_outcome(self) -> SchedulerOutcome:
        p, percent = self.progress, self.limits.allowed_failed_percent
        if percent is not None and p.planned_minibatches:
            failed_percent = 100.0 * p.minibatches_failed / p.planned_minibatches
            if failed_percent > percent:
                return SchedulerOutcome(RunStatus.FAILED, self._with_first_error(
                    f"allowed_failed_percent={percent} exceeded: {p.minibatches_failed} of "
                    f"{p.planned_minibatches} mini-batches failed ({failed_percent:.1f}%)"))
        return SchedulerOutcome(RunStatus.FINISHED, None)

    def _with_first_error(self, reason: str) -> str:
        first = self._first_error
        if first is None:
            return reason
        return (f"{reason}.\nFirst failed mini-batch: {first.index} ({first.status} on "
                f"{first.node_name}/{first.process_name}):\n{first.traceback or first.error_message}")

    @property
    def first_error(self) -> MiniBatchRecord | None:
        return self._first_error

    def _log(self, level: str, message: str, *args) -> None:
        if self.log is not None:
            getattr(self.log, level)(message, *args)
