"""File datasets: many files, cut into mini-batches of N files (``Dataset.File.from_files``)."""

from __future__ import annotations

import os
from itertools import islice
from typing import Iterator, Sequence

from parallelrun.config import parse_file_count
from parallelrun.data.base import AbstractDataset
from parallelrun.data.listing import any_local_file, has_magic, iter_local_files
from parallelrun.data.minibatch import FileList, MiniBatch
from parallelrun.errors import DataError


def _as_spec(path: object) -> str:
    # Datastore paths (DataPath) carry a URL; plain strings and os.PathLike are local or URLs.
    url = getattr(path, "url", None)
    return str(url) if url is not None else os.fspath(path)


class FileDataset(AbstractDataset):
    """Files named by paths, folders or globs; ``run()`` receives a list of local paths.

    Example::

        ds = Dataset.File.from_files(path="data/mnist/*.png")
        ds = Dataset.File.from_files(path=["a/", "b/*.jpg"])
    """

    kind = "file"

    def __init__(self, paths: Sequence[str]):
        self.paths = list(paths)

    @classmethod
    def from_files(cls, path: object, validate: bool = True) -> "FileDataset":
        """A dataset of the files at ``path`` (a file, folder, glob, or a list of them).

        With ``validate=True`` each path is checked to match at least one file now, so a typo
        fails here rather than when the job starts.
        """
        raw = path if isinstance(path, (list, tuple)) else [path]
        if not raw:
            raise DataError("Dataset.File.from_files(path=[]) got no paths; give a file, folder or glob")
        dataset = cls([_as_spec(p) for p in raw])
        if validate:
            for spec in dataset.paths:
                if not any_file(spec):
                    raise DataError(_no_match_message(spec))
        return dataset

    def check_mini_batch_size(self, value) -> None:
        parse_file_count(1 if value is None else value)

    def describe(self) -> str:
        return "files " + ", ".join(self.paths)

    def iter_files(self) -> Iterator[str]:
        for spec in self.paths:
            yield from iter_files(spec)

    def plan(self, mini_batch_size, partition_keys=None, start_index=0) -> Iterator[MiniBatch]:
        if partition_keys:
            raise DataError(
                f"partition_keys={partition_keys!r} applies to tabular datasets; a file dataset "
                "is cut by count of files. Remove partition_keys or use Dataset.Tabular")
        count = parse_file_count(1 if mini_batch_size is None else mini_batch_size)
        index = start_index
        for spec in self.paths:
            files = iter_files(spec)
            empty = True
            while True:
                chunk = list(islice(files, count))
                if not chunk:
                    break
                empty = False
                yield MiniBatch(index, len(chunk), FileList(chunk), os.path.basename(chunk[0]))
                index += 1
            if empty:
                raise DataError(_no_match_message(spec))


def iter_files(spec: str) -> Iterator[str]:
    """Files a path spec names, in deterministic order."""
    return iter_local_files(spec)


def any_file(spec: str) -> bool:
    """Whether a path spec names at least one file (cheap: no full listing)."""
    return any_local_file(spec)


def _no_match_message(spec: str) -> str:
    what = "glob" if has_magic(spec) else "path"
    return (f"{what} {spec!r} matched no files (looked in {os.path.abspath(spec)}); check the "
            "path and pattern, e.g. 'data/images/*.png' or a folder 'data/images/'")
