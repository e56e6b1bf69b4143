"""Local processes: the embedded default backend.

Each worker is a child process (``python -m parallelrun.backends.local_worker``) started with
``subprocess``, not ``multiprocessing``: the user's ``__main__`` is never re-imported, and the
child can be another interpreter (an Environment's virtualenv). It talks over a socketpair; its
stdout and stderr go straight to its files under ``logs/user/``, so even a segfault message
lands there.

A worker owns the processes its script starts: each worker leads its own process group, and
ending a worker (killed, timed out, lost, or at shutdown) kills the whole group. Its death is
watched through a pidfd, not only through its socket: a child that forked from the worker holds
a copy of the socket, so no EOF comes while that child lives. The worker's side of the same
contract (it ends its group when the coordinator dies) is in ``local_worker``.
"""

from __future__ import annotations

import itertools
import os
import pickle
import select
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
from parallelrun.backends.local_worker import UNREADABLE_EXIT
from parallelrun.data.minibatch import MiniBatch
from parallelrun.errors import BackendError
from parallelrun.script import RunOutcome

# the folder holding the parallelrun package, put on workers' path (they may run another Python)
#: the folder holding the parallelrun package, put on the path of the processes it starts
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
#: the same for a process of another interpreter (a job environment's), only from a source tree:
#: an installed parallelrun's folder is site-packages, whose numpy & co. would shadow the
#: environment's (which finds parallelrun through a .pth of its own)
ROOT_FOR_OTHER_PYTHONS = None if Path(PACKAGE_ROOT).name in ("site-packages", "dist-packages") \
    else PACKAGE_ROOT


# thread-pool sizes of numeric libraries; set for workers unless the user's environment has them
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

# without pidfds, how often (seconds) poll() looks for workers that exited
_EXIT_POLL_SECONDS = 0.1


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
    __slots__ = ("slot", "proc", "conn", "pidfd", "ready", "inbox")

    def __init__(self, slot: Slot, proc: subprocess.Popen, conn: Connection, pidfd: int | None):
        self.slot = slot
        self.proc = proc
        self.conn = conn
        #: readable once the process has exited (None where the system has no pidfd)
        self.pidfd = pidfd
        self.ready = False
        self.inbox = bytearray()  # bytes read from the worker, not yet whole messages


