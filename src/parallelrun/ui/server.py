"""Serving the dashboard: a listening socket on loopback (the next free port when the one asked
for is taken) and uvicorn on it.

Binding first and handing the socket to uvicorn means the URL printed is the one served: no
other process can take the port between choosing and listening. While it serves, the
workspace's schedules run (a :class:`~parallelrun.pipeline.schedules.Scheduler` thread).

Example::

    server = Dashboard(Workspace.from_config(), port=8787)
    print(server.url, server.token)
    server.serve()                      # until Ctrl-C; or server.start() / server.stop()
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
import time
from typing import Any

from parallelrun.errors import ConfigurationError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
PORT_TRIES = 50


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, tries: int = PORT_TRIES) -> socket.socket:
    """A listening socket on ``host`` at ``port``, or the next free port after it.

    Example: ``sock = bind("127.0.0.1", 8787)``; ``sock.getsockname()[1]`` is the port taken.
    """
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    last: OSError | None = None
    for candidate in range(port, port + (tries if port else 1)):
        # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY on accepted connections only when
        # the listening socket says TCP (without it, keep-alive answers wait ~40 ms for ACKs)
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        # no SO_REUSEADDR: a port another server listens on must read as taken
        try:
            sock.bind((host.strip("[]"), candidate))
            sock.listen(128)
            sock.setblocking(False)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                break
    raise ConfigurationError(
        "--port", port, f"a free port on {host} (tried {port} to {port + tries - 1}: {last}); "
        "pass another --port, or 0 for any free one")


class Dashboard:
    """The dashboard of one workspace on one socket (see the module doc)."""

    def __init__(self, workspace: Any, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 token: str | None = None, poll_seconds: float = 1.0):
        from parallelrun.ui.access import LOOPBACK_HOSTS, new_token
        from parallelrun.ui.app import create_app

        self.workspace = workspace
        self.host = host
        self.token = token or new_token()
        self.loopback = is_loopback(host)
        self.socket = bind(host, port)
        self.port = self.socket.getsockname()[1]
        # a dashboard opened to the network answers to any host name it is reached by
        allowed = LOOPBACK_HOSTS | {host} if self.loopback else None
        self.app = create_app(workspace, cancel_token=self.token, allowed_hosts=allowed,
                              poll_seconds=poll_seconds)
        self._server = None
        self._thread: threading.Thread | None = None
        #: the workspace's schedules run while the dashboard serves (see pipeline/schedules.py)
        self._scheduler = None

    def _start_scheduler(self) -> None:
        from parallelrun.pipeline.schedules import Scheduler

        self._scheduler = Scheduler(self.workspace, kind="dashboard").start()

    def _stop_scheduler(self) -> None:
        if self._scheduler is not None:
            self._scheduler.stop()
            self._scheduler = None

    @property
    def url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "::", "") else socket.gethostname()
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    @property
    def url_with_token(self) -> str:
        """The URL with the cancel token in its fragment (never sent to the server or logs)."""
        return f"{self.url}#token={self.token}"

    def _make_server(self):
        import uvicorn

        config = uvicorn.Config(self.app, log_level="warning", access_log=False,
                                timeout_graceful_shutdown=2, lifespan="off")
        self._server = uvicorn.Server(config)
        return self._server

    def serve(self) -> None:
        """Serve until interrupted (Ctrl-C)."""
        server = self._make_server()
        original = server.handle_exit

        def handle_exit(sig, frame):
            self.app.state.context.closing.set()  # let open event streams end first
            original(sig, frame)

        server.handle_exit = handle_exit
        self._start_scheduler()
        try:
            server.run(sockets=[self.socket])
        finally:
            self._stop_scheduler()

    def start(self) -> "Dashboard":
        """Serve on a background thread; returns once it answers."""
        server = self._make_server()
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [self.socket]},
                                        daemon=True, name="parallelrun-dashboard")
        self._thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the dashboard server did not start")
            time.sleep(0.02)
        self._start_scheduler()
        return self

    def stop(self) -> None:
        self._stop_scheduler()
        self.app.state.context.closing.set()  # event streams end at their next tick
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.socket.close()
