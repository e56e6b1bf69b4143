"""A backend of no processes, driven by the test: the scheduler's branches that real workers
reach only through wall-clock timing (a worker lost with mini-batches queued behind the one it
runs, the head of a queue timing out) run here the same way every time.

Time is the scheduler's clock, replaced by :class:`FakeClock` (``use_fake_clock``): nothing
happens between two polls, and ``poll(timeout)`` moves the clock to the next thing that happens
(a worker ready, a mini-batch's end) or by ``timeout``. A :class:`Scenario` says what each try
of each mini-batch does (:class:`Done`, :class:`Raises`, :class:`Dies`, :class:`Hangs`) and
keeps a log of what the scheduler asked for. ``run_job`` drives it like any backend::

    scenario = Scenario(tries={(0, 1): Dies()})
    result = run_job(config(compute_target=scenario.target()), inputs, out,
                     progress=scenario.progress)
"""

from __future__ import annotations

import collections
import dataclasses
import os
import time
from typing import Any

from parallelrun.backends import BACKENDS, BackendTarget
from parallelrun.backends.base import (
    Backend, Event, MiniBatchDone, Slot, WorkerLost, WorkerReady,
)
from parallelrun.data.minibatch import MiniBatch
from parallelrun.engine import scheduler
from parallelrun.engine.progress import JobProgress
from parallelrun.script import RunOutcome

#: the smallest step of the clock per poll: a poll costs time, and a loop polling with timeout 0
#: at a deadline's exact second must still see it pass
POLL_COST = 0.001


class FakeClock:
    """Stands in for the ``time`` module in the scheduler: ``monotonic`` and ``sleep`` are
    simulated, ``time`` (wall-clock stamps of records) is the real one."""

    def __init__(self, start: float = 1000.0):
        self.now = start

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)

    @staticmethod
    def time() -> float:
        return time.time()


def use_fake_clock(monkeypatch) -> FakeClock:
    """Give the scheduler a FakeClock for this test; returns it."""
    clock = FakeClock()
    monkeypatch.setattr(scheduler, "time", clock)
    return clock


# What a try does -----------------------------------------------------------------------------
@dataclasses.dataclass
class Done:
    """run() returns every item (its file name as the row) after ``seconds``."""

    seconds: float = 0.01


@dataclasses.dataclass
class Raises:
    """run() raises after ``seconds``."""

    seconds: float = 0.01
    message: str = "scripted failure"


@dataclasses.dataclass
class Dies:
    """The worker's process dies ``seconds`` into the try."""

    seconds: float = 0.005


@dataclasses.dataclass
class Hangs:
    """run() never returns; only a kill ends the try."""

    seconds: float = float("inf")


Behaviour = Any  # Done | Raises | Dies | Hangs


@dataclasses.dataclass
class Scenario:
    """What the fake backend's workers do, and what the scheduler asked of them.

    ``tries`` maps (mini-batch index, its n-th try on this backend) to what that try does;
    others are ``default``. ``running_known`` is what the backend says about a lost or timed-out
    worker (False: outcomes come back in groups, as Ray's); ``known_when_alone``: it can tell
    when the worker held one mini-batch (as Ray's, whose call then held one). ``log`` holds
    ``("start" | "kill", slot, time)``, ``("submit", slot, [indexes], time)`` and
    ``("ran", index, try, slot, what it did: "Done", "Raises", "Dies", "killed")`` in order.
    """

    tries: dict[tuple[int, int], Behaviour] = dataclasses.field(default_factory=dict)
    default: Behaviour = dataclasses.field(default_factory=Done)
    running_known: bool = True
    known_when_alone: bool = False
    init_seconds: float = 0.1
    #: give run_job this, so workers become ready only once the whole plan is queued: what
    #: each worker gets is then the same every time
    progress: JobProgress = dataclasses.field(default_factory=JobProgress)
    log: list[tuple] = dataclasses.field(default_factory=list)

    def target(self) -> BackendTarget:
        """The compute target that runs a job on this scenario."""
        _SCENARIOS[id(self)] = self
        return BackendTarget("fake", {"scenario_id": id(self)})

    def behaviour(self, index: int, attempt: int) -> Behaviour:
        return self.tries.get((index, attempt), self.default)

    def ran(self, index: int | None = None) -> list[tuple]:
        """The ("ran", ...) entries of the log (of mini-batch ``index`` alone when given)."""
        return [e for e in self.log if e[0] == "ran" and (index is None or e[1] == index)]

    def submitted(self, index: int) -> list[int]:
        """The slots ``index`` was sent to, in order."""
        return [e[1] for e in self.log if e[0] == "submit" and index in e[2]]


_SCENARIOS: dict[int, Scenario] = {}


def register(monkeypatch) -> None:
    """Make the backend available as ``compute_target=scenario.target()`` for this test."""
    monkeypatch.setitem(BACKENDS, "fake", f"{__name__}:FakeBackend")


class _Worker:
    def __init__(self, slot: Slot, ready_at: float):
        self.slot = slot
        self.ready_at = ready_at
        self.ready = False
        self.queue: collections.deque[MiniBatch] = collections.deque()
        #: when the head of the queue started, and what it does (None: not started)
        self.head_started: float | None = None
        self.head: Behaviour | None = None


