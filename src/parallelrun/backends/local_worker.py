"""Entry point of a local worker process: ``python -m parallelrun.backends.local_worker FD``.

Talks to the coordinator over the socket whose file descriptor it was given. Messages in:
the (WorkerSpec, Slot) pair, then lists of MiniBatch objects, then None (shut down). Messages
out: ``("ready",)``, ``("init_failed", traceback, fatal)``, lists of RunOutcome objects.
"""

from __future__ import annotations

import atexit
import os
import pickle
import queue
import sys
import threading
from multiprocessing.connection import Connection


def main(fd: int) -> int:
    conn = Connection(fd)
    spec, slot = conn.recv()
    # Imported after the handshake so a broken environment still reports through the socket.
    from parallelrun.backends.worker_loop import WorkerStartError, run_minibatch, start_worker, stop_worker

    try:
        runner = start_worker(spec, slot)
    except WorkerStartError as exc:
        conn.send(("init_failed", exc.traceback_text, exc.fatal))
        return 1
    conn.send(("ready",))
    inbox: queue.SimpleQueue = queue.SimpleQueue()
    threading.Thread(target=_receive, args=(conn, inbox), name="parallelrun-receive",
                     daemon=True).start()
    while True:
        minibatches = inbox.get()
        if minibatches is None:
            break
        # Each outcome goes back at once, in its own message: if a later mini-batch of this
        # group kills the process, the coordinator still knows which ones finished, and which
        # one was running (the first without an outcome).
        for minibatch in minibatches:
            conn.send_bytes(pickle.dumps([run_minibatch(runner, minibatch)], protocol=pickle.HIGHEST_PROTOCOL))
    stop_worker(runner)
    return 0


def _receive(conn: Connection, inbox: queue.SimpleQueue) -> None:
    """Reads mini-batches the moment they arrive, while the main thread runs earlier ones, and
    lets their payloads start fetching data (remote files download while run() computes)."""
    from parallelrun.data.minibatch import prefetch

    while True:
        try:
            message = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            message = None
        if message:
            prefetch(message)
        inbox.put(message)
        if message is None:
            return


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
