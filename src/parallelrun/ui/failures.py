"""The error summary of a step: failed tries grouped by exception type, read incrementally.

The engine writes each failed try as one JSON object a line to ``sys/job_report/failures.jsonl``
(engine/logs.py: ``FAILURES_FILE``, ``try_record``), with the byte range of its traceback block
in ``user/error/<node>/<process>.txt``. Nothing here reads the prose files people read.

A :class:`FailureIndex` reads the records from where it stopped last time, at most
:data:`SCAN_BYTES` per call, so a request never reads a whole large file; it keeps, per
exception type, counts and the byte offsets of its records (about 8 bytes a failure), and reads
a record again, one small read, when a page or a traceback asks for it.

Log folders written before the records existed (parallelrun before issue #16) show no failure
groups; their text files stay readable in the log browser.

Example::

    index = FailureIndex(step_log_dir)
    index.refresh()
    for group in index.groups():
        print(group["type"], group["tries"], group["minibatches_failed"])
    print(index.traceback(index.items("ValueError")["items"][0]["entry"]))
"""

from __future__ import annotations

import array
import json
import os
import threading
from datetime import datetime, timezone

from parallelrun.engine.logs import FAILURES_FILE
from parallelrun.statuses import TryOutcome

SCAN_BYTES = 8 * 1024 * 1024
MAX_TRACEBACK = 64 * 1024
_CACHED = 256
_TRACEBACKS = "user/error/"   # the only place a record's traceback may point to


def failure_view(record: dict) -> dict | None:
    """A failure record as the dashboard shows it (``index``, ``type``, the message's first
    line, ...), or None for a line that is not a failure record."""
    try:
        message = (record.get("error_message") or "").splitlines()
        return {"index": int(record["mini_batch"]), "attempt": int(record["attempt"]),
                "outcome": str(record["outcome"]), "status": str(record["status"]),
                "type": str(record.get("error_type") or record["status"]),
                "message": message[0] if message else "",
                "node": str(record["node"]), "process": str(record["process"]),
                "final": record["outcome"] != TryOutcome.WILL_BE_RETRIED,
                "time": datetime.fromtimestamp(float(record["finished_at"]), timezone.utc)
                .isoformat(timespec="milliseconds")}
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError, OSError):
        return None


def read_traceback(log_dir: str, where: object) -> str | None:
    """The traceback text at ``where`` (a record's ``traceback``: file, offset, length), its
    ``--- mini-batch`` header left out; None when it is not there."""
    if not isinstance(where, dict):
        return None
    name, offset, length = where.get("file"), where.get("offset"), where.get("length")
    if not (isinstance(name, str) and isinstance(offset, int) and isinstance(length, int)):
        return None
    parts = name.split("/")
    # names come from a file in the log folder: never let them make a path outside it
    if not name.startswith(_TRACEBACKS) or ".." in parts or "" in parts or "\\" in name \
            or offset < 0 or length <= 0:
        return None
    path = os.path.join(log_dir, *parts)
    if not os.path.realpath(path).startswith(os.path.realpath(log_dir) + os.sep):
        return None   # a link out of the log folder
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            block = fh.read(min(length, MAX_TRACEBACK))
    except OSError:
        return None
    if not block.startswith(b"--- mini-batch "):
        return None
    body = block.split(b"\n", 1)[1] if b"\n" in block else b""
    return body.decode("utf-8", errors="replace").rstrip("\n")


class _Group:
    __slots__ = ("type", "tries", "final", "retried", "first", "offsets")

    def __init__(self, type_: str):
        self.type = type_
        self.tries = 0
        self.final = 0
        self.retried = 0
        self.first: dict | None = None
        self.offsets = array.array("q")   # byte offsets of this type's records


