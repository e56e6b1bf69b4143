"""Listing remote storage (coordinator): :func:`iter_remote_entries` names the files of a
folder or glob URL in the same deterministic order as local listing (``data/listing.py``: each
folder's entries sorted by name, subfolders entered where their name falls), one folder
listing at a time, so planning starts before a big tree is listed. A missing container or
bucket, refused credentials and a missing package become
:class:`~parallelrun.errors.StorageError` naming the URL and the fix (``remote_storage``).

Which names a pattern matches, hidden names, the job marker, the order and how a path is
normalised are ``data/globbing.py``'s rule; its engine walks fsspec's folder listings here
(:class:`_FsspecTree`), local disk in ``data/listing.py``. Separate from the workers' fetches
(``remote_cache``), which never list. Callers import these names from
:mod:`parallelrun.data.remote`.
"""

from __future__ import annotations

import os
from typing import Iterable, Iterator, NamedTuple

from parallelrun.data import globbing
from parallelrun.data.remote_storage import _missing_root_error, filesystem, storage_error
from parallelrun.data.urls import is_url, split_url
from parallelrun.errors import DataError, StorageError


class RemoteFile(NamedTuple):
    """One listed file: its URL, size in bytes, and a version tag (etag, else modified time)."""

    url: str
    size: int
    tag: str


def _tag(info: dict) -> str:
    for key in ("etag", "ETag", "last_modified", "LastModified", "mtime", "created"):
        value = info.get(key)
        if value:
            return str(value).strip('"')
    return ""


def _entries(fs, path: str) -> list[dict]:
    """One folder's entries sorted by name; the folder itself (S3 folder markers) left out."""
    path = path.rstrip("/")
    entries = [e for e in fs.ls(path, detail=True) if e["name"].rstrip("/") != path]
    entries.sort(key=_name)
    return entries


def _walk(fs, path: str) -> Iterator[dict]:
    """Every file's entry under ``path``, in listing order, the job marker included: for copying
    a whole tree (``remote_trees``), which is no listing of data."""
    for entry in _entries(fs, path):
        if entry.get("type") == "directory":
            yield from _walk(fs, entry["name"])
        else:
            yield entry


def _name(entry: dict) -> str:
    return entry["name"].rstrip("/").rsplit("/", 1)[-1]


class _FsspecTree:
    """A :class:`~parallelrun.data.globbing.Tree` over an fsspec filesystem: one ``ls`` per
    folder; a file is listed as its ``ls`` entry (size, etag), kept until its folder is done."""

    def __init__(self, fs, excluded: Iterable[str] = ()):
        self.fs = fs
        self.excluded = set(excluded)                   # folders never entered (no scheme)
        self._files: dict[str, dict[str, dict]] = {}    # folder -> file name -> its entry

    def children(self, folder: str, parts: tuple[str, ...] = ()) -> tuple[list[str], set[str]]:
        if folder.rstrip("/") in self.excluded:
            return [], set()
        try:
            entries = _entries(self.fs, folder)
        except (FileNotFoundError, NotADirectoryError):   # the latter: a path through a file
            return [], set()
        names, dirs, files = [], set(), {}
        for entry in entries:
            name = _name(entry)
            names.append(name)
            if entry.get("type") == "directory":
                dirs.add(name)
            else:
                files[name] = entry
        self._files[folder] = files
        return names, dirs

    def child(self, folder: str, name: str) -> str:
        return globbing.join(folder.rstrip("/"), name)

    def item(self, folder: str, name: str) -> dict:
        return self._files[folder][name]

    def release(self, folder: str) -> None:
        self._files.pop(folder, None)


def excluded_folders(spec: str, exclude: Iterable[str]) -> dict[str, str]:
    """The folders of ``exclude`` (URLs; local paths are ignored) on ``spec``'s storage, as
    normalised paths without the scheme, each to the URL as given."""
    scheme = split_url(spec)[0]
    folders = {}
    for url in exclude:
        url = str(url)
        if is_url(url) and split_url(url)[0] == scheme:
            folders[globbing.normalize(split_url(url)[1]).rstrip("/")] = url
    return folders


def check_remote_outside(spec: str, exclude: Iterable[str]) -> None:
    """Refuse (DataError) a remote input that lists one of the job's own folders in
    ``exclude``, before any work and without a call to the storage (so a path equal to one of
    them counts as that folder: no file lies where a job writes its folder)."""
    _refuse_own_root(spec, excluded_folders(spec, exclude))


def _refuse_own_root(spec: str, folders: dict[str, str]) -> None:
    root = globbing.listing_root(globbing.normalize(split_url(spec)[1])).rstrip("/")
    if root in folders:
        raise globbing.own_folder_error(spec, folders[root])


def iter_remote_entries(spec: str, storage_options: dict | None = None,
                        exclude: Iterable[str] = ()) -> Iterator[RemoteFile]:
    """The files ``spec`` (a URL of a file, folder or glob) names, in deterministic order; the
    folders in ``exclude`` (URLs: a job's own output and logs on a datastore) left out.

    Example::

        for f in iter_remote_entries("az://data/images/*.png", {"connection_string": cs}):
            print(f.url, f.size)
    """
    scheme, path = split_url(spec)
    path = globbing.normalize(path)  # first: a '..' above the container is refused unconnected
    own = excluded_folders(spec, exclude)
    if globbing.has_magic(path) or "{" in path:
        _refuse_own_root(spec, own)
    fs = filesystem(spec, storage_options)[0]
    tree = _FsspecTree(fs, own)
    try:
        if globbing.has_magic(path):
            base, rest = globbing.split_pattern(path)
            missing = _missing_root_error(spec, path, storage_options)
            if missing is not None:
                raise missing
            entries = globbing.iter_matches(tree, base, rest)
        else:
            stripped = path.rstrip("/")
            try:
                info = fs.info(stripped)
            except (FileNotFoundError, NotADirectoryError):   # the latter: a path through a file
                missing = _missing_root_error(spec, stripped, storage_options)
                if missing is not None:
                    raise missing from None
                return
            if info.get("type") == "directory":
                _refuse_own_root(spec, own)
                entries = globbing.iter_tree(tree, stripped)
            else:  # a file named outright: listed unless it is a job's marker
                entries = iter([] if globbing.is_job_marker(_name(info)) else [info])
        for entry in entries:
            yield RemoteFile(f"{scheme}://{entry['name']}", int(entry.get("size") or 0), _tag(entry))
    except (StorageError, DataError):
        raise
    except Exception as exc:  # noqa: BLE001 - translated at this boundary
        raise storage_error(exc, spec, "listing") from None


def iter_remote_files(spec: str, storage_options: dict | None = None,
                      exclude: Iterable[str] = ()) -> Iterator[str]:
    """URLs of the files ``spec`` names, in deterministic order (``exclude``: as above)."""
    for entry in iter_remote_entries(spec, storage_options, exclude):
        yield entry.url


def local_entry(path: str) -> RemoteFile:
    """A local file as a listing entry (size and modification time) for fingerprints."""
    st = os.stat(path)
    return RemoteFile(path, st.st_size, str(st.st_mtime_ns))
