"""The runner's child processes, in one place: a script step's process started so that it dies
with the runner, stopped with everything it started, and a process's identity (pid and start
time, so a reused pid is not taken for the runner).

A script step's process runs in a session of its own (``start_new_session=True``): a cancel
stops its whole process group, and a terminal's Ctrl-C reaches only the runner. It is started
through :mod:`~parallelrun.pipeline.child_launcher`, which ties it to the runner with Linux's
``PR_SET_PDEATHSIG`` (the runner is threaded: no ``preexec_fn``), so a resumed run never has an
orphan of the old one writing into the same output folder. The signal comes when the *thread*
that started the child ends; the step thread that starts it waits for it, so that is the
runner's death.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import psutil

from parallelrun.backends.local import PACKAGE_ROOT
from parallelrun.errors import BackendError
from parallelrun.pipeline.run_folder import RUNNER_OUT
from parallelrun.statuses import RunStatus

LAUNCHER = str(Path(__file__).with_name("child_launcher.py"))


def process_start_time(pid: int) -> float | None:
    """When process ``pid`` started (None if there is none): with the pid, who it is."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def start_run_process(store: Any, record: dict, module_args: list[str],
                      what: str) -> subprocess.Popen:
    """Start ``python -m MODULE ARGS...`` for the Queued run ``record`` in a session of its own
    (it outlives its caller), its output appended to the run folder's ``runner.out``; record its
    pid, start time and host, or mark the run Failed and raise BackendError if it cannot start.
    ``what`` names the process in messages ("the run's process")."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", *module_args]
    cwd = record["cwd"] if os.path.isdir(record["cwd"]) else store.workspace.path
    with open(os.path.join(record["run_dir"], RUNNER_OUT), "ab") as out:
        try:
            process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                       stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        except OSError as exc:
            store.update_run(record["id"], status=RunStatus.FAILED, finished_at=time.time(),
                             error=f"could not start {what}: {exc}")
            raise BackendError(f"could not start {what} ({command[0]}): {exc}") from exc
    store.update_run(record["id"], only_if_status=(RunStatus.QUEUED,), pid=process.pid,
                     pid_started=process_start_time(process.pid), host=socket.gethostname())
    return process


def start_tied_process(command: list[str], *, cwd: str, env: dict[str, str]) -> subprocess.Popen:
    """Start ``command`` in a new session, tied to this process's life (see the module doc),
    its stdout and stderr as text pipes (undecodable bytes replaced)."""
    launcher = [sys.executable, "-I", "-S", LAUNCHER, str(os.getpid()), "--", *command]
    return subprocess.Popen(launcher, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace", start_new_session=True)


def stop_process_group(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM to the process group ``proc`` leads; SIGKILL after ``grace`` seconds."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except (ProcessLookupError, PermissionError):
        return
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def pump_lines(stream: IO[str], sink: IO[str], on_line) -> None:
    """Copy ``stream`` to ``sink`` line by line (flushed, so a reader sees it at once), calling
    ``on_line`` with each line, its newline removed."""
    for line in stream:
        sink.write(line)
        sink.flush()
        on_line(line.rstrip("\n"))
