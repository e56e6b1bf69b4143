"""Local processes: the embedded default backend.

Each worker is a child process (``python -m parallelrun.backends.local_worker``) started with
``subprocess``, not ``multiprocessing``: the user's ``__main__`` is never re-imported, and the
child can be another interpreter (an Environment's virtualenv). It talks over a socketpair; its
stdout and stderr go straight to its files under ``logs/user/``, so even a segfault message
lands there.
"""

from __future__ import annotations

import itertools
import os
import pickle
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

from parallelrun.backends.base import (
    Backend, Event, MiniBatchDone, Slot, WorkerInitFailed, WorkerLost, WorkerReady,
)
from parallelrun.data.minibatch import MiniBatch
from parallelrun.errors import BackendError

# the folder holding the parallelrun package, put on workers' path (they may run another Python)
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


# thread-pool sizes of numeric libraries; set for workers unless the user's environment has them
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them (``["2", "3"]``), or
    ``["0", "1", ...]`` for the NVIDIA device nodes when it is unset."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [d.strip() for d in visible.split(",") if d.strip()]
        # CUDA stops at the first invalid id ("-1" hides every GPU)
        return list(itertools.takewhile(lambda d: d != "-1", ids))
    if not os.path.isdir("/dev"):
        return []
    return sorted((d[6:] for d in os.listdir("/dev") if d.startswith("nvidia") and d[6:].isdigit()),
                  key=int)


def gpu_count() -> int:
    """GPUs visible on this machine (NVIDIA device nodes, narrowed by CUDA_VISIBLE_DEVICES)."""
    return len(visible_gpus())


class _Worker:
    __slots__ = ("slot", "proc", "conn", "ready", "inbox")

    def __init__(self, slot: Slot, proc: subprocess.Popen, conn: Connection):
        self.slot = slot
        self.proc = proc
        self.conn = conn
        self.ready = False
        self.inbox = bytearray()  # bytes read from the worker, not yet whole messages


def _whole_messages(inbox: bytearray) -> list:
    """Take the complete messages off the front of ``inbox`` (multiprocessing.Connection's
    framing: a 4-byte big-endian length, or -1 and an 8-byte length), unpickled."""
    messages, at = [], 0
    while len(inbox) - at >= 4:
        (size,), header = struct.unpack_from("!i", inbox, at), 4
        if size == -1:
            if len(inbox) - at < 12:
                break
            (size,), header = struct.unpack_from("!Q", inbox, at + 4), 12
        if len(inbox) - at < header + size:
            break
        messages.append(pickle.loads(inbox[at + header:at + header + size]))
        at += header + size
    del inbox[:at]
    return messages