class FailureIndex:
    """Failures of one step log folder, grouped by exception type (see the module doc)."""

    def __init__(self, log_dir: str):
        self.log_dir = log_dir
        self.path = os.path.join(log_dir, *FAILURES_FILE.split("/"))
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self.read_to = 0
        self.size = 0
        self._groups: dict[str, _Group] = {}
        self._entry_offsets = array.array("q")   # per failure (in file order): its offset
        self._cache: dict[int, str] = {}   # failure number -> its traceback
        self._inode = None

    # reading --------------------------------------------------------------------------------
    def refresh(self, budget: int = SCAN_BYTES) -> bool:
        """Read what was appended since last time (at most ``budget`` bytes); True when the
        index has caught up with the file."""
        with self._lock:
            try:
                info = os.stat(self.path)
            except OSError:
                return True
            if self._inode not in (None, info.st_ino) or info.st_size < self.read_to:
                self._reset()
            self._inode = info.st_ino
            self.size = info.st_size
            if info.st_size <= self.read_to:
                return True
            with open(self.path, "rb") as fh:
                fh.seek(self.read_to)
                data = fh.read(min(budget, info.st_size - self.read_to))
            end = data.rfind(b"\n") + 1
            if end == 0 and len(data) >= budget:
                end = len(data)  # one enormous line: skip it rather than stall
            offset = self.read_to
            for line in data[:end].split(b"\n")[:-1] if end else []:
                self._add(line, offset)
                offset += len(line) + 1
            self.read_to += end
            return self.read_to >= info.st_size

    def _add(self, line: bytes, offset: int) -> None:
        try:
            record = json.loads(line)
            kind = record.get("error_type") or record["status"]
            outcome = record["outcome"]
        except (ValueError, KeyError, TypeError, AttributeError):
            return   # a line cut short by a full disk, or not a record
        group = self._groups.get(kind)
        if group is None:
            group = self._groups[kind] = _Group(str(kind))
        group.tries += 1
        if outcome == TryOutcome.WILL_BE_RETRIED:
            group.retried += 1
        elif outcome == TryOutcome.FAILED:
            group.final += 1
        if group.first is None:
            group.first = {**(failure_view(record) or {}), "entry": len(self._entry_offsets)}
        group.offsets.append(offset)
        self._entry_offsets.append(offset)

    def _record_at(self, offset: int) -> dict | None:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(offset)
                return json.loads(fh.readline())
        except (OSError, ValueError):
            return None

    # views ----------------------------------------------------------------------------------
    @property
    def caught_up(self) -> bool:
        return self.read_to >= self.size

    def groups(self) -> list[dict]:
        """One dict per exception type, most frequent first, with its first failure."""
        with self._lock:
            groups = sorted(self._groups.values(), key=lambda g: (-g.tries, g.type))
            return [{"type": g.type, "tries": g.tries, "minibatches_failed": g.final,
                     "retried": g.retried, "first": dict(g.first) if g.first else None}
                    for g in groups]

    def total(self) -> int:
        return len(self._entry_offsets)

    def items(self, type_: str, offset: int = 0, limit: int = 50) -> dict:
        """A page of the failures of ``type_`` in file order (one small read each)."""
        with self._lock:
            group = self._groups.get(type_)
            offsets = list(group.offsets[offset:offset + limit]) if group else []
            total = len(group.offsets) if group else 0
        items = []
        for at in offsets:
            shown = failure_view(self._record_at(at) or {})
            if shown is not None:
                shown["entry"] = self._entry_at(at)
                items.append(shown)
        return {"type": type_, "items": items, "total": total, "offset": offset, "limit": limit}

    def _entry_at(self, offset: int) -> int:
        # entries are in file order, so their offsets are sorted: bisect
        lo, hi = 0, len(self._entry_offsets)
        while lo < hi:
            mid = (lo + hi) // 2
            if self._entry_offsets[mid] < offset:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _entry_record(self, number: int) -> dict | None:
        with self._lock:
            if not 0 <= number < len(self._entry_offsets):
                return None
            offset = self._entry_offsets[number]
        return self._record_at(offset)

    def entry(self, number: int) -> dict | None:
        """The failure ``number`` (in file order) as :func:`failure_view` shows it."""
        shown = failure_view(self._entry_record(number) or {})
        if shown is not None:
            shown["entry"] = number
        return shown

    def traceback(self, number: int) -> dict | None:
        """The failure ``number`` (an ``entry`` from :meth:`items`) with its traceback text."""
        record = self._entry_record(number)
        found = failure_view(record or {})
        if found is None:
            return None
        found["entry"] = number
        with self._lock:
            cached = self._cache.get(number)
        if cached is None:
            cached = read_traceback(self.log_dir, record.get("traceback"))
            if cached is not None:  # a traceback, once written, does not change
                with self._lock:
                    self._cache[number] = cached
                    while len(self._cache) > _CACHED:
                        self._cache.pop(next(iter(self._cache)))
        found["traceback"] = cached
        return found


class IndexCache:
    """One FailureIndex per step log folder, the most recently used kept."""

    def __init__(self, size: int = 32):
        self.size = size
        self._items: dict[str, FailureIndex] = {}
        self._lock = threading.Lock()

    def get(self, log_dir: str) -> FailureIndex:
        with self._lock:
            index = self._items.pop(log_dir, None)
            if index is None:
                index = FailureIndex(log_dir)
            self._items[log_dir] = index
            while len(self._items) > self.size:
                self._items.pop(next(iter(self._items)))
            return index
