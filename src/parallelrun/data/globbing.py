"""What a path pattern names: the one glob rule of local listing, remote listing and tables.

Every listing of files (``data/listing.py`` on local disk, ``data/remote_listing.py`` through
fsspec for ``az://``, ``s3://``..., tabular planning on either) walks its tree with
:func:`iter_matches` and :func:`iter_tree`, so a pattern names the same files, in the same
order, wherever the files are. A tree is anything that answers :class:`Tree`'s three questions
(the names in a folder, the path of a child, and the item a file is listed as); the engine
never touches storage itself. Hand-written because no library gives these rules together:
``glob`` and fsspec's ``glob`` list folders and match whole paths at once (no streaming, no
sorted order), fsspec's ``**`` enters hidden folders, and neither skips the job marker.

The rule:

* A pattern is a path whose components may hold ``*`` (any characters but ``/``), ``?`` (one),
  ``[...]`` / ``[!...]`` (one of a set), as :mod:`fnmatch` reads them, compared case-sensitively;
  a component that is exactly ``**`` matches zero or more folders. Anywhere else ``**`` is ``*``.
* **Glob characters always make a pattern**, even where a file of that very name exists:
  ``lit/[1].png`` names ``lit/1.png``. A ``[`` in a name is written ``[[]`` (``lit/[[]1].png``).
* **Hidden names**: a wildcard component matches a name starting with ``.`` only when the
  component itself starts with ``.`` (``.*`` does, ``*`` and ``[.]x`` do not), and ``**``
  does not descend into hidden folders, as shell globs do. A folder given without a pattern
  lists everything under it, hidden files and folders included (``**`` as the whole rest of
  a pattern is the same listing).
* **The job marker** (a file named ``.parallelrun``: a job's own bookkeeping in an output folder
  read as input) is never listed, by any pattern or folder; nor is a running job's hold on a
  datastore folder (``.parallelrun.lock``).
* **Order**: every folder's names sorted (by code point, as ``sorted`` does), subfolders entered
  where their name falls, so ``a/x`` comes before ``a-b/x`` and ``a.txt`` on every storage.
* **The job's own folders** (its output and log folders, passed to a listing as ``exclude``)
  are never entered, and an input that lists one (``data/`` into the output ``data/``) is
  refused: the results would become inputs (:func:`own_folder_error`).
* **A folder without a pattern**, with or without a trailing ``/``, lists every file below it;
  a file's path lists that file. A pattern's trailing ``/`` is dropped: patterns name files,
  never folders (``a/*/`` is ``a/*``).
* **Paths are normalised** before listing, remote ones as local ones are (:func:`normalize`):
  ``a//b``, ``a/./b`` and ``a/x/../b`` are ``a/b``; a ``..`` above a URL's container or bucket
  is refused.
* **A folder of tables** (a tabular dataset's folder, not a pattern) leaves out names starting
  with ``_`` or ``.`` (``_SUCCESS``, ``.crc`` files: Spark's and Hadoop's bookkeeping), as
  ``pyarrow.dataset`` does; a file named outright is read whatever its name
  (:func:`is_table_bookkeeping`).

Where the rules disagreed before this module owned them: a local ``.*`` counted the job marker
as a file when a dataset checked that its pattern matched something (so ``from_files`` accepted
what planning then found empty); a remote table folder read ``_SUCCESS`` and ``.crc`` files as
data; a remote path with ``//``, ``.`` or ``..`` listed nothing (or was refused by the storage)
where the same local path listed the files. Each now follows the rule above.

Patterns matched against whole paths instead of listed (a partition pattern's text between its
``{keys}``) take their regular expression from :func:`fragment_regex`, the same wildcards.
"""

from __future__ import annotations

import fnmatch
import functools
import posixpath
import re
from typing import Any, Iterable, Iterator, Protocol

from parallelrun.config import JOB_LOCK_NAME, JOB_MARKER_NAME
from parallelrun.errors import DataError

#: the characters that make a path a pattern (``glob.has_magic``'s)
_MAGIC = re.compile(r"[*?\[]")
#: name prefixes a folder of tables leaves out (pyarrow.dataset's ``ignore_prefixes``)
TABLE_BOOKKEEPING_PREFIXES = ("_", ".")


def has_magic(path: str) -> bool:
    """Whether ``path`` is a pattern (holds ``*``, ``?`` or ``[``)."""
    return _MAGIC.search(path) is not None


