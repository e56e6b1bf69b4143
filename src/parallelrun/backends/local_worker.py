"""Entry point of a local worker process: ``python -m parallelrun.backends.local_worker FD``.

Talks to the coordinator over the socket whose file descriptor it was given. Messages in:
the (WorkerSpec, Slot) pair, then lists of MiniBatch objects, then None (shut down). Messages
out: ``("ready",)``, ``("init_failed", traceback, fatal)``, lists of RunOutcome objects.
"""

from __future__ import annotations

import pickle
import sys
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
    while True:
        try:
            minibatches = pickle.loads(conn.recv_bytes())
        except EOFError:
            break
        if minibatches is None:
            break
        # Each outcome goes back at once, in its own message: if a later mini-batch of this
        # group kills the process, the coordinator still knows which ones finished, and which
        # one was running (the first without an outcome).
        for minibatch in minibatches:
            conn.send_bytes(pickle.dumps([run_minibatch(runner, minibatch)], protocol=pickle.HIGHEST_PROTOCOL))
    stop_worker(runner)
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
