"""The error summary of a step: failed tries grouped by exception type, read incrementally.

The engine writes one line per failed try to ``user/error.txt``::

    2026-01-01T10:00:00.000+00:00 mini-batch 8 try 2 failed: RUN_EXCEPTION ValueError: bad item [node0/process001]

and the try's traceback, in the same order, to ``user/error/<node>/<process>.txt`` under a
``--- mini-batch 8, try 2, ...`` header. A :class:`FailureIndex` reads those files from where
it stopped last time, at most :data:`SCAN_BYTES` per call, so a request never reads a whole
large file; it keeps, per exception type, counts and the byte offsets of its lines, and per
failure its ordinal among its process's failures (about 30 bytes a failure in all). A
failure's traceback is found by its header in that process's traceback file, looked for first
where the ordinal says it should be, so it costs a small read however long the file.

Example::

    index = FailureIndex(step_log_dir)
    index.refresh()
    for group in index.groups():
        print(group["type"], group["tries"], group["minibatches_failed"])
    print(index.traceback(index.items("ValueError")["items"][0]["entry"]))
"""

from __future__ import annotations

import array
import os
import re
import threading

SCAN_BYTES = 8 * 1024 * 1024
MAX_TRACEBACK = 64 * 1024
_WINDOW = 64 * 1024
_CACHED = 256
_PATTERN = (r"^(?P<time>\S+) mini-batch (?P<index>\d+) try (?P<attempt>\d+) "
            r"(?P<outcome>failed|will be retried|done, with failed records): (?P<status>\S+) "
            r"(?P<type>[^:\s]*): ?(?P<message>[^\n]*?) ?"
            r"\[(?P<node>[^/\[\]\n]+)/(?P<process>[^\[\]\n]+)\]$")
_LINE = re.compile(_PATTERN)
# the same over the raw bytes of a chunk, line by line: offsets are byte offsets
_LINE_BYTES = re.compile(_PATTERN.encode(), re.MULTILINE)
_SAFE_PART = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def parse_line(line: str) -> dict | None:
    match = _LINE.match(line.rstrip("\r\n"))
    if not match:
        return None
    data = match.groupdict()
    data["index"] = int(data["index"])
    data["attempt"] = int(data["attempt"])
    data["final"] = data["outcome"] != "will be retried"
    data["type"] = data["type"] or data["status"]
    return data


class _Group:
    __slots__ = ("type", "tries", "final", "retried", "first", "offsets")

    def __init__(self, type_: str):
        self.type = type_
        self.tries = 0
        self.final = 0
        self.retried = 0
        self.first: dict | None = None
        self.offsets = array.array("q")   # byte offsets of this type's lines in error.txt