def split_pattern(pattern: str, sep: str = "/") -> tuple[str, list[str]]:
    """``/data/*/x/*.png`` -> (``/data``, [``*``, ``x``, ``*.png``]): the fixed folder and the
    components left to match; a trailing separator is dropped (patterns name files)."""
    parts = pattern.split(sep)
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()
    fixed = 0
    while fixed < len(parts) and not has_magic(parts[fixed]):
        fixed += 1
    base = sep.join(parts[:fixed])
    if not base and pattern.startswith(sep):
        base = sep
    return base, parts[fixed:]


def listing_root(spec: str, sep: str = "/") -> str:
    """The folder a listing of ``spec`` starts at: its components before the first that holds a
    glob character or a partition key (``data/{user}/*.wav`` -> ``data``); ``spec`` itself when
    it has neither (a folder, or a file named outright)."""
    parts = spec.rstrip(sep).split(sep) if spec.rstrip(sep) else [""]
    fixed = 0
    while fixed < len(parts) and not has_magic(parts[fixed]) and "{" not in parts[fixed]:
        fixed += 1
    return sep.join(parts[:fixed]) or (sep if spec.startswith(sep) else "")


def own_folder_error(spec: str, folder: str) -> DataError:
    """The refusal of an input ``spec`` that lists ``folder``, the job's own output or logs."""
    return DataError(
        f"input {spec!r} lists {folder}, the job's own output or log folder: its results would "
        "become inputs. Give the job an output folder (and log folder) outside its inputs, or "
        "name the input files more narrowly")


def normalize(path: str) -> str:
    """A path without its scheme (``container/a/./b//c``) as local paths are read:
    ``container/a/b/c``; ``..`` resolved, a leading and a trailing ``/`` kept. A ``..`` above
    the first component of a relative path (a URL's container or bucket) is a DataError."""
    if "//" not in path and "/./" not in path and "/.." not in path \
            and not path.startswith(("./", "../")) and not path.endswith("/."):
        return path  # the usual case, at no cost
    absolute = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if len(parts) <= (0 if absolute else 1):
                if absolute:
                    continue  # '/..' is '/', as on local disk
                raise DataError(f"path {path!r} goes above its container or bucket with '..'; "
                                "name a path inside it")
            parts.pop()
        else:
            parts.append(part)
    return ("/" if absolute else "") + "/".join(parts) + ("/" if path.endswith("/") else "")


def descends(name: str) -> bool:
    """Whether ``**`` enters the folder ``name`` (hidden folders it does not)."""
    return name[:1] != "."


def matches(part: str, name: str) -> bool:
    """Whether the name ``name`` matches the component ``part`` (the hidden-name rule included)."""
    if not has_magic(part):
        return name == part
    return bool(filter_names(part, [name]))


def filter_names(part: str, names: list[str]) -> list[str]:
    """The names matching the wildcard component ``part``, in their order. Plain str methods
    for ``*.png`` and ``img_*`` (a comprehension, not a call per name: this runs over every name
    of a million-file folder)."""
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
    # translated once per component: fnmatch.translate costs ~15 us, several times a match
    return re.compile(fnmatch.translate(part)).match


