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
import subprocess
import sys
from pathlib import Path
from typing import IO

import psutil

LAUNCHER = str(Path(__file__).with_name("child_launcher.py"))


def process_start_time(pid: int) -> float | None:
    """When process ``pid`` started (None if there is none): with the pid, who it is."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


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