class LocalProcessBackend(Backend):
    """Worker processes on this machine; ``node_count`` must be 1."""

    name = "local"
    max_nodes = 1

    def __init__(self, spec, **options):
        super().__init__(spec, **options)
        self._workers: dict[int, _Worker] = {}
        # one selector for the job's life: cheaper than building one per poll
        self._selector = selectors.DefaultSelector()
        # reads land here: os.read(fd, 1 MiB) would allocate (and fault in) a fresh MiB per
        # call, ~14 us, as much as the rest of handling a mini-batch's outcome
        self._read_buffer = bytearray(1 << 20)
        self._gpus: list[str] = []
        self._threads_per_worker = 1

    def plan_slots(self, node_count: int, process_count_per_node: int | None) -> list[Slot]:
        if node_count != 1:
            raise BackendError(
                f"node_count={node_count}: the local backend runs on this one machine, so "
                "node_count must be 1. To use several nodes, run on a Ray cluster: "
                "compute_target=RayCompute.attach(ws, 'ray-cluster', address='auto') "
                "(or parallelrun run --compute ray)")
        self._gpus = visible_gpus()
        count = process_count_per_node or len(self._gpus) or os.cpu_count() or 1
        self._threads_per_worker = max(1, (os.cpu_count() or 1) // count)
        return [Slot(i, "node0", f"process{i:03d}") for i in range(count)]

    def _stream(self, kind: str, slot: Slot):
        path = Path(self.spec.log_dir, "user", kind, slot.node_name, f"{slot.process_name}.{kind}.txt")
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "ab")

    def start_worker(self, slot: Slot) -> None:
        parent_sock, child_sock = socket.socketpair()
        env = dict(os.environ)
        env.update(self.spec.environment_variables)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        env.setdefault("PYTHONUNBUFFERED", "1")
        for name in _THREAD_VARIABLES:
            # Workers share the cores: numeric libraries' thread pools sized for the whole
            # machine in every worker fight each other (as Ray also sets for its workers).
            env.setdefault(name, str(self._threads_per_worker))
        if self._gpus and "CUDA_VISIBLE_DEVICES" not in self.spec.environment_variables:
            # one GPU per worker, round robin when there are more workers than GPUs
            env["CUDA_VISIBLE_DEVICES"] = self._gpus[slot.id % len(self._gpus)]
        python = self.spec.python or sys.executable
        with self._stream("stdout", slot) as out, self._stream("stderr", slot) as err:
            try:
                proc = subprocess.Popen(
                    [python, "-m", "parallelrun.backends.local_worker", str(child_sock.fileno())],
                    pass_fds=(child_sock.fileno(),), stdin=subprocess.DEVNULL, stdout=out,
                    stderr=err, env=env, cwd=self.spec.source_dir)
            except OSError as exc:
                parent_sock.close()
                child_sock.close()
                raise BackendError(f"cannot start a worker with interpreter {python!r}: {exc}") from exc
        child_sock.close()
        conn = Connection(parent_sock.detach())
        worker = _Worker(slot, proc, conn)
        self._workers[slot.id] = worker
        self._selector.register(conn.fileno(), selectors.EVENT_READ, worker)
        try:
            conn.send((self.spec, slot))
        except OSError:
            pass  # the process already died; poll() reports it

    def submit(self, slot: Slot, minibatch: MiniBatch) -> None:
        self.submit_many(slot, [minibatch])

    def submit_many(self, slot: Slot, minibatches: list[MiniBatch]) -> None:
        # One message for several mini-batches: one system call and one wake-up of the worker.
        worker = self._workers[slot.id]
        try:
            worker.conn.send_bytes(pickle.dumps(minibatches, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            pass  # the worker died; its EOF arrives through poll()

    def poll(self, timeout: float | None) -> list[Event]:
        if not self._workers:
            if timeout:
                time.sleep(min(timeout, 0.05))
            return []
        events: list[Event] = []
        for key, _ in self._selector.select(timeout):
            worker = key.data
            if self._workers.get(worker.slot.id) is not worker:
                continue
            try:
                # all that is there in one read: a fast worker's outcomes come several at once
                size = os.readv(key.fd, [self._read_buffer])
                if not size:
                    raise EOFError
                worker.inbox += memoryview(self._read_buffer)[:size]
                for message in _whole_messages(worker.inbox):
                    if isinstance(message, list):  # outcomes of consecutive mini-batches
                        events.extend(MiniBatchDone(worker.slot.id, outcome) for outcome in message)
                        continue
                    event = self._event(worker, message)
                    events.append(event)
                    if isinstance(event, WorkerInitFailed):
                        self._reap(worker)  # the worker exits next; its EOF is not news
                        break
            except (EOFError, OSError):
                events.append(WorkerLost(worker.slot.id, self._death_reason(worker)))
                self._forget(worker)
        return events

    def _event(self, worker: _Worker, message: tuple) -> Event:
        if message[0] == "ready":
            worker.ready = True
            return WorkerReady(worker.slot.id)
        return WorkerInitFailed(worker.slot.id, message[1], fatal=message[2])

    def _death_reason(self, worker: _Worker) -> str:
        try:
            code = worker.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            worker.proc.kill()
            code = worker.proc.wait()
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            hint = " (out of memory?)" if name == "SIGKILL" else ""
            return f"worker process {worker.proc.pid} was killed by {name}{hint}"
        return f"worker process {worker.proc.pid} exited with code {code}"

    def _reap(self, worker: _Worker) -> None:
        try:
            worker.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            worker.proc.kill()
            worker.proc.wait()
        self._forget(worker)

    def _forget(self, worker: _Worker) -> None:
        if not worker.conn.closed:
            self._selector.unregister(worker.conn.fileno())
            worker.conn.close()
        if self._workers.get(worker.slot.id) is worker:
            del self._workers[worker.slot.id]

    def kill_worker(self, slot: Slot) -> None:
        worker = self._workers.get(slot.id)
        if worker is None:
            return
        worker.proc.kill()
        worker.proc.wait()
        self._forget(worker)

    def shutdown(self, grace_seconds: float = 10.0) -> None:
        workers = list(self._workers.values())
        for worker in workers:
            try:
                worker.conn.send_bytes(pickle.dumps(None))
            except OSError:
                pass
        deadline = time.monotonic() + grace_seconds
        for worker in workers:
            try:
                worker.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()
            self._forget(worker)
