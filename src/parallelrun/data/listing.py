"""Streaming, deterministic listing of local files for globs and folders.

Order: every directory's entries sorted by name, subfolders entered where their name falls.
So the same tree always lists the same way, and a tree of many folders starts yielding after
the first folder is read, not after the whole tree. A single folder must be read whole to be
sorted: one ``os.scandir`` pass that keeps the names of regular files by the type the directory
read already gives (no stat per file), then the names filtered and sorted; a folder of more than
BIG_FOLDER names yields its first names from a partial selection before the full sort.

What counts as a file: a regular file, or a link to one. A link to a folder is a folder; a
broken link, a FIFO, a socket or a device is left out (it is no file ``run()`` could read).
Only links are asked what they point to, so a folder of plain files costs no stat per file.

Each listing enters a real folder (device and inode) at most once for the same glob components,
so a second link to a folder lists nothing twice and a link loop (``loop -> ..``) ends. Folders
passed as ``exclude`` (a job's own output and log folders) are never entered; an input that *is*
one of them is a DataError.
"""

from __future__ import annotations

import fnmatch
import functools
import glob as _glob
import heapq
import itertools
import os
import re
from typing import Iterable, Iterator

from parallelrun.config import JOB_MARKER_NAME
from parallelrun.errors import DataError


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
    """Names in ``directory`` that are files or folders (unsorted), and the set of the folders.

    The directory read tells regular files from the rest without a stat per entry; only what is
    not a regular file (folders, links, FIFOs...) is looked at further, and only a link costs a
    stat (to what it points to).
    """
    others: list[os.DirEntry] = []
    try:
        with os.scandir(directory) as it:
            # A comprehension (this runs over every name of a million-file folder): regular files
            # by name; anything else goes to ``others`` (append returns None, so it stays out).
            names = [e.name for e in it if e.is_file(follow_symlinks=False) or others.append(e)]
    except (FileNotFoundError, NotADirectoryError):
        return [], set()
    if JOB_MARKER_NAME in names:  # a job's bookkeeping, never data: a step's output read as input
        names.remove(JOB_MARKER_NAME)
    dirs = set()
    for entry in others:
        try:
            if entry.is_dir():            # a folder, or a link to one
                dirs.add(entry.name)
            elif not entry.is_file():     # a broken link, a FIFO, a socket, a device
                continue
        except OSError:                   # vanished, or a link we may not follow
            continue
        names.append(entry.name)
    return names, dirs


class _Walk:
    """What one listing remembers: the real folders it entered, each with the glob components
    it still had to match there (a folder entered again the same way is a second link to it, or
    a loop), and the folders it must never enter."""

    def __init__(self, exclude: Iterable[str | os.PathLike] = ()):
        self._entered: set[tuple[int, int, tuple[str, ...]]] = set()
        #: excluded folders: by identity where they exist, by absolute path where not (yet)
        self._excluded: dict[tuple[int, int], str] = {}
        self._excluded_paths: set[str] = set()
        for folder in exclude:
            path = os.path.abspath(os.fspath(folder))
            try:
                st = os.stat(path)
            except OSError:
                self._excluded_paths.add(path)
            else:
                self._excluded[(st.st_dev, st.st_ino)] = path

    def excluded_as(self, directory: str) -> str | None:
        """The excluded folder ``directory`` is (by identity or path), else None."""
        if directory in self._excluded_paths:
            return directory
        try:
            st = os.stat(directory)
        except OSError:
            return None
        return self._excluded.get((st.st_dev, st.st_ino))

    def entries(self, directory: str, parts: tuple[str, ...] = ()) -> tuple[list[str], set[str]]:
        """``_entries(directory)``, or none when the folder is excluded or was entered before
        with the same ``parts`` left to match."""
        if directory in self._excluded_paths:
            return [], set()
        try:
            st = os.stat(directory)
        except (FileNotFoundError, NotADirectoryError):
            return [], set()
        key = (st.st_dev, st.st_ino, parts)
        if key in self._entered or key[:2] in self._excluded:
            return [], set()
        self._entered.add(key)
        return _entries(directory)

    def check_root(self, spec: str, root: str) -> None:
        """Refuse an input whose folder is one of the excluded ones (the job's own output)."""
        folder = self.excluded_as(root)
        if folder is not None:
            raise DataError(
                f"input {spec!r} lists {folder}, the job's own output or log folder: its results "
                "would become inputs. Give the job an output folder (and log folder) outside "
                "its inputs, or name the input files more narrowly")


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


def walk_files(directory: str, walk: _Walk | None = None) -> Iterator[str]:
    """Every file under ``directory``, recursively, in sorted order, hidden files included;
    links to folders followed once per real folder (``walk`` remembers them)."""
    walk = walk or _Walk()
    names, dirs = walk.entries(directory)
    for name in _in_order(names):
        path = os.path.join(directory, name)
        if name in dirs:
            yield from walk_files(path, walk)
        else:
            yield path


def _match(directory: str, parts: tuple[str, ...], walk: _Walk) -> Iterator[str]:
    part, rest = parts[0], parts[1:]
    if parts == ("**",):
        # every file below, as a folder's listing (one rule, and one memory of folders entered)
        yield from walk_files(directory, walk)
        return
    names, dirs = walk.entries(directory, parts)
    if part == "**":
        names.sort()
        # Name by name, so the order stays sorted: ``rest`` matched here (zero folders deep),
        # then ``**/rest`` inside the folder of that name.
        for name in names:
            yield from _match_names(directory, [name], dirs, rest, walk)
            if name in dirs and not name.startswith("."):
                yield from _match(os.path.join(directory, name), parts, walk)
        return
    yield from _match_names(directory, names, dirs, parts, walk)


def _match_names(directory: str, names: list[str], dirs: set[str], parts: tuple[str, ...],
                 walk: _Walk) -> Iterator[str]:
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
                yield from _match(path, rest, walk)
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


def _any_file_under(directory: str, walk: _Walk) -> bool:
    """Whether ``directory`` holds a file at any depth (in no particular order, no sort)."""
    names, dirs = walk.entries(directory)
    if len(names) > len(dirs):
        return True
    return any(_any_file_under(os.path.join(directory, name), walk) for name in dirs)


def any_local_file(spec: str) -> bool:
    """Whether ``spec`` names at least one file: stops at the first, in any order (no sort)."""
    spec = os.path.abspath(os.path.expanduser(spec))
    if not has_magic(spec):
        if os.path.isdir(spec):
            return _any_file_under(spec, _Walk())
        return os.path.isfile(spec)
    root, parts = _split_pattern(spec)
    if "**" not in parts:
        return _any_match(root, parts)
    return next(_match(root, tuple(parts), _Walk()), None) is not None


def iter_local_files(spec: str, exclude: Iterable[str | os.PathLike] = ()) -> Iterator[str]:
    """Absolute paths of the files ``spec`` names: a file, a folder (recursively) or a glob.

    Folders in ``exclude`` (and links to them) are never entered; a ``spec`` whose folder is
    one of them is a DataError.
    """
    spec = os.path.abspath(os.path.expanduser(spec))
    walk = _Walk(exclude)
    if not has_magic(spec):
        if os.path.isdir(spec):
            walk.check_root(spec, spec)
            yield from walk_files(spec, walk)
        elif os.path.isfile(spec):
            yield spec
        return
    root, parts = _split_pattern(spec)
    walk.check_root(spec, root)
    yield from _match(root, tuple(parts), walk)
