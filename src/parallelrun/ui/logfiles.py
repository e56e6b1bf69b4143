"""Log files addressed by ids, read by byte ranges.

A URL never carries a path: a file's id is a hash of its place under a log folder, and a
request's id is looked up among the regular files found by walking that folder without following
symbolic links, inside the workspace. The file is then opened with ``O_NOFOLLOW`` and checked to
be the very file the walk found (device and inode), so nothing a URL says, and no link planted in
a log folder, reaches a file outside it. Reads are byte ranges aligned to whole lines, at most
:data:`MAX_CHUNK` bytes, so a log of any size costs one small read per request.

Example::

    files = list_files("/ws/.parallelrun/runs/r1/steps/score/logs")
    chunk = read_chunk(files[0], tail=True)        # the last lines
    older = read_chunk(files[0], before=chunk["start"])
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
import time

MAX_CHUNK = 1024 * 1024
DEFAULT_CHUNK = 64 * 1024
MAX_FILES = 20_000
# the files a user opens first, in this order; the rest follow by path
_FIRST = ("job_result.txt", "job_error.txt", "user/error.txt", "run.log", "runner.out")


@dataclasses.dataclass(frozen=True)
class LogFile:
    id: str
    name: str          # relative to the folder, '/'-separated (shown, never accepted)
    size: int
    modified: float
    path: str = dataclasses.field(repr=False)
    device: int = dataclasses.field(repr=False, default=0)
    inode: int = dataclasses.field(repr=False, default=0)

    def public(self) -> dict:
        return {"id": self.id, "name": self.name, "size": self.size, "modified": self.modified,
                "category": category(self.name)}


def file_id(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:20]


def category(name: str) -> str:
    if name.startswith("user/"):
        return "user"
    if name.startswith("sys/"):
        return "sys"
    return "summary"


def _sort_key(name: str) -> tuple:
    return (_FIRST.index(name) if name in _FIRST else len(_FIRST),
            not name.startswith("job_progress_overview"), name.count("/"), name)


def list_files(root: str, within: str | None = None) -> list[LogFile]:
    """Regular files under ``root`` (no symlinks followed), most useful first.

    ``within``: the folder ``root`` must resolve inside (the workspace); outside it nothing is
    listed.
    """
    if not root or not os.path.isdir(root) or os.path.islink(root):
        return []
    real_root = os.path.realpath(root)
    if within is not None:
        base = os.path.realpath(within)
        if not (real_root == base or real_root.startswith(base + os.sep)):
            return []
    found: list[LogFile] = []
    stack = [(real_root, "")]
    while stack and len(found) < MAX_FILES:
        folder, prefix = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            name = f"{prefix}{entry.name}"
            if stat.S_ISDIR(info.st_mode):
                stack.append((entry.path, name + "/"))
            elif stat.S_ISREG(info.st_mode):
                found.append(LogFile(file_id(name), name, info.st_size, info.st_mtime,
                                     entry.path, info.st_dev, info.st_ino))
            # symlinks, sockets, fifos: never listed, so never readable
    found.sort(key=lambda f: _sort_key(f.name))
    return found


def find(files: list[LogFile], wanted: str) -> LogFile | None:
    for item in files:
        if item.id == wanted:
            return item
    return None


def _open_checked(item: LogFile) -> int:
    fd = os.open(item.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or (item.inode and (info.st_ino, info.st_dev) !=
                                           (item.inode, item.device)):
        os.close(fd)
        raise FileNotFoundError(item.name)  # replaced since it was listed
    return fd


def read_chunk(item: LogFile, offset: int | None = None, before: int | None = None,
               limit: int = DEFAULT_CHUNK, tail: bool = False) -> dict:
    """Up to ``limit`` bytes of a log file as text, cut at line ends.

    ``offset``: from there forward (the next page is ``end``); ``before``: the lines ending at
    that byte (the previous page is ``before=start``); ``tail``: the last lines.
    """
    limit = max(1, min(int(limit), MAX_CHUNK))
    fd = _open_checked(item)
    try:
        size = os.fstat(fd).st_size
        if tail or (offset is None and before is None):
            before = size
        if before is not None:
            end = max(0, min(int(before), size))
            start = max(0, end - limit)
            data = os.pread(fd, end - start, start)
            if start > 0:
                cut = data.find(b"\n")
                if 0 <= cut < len(data) - 1:
                    data, start = data[cut + 1:], start + cut + 1
        else:
            start = max(0, min(int(offset), size))
            data = os.pread(fd, min(limit, size - start), start)
            end = start + len(data)
            if end < size:
                cut = data.rfind(b"\n")
                if cut >= 0:
                    data = data[:cut + 1]
                    end = start + len(data)
    finally:
        os.close(fd)
    return {"file": item.public(), "start": start, "end": start + len(data), "size": size,
            "at_start": start == 0, "at_end": start + len(data) >= size,
            "text": data.decode("utf-8", errors="replace")}


class FolderCache:
    """Listings of log folders kept for a moment, so paging through files does not walk the
    folder again for each request. A change of the folder itself (a file such as
    ``job_result.txt`` appearing at the end of a job) makes it walk again at once."""

    def __init__(self, ttl: float = 1.0, size: int = 64):
        self.ttl = ttl
        self.size = size
        self._items: dict[tuple, tuple[float, float, list[LogFile]]] = {}

    def files(self, root: str | None, within: str | None = None) -> list[LogFile]:
        if not root:
            return []
        key = (root, within)
        now = time.monotonic()
        try:
            changed = os.stat(root).st_mtime
        except OSError:
            changed = 0.0
        hit = self._items.get(key)
        if hit is not None and now - hit[0] < self.ttl and hit[1] == changed:
            return hit[2]
        files = list_files(root, within)
        if len(self._items) >= self.size:
            self._items.pop(next(iter(self._items)))
        self._items[key] = (now, changed, files)
        return files
