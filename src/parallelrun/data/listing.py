"""Streaming, deterministic listing of local files for globs and folders.

Order: every directory's entries sorted by name, subfolders entered where their name falls.
So the same tree always lists the same way, and a tree of many folders starts yielding after
the first folder is read, not after the whole tree. A single folder must be read whole to be
sorted: one ``os.listdir`` in C, then the names filtered and sorted; a folder of more than
BIG_FOLDER names yields its first names from a partial selection before the full sort.
"""

from __future__ import annotations

import fnmatch
import functools
import glob as _glob
import heapq
import itertools
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


#: a folder with more names than this yields its first HEAD names before sorting the rest
BIG_FOLDER = 65536
HEAD = 4096


def _entries(directory: str) -> tuple[list[str], set[str]]:
    """Names in ``directory`` (unsorted), and the set of those that are folders."""
    try:
        # A folder whose link count is 2 has no subfolders (POSIX file systems count each
        # subfolder's ".." link), so the names alone will do: os.listdir is much faster than
        # asking every entry of a million-file folder what it is.
        if os.stat(directory).st_nlink == 2:
            return os.listdir(directory), set()
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
    return names, dirs


def _in_order(names: list[str]) -> Iterator[str]:
    """``names`` in sorted order. A big folder's first HEAD names come from a partial selection
    (``heapq.nsmallest``, a few ms for a million names) before the whole list is sorted, so the
    first mini-batches start while the sort runs; the order is the same either way."""
    if len(names) <= BIG_FOLDER:
        names.sort()
        yield from names
        return
    yield from heapq.nsmallest(HEAD, names)
    names.sort()
    yield from itertools.islice(names, HEAD, None)


def _filter_names(part: str, names: list[str]) -> list[str]:
    """The names matching one glob component; plain str methods for ``*.png`` and ``img_*``
    (a comprehension, not a call per name: this runs over every name of a huge folder)."""
    body, head = part[1:], part[:-1]
    if part.startswith("*") and not has_magic(body):
        matched = [n for n in names if n.endswith(body)]
    elif part.endswith("*") and not has_magic(head):
        matched = [n for n in names if n.startswith(head)]
    else:
        match = _component_regex(part)
        matched = [n for n in names if match(n) is not None]
    if part.startswith("."):
        return matched
    return [n for n in matched if n[:1] != "."]  # as shell globs do, wildcards skip hidden names


@functools.lru_cache(maxsize=64)
def _component_regex(part: str):
    # translated once per component: _any_match tests a folder's names one at a time, and
    # fnmatch.translate costs ~15 us, several times the test itself
    return re.compile(fnmatch.translate(part)).match


def walk_files(directory: str) -> Iterator[str]:
    """Every file under ``directory``, recursively, in sorted order, hidden files included."""
    names, dirs = _entries(directory)
    for name in _in_order(names):
        path = os.path.join(directory, name)
        if name in dirs:
            yield from walk_files(path)
        else:
            yield path


def _match(directory: str, parts: list[str]) -> Iterator[str]:
    part, rest = parts[0], parts[1:]
    names, dirs = _entries(directory)
    if part == "**":
        names.sort()
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


def _match_names(directory: str, names: list[str], dirs: set[str],
                 parts: list[str]) -> Iterator[str]:
    """Paths under ``directory`` whose next component is one of ``names`` and matches ``parts``."""
    part, rest = parts[0], parts[1:]
    if has_magic(part):
        names = _filter_names(part, names)
    else:
        names = [n for n in names if n == part]
    for name in _in_order(names):
        path = os.path.join(directory, name)
        if rest:
            if name in dirs:
                yield from _match(path, rest)
        elif name not in dirs:
            yield path


def _any_match(directory: str, parts: list[str]) -> bool:
    """Whether a file under ``directory`` matches ``parts`` (no ``**``): stops at the first,
    reading entries as they come, so a million-file folder answers at once."""
    part, rest = parts[0], parts[1:]
    magic = has_magic(part)
    try:
        entries = os.scandir(directory)
    except OSError:
        return False
    with entries:
        for entry in entries:
            if not (_filter_names(part, [entry.name]) if magic else entry.name == part):
                continue
            try:
                if rest:
                    if entry.is_dir() and _any_match(entry.path, rest):
                        return True
                elif entry.is_file():
                    return True
            except OSError:
                continue
    return False


def any_local_file(spec: str) -> bool:
    """Whether ``spec`` names at least one file: stops at the first, in any order (no sort)."""
    spec = os.path.abspath(os.path.expanduser(spec))
    if not has_magic(spec):
        if os.path.isdir(spec):
            return any(files for _, _, files in os.walk(spec))
        return os.path.exists(spec)
    root, parts = _split_pattern(spec)
    if "**" not in parts:
        return _any_match(root, parts)
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