def fragment_regex(text: str) -> str:
    """The regular expression (no anchors) of a piece of a '/'-separated pattern, with this
    module's wildcards: for patterns matched against whole paths rather than listed, such as a
    partition pattern's text between its ``{keys}`` (``data/partitions.py``). ``*``, ``?`` and
    ``[...]`` never cross a '/'; ``**/`` is any number of folders, ``**`` elsewhere anything.
    Sets are read as :mod:`fnmatch` reads them (``[!...]`` negates; a ``[`` with no ``]`` is a
    plain character)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif text.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and (end := _set_end(text, i)) is not None:
            out.append(_set_regex(text[i:end + 1]))
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def _set_end(text: str, start: int) -> int | None:
    """Where the set opened at ``start`` closes (fnmatch's rule: a ']' right after the '[' or
    '[!' is a member), or None when it never does."""
    j = start + 1
    if j < len(text) and text[j] == "!":
        j += 1
    if j < len(text) and text[j] == "]":
        j += 1
    end = text.find("]", j)
    return None if end < 0 else end


def _set_regex(brackets: str) -> str:
    """A set (``[a-c]``, ``[!x]``) as fnmatch translates it, kept off '/'. fnmatch's own
    translation, taken out of the ``(?s:...)\\Z`` it wraps a whole pattern in: its rules for
    ranges, reversed ranges and escapes are many, and are its to keep."""
    translated = fnmatch.translate(brackets)
    inner = re.fullmatch(r"\(\?s:(.*)\)\\[Zz]", translated, re.S)
    if inner is None:  # a Python whose fnmatch writes another wrapper
        raise DataError(f"fnmatch.translate({brackets!r}) gave {translated!r}, which "
                        "parallelrun.data.globbing cannot read; write the set as a '*' or "
                        "'?' for now, and report it")
    return "(?!/)" + inner.group(1)


def is_table_bookkeeping(name: str) -> bool:
    """Whether a file named ``name``, listed from a folder of tables, is bookkeeping and no data
    (``_SUCCESS``, ``.part-0.csv.crc``)."""
    return name.startswith(TABLE_BOOKKEEPING_PREFIXES)


class Tree(Protocol):
    """A file tree the engine walks: local disk (``listing._Walk``) or an fsspec filesystem
    (``remote_listing._FsspecTree``)."""

    def children(self, folder: str, parts: tuple[str, ...]) -> tuple[list[str], set[str]]:
        """The names in ``folder`` that are files or folders (any order; the list is the
        caller's to change), and the set of those that are folders; none for a missing folder.
        ``parts`` (the components still to match there) lets a tree refuse to enter one real
        folder twice the same way (links)."""

    def child(self, folder: str, name: str) -> str:
        """The path of ``name`` in ``folder``."""

    def item(self, folder: str, name: str) -> Any:
        """What the file ``name`` in ``folder`` is listed as (its path, or its details)."""

    def release(self, folder: str) -> None:
        """The engine is done with ``folder``: what ``children`` kept of it may go."""


def in_order(names: list[str]) -> Iterable[str]:
    """A folder's names in listing order (sorted in place)."""
    names.sort()
    return names


def is_job_marker(name: str) -> bool:
    """Whether a file named ``name`` is a job's marker (engine/job_folders.py) or its hold on a
    datastore folder (engine/remote_hold.py), never data."""
    return name in _JOB_FILES


_JOB_FILES = (JOB_MARKER_NAME, JOB_LOCK_NAME)


def children_of(tree: Tree, folder: str, parts: tuple[str, ...] = ()) -> tuple[list[str], set[str]]:
    """``tree.children(folder, parts)`` less what is never listed (the job marker and hold)."""
    names, dirs = tree.children(folder, parts)
    for name in _JOB_FILES:
        if name in names and name not in dirs:
            names.remove(name)
    return names, dirs


def iter_tree(tree: Tree, folder: str, order=in_order) -> Iterator[Any]:
    """Every file under ``folder``, recursively, in listing order, hidden files included.
    ``order`` may be any function giving the same order faster (``listing._in_order``)."""
    names, dirs = children_of(tree, folder)
    item = tree.item  # looked up once: this loop runs over every name of a huge folder
    for name in order(names):
        if name in dirs:
            yield from iter_tree(tree, tree.child(folder, name), order)
        else:
            yield item(folder, name)
    tree.release(folder)


def iter_matches(tree: Tree, folder: str, parts: Iterable[str], order=in_order) -> Iterator[Any]:
    """The files under ``folder`` that the pattern components ``parts`` name, in listing order."""
    parts = tuple(parts)
    if not parts:
        return
    if parts == ("**",):
        # every file below, as a folder's listing (one rule, and one memory of folders entered)
        yield from iter_tree(tree, folder, order)
        return
    names, dirs = children_of(tree, folder, parts)
    if parts[0] == "**":
        names.sort()
        # name by name, so the order stays sorted: the rest matched here (zero folders deep),
        # then ``**/rest`` inside the folder of that name
        for name in names:
            yield from _match_names(tree, folder, [name], dirs, parts[1:], order)
            if name in dirs and descends(name):
                yield from iter_matches(tree, tree.child(folder, name), parts, order)
    else:
        yield from _match_names(tree, folder, names, dirs, parts, order)
    tree.release(folder)


def _match_names(tree: Tree, folder: str, names: list[str], dirs: set[str],
                 parts: tuple[str, ...], order) -> Iterator[Any]:
    """The files under ``folder`` whose next component is one of ``names`` and matches ``parts``."""
    part, rest = parts[0], parts[1:]
    names = filter_names(part, names) if has_magic(part) else [n for n in names if n == part]
    item = tree.item
    for name in order(names):
        if rest:
            if name in dirs:
                yield from iter_matches(tree, tree.child(folder, name), rest, order)
        elif name not in dirs:
            yield item(folder, name)


def join(folder: str, name: str) -> str:
    """``folder/name`` for '/'-separated paths (remote storage)."""
    return posixpath.join(folder, name) if folder else name
