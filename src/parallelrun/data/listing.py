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

Which names a pattern matches, hidden names, the job marker and the order are
``data/globbing.py``'s rule, whose engine walks this module's tree (:class:`_Walk`). The tree
is read with ``os.scandir``, not fsspec's local filesystem: fsspec's ``ls`` stats every entry,
and a folder of a million files must start yielding within a second (``bench/bench_listing.py``).
"""

from __future__ import annotations

import heapq
import itertools
import os
import time
from typing import Iterable, Iterator

from parallelrun.data import globbing
# has_magic is asked here by data/files.py; the rule is globbing's
from parallelrun.data.globbing import has_magic  # noqa: F401
from parallelrun.data.urls import is_url


#: a folder with more names than this yields its first HEAD names before sorting the rest
BIG_FOLDER = 65536
HEAD = 4096
HAND_OVER_SECONDS = 0.01


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
            if is_url(os.fspath(folder)):
                continue   # a datastore's folder: remote listing's to leave out
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

    # the globbing.Tree interface: a local path for a child folder and for a listed file
    child = item = staticmethod(os.path.join)

    def release(self, directory: str) -> None:
        """Nothing to let go: a local folder's names live in the engine's frames only."""

    def children(self, directory: str, parts: tuple[str, ...] = ()) -> tuple[list[str], set[str]]:
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
            raise globbing.own_folder_error(spec, folder)


def _in_order(names: list[str]) -> Iterator[str]:
    """``names`` in sorted order. A big folder's first HEAD names come from a partial selection
    (``heapq.nsmallest``, a few ms for a million names) before the whole list is sorted, so the
    first mini-batches start while the sort runs; the order is the same either way."""
    if len(names) <= BIG_FOLDER:
        names.sort()
        yield from names
        return
    yield from heapq.nsmallest(HEAD, names)
    # list.sort holds the GIL throughout (~0.5 s a million names): hand it over first, longer
    # than the scheduler's 5 ms poll while a worker waits for work, so the first mini-batches
    # are dispatched before the sort instead of after it (first run(): 0.7 s, not 0.7 or 1.2)
    time.sleep(HAND_OVER_SECONDS)
    names.sort()
    yield from itertools.islice(names, HEAD, None)


def walk_files(directory: str, walk: _Walk | None = None) -> Iterator[str]:
    """Every file under ``directory``, recursively, in sorted order, hidden files included;
    links to folders followed once per real folder (``walk`` remembers them)."""
    return globbing.iter_tree(walk or _Walk(), directory, _in_order)


def _any_match(directory: str, parts: list[str]) -> bool:
    """Whether a file under ``directory`` matches ``parts`` (no ``**``): stops at the first,
    reading entries as they come, so a million-file folder answers at once."""
    part, rest = parts[0], parts[1:]
    try:
        entries = os.scandir(directory)
    except OSError:
        return False
    with entries:
        for entry in entries:
            if not globbing.matches(part, entry.name):
                continue
            try:
                if rest:
                    if entry.is_dir() and _any_match(entry.path, rest):
                        return True
                elif entry.is_file() and not globbing.is_job_marker(entry.name):
                    return True
            except OSError:
                continue
    return False


def _any_file_under(directory: str, walk: _Walk) -> bool:
    """Whether ``directory`` holds a file at any depth (in no particular order, no sort)."""
    names, dirs = globbing.children_of(walk, directory)
    if len(names) > len(dirs):
        return True
    return any(_any_file_under(os.path.join(directory, name), walk) for name in dirs)


def any_local_file(spec: str) -> bool:
    """Whether ``spec`` names at least one file: stops at the first, in any order (no sort)."""
    spec = os.path.abspath(os.path.expanduser(spec))
    if not has_magic(spec):
        if os.path.isdir(spec):
            return _any_file_under(spec, _Walk())
        return os.path.isfile(spec) and not globbing.is_job_marker(os.path.basename(spec))
    root, parts = globbing.split_pattern(spec, os.sep)
    if "**" not in parts:
        return _any_match(root, parts)
    return next(globbing.iter_matches(_Walk(), root, parts, _in_order), None) is not None


def check_outside(spec: str, exclude: Iterable[str | os.PathLike]) -> None:
    """Refuse (DataError) a local input whose folder is one of ``exclude``, as listing it would,
    but before any work: a stat or two, no listing. Partition keys (``data/{user}/*.wav``) count
    as a pattern; a file named outright lists no folder."""
    spec = os.path.abspath(os.path.expanduser(spec))
    root = globbing.listing_root(spec, os.sep)
    if root == spec and not os.path.isdir(spec):
        return
    _Walk(exclude).check_root(spec, root)


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
        elif os.path.isfile(spec) and not globbing.is_job_marker(os.path.basename(spec)):
            yield spec
        return
    root, parts = globbing.split_pattern(spec, os.sep)
    walk.check_root(spec, root)
    yield from globbing.iter_matches(walk, root, parts, _in_order)
