"""Starts a command that ends when the process that started it dies (kill -9 included):
``python -I -S child_launcher.py PARENT_PID -- COMMAND...``.

A runner is threaded, and ``preexec_fn`` (code run between fork and exec) is unsafe in a
threaded process, so the runner starts this small script instead; it asks Linux to send it
SIGTERM when its parent dies (``PR_SET_PDEATHSIG``, which survives ``exec``), checks that the
parent did not die before that, and replaces itself with the command. The command keeps this
process's pid, session and process group. Elsewhere than Linux it only replaces itself.

Standard library only, and run with ``-I -S``: the command's ``PYTHONPATH`` (another
interpreter's) must not reach this interpreter, and nothing needs importing but ``ctypes``.
"""

import os
import signal
import sys

PR_SET_PDEATHSIG = 1
#: the exit status when the command cannot be started (as a shell's "command not found")
CANNOT_START = 127


def die_with_parent(parent_pid: int) -> None:
    """SIGTERM to this process when ``parent_pid`` (our parent) dies; exit now if it has."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
    except (OSError, AttributeError):   # not Linux: the runner's cancel still stops the child
        return
    if os.getppid() != parent_pid:       # died between our fork and the prctl: no signal comes
        sys.exit(f"parallelrun: the process that started this one ({parent_pid}) is gone")


def main(argv: list[str]) -> None:
    if len(argv) < 3 or argv[1] != "--":
        sys.exit("usage: python -I -S child_launcher.py PARENT_PID -- COMMAND [ARGUMENT...]")
    die_with_parent(int(argv[0]))
    command = argv[2:]
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"parallelrun: cannot start {command[0]}: {exc}", file=sys.stderr, flush=True)
        os._exit(CANNOT_START)


if __name__ == "__main__":
    main(sys.argv[1:])
