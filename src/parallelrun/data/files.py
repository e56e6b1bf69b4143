"""File datasets: many files, cut into mini-batches of N files (``Dataset.File.from_files``).

With ``partition_format`` (or keys in braces in the path) the files' paths give partition keys;
``partition_keys`` of the job then make one mini-batch per combination of key values (split
further into ``mini_batch_size`` files when that is given), and ``run(mini_batch,
mini_batch_context)`` gets the combination as ``mini_batch_context.partition_key_value``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from itertools import islice
from typing import Any, Iterable, Iterator, Sequence

from parallelrun.config import parse_file_count
from parallelrun.data.base import AbstractDataset
from parallelrun.data import globbing
from parallelrun.data.globbing import has_magic
from parallelrun.data.listing import any_local_file, iter_local_files
from parallelrun.data.minibatch import FileList, MiniBatch
from parallelrun.data.partitions import PartitionPattern, PartitionPayload, has_keys, key_label
from parallelrun.data.urls import is_remote as _is_remote
from parallelrun.data.urls import is_url
from parallelrun.errors import DataError


def _as_spec(path: object) -> str:
    # Datastore paths (DataPath) carry a URL; plain strings and os.PathLike are local or URLs.
    url = getattr(path, "url", None)
    return str(url) if url is not None else os.fspath(path)


def _datastore_tuple(value: object) -> bool:
    # Azure ML's (datastore, "path/on/it"); a datastore is what makes DataPaths (this layer
    # never imports the workspace layer)
    return (isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], str)
            and callable(getattr(value[0], "path", None)) and not isinstance(value[0], str))


def path_list(path: Any, constructor: str) -> list:
    """The paths a dataset constructor was given, as a list: Azure ML's forms are a path, URL
    or ``DataPath``, a ``(datastore, "path")`` tuple, or a list of any of them."""
    if _datastore_tuple(path):
        raw = [path]
    else:
        raw = list(path) if isinstance(path, (list, tuple)) else [path]
    if not raw:
        raise DataError(f"{constructor}(path=[]) got no paths; give a file, folder or glob")
    for item in raw:
        # '' would list the current folder: most likely an unset variable ("$DATA")
        if isinstance(item, (str, os.PathLike)) and not _as_spec(item).strip():
            raise DataError(f"{constructor}(path={item!r}) got an empty path; give a file, "
                            "folder or glob ('.' for the current folder)")
    return [item[0].path(item[1]) if _datastore_tuple(item) else item for item in raw]


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

    def __init__(self, paths: Sequence[str], sources: dict | None = None,
                 partition_format: str | None = None):
        self.paths = list(paths)
        #: spec -> the datastore path it came from (resolves storage options when used)
        self.sources = dict(sources or {})
        #: e.g. "data/{user}/{season}/{genre}.wav": keys read from the files' paths
        self.partition_format = partition_format

    @classmethod
    def from_files(cls, path: object, validate: bool = True,
                   partition_format: str | None = None, is_file: bool = False) -> "FileDataset":
        """A dataset of the files at ``path``: a file, folder, glob, ``DataPath`` or
        ``(datastore, "path")``, or a list of them.

        With ``validate=True`` each path is checked to match at least one file now, so a typo
        fails here rather than when the job starts. ``partition_format`` (e.g.
        ``"dataset/{user}/{season}/{genre}.wav"``, matched against the end of each file's path)
        names partition keys (:attr:`partition_keys`) that ``ParallelRunConfig(partition_keys=
        [...])`` groups mini-batches by; keys in braces in ``path`` itself work the same way.
        ``is_file`` is accepted for Azure ML code.
        """
        raw = path_list(path, "Dataset.File.from_files")
        if partition_format is not None:
            PartitionPattern.parse(partition_format)
        specs = [_as_spec(p) for p in raw]
        sources = {spec: p for spec, p in zip(specs, raw) if getattr(p, "url", None) is not None}
        dataset = cls(specs, sources, partition_format)
        if validate:
            dataset.check_inputs()
        return dataset

    @property
    def partition_keys(self) -> list[str]:
        """The keys its paths are partitioned by (from ``partition_format`` or braces in the
        path), e.g. ``['user', 'season', 'genres']``; [] when none."""
        keys: list[str] = []
        for pattern in self._patterns():
            keys.extend(k for k in pattern.keys if k not in keys)
        return keys

    def _patterns(self) -> list[PartitionPattern]:
        found = [PartitionPattern.parse(self.partition_format)] if self.partition_format else []
        found += [PartitionPattern.parse(spec) for spec in self.paths if has_keys(spec)]
        return found

    def storage_options(self, spec: str) -> dict | None:
        """Options (credentials, endpoint) to read ``spec`` (one of :attr:`paths`, or a file
        listed under one): from its datastore, else those registered for its URL, else None
        (fsspec's defaults, e.g. environment variables)."""
        if not _is_remote(spec):
            return None
        source = self.sources.get(spec) or self._source_holding(spec)
        options = getattr(source, "storage_options", None)
        if options is not None:
            return dict(options)
        return _remote().registered_storage_options(spec)

    def _source_holding(self, url: str) -> object | None:
        # a listed file's URL -> the datastore path it was listed from (the deepest that holds
        # it): a container of one name on two accounts gives both the same URLs, so only the
        # path knows whose credentials read it
        best, best_length = None, -1
        for spec, source in self.sources.items():
            folder = _fixed_folder(_listing(spec))
            if (url == spec or url.startswith(folder)) and len(folder) > best_length:
                best, best_length = source, len(folder)
        return best

    def to_record(self) -> dict:
        """What re-creates this dataset (workspace registration): paths, datastore paths as
        ``{"datastore": name, "path": path}``; never credentials."""
        paths = []
        for spec in self.paths:
            source = self.sources.get(spec)
            paths.append(source.to_record() if hasattr(source, "to_record") else spec)
        record = {"kind": self.kind, "paths": paths}
        if self.partition_format:
            record["partition_format"] = self.partition_format
        return record

    @classmethod
    def from_record(cls, record: dict) -> "FileDataset":
        """Re-create a dataset from :meth:`to_record` (datastore paths already resolved)."""
        return cls.from_files(list(record["paths"]), validate=False,
                              partition_format=record.get("partition_format"))

    def file_entries(self):
        """Every file with its size and version tag (etag or mtime), for fingerprints."""
        for spec in self.paths:
            if _is_remote(spec):
                yield from _remote().iter_remote_entries(_listing(spec), self.storage_options(spec))
            else:
                local_entry = _remote().local_entry
                for path in iter_local_files(_listing(spec)):
                    yield local_entry(path)

    def check_mini_batch_size(self, value) -> None:
        parse_file_count(1 if value is None else value)

    def check_inputs(self) -> None:
        for spec in self.paths:
            if not any_file(_listing(spec), self.storage_options(spec)):
                raise DataError(_no_match_message(spec))

    def describe(self) -> str:
        return "files " + ", ".join(self.paths)

    def iter_files(self) -> Iterator[str]:
        for spec in self.paths:
            yield from iter_files(_listing(spec), self.storage_options(spec))

    # Azure ML's ways of getting the files onto this machine --------------------------------
    def to_path(self) -> list[str]:
        """The files' paths relative to the folder they share (Azure ML's ``to_path()``)."""
        files = list(self.iter_files())
        root = _common_folder(files)
        return ["/" + _relative(f, root) for f in files]

    def download(self, target_path: str | os.PathLike | None = None, overwrite: bool = False,
                 ignore_not_found: bool = False) -> list[str]:
        """Copy every file into ``target_path`` (a new temporary folder when None), keeping its
        path below the folder the files share; returns the local paths. A file already there is
        an error unless ``overwrite``, checked before anything is copied."""
        files = list(self.iter_files())
        target = os.path.abspath(os.fspath(target_path)) if target_path is not None \
            else tempfile.mkdtemp(prefix="parallelrun-download-")
        root = _common_folder(files)
        pairs = [(f, os.path.join(target, *_relative(f, root).split("/"))) for f in files]
        if not overwrite:
            clash = next((dest for _, dest in pairs if os.path.exists(dest)), None)
            if clash is not None:
                raise DataError(f"{clash!r} already exists; pass overwrite=True to replace it")
        for source, dest in pairs:
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            if _is_remote(source):
                fs, key = _remote().filesystem(source, self.storage_options(source))
                fs.get_file(key, dest)
            else:
                shutil.copyfile(source, dest)
        return [dest for _, dest in pairs]

    def mount(self, mount_point: str | os.PathLike | None = None, **_azure_arguments: Any):
        """A context manager giving the files as one local folder (``.mount_point``), as Azure
        ML's ``mount()`` does. There is no FUSE mount here: a dataset that is one local folder
        is that folder itself; otherwise the folder holds links to the local files and copies
        of the remote ones (below their shared folder), removed by ``stop()`` when
        ``mount_point`` was not given.

        Example::

            with dataset.mount() as mount_context:
                print(os.listdir(mount_context.mount_point))
        """
        return MountContext(self, mount_point)

    def plan(self, mini_batch_size, partition_keys=None, start_index=0,
             exclude: Iterable[str] = ()) -> Iterator[MiniBatch]:
        if partition_keys:
            yield from self._plan_partitions(list(partition_keys), mini_batch_size, start_index,
                                             exclude)
            return
        count = parse_file_count(1 if mini_batch_size is None else mini_batch_size)
        index = start_index
        for spec in self.paths:
            remote = _is_remote(spec)
            if remote:
                options = self.storage_options(spec)
                files = _remote().iter_remote_entries(_listing(spec), options, exclude)
            else:
                files = iter_local_files(_listing(spec), exclude)
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

    def _plan_partitions(self, keys: list[str], mini_batch_size, start_index: int,
                         exclude: Iterable[str]) -> Iterator[MiniBatch]:
        """One mini-batch per combination of ``keys`` values (in order of first appearance in
        the sorted listing), cut into ``mini_batch_size`` files when that is given."""
        known = self.partition_keys
        unknown = [k for k in keys if k not in known]
        if unknown:
            raise DataError(
                f"partition_keys {unknown} are not keys of {self.describe()} (its keys: "
                f"{known or 'none'}); give partition_format='.../{{key}}/...' to "
                "Dataset.File.from_files, or name keys in braces in its path")
        count = None if mini_batch_size is None else parse_file_count(mini_batch_size)
        patterns = self._patterns()
        groups: dict[tuple, list] = {}
        options_of: dict[tuple, dict | None] = {}
        for spec in self.paths:
            remote = _is_remote(spec)
            options = self.storage_options(spec) if remote else None
            entries = (_remote().iter_remote_entries(_listing(spec), options, exclude) if remote
                       else iter_local_files(_listing(spec), exclude))
            empty = True
            for entry in entries:
                empty = False
                path = entry.url if remote else entry
                values: dict = {}
                for pattern in patterns:
                    values.update(pattern.values(path) or {})
                if any(k not in values for k in keys):
                    continue        # a file whose path does not fit the format
                combo = tuple(values[k] for k in keys)
                groups.setdefault(combo, []).append(entry)
                options_of[combo] = options
            if empty:
                raise DataError(_no_match_message(spec))
        index = start_index
        for combo, entries in groups.items():
            key_value = dict(zip(keys, combo))
            step = count or len(entries)
            for lo in range(0, len(entries), step):
                chunk = entries[lo:lo + step]
                if isinstance(chunk[0], str):
                    inner = FileList(chunk)
                else:
                    inner = _remote().RemoteFileList([f.url for f in chunk],
                                                     [f.size for f in chunk], options_of[combo])
                yield MiniBatch(index, len(chunk), PartitionPayload(inner, key_value),
                                key_label(key_value))
                index += 1


class MountContext:
    """What :meth:`FileDataset.mount` returns: ``start()``, ``stop()``, ``mount_point``, and a
    context manager doing both."""

    def __init__(self, dataset: FileDataset, mount_point: str | os.PathLike | None):
        self.dataset = dataset
        self._given = mount_point is not None
        self._staging = os.path.abspath(os.fspath(mount_point)) if self._given else None
        self.mount_point: str | None = None

    def start(self) -> str:
        from parallelrun.data.local_copy import local_folder

        if self._staging is None:
            self._staging = tempfile.mkdtemp(prefix="parallelrun-mount-")
        self.mount_point = local_folder(self.dataset, self._staging)
        return self.mount_point

    def stop(self) -> None:
        if not self._given and self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None

    def __enter__(self) -> "MountContext":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _listing(spec: str) -> str:
    """What to list for a path spec: keys in braces (``data/{user}/*.wav``) stand for one folder."""
    return PartitionPattern.parse(spec).glob if has_keys(spec) else spec


def _fixed_folder(listing: str) -> str:
    """The folder every file a listing names is under, with a trailing '/': ``az://c/a/*.png``
    -> ``az://c/a/``, ``az://c/a/`` and ``az://c/a`` -> ``az://c/a/``."""
    if has_magic(listing):
        return globbing.split_pattern(listing)[0].rstrip("/") + "/"
    return listing.rstrip("/") + "/"


def _common_folder(files: list[str]) -> str:
    folders = [f.rsplit("/", 1)[0] if is_url(f) else os.path.dirname(os.path.abspath(f))
               for f in files]
    if not folders:
        return ""
    if any(is_url(f) for f in files):
        parts = [f.split("/") for f in folders]
        common = []
        for items in zip(*parts):
            if len(set(items)) != 1:
                break
            common.append(items[0])
        return "/".join(common)
    return os.path.commonpath(folders)


def _relative(path: str, root: str) -> str:
    if is_url(path):
        return path[len(root):].lstrip("/")
    return os.path.relpath(os.path.abspath(path), root).replace(os.sep, "/")


def iter_files(spec: str, storage_options: dict | None = None,
               exclude: Iterable[str] = ()) -> Iterator[str]:
    """Files a path spec names, in deterministic order: local paths, or URLs for remote specs
    (``az://``, ``s3://``; ``storage_options`` default to those registered for the URL).
    Folders in ``exclude`` (a job's own output and logs: local paths or URLs) are left out."""
    if _is_remote(spec):
        return _remote().iter_remote_files(spec, storage_options, exclude)
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
