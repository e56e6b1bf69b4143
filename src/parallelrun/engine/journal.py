"""The journal of committed mini-batches: what makes output exactly-once and jobs resumable.

A mini-batch's rows are appended to the output file, then one line is appended here:
``index offset length items succeeded``. A mini-batch is committed when its line is complete.
Commits are written in groups (every few milliseconds, output first, then journal), so a
coordinator killed between two groups loses at most the last few milliseconds of commits, and
those mini-batches simply run again on resume. On resume, the output is cut back to the end of the last committed rows (whatever a killed
coordinator wrote after that is dropped) and committed mini-batches are skipped.
"""

from __future__ import annotations

import dataclasses
import os


@dataclasses.dataclass
class Commit:
    index: int
    offset: int
    length: int
    items: int
    succeeded: int


class Journal:
    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.commits: dict[int, Commit] = {}
        self._fd: int | None = None
        self._pending: list[bytes] = []

    def load(self) -> dict[int, Commit]:
        """Read committed mini-batches; a torn last line (killed mid-write) is ignored."""
        self.commits = {}
        if not os.path.exists(self.path):
            return self.commits
        with open(self.path, "rb") as fh:
            data = fh.read()
        good = 0
        for line in data.split(b"\n")[:-1]:  # the part after the last newline is incomplete
            fields = line.split()
            if len(fields) != 5:
                break
            commit = Commit(*map(int, fields))
            self.commits[commit.index] = commit
            good += len(line) + 1
        if good != len(data):
            with open(self.path, "r+b") as fh:
                fh.truncate(good)
        return self.commits

    def output_end(self) -> int:
        """Bytes of the output file that committed mini-batches account for."""
        return max((c.offset + c.length for c in self.commits.values()), default=0)

    def open(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def record(self, commit: Commit) -> None:
        """Note a commit; it is on disk after the next :meth:`flush`."""
        self.commits[commit.index] = commit
        self._pending.append(b"%d %d %d %d %d\n" % (commit.index, commit.offset, commit.length,
                                                     commit.items, commit.succeeded))

    def flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]

    def close(self) -> None:
        self.flush()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