class FakeBackend(Backend):
    """Workers that exist only as queues on a simulated clock (see the module doc)."""

    name = "fake"
    max_nodes = 1

    def __init__(self, spec, scenario_id: int, **options):
        super().__init__(spec, **options)
        self.scenario = _SCENARIOS[scenario_id]
        self.clock: FakeClock = scheduler.time  # type: ignore[assignment]
        assert isinstance(self.clock, FakeClock), "call use_fake_clock(monkeypatch) first"
        self.workers: dict[int, _Worker] = {}
        self.attempts: collections.Counter[int] = collections.Counter()

    def plan_slots(self, node_count: int, process_count_per_node: int | None) -> list[Slot]:
        return [Slot(i, "node0", f"process{i:03d}") for i in range(process_count_per_node or 2)]

    def start_worker(self, slot: Slot) -> None:
        now = self.clock.now
        self.workers[slot.id] = _Worker(slot, now + self.scenario.init_seconds)
        self.scenario.log.append(("start", slot.id, now))

    def submit_many(self, slot: Slot, minibatches: list[MiniBatch]) -> None:
        worker = self.workers[slot.id]
        worker.queue.extend(minibatches)
        self.scenario.log.append(("submit", slot.id, [mb.index for mb in minibatches],
                                  self.clock.now))
        if worker.ready and worker.head is None:
            self._start_head(worker, self.clock.now)

    def running_known(self, slot: Slot) -> bool:
        worker = self.workers.get(slot.id)
        alone = worker is not None and len(worker.queue) <= 1
        return self.scenario.running_known or (self.scenario.known_when_alone and alone)

    def kill_worker(self, slot: Slot) -> None:
        worker = self.workers.pop(slot.id, None)
        if worker is None:
            return
        if worker.head is not None:  # the try it was running ends here
            mb = worker.queue[0]
            self.scenario.log.append(("ran", mb.index, self.attempts[mb.index], slot.id, "killed"))
        self.scenario.log.append(("kill", slot.id, self.clock.now))

    def shutdown(self, grace_seconds: float = 10.0) -> None:
        self.workers.clear()

    # the simulation ---------------------------------------------------------------------------
    def _start_head(self, worker: _Worker, at: float) -> None:
        mb = worker.queue[0]
        self.attempts[mb.index] += 1
        worker.head_started = at
        worker.head = self.scenario.behaviour(mb.index, self.attempts[mb.index])

    def _next_time(self, worker: _Worker) -> float:
        if not worker.ready:
            return worker.ready_at
        if worker.head is None:
            return float("inf")
        return worker.head_started + worker.head.seconds

    def poll(self, timeout: float | None) -> list[Event]:
        clock = self.clock
        due = min((self._next_time(w) for w in self.workers.values()), default=float("inf"))
        limit = clock.now + (timeout if timeout is not None else 3600.0)
        clock.now = max(clock.now + POLL_COST, min(due, limit))
        events: list[Event] = []
        for worker in list(self.workers.values()):
            events.extend(self._advance(worker))
        return events

    def _advance(self, worker: _Worker) -> list[Event]:
        """What ``worker`` did up to now, in order."""
        events: list[Event] = []
        now = self.clock.now
        if not worker.ready:
            if worker.ready_at > now:
                return events
            self._wait_for_whole_plan()
            worker.ready = True
            events.append(WorkerReady(worker.slot.id))
            if worker.queue:
                self._start_head(worker, worker.ready_at)
        while worker.head is not None and worker.head_started + worker.head.seconds <= now:
            mb, behaviour = worker.queue[0], worker.head
            ended = worker.head_started + behaviour.seconds
            attempt = self.attempts[mb.index]
            self.scenario.log.append(("ran", mb.index, attempt, worker.slot.id,
                                      type(behaviour).__name__))
            if isinstance(behaviour, Dies):
                known = self.running_known(worker.slot)
                del self.workers[worker.slot.id]
                events.append(WorkerLost(worker.slot.id, "worker process died (scripted)",
                                         running_known=known))
                return events
            worker.queue.popleft()
            events.append(MiniBatchDone(worker.slot.id, self._outcome(mb, behaviour)))
            worker.head = None
            if worker.queue:
                self._start_head(worker, ended)
        return events

    def _outcome(self, mb: MiniBatch, behaviour: Behaviour) -> RunOutcome:
        items = [os.path.basename(p) for p in mb.payload.load()]
        if isinstance(behaviour, Raises):
            return RunOutcome(mb.index, "RUN_EXCEPTION", len(items), 0, run_seconds=behaviour.seconds,
                              error_type="RuntimeError", error_message=behaviour.message,
                              traceback=f"RuntimeError: {behaviour.message}\n")
        payload, rows = self.spec.encoder.encode(items)
        return RunOutcome(mb.index, "RUN_DONE", len(items), len(items), payload=payload, rows=rows,
                          run_seconds=behaviour.seconds)

    def _wait_for_whole_plan(self, real_seconds: float = 30.0) -> None:
        # the planner runs on a thread of its own in real time: without this, which worker gets
        # which mini-batches would depend on how far it got
        deadline = time.monotonic() + real_seconds
        while not self.scenario.progress.planning_done:
            if time.monotonic() > deadline:
                raise AssertionError("the planner did not finish")
            time.sleep(0.001)

