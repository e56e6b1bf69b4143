"""Streaming, deterministic listing of local files for globs and folders.

Order: every directory's entries sorted by name, subfolders entered where their name falls.
So the same tree always lists the same way, and a tree of many folders starts yielding after
the first folder is read, not after the whole tree. A single folder must be read whole to be
sorted; that is one ``os.scandir`` in C plus a sort of the names.
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
    names: list[str] = []
    dirs: set[str] = set()
    try:
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
        regex = re.compile(fnmatch.translate(part))
        # As shell globs do, a wildcard does not match hidden names.
        hide = not part.startswith(".")
        names = [n for n in names if regex.match(n) and not (hide and n.startswith("."))]
    else:
        names = [n for n in names if n == part]
    for name in names:
        path = os.path.join(directory, name)
        if rest:
            if name in dirs:
                yield from _match(path, rest)
        elif name not in dirs:
            yield path


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
