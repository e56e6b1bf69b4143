"""The backend interface: how workers start, receive mini-batches and report back.

The scheduler (``parallelrun.engine.scheduler``) owns every decision (what to run where, retries,
timeouts, thresholds); a backend only moves work and news. A backend manages numbered worker
*slots*; each slot hosts at most one live worker at a time, which the scheduler may kill and
start again. News comes back from :meth:`Backend.poll` as events.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping
from typing import Any, Union

from parallelrun.data.minibatch import MiniBatch
from parallelrun.script import ResultEncoder, RunOutcome


@dataclasses.dataclass(frozen=True)
class RuntimeSpec:
    """The workers' Python environment as the engine and backends read it: plain values that
    the pipeline layer makes from an ``Environment`` (``pipeline.environment.runtime_spec``).

    ``python``: the interpreter made for it on this machine (a virtualenv), None for the
    coordinator's; ``pip``: the packages it installs, for backends that build environments on
    their nodes (Ray's ``runtime_env``); ``environment_variables``: set in every worker.
    """

    python: str | None = None
    pip: tuple[str, ...] = ()
    environment_variables: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class WorkerSpec:
    """Everything a worker needs to start; the same for all workers of a job (picklable)."""

    script_path: str
    source_dir: str
    arguments: list[str]
    encoder: ResultEncoder
    output_dir: str
    log_dir: str
    logging_level: str = "INFO"
    environment_variables: dict[str, str] = dataclasses.field(default_factory=dict)
    models: dict[str, str] = dataclasses.field(default_factory=dict)
    input_datasets: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: interpreter for the workers (an Environment's virtualenv); None = the coordinator's
    python: str | None = None
    run_id: str | None = None
    workspace_path: str | None = None


@dataclasses.dataclass(frozen=True)
class Slot:
    """A place for one worker: ``node_name``/``process_name`` also name its log files."""

    id: int
    node_name: str
    process_name: str


# Events a backend reports -------------------------------------------------------------------

@dataclasses.dataclass
class WorkerReady:
    slot: int


@dataclasses.dataclass
class WorkerInitFailed:
    slot: int
    traceback: str
    #: True when the script could not even be imported: retrying cannot help
    fatal: bool = False


@dataclasses.dataclass
class MiniBatchDone:
    slot: int
    outcome: RunOutcome


@dataclasses.dataclass
class WorkerLost:
    slot: int
    reason: str
    #: whether the first mini-batch without an outcome was the one running (see
    #: Backend.running_known); when not, the loss is charged to none of them
    running_known: bool = True
    #: the worker was lost with its node (a Ray node died): infrastructure, so a worker lost
    #: before it was ready is started again without counting as an init() failure
    node_lost: bool = False


# Union, not X | Y: workers import this module, and an environment's Python may be 3.8
Event = Union[WorkerReady, WorkerInitFailed, MiniBatchDone, WorkerLost]  # noqa: UP007


class Backend(abc.ABC):
    """A way to run workers. Subclasses register in ``parallelrun.backends.BACKENDS``."""

    name: str = ""
    #: the most nodes a job can have here (None: the cluster decides, at plan_slots); lets a
    #: pipeline or job file refuse a node_count at submit, before anything runs
    max_nodes: int | None = None
    #: seconds of work the scheduler keeps queued on each worker once it knows how long a
    #: run() takes: enough that what one message to a worker costs is small beside the work
    #: it carries. Backends whose messages cost more (a Ray call) keep more queued.
    queue_seconds: float = 0.01

    @classmethod
    def check_node_count(cls, node_count: int) -> str | None:
        """Why ``node_count`` cannot work on this backend (None when it may).

        Example: ``LocalProcessBackend.check_node_count(2)`` -> ``"the local backend runs on
        1 node"``.
        """
        if cls.max_nodes is not None and node_count > cls.max_nodes:
            return (f"the {cls.name} backend runs on {cls.max_nodes} "
                    f"node{'s' if cls.max_nodes != 1 else ''}")
        return None

    def __init__(self, spec: WorkerSpec, **options: Any):
        self.spec = spec
        self.options = options

    @abc.abstractmethod
    def plan_slots(self, node_count: int, process_count_per_node: int | None) -> list[Slot]:
        """The worker slots for this job; raises BackendError when they cannot be had."""

    def check_local_paths(self, paths: list[tuple[str, str]]) -> None:
        """Raise DataError when the workers cannot read these paths of this machine, given as
        ``(what, path)`` pairs (an input, a side input, a model); called once the slots are
        planned, before any worker starts. The local backend's workers always can."""

    @abc.abstractmethod
    def start_worker(self, slot: Slot) -> None:
        """Start a worker in ``slot`` without waiting; WorkerReady or a failure event follows."""

    @abc.abstractmethod
    def submit_many(self, slot: Slot, minibatches: list[MiniBatch]) -> None:
        """Queue ``minibatches`` on the worker in ``slot``, together where the backend can (one
        message); the worker runs them in the order given."""

    @abc.abstractmethod
    def poll(self, timeout: float | None) -> list[Event]:
        """Events since the last call, waiting up to ``timeout`` seconds for the first."""

    def running_known(self, slot: Slot) -> bool:
        """Whether the first mini-batch on ``slot`` without an outcome is the one running.

        True for workers that send each outcome as it is known (the local backend). A backend
        whose workers send outcomes in groups answers False while finished ones may be held
        in the worker; the scheduler then charges a lost or timed-out worker to none of its
        mini-batches (all run again, none loses a try), and the backend must send those
        mini-batches so that the next loss is known (one at a time).
        """
        return True

    @abc.abstractmethod
    def kill_worker(self, slot: Slot) -> None:
        """Stop the worker in ``slot`` at once (hung, timed out or no longer needed)."""

    @abc.abstractmethod
    def shutdown(self, grace_seconds: float = 10.0) -> None:
        """Let every worker call the script's shutdown() and exit; kill what is left after."""
