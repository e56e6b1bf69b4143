"""A dataset as one local path, for scripts that take a folder rather than mini-batches: side
inputs and datasets passed in ``arguments``."""

from __future__ import annotations

import os

from parallelrun.data.base import AbstractDataset
from parallelrun.data.urls import is_url
from parallelrun.errors import DataError


def local_folder(dataset: AbstractDataset, staging: str) -> str:
    """A local path for ``dataset``: its folder or file when it names exactly one local folder
    or file, else ``staging`` filled with links to its local files and copies of its remote ones.

    Files keep their path below the deepest folder they share (local files and remote ones each
    their own): ``az://c/labels/en/labels.txt`` and ``az://c/labels/fr/labels.txt`` are staged as
    ``en/labels.txt`` and ``fr/labels.txt``. The same staging folder may be filled again: files
    already there are kept.

    Example: ``local_folder(Dataset.File.from_files("labels/"), "/tmp/x")`` -> ``".../labels"``.
    """
    if len(dataset.paths) == 1 and dataset.local_paths():
        path = dataset.paths[0]
        if os.path.isdir(path) or os.path.isfile(path):
            return os.path.abspath(path)
    os.makedirs(staging, exist_ok=True)
    files = list(dataset.iter_files())
    local = [os.path.abspath(f) for f in files if not is_url(f)]
    remote = [f for f in files if is_url(f)]
    staged: dict[str, str] = {}  # name in the staging folder -> the file staged there
    for source, name in _relative_names(local) + _relative_names(remote):
        if staged.setdefault(name, source) != source:
            raise DataError(f"{staged[name]!r} and {source!r} would both be {name!r} in the "
                            f"local folder of {dataset.describe()}; give them as two datasets")
        target = os.path.join(staging, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.lexists(target):
            continue
        if not is_url(source):
            os.symlink(source, target)
        else:
            from parallelrun.data import remote as remote_files

            options = (dataset.storage_options(source)
                       if hasattr(dataset, "storage_options") else None)
            fs, key = remote_files.filesystem(source, options)
            fs.get_file(key, target)
    return staging


def _relative_names(paths: list[str]) -> list[tuple[str, str]]:
    """Each path (or URL) with its name below the deepest folder all of ``paths`` share."""
    if not paths:
        return []
    split = [p.split("/") for p in paths]
    shared = split[0][:-1]
    for parts in split[1:]:
        n = 0
        while n < min(len(shared), len(parts) - 1) and parts[n] == shared[n]:
            n += 1
        shared = shared[:n]
    named = []
    for path, parts in zip(paths, split):
        below = [p for p in parts[len(shared):] if p not in ("", ".")]
        if ".." in below:  # never write outside the staging folder
            raise DataError(f"{path!r} has a '..' component; give the file's own path")
        named.append((path, "/".join(below)))
    return named