def _open_pidfd(pid: int) -> int | None:
    """A pidfd for ``pid`` (Linux >= 5.3), or None where there is none (older kernels, other
    systems, a sandbox that forbids it): the backend then polls for the worker's exit."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None
    try:
        return pidfd_open(pid)
    except OSError:
        return None


# read by hand, not Connection.recv_bytes: one selector drains every worker's socket into one
# buffer without blocking on a message still arriving; the framing is CPython's
# multiprocessing.Connection's (a 4-byte length, or -1 and an 8-byte one)
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
    #: more than the base's: the scheduler lingers at most half a worker's queued work, and
    #: with 10 ms queued a run() of a millisecond or two made most outcomes a wake-up of the
    #: coordinator of their own, its CPU taken from the workers' cores. A job's last
    #: mini-batches fall at most this unevenly between workers
    queue_seconds = 0.04

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
        # without pidfds, workers' exits are checked by polling, at most this often (seconds)
        self._exit_polling = False
        self._next_exit_check = 0.0

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
        root = PACKAGE_ROOT if self.spec.python is None else ROOT_FOR_OTHER_PYTHONS
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
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
                # its own session, so its own process group: killing the group ends the worker
                # and every process its script started (and Ctrl-C at a terminal reaches only
                # the coordinator, which decides how the job stops)
                proc = subprocess.Popen(
                    [python, "-m", "parallelrun.backends.local_worker", str(child_sock.fileno())],
                    pass_fds=(child_sock.fileno(),), stdin=subprocess.DEVNULL, stdout=out,
                    stderr=err, env=env, cwd=self.spec.source_dir, start_new_session=True)
            except OSError as exc:
                parent_sock.close()
                child_sock.close()
                raise BackendError(f"cannot start a worker with interpreter {python!r}: {exc}") from exc
        child_sock.close()
        conn = Connection(parent_sock.detach())
        worker = _Worker(slot, proc, conn, _open_pidfd(proc.pid))
        self._workers[slot.id] = worker
        self._selector.register(conn.fileno(), selectors.EVENT_READ, worker)
        if worker.pidfd is not None:
            self._selector.register(worker.pidfd, selectors.EVENT_READ, worker)
        else:
            self._exit_polling = True
        try:
            conn.send((self.spec, slot))
        except OSError:
            pass  # the process already died; poll() reports it

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
        if self._exit_polling:
            timeout = _EXIT_POLL_SECONDS if timeout is None else min(timeout, _EXIT_POLL_SECONDS)
        events: list[Event] = []
        for key, _ in self._selector.select(timeout):
            worker = key.data
            if self._workers.get(worker.slot.id) is not worker:
                continue
            if key.fd == worker.pidfd:
                self._exited(worker, events)
                continue
            try:
                # all that is there in one read: a fast worker's outcomes come several at once
                size = os.readv(key.fd, [self._read_buffer])
                if not size:
                    raise EOFError
                worker.inbox += memoryview(self._read_buffer)[:size]
                self._deliver(worker, events)
            except (EOFError, OSError):
                events.append(WorkerLost(worker.slot.id, self._death_reason(worker)))
                self._forget(worker)
        if self._exit_polling:
            self._poll_exits(events)
        return events

    def _deliver(self, worker: _Worker, events: list[Event]) -> bool:
        """Turn the whole messages in the worker's inbox into events; False when the worker
        is finished with (its init failed: it exits next, and its EOF is not news)."""
        for message in _whole_messages(worker.inbox):
            if isinstance(message, list):  # outcomes of consecutive mini-batches
                events.extend(MiniBatchDone(worker.slot.id, RunOutcome.from_message(outcome))
                              for outcome in message)
                continue
            event = self._event(worker, message)
            events.append(event)
            if isinstance(event, WorkerInitFailed):
                self._reap(worker)
                return False
        return True

    def _exited(self, worker: _Worker, events: list[Event]) -> None:
        """The worker's process has exited: what it sent before is still in its socket (a child
        holding a copy of the socket means no EOF will come), so take that, then the loss."""
        fd = worker.conn.fileno()
        try:
            os.set_blocking(fd, False)
            while size := os.readv(fd, [self._read_buffer]):
                worker.inbox += memoryview(self._read_buffer)[:size]
        except OSError:
            pass  # BlockingIOError: all read; a reset socket: nothing more to read
        if self._deliver(worker, events):
            events.append(WorkerLost(worker.slot.id, self._death_reason(worker)))
            self._forget(worker)

    def _poll_exits(self, events: list[Event]) -> None:
        """Without pidfds: look for workers that exited, at most every _EXIT_POLL_SECONDS."""
        now = time.monotonic()
        if now < self._next_exit_check:
            return
        self._next_exit_check = now + _EXIT_POLL_SECONDS
        for worker in list(self._workers.values()):
            if worker.pidfd is None and _has_exited(worker.proc):
                self._exited(worker, events)

    def _event(self, worker: _Worker, message: tuple) -> Event:
        if message[0] == "ready":
            worker.ready = True
            return WorkerReady(worker.slot.id)
        return WorkerInitFailed(worker.slot.id, message[1], fatal=message[2])

    def _death_reason(self, worker: _Worker) -> str:
        self._wait_exited(worker, 5)
        self._end(worker)
        code = worker.proc.returncode
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            hint = " (out of memory?)" if name == "SIGKILL" else ""
            return f"worker process {worker.proc.pid} was killed by {name}{hint}"
        if code == UNREADABLE_EXIT:
            return (f"worker process {worker.proc.pid} could not read the mini-batches it was "
                    "sent (a module their data needs is missing from the workers' environment?); "
                    f"the traceback is in logs/user/stderr/{worker.slot.node_name}/"
                    f"{worker.slot.process_name}.stderr.txt")
        return f"worker process {worker.proc.pid} exited with code {code}"

    def _reap(self, worker: _Worker) -> None:
        self._wait_exited(worker, 5)
        self._end(worker)
        self._forget(worker)

    def _wait_exited(self, worker: _Worker, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the worker to exit, without reaping it: until it
        is reaped its pid, and so its process group's id, cannot be given to another process."""
        if worker.proc.returncode is not None:
            return True
        if worker.pidfd is not None:
            waiter = select.poll()
            waiter.register(worker.pidfd, select.POLLIN)
            return bool(waiter.poll(timeout * 1000))
        deadline = time.monotonic() + timeout
        while not _has_exited(worker.proc):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def _end(self, worker: _Worker) -> None:
        """Kill the worker's process group (the worker, if it still runs, and every process its
        script started), then reap the worker."""
        if worker.proc.returncode is None:
            try:
                os.killpg(worker.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            except PermissionError:  # macOS answers EPERM for a group of zombies
                worker.proc.kill()
        worker.proc.wait()

    def _forget(self, worker: _Worker) -> None:
        if not worker.conn.closed:
            self._selector.unregister(worker.conn.fileno())
            worker.conn.close()
        if worker.pidfd is not None:
            self._selector.unregister(worker.pidfd)
            os.close(worker.pidfd)
            worker.pidfd = None
        if self._workers.get(worker.slot.id) is worker:
            del self._workers[worker.slot.id]

    def kill_worker(self, slot: Slot) -> None:
        worker = self._workers.get(slot.id)
        if worker is None:
            return
        self._end(worker)
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
            self._wait_exited(worker, max(0.0, deadline - time.monotonic()))
            # a worker that has not exited, and whatever its script started and left running
            self._end(worker)
            self._forget(worker)


def _has_exited(proc: subprocess.Popen) -> bool:
    """Whether ``proc`` has exited, without reaping it (see _wait_exited)."""
    if proc.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped elsewhere
        return True
