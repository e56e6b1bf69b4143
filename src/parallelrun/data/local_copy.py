"""A dataset as one local path, for scripts that take a folder rather than mini-batches: side
inputs and datasets passed in ``arguments``."""

from __future__ import annotations

import os

from parallelrun.data.base import AbstractDataset


def local_folder(dataset: AbstractDataset, staging: str) -> str:
    """A local path for ``dataset``: its folder or file when it names exactly one local folder
    or file, else ``staging`` filled with links to its local files and copies of its remote ones.

    Example: ``local_folder(Dataset.File.from_files("labels/"), "/tmp/x")`` -> ``".../labels"``.
    """
    if len(dataset.paths) == 1 and dataset.local_paths():
        path = dataset.paths[0]
        if os.path.isdir(path) or os.path.isfile(path):
            return os.path.abspath(path)
    os.makedirs(staging, exist_ok=True)
    files = list(dataset.iter_files())
    local = [f for f in files if "://" not in f]
    root = os.path.commonpath([os.path.dirname(os.path.abspath(f)) for f in local]) if local else None
    for path in files:
        if "://" in path:
            from parallelrun.data import remote

            fs, key = remote.filesystem(path, dataset.storage_options(path)
                                        if hasattr(dataset, "storage_options") else None)
            target = os.path.join(staging, path.rsplit("/", 1)[-1])
            if not os.path.exists(target):
                fs.get_file(key, target)
        else:
            target = os.path.join(staging, os.path.relpath(os.path.abspath(path), root))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if not os.path.lexists(target):
                os.symlink(os.path.abspath(path), target)
    return staging
