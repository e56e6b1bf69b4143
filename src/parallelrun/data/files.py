"""File datasets: many files, cut into mini-batches of N files (``Dataset.File.from_files``)."""

from __future__ import annotations

import os
from itertools import islice
from typing import Iterable, Iterator, Sequence

from parallelrun.config import parse_file_count
from parallelrun.data.base import AbstractDataset
from parallelrun.data.listing import any_local_file, has_magic, iter_local_files
from parallelrun.data.minibatch import FileList, MiniBatch
from parallelrun.errors import DataError


def _as_spec(path: object) -> str:
    # Datastore paths (DataPath) carry a URL; plain strings and os.PathLike are local or URLs.
    url = getattr(path, "url", None)
    return str(url) if url is not None else os.fspath(path)


def _is_remote(spec: str) -> bool:
    # cheap test first: the local fast path never imports the remote module
    return "://" in spec and _remote().is_remote(spec)


def _remote():
    from parallelrun.data import remote

    return remote


class FileDataset(AbstractDataset):
    """Files named by paths, folders or globs; ``run()`` receives a list of local paths.

    Example::

        ds = Dataset.File.from_files(path="data/mnist/*.png")
        ds = Dataset.File.from_files(path=["a/", "b/*.jpg"])
    """

    kind = "file"

    def __init__(self, paths: Sequence[str], sources: dict | None = None):
        self.paths = list(paths)
        #: spec -> the datastore path it came from (resolves storage options when used)
        self.sources = dict(sources or {})

    @classmethod
    def from_files(cls, path: object, validate: bool = True) -> "FileDataset":
        """A dataset of the files at ``path`` (a file, folder, glob, or a list of them).

        With ``validate=True`` each path is checked to match at least one file now, so a typo
        fails here rather than when the job starts.
        """
        raw = path if isinstance(path, (list, tuple)) else [path]
        if not raw:
            raise DataError("Dataset.File.from_files(path=[]) got no paths; give a file, folder or glob")
        specs = [_as_spec(p) for p in raw]
        sources = {spec: p for spec, p in zip(specs, raw) if getattr(p, "url", None) is not None}
        dataset = cls(specs, sources)
        if validate:
            for spec in dataset.paths:
                if not any_file(spec, dataset.storage_options(spec)):
                    raise DataError(_no_match_message(spec))
        return dataset

    def storage_options(self, spec: str) -> dict | None:
        """Options (credentials, endpoint) to read ``spec``: from its datastore, else those
        registered for its URL, else None (fsspec's defaults, e.g. environment variables)."""
        if not _is_remote(spec):
            return None
        source = self.sources.get(spec)
        options = getattr(source, "storage_options", None)
        if options is not None:
            return dict(options)
        return _remote().registered_storage_options(spec)

    def to_record(self) -> dict:
        """What re-creates this dataset (workspace registration): paths, datastore paths as
        ``{"datastore": name, "path": path}``; never credentials."""
        paths = []
        for spec in self.paths:
            source = self.sources.get(spec)
            paths.append(source.to_record() if hasattr(source, "to_record") else spec)
        return {"kind": self.kind, "paths": paths}

    @classmethod
    def from_record(cls, record: dict) -> "FileDataset":
        """Re-create a dataset from :meth:`to_record` (datastore paths already resolved)."""
        return cls.from_files(list(record["paths"]), validate=False)

    def file_entries(self):
        """Every file with its size and version tag (etag or mtime), for fingerprints."""
        for spec in self.paths:
            if _is_remote(spec):
                yield from _remote().iter_remote_entries(spec, self.storage_options(spec))
            else:
                local_entry = _remote().local_entry
                for path in iter_local_files(spec):
                    yield local_entry(path)

    def check_mini_batch_size(self, value) -> None:
        parse_file_count(1 if value is None else value)

    def describe(self) -> str:
        return "files " + ", ".join(self.paths)

    def iter_files(self) -> Iterator[str]:
        for spec in self.paths:
            yield from iter_files(spec, self.storage_options(spec))

    def plan(self, mini_batch_size, partition_keys=None, start_index=0,
             exclude: Iterable[str] = ()) -> Iterator[MiniBatch]:
        if partition_keys:
            raise DataError(
                f"partition_keys={partition_keys!r} applies to tabular datasets; a file dataset "
                "is cut by count of files. Remove partition_keys or use Dataset.Tabular")
        count = parse_file_count(1 if mini_batch_size is None else mini_batch_size)
        index = start_index
        for spec in self.paths:
            remote = _is_remote(spec)
            if remote:
                options = self.storage_options(spec)
                files = _remote().iter_remote_entries(spec, options)
            else:
                files = iter_local_files(spec, exclude)
            empty = True
            while True:
                chunk = list(islice(files, count))
                if not chunk:
                    break
                empty = False
                if remote:
                    payload = _remote().RemoteFileList([f.url for f in chunk],
                                                       [f.size for f in chunk], options)
                    first = chunk[0].url
                else:
                    payload, first = FileList(chunk), chunk[0]
                yield MiniBatch(index, len(chunk), payload, first.rsplit("/", 1)[-1]
                                if remote else os.path.basename(first))
                index += 1
            if empty:
                raise DataError(_no_match_message(spec))


def iter_files(spec: str, storage_options: dict | None = None,
               exclude: Iterable[str] = ()) -> Iterator[str]:
    """Files a path spec names, in deterministic order: local paths, or URLs for remote specs
    (``az://``, ``s3://``; ``storage_options`` default to those registered for the URL).
    Local folders in ``exclude`` (a job's own output and logs) are left out."""
    if _is_remote(spec):
        return _remote().iter_remote_files(spec, storage_options)
    return iter_local_files(spec, exclude)


def any_file(spec: str, storage_options: dict | None = None) -> bool:
    """Whether a path spec names at least one file (cheap: no full listing)."""
    if _is_remote(spec):
        return next(iter_files(spec, storage_options), None) is not None
    return any_local_file(spec)


def _no_match_message(spec: str) -> str:
    what = "glob" if has_magic(spec) else "path"
    where = spec if _is_remote(spec) else os.path.abspath(spec)
    return (f"{what} {spec!r} matched no files (looked in {where}); check the "
            "path and pattern, e.g. 'data/images/*.png' or a folder 'data/images/'")
