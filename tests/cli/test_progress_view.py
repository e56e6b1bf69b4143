"""The job's progress on an 80-column terminal and in a pipe: whole, labelled, and failures at
the end."""

from __future__ import annotations

import errno
import fcntl
import io
import os
import pty
import struct
import subprocess
import sys
import termios
import time

import pyte
from rich.console import Console

from parallelrun.cli.progress_view import TerminalProgress
from parallelrun.engine.progress import JobProgress


def midway() -> JobProgress:
    return JobProgress(started_at=time.time() - 75, planned_minibatches=40, planning_done=True,
                       minibatches_succeeded=11, minibatches_failed=1, items_succeeded=1_234_567,
                       items_failed=12_345, retries=3, workers_total=16, workers_ready=16)


def test_live_view_at_80_columns_keeps_the_bar_and_every_labelled_field_whole():
    console = Console(file=io.StringIO(), width=80, record=True, force_terminal=True,
                      color_system=None)
    view = TerminalProgress(console)
    progress = midway()
    view.on_start(progress)
    view.on_end(progress, None)
    lines = console.export_text().splitlines()
    assert all(len(line) <= 80 for line in lines)
    bar_line = next(line for line in lines if "mini-batches" in line)
    assert bar_line.endswith("mini-batches 12/40 (30%)")
    bar_width = bar_line.index("mini-batches") - 2    # the bar itself, not squeezed out
    assert bar_width >= 50 and abs(bar_line.count("━") - 0.3 * bar_width) <= 2
    assert "items: 1,234,567 succeeded, 12,345 failed; retried: 3; workers: 16/16" in lines
    timing = next(line for line in lines if line.startswith("elapsed:"))
    assert timing.startswith("elapsed: 0:01:1") and "items/s; ETA: 0:0" in timing


def test_in_a_pipe_the_last_line_is_labelled_with_elapsed(capsys):
    view = TerminalProgress(Console(file=open(os.devnull, "w"), force_terminal=False))
    progress = midway()
    view.on_start(progress)
    view.on_end(progress, None)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "mini-batches: 12/40 done (1 failed, 3 retried)" in line
    assert "elapsed: 75 s" in line or "elapsed: 76 s" in line
    assert "; ETA: " in line


def run_in_terminal(args: list[str], cwd, columns: int = 80, rows: int = 200) -> list[str]:
    """The CLI run on a pseudo-terminal ``columns`` wide: the rows of the screen it leaves, as a
    terminal emulator (pyte) draws them, so a live view redrawn in place reads as the user sees
    it and a line too wide wraps onto the next row as it would there (rows padded to the width,
    so joined they read as the wrapped text)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env.update(TERM="xterm-256color", HOME=str(cwd))
    proc = subprocess.Popen([sys.executable, "-m", "parallelrun", *args], cwd=cwd, env=env,
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    screen = pyte.Screen(columns, rows)
    stream = pyte.ByteStream(screen)
    while True:
        try:
            data = os.read(master, 65536)
        except OSError as exc:            # EIO: the child closed the terminal
            assert exc.errno == errno.EIO
            break
        if not data:
            break
        stream.feed(data)
    os.close(master)
    proc.wait(timeout=120)
    return screen.display


def test_a_job_on_an_80_column_terminal_ends_with_its_counts_and_its_first_failure(
        make_script, make_files, tmp_path):
    make_script("""
        def init(): pass
        def run(mini_batch):
            if any(p.endswith("item_0003.txt") for p in mini_batch):
                raise ValueError("unreadable digit")
            return list(mini_batch)
    """)
    make_files(6)
    rows = run_in_terminal(["run", "--source-directory", "scripts", "--entry-script", "score.py",
                              "--input", "data", "--mini-batch-size", "1", "--output", "out",
                              "--run-max-try", "1", "--process-count-per-node", "1"], tmp_path)
    lines = [row.rstrip() for row in rows]
    screen, wrapped = "\n".join(lines), "".join(rows)
    # the bar keeps its row: wider than the terminal, it would wrap and its label would not end it
    bar = [line for line in lines if "━" in line]
    assert bar and bar[-1].startswith("━") and bar[-1].endswith("mini-batches 6/6 (100%)"), screen
    assert "items: 5 succeeded, 1 failed; retried: 0; workers: 1/1" in screen
    assert any(line.startswith("elapsed: 0:00:") for line in lines)
    # the summary after the view: the failure, which mini-batch, why, where its traceback is
    assert "first failure: mini-batch 3 [" in screen and "ValueError: unreadable digit" in wrapped