def find_traceback(path: str, index: int, attempt: int, ordinal: int, count: int,
                   budget: int = SCAN_BYTES) -> str | None:
    """The traceback of try ``attempt`` of mini-batch ``index`` in one process's traceback file.

    Blocks are written in the order of that process's failures, so the ``ordinal``-th of
    ``count`` failures lies near ``ordinal / count`` of the file: look there first, then in
    windows further and further around it, reading at most ``budget`` bytes.
    """
    needle = f"--- mini-batch {index}, try {attempt},".encode()
    try:
        size = os.path.getsize(path)
        fh = open(path, "rb")
    except OSError:
        return None
    with fh:
        guess = int(size * ordinal / max(count, 1))
        first = max(0, guess - _WINDOW // 2)
        starts = [first]
        for k in range(1, size // _WINDOW + 2):
            starts += [first + k * _WINDOW, first - k * _WINDOW]
        read = 0
        for start in starts:
            if start < 0 or start >= size:
                continue
            fh.seek(start)
            data = fh.read(_WINDOW + len(needle) + 1)
            read += len(data)
            at = 0 if start == 0 and data.startswith(needle) else -1
            if at < 0:
                found = data.find(b"\n" + needle)
                at = found + 1 if found >= 0 else -1
            if at >= 0:
                fh.seek(start + at)
                fh.readline()  # the header
                body = fh.read(MAX_TRACEBACK)
                cut = body.find(b"\n--- mini-batch ")
                if cut >= 0:
                    body = body[:cut]
                return body.decode("utf-8", errors="replace").rstrip("\n")
            if read >= budget:
                return None
    return None


class FailureIndex:
    """Failures of one step log folder, grouped by exception type (see the module doc)."""

    def __init__(self, log_dir: str):
        self.log_dir = log_dir
        self.path = os.path.join(log_dir, "user", "error.txt")
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self.read_to = 0
        self.size = 0
        self._groups: dict[str, _Group] = {}
        self._by_process: dict[int, int] = {}   # process number -> failures seen there
        # per failure (in file order): its line's offset, its process and its ordinal there
        self._entry_offsets = array.array("q")
        self._entry_process = array.array("i")
        self._entry_ordinal = array.array("q")
        self._processes: list[tuple[str, str]] = []
        self._process_ids: dict[tuple[bytes, bytes], int] = {}
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
            base = self.read_to
            for match in _LINE_BYTES.finditer(data, 0, end):
                self._add(match, base)
            self.read_to += end
            return self.read_to >= info.st_size

    def _add(self, match: re.Match, base: int) -> None:
        # one regex pass over the chunk (in C); per failure only lookups and appends
        offset = base + match.start()
        kind, outcome, node, process = match.group("type", "outcome", "node", "process")
        kind = (kind or match["status"]).decode("utf-8", errors="replace")
        group = self._groups.get(kind)
        if group is None:
            group = self._groups[kind] = _Group(kind)
        group.tries += 1
        if outcome == b"will be retried":
            group.retried += 1
        elif outcome == b"failed":
            group.final += 1
        if group.first is None:
            first = parse_line(match[0].decode("utf-8", errors="replace"))
            group.first = {**(first or {}), "entry": len(self._entry_offsets)}
        group.offsets.append(offset)
        key = (node, process)
        number = self._process_ids.get(key)
        if number is None:
            number = self._process_ids[key] = len(self._processes)
            self._processes.append((node.decode("utf-8", errors="replace"),
                                    process.decode("utf-8", errors="replace")))
        ordinal = self._by_process.get(number, 0)
        self._by_process[number] = ordinal + 1
        self._entry_offsets.append(offset)
        self._entry_process.append(number)
        self._entry_ordinal.append(ordinal)

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
        if offsets:
            with open(self.path, "rb") as fh:
                for at in offsets:
                    fh.seek(at)
                    parsed = parse_line(fh.readline().decode("utf-8", errors="replace"))
                    if parsed is not None:
                        parsed["entry"] = self._entry_at(at)
                        items.append(parsed)
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

    def entry(self, number: int) -> dict | None:
        with self._lock:
            if not 0 <= number < len(self._entry_offsets):
                return None
            offset = self._entry_offsets[number]
            key = self._processes[self._entry_process[number]]
            ordinal = self._entry_ordinal[number]
        with open(self.path, "rb") as fh:
            fh.seek(offset)
            parsed = parse_line(fh.readline().decode("utf-8", errors="replace"))
        if parsed is None:
            return None
        parsed.update(entry=number, ordinal=ordinal, node=key[0], process=key[1])
        return parsed

    def traceback(self, number: int) -> dict | None:
        """The failure ``number`` (an ``entry`` from :meth:`items`) with its traceback text."""
        found = self.entry(number)
        if found is None:
            return None
        key = (found["node"], found["process"])
        found["traceback"] = None
        if not (_SAFE_PART.match(key[0]) and _SAFE_PART.match(key[1])) or ".." in key:
            return found  # names from the log file itself; never let them make a path outside
        with self._lock:
            count = self._by_process.get(self._process_ids.get(
                (key[0].encode(), key[1].encode())), 1)
            cached = self._cache.get(number)
        if cached is None:
            path = os.path.join(self.log_dir, "user", "error", key[0], f"{key[1]}.txt")
            cached = find_traceback(path, found["index"], found["attempt"], found["ordinal"],
                                    count)
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
