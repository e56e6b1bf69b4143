"""Copying whole folders between local disk and remote storage (coordinator):
:func:`upload_tree` and :func:`download_tree`, for outputs and logs staged locally
(``parallelrun.engine.staging``) and a datastore's ``upload`` / ``download``.

Separate from listing (``remote_listing``, whose walk it reuses) and from the workers' fetch
cache (``remote_cache``): these copy a tree once, on the coordinator, with no cache or
prefetch. Callers import these names from :mod:`parallelrun.data.remote`.
"""

from __future__ import annotations

import os

from parallelrun.config import JOB_LOCK_NAME
# the same walk as listing (sorted, recursive), so a downloaded tree is copied in listing order
from parallelrun.data.remote_listing import _walk
from parallelrun.data.remote_storage import _missing_root_error, filesystem, storage_error
from parallelrun.errors import StorageError


def upload_tree(local_dir: str, url: str, storage_options: dict | None = None) -> int:
    """Copy every file under ``local_dir`` to the folder ``url``; returns the count."""
    fs, root = filesystem(url, storage_options)
    root = root.rstrip("/")
    sources, targets = [], []
    for folder, _, files in os.walk(local_dir):
        for name in sorted(files):
            source = os.path.join(folder, name)
            rel = os.path.relpath(source, local_dir).replace(os.sep, "/")
            sources.append(source)
            targets.append(f"{root}/{rel}")
    if not sources:
        return 0
    try:
        fs.put(sources, targets)
    except Exception as exc:  # noqa: BLE001
        missing = _missing_root_error(url, root, storage_options) \
            if isinstance(exc, FileNotFoundError) else None
        raise (missing or storage_error(exc, url, "uploading to")) from None
    return len(sources)


def download_tree(url: str, local_dir: str, storage_options: dict | None = None, *,
                  overwrite: bool = False) -> int:
    """Copy every file under the folder ``url`` into ``local_dir``; returns the count.

    A file that is already in ``local_dir`` is a StorageError unless ``overwrite``, raised
    before anything is copied.
    """
    fs, root = filesystem(url, storage_options)
    root = root.rstrip("/")
    try:
        if not fs.exists(root):
            return 0
        copies = []  # (source, target), all known before anything is copied
        for entry in _walk(fs, root):
            relative = entry["name"][len(root):].lstrip("/")
            if relative == JOB_LOCK_NAME:
                continue   # a running job's hold on the folder: not the folder's content
            copies.append((entry["name"], os.path.join(local_dir, *relative.split("/"))))
    except Exception as exc:  # noqa: BLE001
        raise storage_error(exc, url, "downloading") from None
    existing = [target for _, target in copies if os.path.exists(target)] if not overwrite else []
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise StorageError(f"{existing[0]!r}{more} exists; pass overwrite=True to replace it, or "
                           "download into an empty folder")
    try:
        for source, target in copies:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            fs.get_file(source, target)
    except Exception as exc:  # noqa: BLE001
        raise storage_error(exc, url, "downloading") from None
    return len(copies)
