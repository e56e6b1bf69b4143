"""Streaming, deterministic listing of local files for globs and folders.

Order: every directory's entries sorted by name, subfolders entered where their name falls.
So the same tree always lists the same way, and a tree of many folders starts yielding after
the first folder is read, not after the whole tree. A single folder must be read whole to be
sorted; that is one ``os.listdir`` in C plus a sort of the names.
"""

from __future__ import annotations

import fnmatch
import glob as _glob
import os
import re
from typing import Iterator


def has_magic(path: str) -> bool:
    return _glob.has_magic(path)


def _split_pattern(pattern: str) -> tuple[str, list[str]]:
    """``/data/*/x/*.png`` -> (``/data``, [``*``, ``x``, ``*.png``]): the fixed base and the rest."""
    parts = pattern.split(os.sep)
    base: list[str] = []
    for i, part in enumerate(parts):
        if has_magic(part):
            rest = parts[i:]
            break
        base.append(part)
    else:
        rest = []
    root = os.sep.join(base) or (os.sep if pattern.startswith(os.sep) else ".")
    if pattern.startswith(os.sep) and not root.startswith(os.sep):
        root = os.sep + root
    return root, rest


def _sorted_entries(directory: str) -> tuple[list[str], set[str]]:
    """Names in ``directory`` sorted, and the set of those that are folders."""
    try:
        # A folder whose link count is 2 has no subfolders (POSIX file systems count each
        # subfolder's ".." link), so the names alone will do: os.listdir is much faster than
        # asking every entry of a million-file folder what it is.
        if os.stat(directory).st_nlink == 2:
            names = os.listdir(directory)
            names.sort()
            return names, set()
        names, dirs = [], set()
        with os.scandir(directory) as it:
            for entry in it:
                names.append(entry.name)
                try:
                    if entry.is_dir():
                        dirs.add(entry.name)
                except OSError:
                    pass
    except (FileNotFoundError, NotADirectoryError):
        return [], set()
    names.sort()
    return names, dirs


def _name_filter(part: str):
    """A fast test for one glob component: plain str methods for ``*.png`` and ``img_*``."""
    hide = not part.startswith(".")  # as shell globs do, wildcards skip hidden names
    body = part[1:]
    if part.startswith("*") and not has_magic(body):
        return lambda n: n.endswith(body) and not (hide and n.startswith("."))
    head = part[:-1]
    if part.endswith("*") and not has_magic(head):
        return lambda n: n.startswith(head) and not (hide and n.startswith("."))
    regex = re.compile(fnmatch.translate(part)).match
    return lambda n: regex(n) is not None and not (hide and n.startswith("."))


def walk_files(directory: str) -> Iterator[str]:
    """Every file under ``directory``, recursively, in sorted order, hidden files included."""
    names, dirs = _sorted_entries(directory)
    for name in names:
        path = os.path.join(directory, name)
        if name in dirs:
            yield from walk_files(path)
        else:
            yield path


def _match(directory: str, parts: list[str]) -> Iterator[str]:
    part, rest = parts[0], parts[1:]
    names, dirs = _sorted_entries(directory)
    if part == "**":
        if not rest:
            for name in names:
                path = os.path.join(directory, name)
                yield from walk_files(path) if name in dirs else (path,)
            return
        # Name by name, so the order stays sorted: ``rest`` matched here (zero folders deep),
        # then ``**/rest`` inside the folder of that name.
        for name in names:
            yield from _match_names(directory, [name], dirs, rest)
            if name in dirs and not name.startswith("."):
                yield from _match(os.path.join(directory, name), parts)
        return
    yield from _match_names(directory, names, dirs, parts)


def _match_names(directory: str, names: list[str], dirs: set[str], parts: list[str]) -> Iterator[str]:
    """Paths under ``directory`` whose next component is one of ``names`` and matches ``parts``."""
    part, rest = parts[0], parts[1:]
    if has_magic(part):
        names = list(filter(_name_filter(part), names))
    else:
        names = [n for n in names if n == part]
    for name in names:
        path = os.path.join(directory, name)
        if rest:
            if name in dirs:
                yield from _match(path, rest)
        elif name not in dirs:
            yield path


def any_local_file(spec: str) -> bool:
    """Whether ``spec`` names at least one file: stops at the first, in any order (no sort)."""
    spec = os.path.abspath(os.path.expanduser(spec))
    if not has_magic(spec):
        if os.path.isdir(spec):
            return any(files for _, _, files in os.walk(spec))
        return os.path.exists(spec)
    return any(os.path.isfile(p) for p in _glob.iglob(spec, recursive=True))


def iter_local_files(spec: str) -> Iterator[str]:
    """Absolute paths of the files ``spec`` names: a file, a folder (recursively) or a glob."""
    spec = os.path.abspath(os.path.expanduser(spec))
    if not has_magic(spec):
        if os.path.isdir(spec):
            yield from walk_files(spec)
        elif os.path.exists(spec):
            yield spec
        return
    root, parts = _split_pattern(spec)
    yield from _match(root, parts)
