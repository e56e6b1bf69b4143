"""How the Ray backend connects to a cluster: one process-wide ``ray.init``, token auth for Ray
Client, and a quick reachability check.

Separate from the backend because it is the part that leans on Ray's private APIs (the token
setup of Ray's CLI, the ``"auto"`` address lookup) and on the quirks of Ray Client's proxy: when
Ray changes those, this module changes and nothing else. The connection is shared by every job
of the process (a pipeline runs several), so it lives here at module level, not in a backend.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

import ray

from parallelrun.errors import BackendError

# the Ray backend's one logger, whichever of its modules writes
log = logging.getLogger("parallelrun.backends.ray")

#: seconds to wait for a Ray cluster's address to answer before the job fails
CONNECT_TIMEOUT = 10.0
#: how Ray Client reports that its proxy could not start a server for this client (the proxy's
#: own error follows: "Starting Ray client server failed", or psutil's ZombieProcess when the
#: server died between two of the proxy's checks)
_CLIENT_SERVER_FAILED = "Initialization failure from server"


class _Connection:
    """Process-wide ``ray.init`` shared by the jobs of this process (a pipeline runs several).

    Ray allows one connection per process. The first job that needs it connects; the last one
    to finish disconnects, but only if a job made the connection: a connection the user made
    with ``ray.init`` is theirs to keep.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.users = 0
        self.ours = False

    def acquire(self, address: str | None) -> None:
        with self.lock:
            if not ray.is_initialized():
                _ray_init(address)
                self.ours = True
            self.users += 1

    def release(self) -> None:
        with self.lock:
            self.users = max(0, self.users - 1)
            if self.users == 0 and self.ours:
                self.ours = False
                ray.shutdown()


#: the process's one connection, acquired by each Ray job that starts and released when it ends
connection = _Connection()


def _ray_init(address: str | None) -> None:
    address = address or os.environ.get("RAY_ADDRESS") or "auto"
    kwargs: dict[str, Any] = dict(log_to_driver=False, configure_logging=False)
    if address == "local":
        # a private cluster for this job: nobody asked for Ray's telemetry or dashboard
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        kwargs.update(address="local", include_dashboard=False)
    else:
        kwargs["address"] = address
    hint = ("Start one with `ray start --head`, or use address='local' to start a private "
            "cluster for this job" if address == "auto" else
            "Check the address (e.g. 'ray://head:10001' or 'head:6379') and that the cluster "
            "is up (`ray status` on its head)")
    if address.startswith("ray://"):
        _client_token_auth()
    elif address != "local" and "RAY_AUTH_MODE" not in os.environ:
        hint += (". If the cluster uses token authentication (`ray start` turns it on where "
                 "~/.ray/auth_token exists), run with RAY_AUTH_MODE=token and its token (`ray "
                 "get-auth-token` on the head) in ~/.ray/auth_token or RAY_AUTH_TOKEN")
    if address != "local":
        # ray.init retries an unreachable address for ever; a job must fail instead of hanging
        reason = _unreachable(address)
        if reason:
            raise BackendError(f"cannot connect to a Ray cluster at address={address!r}: {reason}. "
                               f"{hint}")
    for attempt in (1, 2):
        try:
            ray.init(**kwargs)
            return
        except (ConnectionError, ValueError, RuntimeError) as exc:
            if attempt == 1 and address.startswith("ray://") and _CLIENT_SERVER_FAILED in str(exc):
                # Ray Client's proxy starts a server (a child process) for each client; the
                # first it starts may die at once (gRPC's fork handlers, skipped while the
                # proxy's threads are in gRPC: "skipping fork() handlers" in its log). The next
                # try gets a new one, after ~30 s of Ray Client's own timeouts
                log.warning("Ray Client: %s; connecting again", str(exc).strip().splitlines()[-1][:200])
                ray.shutdown()
                continue
            raise BackendError(f"cannot connect to a Ray cluster at address={address!r}: {exc}. "
                               f"{hint}") from exc


def _client_token_auth() -> None:
    """Ray Client in token mode when this machine has a Ray authentication token.

    Ray (2.52 and later) turns token authentication on for clusters started where a token
    exists, and Ray Client sends the token only in token mode (RAY_AUTH_MODE=token); without it
    the connection times out. A Ray Client process serves nothing the cluster calls back, so
    token mode is harmless where the cluster has no authentication (it ignores the token).
    Not so for a driver connecting by GCS address: its own servers would then refuse the
    cluster's workers, so there the user sets RAY_AUTH_MODE (the connection error says so).
    The helper is Ray's CLI's own, not public: without it, the user sets RAY_AUTH_MODE.
    """
    if "RAY_AUTH_MODE" in os.environ:
        return
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available)
    except ImportError:
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def _unreachable(address: str, timeout: float = CONNECT_TIMEOUT) -> str | None:
    """Why ``address`` cannot be reached (None when a TCP connection opens, or unknown)."""
    target = address
    if address == "auto":
        try:  # where "auto" points: RAY_ADDRESS or the cluster `ray start` left a note of
            from ray._private.services import canonicalize_bootstrap_address

            target = canonicalize_bootstrap_address("auto")
        except Exception:  # noqa: BLE001 - Ray's own error, with its message, comes from ray.init
            return None
        if not target:
            return None
    host, _, port = target.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        return None
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        return f"nothing answers at {host}:{port} ({exc.strerror or exc})"
    return None
