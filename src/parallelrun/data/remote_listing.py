"""Listing remote storage (coordinator): :func:`iter_remote_entries` names the files of a
folder or glob URL in the same deterministic order as local listing (``data/listing.py``: each
folder's entries sorted by name, subfolders entered where their name falls), one folder
listing at a time, so planning starts before a big tree is listed. A missing container or
bucket, refused credentials and a missing package become
:class:`~parallelrun.errors.StorageError` naming the URL and the fix (``remote_storage``).

Separate from local listing because it walks fsspec's folder listings, not the file system,
and from the workers' fetches (``remote_cache``), which never list. Callers import these names
from :mod:`parallelrun.data.remote`.
"""

from __future__ import annotations

import fnmatch
import itertools
import os
import re
from typing import Iterator, NamedTuple

from parallelrun.config import JOB_MARKER_NAME
from parallelrun.data.remote_storage import _missing_root_error, filesystem, storage_error
from parallelrun.data.urls import split_url
from parallelrun.errors import StorageError

_MAGIC = re.compile(r"[*?\[]")


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
    entries.sort(key=lambda e: e["name"])
    return entries


def _walk(fs, path: str) -> Iterator[dict]:
    for entry in _entries(fs, path):
        if entry.get("type") == "directory":
            yield from _walk(fs, entry["name"])
        else:
            yield entry


def _name(entry: dict) -> str:
    return entry["name"].rstrip("/").rsplit("/", 1)[-1]


def _match(fs, base: str, parts: list[str]) -> Iterator[dict]:
    """Entries under ``base`` matching the glob components ``parts`` (local listing's rules)."""
    try:
        entries = _entries(fs, base)
    except FileNotFoundError:
        return
    part, rest = parts[0], parts[1:]
    if part == "**":
        for entry in entries:
            if not rest:
                yield from _walk(fs, entry["name"]) if entry.get("type") == "directory" else (entry,)
                continue
            # name by name, so the order stays sorted: ``rest`` matched here (zero folders
            # deep), then ``**/rest`` inside the folder of that name
            yield from _match_entries(fs, [entry], rest)
            if entry.get("type") == "directory" and not _name(entry).startswith("."):
                yield from _match(fs, entry["name"], parts)
        return
    yield from _match_entries(fs, entries, parts)


def _match_entries(fs, entries: list[dict], parts: list[str]) -> Iterator[dict]:
    part, rest = parts[0], parts[1:]
    if _MAGIC.search(part):
        regex = re.compile(fnmatch.translate(part))
        hide = not part.startswith(".")  # as shell globs do, wildcards skip hidden names
        entries = [e for e in entries
                   if regex.match(_name(e)) and not (hide and _name(e).startswith("."))]
    else:
        entries = [e for e in entries if _name(e) == part]
    for entry in entries:
        is_dir = entry.get("type") == "directory"
        if rest:
            if is_dir:
                yield from _match(fs, entry["name"], rest)
        elif not is_dir:
            yield entry


def iter_remote_entries(spec: str, storage_options: dict | None = None) -> Iterator[RemoteFile]:
    """The files ``spec`` (a URL of a file, folder or glob) names, in deterministic order.

    Example::

        for f in iter_remote_entries("az://data/images/*.png", {"connection_string": cs}):
            print(f.url, f.size)
    """
    fs, path = filesystem(spec, storage_options)
    scheme = split_url(spec)[0]
    try:
        if _MAGIC.search(path):
            parts = path.split("/")
            fixed = list(itertools.takewhile(lambda p: not _MAGIC.search(p), parts))
            base, rest = "/".join(fixed), parts[len(fixed):]
            if rest and rest[-1] == "":
                rest = rest[:-1]
            missing = _missing_root_error(spec, path, storage_options)
            if missing is not None:
                raise missing
            entries = _match(fs, base, rest)
        else:
            stripped = path.rstrip("/")
            try:
                info = fs.info(stripped)
            except FileNotFoundError as exc:
                missing = _missing_root_error(spec, stripped, storage_options)
                if missing is not None:
                    raise missing from None
                return
            entries = _walk(fs, stripped) if info.get("type") == "directory" else iter([info])
        for entry in entries:
            if _name(entry) == JOB_MARKER_NAME:
                continue  # a job's bookkeeping (engine/job_folders.py), never data
            yield RemoteFile(f"{scheme}://{entry['name']}", int(entry.get("size") or 0), _tag(entry))
    except StorageError:
        raise
    except Exception as exc:  # noqa: BLE001 - translated at this boundary
        raise storage_error(exc, spec, "listing") from None


def iter_remote_files(spec: str, storage_options: dict | None = None) -> Iterator[str]:
    """URLs of the files ``spec`` names, in deterministic order."""
    for entry in iter_remote_entries(spec, storage_options):
        yield entry.url


def local_entry(path: str) -> RemoteFile:
    """A local file as a listing entry (size and modification time) for fingerprints."""
    st = os.stat(path)
    return RemoteFile(path, st.st_size, str(st.st_mtime_ns))
