"""Ctrl-C and SIGTERM as a way to stop a job, not to lose it.

While a job runs on the main thread, the first SIGINT or SIGTERM asks it to stop gracefully: no
new mini-batches go out, the ones that finish are committed, and the job ends ``Canceled`` with
its result written, ready to be resumed. A second SIGINT stops it at once (KeyboardInterrupt).

Handlers are installed only where nobody else has: a program (the CLI, a pipeline runner) that
set its own handlers keeps them, and passes its own ``cancel`` event instead.
"""

from __future__ import annotations

import signal
import threading

_DEFAULTS = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}


class StopSignals:
    """A context manager that turns SIGINT/SIGTERM into ``cancel.set()`` while it is active.

    ``received`` is the first signal caught (a ``signal.Signals``), None when there was none;
    ``installed`` says whether this object's handlers were the ones in place.

    Example::

        cancel = threading.Event()
        with StopSignals(cancel) as stop:
            result = run_job(config, inputs, "out/", cancel=cancel)
        if stop.received:
            print("stopped by", stop.received.name)
    """

    def __init__(self, cancel: threading.Event, *, only_if_default: bool = False):
        self.cancel = cancel
        self.only_if_default = only_if_default
        self.received: signal.Signals | None = None
        self.installed = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is not threading.main_thread():
            return self  # signals are delivered to the main thread only
        current = {signum: signal.getsignal(signum) for signum in _DEFAULTS}
        if self.only_if_default and any(current[s] is not _DEFAULTS[s] for s in _DEFAULTS):
            return self
        self._previous = current
        for signum in _DEFAULTS:
            signal.signal(signum, self._handle)
        self.installed = True
        return self

    def _handle(self, signum: int, frame) -> None:
        if self.received is None:
            self.received = signal.Signals(signum)
            self.cancel.set()
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C: stop now

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    @property
    def reason(self) -> str:
        if self.received is signal.SIGINT:
            return "the job was interrupted (Ctrl-C)"
        if self.received is not None:
            return f"the job was stopped by {self.received.name}"
        return "the job was canceled"
