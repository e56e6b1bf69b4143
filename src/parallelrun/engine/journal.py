"""The journal of committed mini-batches: what makes output exactly-once and jobs resumable.

A mini-batch's rows are appended to the output file, then one line is appended here:
``index offset length items succeeded digest``. A mini-batch is committed when its line is on
disk. ``digest`` is a checksum of what the mini-batch held (``MiniBatch.digest()``): a resumed
job plans again and must find the same items under the same index (journals written before the
digest have five fields; their resume is not checked).

Commits are written in groups (every few milliseconds), and a group's journal lines are written
only after the output rows they name are on disk: the coordinator writes the rows, then hands
the lines to the journal's writer thread, which syncs the output (``fdatasync``), appends the
lines and syncs the journal. So after a power loss or kernel crash, as after a killed
coordinator, the journal never names rows the output lacks; what was committed in the last
group or two before the crash is lost and simply runs again on resume. The syncs run on that
thread so the coordinator never waits for the disk, except once at the end: the scheduler waits
for every line to be on disk before the job reports its outcome.

On resume, :meth:`Journal.load` is given the output's real size: journal entries whose rows
reach beyond it (the output lost its tail, a copy was cut short) are dropped together with every
entry after them (entries are appended in output order), and those mini-batches run again; the
output is then cut back to the end of the last committed rows (whatever a dead coordinator wrote
after that is dropped). The output is never extended to meet the journal.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from typing import Callable


def fdatasync(fd: int) -> None:
    """``os.fdatasync`` where the platform has it (not macOS), else ``os.fsync``."""
    if hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:
        os.fsync(fd)


@dataclasses.dataclass
class Commit:
    index: int
    offset: int
    length: int
    items: int
    succeeded: int
    digest: str | None = None

    @property
    def end(self) -> int:
        """Where this mini-batch's rows end in the output file."""
        return self.offset + self.length


class Journal:
    """The committed mini-batches of one job, in ``logs/sys/journal.txt``."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.commits: dict[int, Commit] = {}
        #: entries :meth:`load` dropped because their rows were not in the output
        self.dropped: list[Commit] = []
        self._fd: int | None = None
        self._pending: list[bytes] = []
        self._writer: _JournalWriter | None = None

    def load(self, output_size: int | None = None) -> dict[int, Commit]:
        """Read committed mini-batches; a torn last line (killed mid-write) is ignored.

        With ``output_size`` (bytes of the output file now on disk), the first entry whose rows
        end beyond it and every entry after it are dropped (see :attr:`dropped`): those
        mini-batches run again. The journal file is cut to what is kept.
        """
        self.commits, self.dropped = {}, []
        if not os.path.exists(self.path):
            return self.commits
        with open(self.path, "rb") as fh:
            data = fh.read()
        good = 0
        for line in data.split(b"\n")[:-1]:  # the part after the last newline is incomplete
            commit = _parse(line)
            if commit is None:
                break                           # torn or garbled (a crash mid-write): stop here
            if output_size is not None and (self.dropped or commit.end > output_size):
                self.dropped.append(commit)
                continue
            self.commits[commit.index] = commit
            good += len(line) + 1
        if good != len(data):
            with open(self.path, "r+b") as fh:
                fh.truncate(good)
                fdatasync(fh.fileno())          # cut before the output is cut back to match
        return self.commits

    def output_end(self) -> int:
        """Bytes of the output file that committed mini-batches account for."""
        return max((c.end for c in self.commits.values()), default=0)

    def open(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        sync_directory(os.path.dirname(self.path))   # the file itself survives a crash
        self._writer = _JournalWriter(self._fd)
        self._writer.start()

    def record(self, commit: Commit) -> None:
        """Note a commit; it is on disk after the next :meth:`flush` (and its output's sync)."""
        self.commits[commit.index] = commit
        self._pending.append(b"%d %d %d %d %d %s\n" % (
            commit.index, commit.offset, commit.length, commit.items, commit.succeeded,
            (commit.digest or "-").encode()))

    def flush(self, sync_output: Callable[[], None] | None = None, wait: bool = False) -> None:
        """Hand the recorded lines to the writer thread, which appends them once
        ``sync_output()`` (making the rows they name durable) has returned.

        The caller has already written those rows. With ``wait``, returns once every line
        handed over is on disk. Raises the writer's error (a full disk...) if it had one.
        """
        if self._writer is None:
            raise RuntimeError("Journal.flush() before open()")
        if self._pending:
            lines = b"".join(self._pending)
            self._pending.clear()
            self._writer.hand(lines, sync_output)
        else:
            self._writer.check()
        if wait:
            self._writer.wait()

    def close(self) -> None:
        """Write what is left, wait until it is on disk, and close; raises the writer's error."""
        try:
            if self._writer is not None:
                self.flush(wait=True)
        finally:
            if self._writer is not None:
                self._writer.stop()
                self._writer = None
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _parse(line: bytes) -> Commit | None:
    fields = line.split()
    if len(fields) not in (5, 6):
        return None
    try:
        commit = Commit(*map(int, fields[:5]))
    except ValueError:
        return None
    if len(fields) == 6 and fields[5] != b"-":
        commit.digest = fields[5].decode("ascii", "replace")
    if commit.offset < 0 or commit.length < 0:
        return None
    return commit


def sync_directory(path: str) -> None:
    """fsync a folder, so that a file just created in it is still there after a crash."""
    try:
        fd = os.open(path or ".", os.O_RDONLY)
    except OSError:
        return                                   # not openable as a folder here: nothing to do
    try:
        os.fsync(fd)
    except OSError:
        pass                                     # some filesystems refuse fsync on folders
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written (a write may take only part)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class _JournalWriter(threading.Thread):
    """Appends journal lines on its own thread: each group after the output's sync.

    Groups handed over while a sync runs are written together after the next one, so a slow
    disk means fewer, larger syncs rather than a backlog. After an error nothing more is
    written (a line must never follow a failed sync), and every later call raises it.
    """

    def __init__(self, fd: int):
        super().__init__(name="parallelrun-journal", daemon=True)
        self.fd = fd
        self._cond = threading.Condition()
        self._groups: list[tuple[bytes, Callable[[], None] | None]] = []
        self._handed = 0
        self._written = 0
        self._stopping = False
        self.error: BaseException | None = None

    def hand(self, lines: bytes, sync_output: Callable[[], None] | None) -> None:
        with self._cond:
            self._raise_error()
            self._groups.append((lines, sync_output))
            self._handed += 1
            self._cond.notify_all()

    def check(self) -> None:
        with self._cond:
            self._raise_error()

    def wait(self) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._written == self._handed or self.error is not None)
            self._raise_error()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self.join()

    def _raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    def run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._groups or self._stopping)
                if not self._groups:
                    return
                groups, self._groups = self._groups, []
            try:
                for sync in dict.fromkeys(sync for _, sync in groups if sync is not None):
                    sync()                       # the rows these lines name are on disk now
                write_all(self.fd, b"".join(lines for lines, _ in groups))
                fdatasync(self.fd)
            except BaseException as exc:  # noqa: BLE001 - handed to the coordinator's next call
                with self._cond:
                    self.error = exc
                    self._cond.notify_all()
                return
            with self._cond:
                self._written += len(groups)
                self._cond.notify_all()
