"""The body of each Ray worker actor (:class:`RayWorker`): it runs ``worker_loop`` on a Ray node.

Separate from the backend because this code runs on the cluster's nodes, not in the
coordinator: it imports what a worker needs (Ray, the worker loop, mini-batches) and nothing of
the backend's bookkeeping. It also holds the probe that tells whether a node sees the
coordinator's files.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import socket
import sys
import tempfile
import time
from pathlib import Path

import ray

from parallelrun.backends.base import Slot, WorkerSpec
from parallelrun.data.minibatch import MiniBatch

#: seconds of finished mini-batches an actor gathers before streaming their outcomes back: each
#: streamed item costs the actor ~0.3-2 ms (more on a busy machine) and the coordinator a Ray
#: round of its own (bench/README.md, "Where the rest goes", Ray)
OUTCOME_GROUP_SECONDS = 0.05


class RayWorker:
    """One worker on a Ray node: the body of each worker actor (``ray.remote`` at use).

    It runs ``worker_loop`` as a local worker process does; its stdout and stderr go to the
    same files under ``logs/user/`` (written straight there on a shared filesystem, otherwise
    into a folder on its node that :meth:`stop` sends back).
    """

    def __init__(self):
        self._runner = None
        self._spec: WorkerSpec | None = None
        self._local_logs: str | None = None

    def start(self, spec: WorkerSpec, slot: Slot, shared: bool) -> tuple:
        from parallelrun.backends import worker_loop

        if not shared:
            self._local_logs = tempfile.mkdtemp(prefix="parallelrun-logs-")
            # Ray unpacked the source directory (runtime_env working_dir) into our cwd
            here = os.getcwd()
            script = os.path.join(here, os.path.relpath(spec.script_path, spec.source_dir))
            spec = dataclasses.replace(spec, log_dir=self._local_logs, source_dir=here,
                                       script_path=script)
        self._spec = spec
        _redirect_output(spec.log_dir, slot)
        info = {"node_ip": ray.util.get_node_ip_address(), "hostname": socket.gethostname(),
                "pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id(),
                "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
        try:
            self._runner = worker_loop.start_worker(spec, slot)
        except worker_loop.WorkerStartError as exc:
            _flush_output()
            return ("init_failed", exc.traceback_text, exc.fatal, info)
        logging.getLogger("parallelrun.worker").info(
            "Ray actor on node %s (%s, node id %s), GPUs %s", info["node_ip"], info["hostname"],
            info["node_id"], info["gpu_ids"] or "none")
        return ("ready", info)

    @ray.method(num_returns="streaming")
    def run(self, message: bytes):
        """Run mini-batches in order, each outcome streamed back as soon as it is known.

        One call per group the scheduler hands out (not per mini-batch) keeps the coordinator's
        cost per mini-batch low, and streaming keeps per-mini-batch timing: the scheduler sees
        each result when it happens, and a worker that dies loses none that finished before.
        ``message`` is the group pickled (:func:`pack_minibatches`); each streamed item is
        :func:`pack_outcomes` of consecutive outcomes.
        """
        for outcomes in self._outcome_groups(pickle.loads(message), OUTCOME_GROUP_SECONDS):
            yield pack_outcomes(outcomes)

    def run_whole(self, message: bytes) -> bytes:
        """``run`` for Ray Client connections (``ray://``), which cannot stream: all outcomes
        in one reply. A call carries what the scheduler handed out since the last one (about
        ``queue_seconds / 2`` of work), so outcomes come back that much later."""
        return pack_outcomes(next(self._outcome_groups(pickle.loads(message), float("inf")), []))

    def _outcome_groups(self, minibatches: list[MiniBatch], group_seconds: float):
        """The outcomes of ``minibatches`` run in order (``RunOutcome.to_message`` tuples), in
        groups of consecutive ones holding at least ``group_seconds`` of work (the last less)."""
        from parallelrun.backends.worker_loop import run_minibatch
        from parallelrun.data.minibatch import prefetch

        prefetch(minibatches)  # remote files of the later ones download while the first runs
        outcomes, since = [], time.perf_counter()
        for number, minibatch in enumerate(minibatches, 1):
            outcomes.append(run_minibatch(self._runner, minibatch).to_message())
            now = time.perf_counter()
            # Each streamed item costs the coordinator a Ray round of its own, so the outcomes
            # of quick mini-batches go back together, at most OUTCOME_GROUP_SECONDS of work at
            # a time: a worker that dies loses no more than that of finished work (run again).
            if now - since >= group_seconds or number == len(minibatches):
                yield outcomes
                outcomes, since = [], now

    def stop(self) -> dict[str, bytes] | None:
        """Call the script's shutdown(); returns the log files when they are not shared."""
        from parallelrun.backends.worker_loop import stop_worker

        if self._runner is not None:
            stop_worker(self._runner)
            self._runner = None
        _flush_output()
        if self._local_logs is None:
            return None
        files = {}
        for path in Path(self._local_logs).rglob("*"):
            if path.is_file():
                files[str(path.relative_to(self._local_logs))] = path.read_bytes()
        return files

    def probe(self, token_path: str, token: str, source_dir: str) -> dict:
        return probe_shared_files(token_path, token, source_dir)


def pack_minibatches(minibatches: list[MiniBatch]) -> bytes:
    """A group of mini-batches as one ``run`` argument: pickled here with the C pickler, so
    Ray carries plain bytes. Ray's own serializer (cloudpickle) calls back into Python for
    every object of the list: ~0.1 ms more of the coordinator's CPU for a call of 30."""
    return pickle.dumps(minibatches, protocol=pickle.HIGHEST_PROTOCOL)


def pack_outcomes(outcomes: list[tuple]) -> bytes:
    """Outcomes (``RunOutcome.to_message`` tuples) as one streamed item; the coordinator reads
    them with :func:`unpack_outcomes`. Plain tuples in a pickle cost both sides a few
    microseconds an outcome less than dataclasses through Ray's serializer."""
    return pickle.dumps(outcomes, protocol=pickle.HIGHEST_PROTOCOL)


def unpack_outcomes(data: bytes) -> list:
    """The :class:`RunOutcome` objects :func:`pack_outcomes` packed."""
    from parallelrun.script import RunOutcome

    return [RunOutcome.from_message(message) for message in pickle.loads(data)]


def probe_shared_files(token_path: str, token: str, source_dir: str) -> dict:
    """Does this node see the coordinator's files? Reads the token it wrote in the log folder."""
    try:
        seen = Path(token_path).read_text(encoding="utf-8") == token
    except OSError:
        seen = False
    return {"shared": seen and os.path.isdir(source_dir), "node_ip": ray.util.get_node_ip_address(),
            "hostname": socket.gethostname()}


def _redirect_output(log_dir: str, slot: Slot) -> None:
    """Point this process's stdout/stderr (file descriptors, so C output too) at its log files."""
    for fd, kind in ((1, "stdout"), (2, "stderr")):
        path = Path(log_dir, "user", kind, slot.node_name, f"{slot.process_name}.{kind}.txt")
        path.parent.mkdir(parents=True, exist_ok=True)
        stream = sys.stdout if fd == 1 else sys.stderr
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(target, fd)
        os.close(target)


def _flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
