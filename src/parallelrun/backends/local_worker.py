"""Entry point of a local worker process: ``python -m parallelrun.backends.local_worker FD``.

Talks to the coordinator over the socket whose file descriptor it was given. Messages in:
the (WorkerSpec, Slot) pair, then lists of MiniBatch objects, then None (shut down). Messages
out: ``("ready",)``, ``("init_failed", traceback, fatal)``, lists of RunOutcome objects.

The worker leads its own process group (the coordinator starts it in a new session) and dies
with its coordinator, however the coordinator dies: an EOF on the socket without the orderly
None, or a new parent process (the coordinator's socket may live on in a process it forked),
and the worker kills its whole group, itself and every process its script started. Nobody
would read what they make, and a resume starts new workers beside them.
"""

from __future__ import annotations

import atexit
import logging
import os
import pickle
import queue
import signal
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection
from typing import NoReturn

# how often (seconds) the worker checks that its parent is still the coordinator
_PARENT_CHECK_SECONDS = 0.5


def main(fd: int) -> int:
    # Not inherited by what run() starts: a child holding the socket would keep it open
    # after this worker dies, and the coordinator would see no EOF. (A bare os.fork() still
    # copies it; the coordinator watches this process's exit for that case.)
    os.set_inheritable(fd, False)
    parent = os.getppid()
    conn = Connection(fd)
    spec, slot = conn.recv()
    # Watching the coordinator starts now, before the script's init(), which may take minutes.
    inbox: queue.SimpleQueue = queue.SimpleQueue()
    threading.Thread(target=_receive, args=(conn, inbox), name="parallelrun-receive",
                     daemon=True).start()
    threading.Thread(target=_watch_parent, args=(parent,), name="parallelrun-parent-watch",
                     daemon=True).start()
    # Imported after the handshake so a broken environment still reports through the socket.
    from parallelrun.backends.worker_loop import WorkerStartError, run_minibatch, start_worker, stop_worker

    try:
        runner = start_worker(spec, slot)
    except WorkerStartError as exc:
        conn.send(("init_failed", exc.traceback_text, exc.fatal))
        return 1
    conn.send(("ready",))
    while True:
        minibatches = inbox.get()
        if minibatches is None:
            break
        # Each outcome goes back at once, in its own message: if a later mini-batch of this
        # group kills the process, the coordinator still knows which ones finished, and which
        # one was running (the first without an outcome).
        for minibatch in minibatches:
            outcome = run_minibatch(runner, minibatch).to_message()
            conn.send_bytes(pickle.dumps([outcome], protocol=pickle.HIGHEST_PROTOCOL))
    stop_worker(runner)
    return 0


#: exit status of a worker that cannot unpickle the mini-batches it was sent
UNREADABLE_EXIT = 117  # an unusual status, not one a script exits with by habit


def _receive(conn: Connection, inbox: queue.SimpleQueue) -> None:
    """Reads mini-batches the moment they arrive, while the main thread runs earlier ones, and
    lets their payloads start fetching data (remote files download while run() computes).
    The end of the socket without the None message means the coordinator is gone."""
    from parallelrun.data.minibatch import prefetch

    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            _end_process_group("its socket closed without the shutdown message")
        try:
            message = pickle.loads(data)
        except Exception:  # noqa: BLE001 - e.g. a module the payload needs is not installed here
            # The main thread would wait for these mini-batches forever: leave, and say why in
            # the stderr log; the coordinator charges the try and names this exit code.
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(UNREADABLE_EXIT)
        if message:
            prefetch(message)
        inbox.put(message)
        if message is None:
            return


def _watch_parent(parent: int) -> NoReturn:
    """The coordinator is gone once this process has another parent (it was reparented when
    the coordinator died); this catches what the socket cannot: a process the coordinator
    forked holding a copy of its end. A parent *process*, not a thread: a coordinator thread
    that started this worker may end while the job goes on."""
    while True:
        time.sleep(_PARENT_CHECK_SECONDS)
        if os.getppid() != parent:
            _end_process_group(f"its parent process {parent} is gone")


def _end_process_group(why: str) -> NoReturn:
    """The coordinator died: end this worker and every process its script started, now."""
    logging.getLogger("parallelrun.worker").error(
        "the coordinator is gone (%s): ending worker %d and its process group", why, os.getpid())
    if os.getpgid(0) == os.getpid():  # the group is this worker's own, not the coordinator's
        os.killpg(0, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def _exit_now(code: int) -> None:
    """Exit without tearing down every module the model loaded (for numpy, scikit-learn or
    torch a normal interpreter exit takes a few hundred ms, which the end of every job would
    wait for); exit handlers still run (the remote cache's cleanup) and output is flushed."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    _exit_now(main(int(sys.argv[1])))
