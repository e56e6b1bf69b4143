"""Tabular datasets: CSV, Parquet and JSON lines files, cut into mini-batches by data size.

``run(mini_batch)`` receives a pandas DataFrame. ``mini_batch_size`` is an amount of data
(``"1MB"`` by default). A mini-batch never crosses a file: a file no bigger than the size is one
mini-batch; a bigger one is cut into pieces of at most that size (only a single record longer
than the size makes a longer piece):

* CSV and JSON lines: byte ranges that start and end at record boundaries. The coordinator finds
  them in one streaming pass that knows about quoted values holding newlines
  (:mod:`parallelrun.data.records`); the worker reads only its range.
* Parquet: whole row groups, packed up to the size by their compressed bytes on disk; a row group
  bigger than the size is cut into row ranges (at most ``MAX_RANGES_PER_ROW_GROUP``: pyarrow
  reads a range by decoding its row group from the start, so more ranges would cost more decoding
  than they save memory). Only the footer is read to plan.

Files come in sorted order and the plan depends only on the files and the settings, so the same
inputs give the same mini-batches (what resume and exactly-once output rely on). Empty files and
files with only a header have no rows and make no mini-batch.

Partitions. With ``partition_keys`` every mini-batch holds the rows of one combination of key
values. Keys are taken from paths (``partition_format="{region}/{date}/*.csv"``, or braces in
``path`` itself: ``"data/{region}/{date}/*.csv"``) or from data columns. With path keys only,
planning reads no data; with column keys the coordinator first reads the key columns of every
file (in mini-batch-sized pieces) and each mini-batch reads the pieces that hold its key and keeps
those rows. Without ``mini_batch_size`` there is one mini-batch per key (as in Azure ML); with it,
a key's data is split further into pieces of about that size (parallelrun's addition).
"""

from __future__ import annotations

import codecs
import copy
import dataclasses
import io
import os
import shutil
import tempfile
from typing import Any, Iterable, Iterator, Sequence

from parallelrun.config import parse_data_size
from parallelrun.data.base import AbstractDataset
from parallelrun.data.files import _as_spec, _no_match_message, iter_files, path_list
from parallelrun.data.listing import has_magic
from parallelrun.data.minibatch import MiniBatch
from parallelrun.data.partitions import KEY_RE as _KEY_RE
from parallelrun.data.partitions import PartitionPattern
from parallelrun.data.readers import (
    BAD_ROWS_ACTIONS, PATH_COLUMN, ReadSpec, TablePart, TableSlice, as_arrow_type, file_size,
    is_remote, open_binary, read_part,
)
from parallelrun.data.records import first_record_end, plan_cuts, scan_boundaries
from parallelrun.data.urls import is_url
from parallelrun.errors import DataError

DEFAULT_MINI_BATCH_SIZE = "1MB"
#: pyarrow cannot seek to a row inside a row group: a range is decoded from the group's start, so
#: a big row group is cut into at most this many ranges (decode work <= 4.5x, memory ~1/8 group)
MAX_RANGES_PER_ROW_GROUP = 8
FORMATS = ("delimited", "parquet", "json_lines")
MIXED_SCHEMAS = ("error", "union")
#: header= values (Azure ML's PromoteHeadersBehavior names too) -> what parallelrun does
_HEADERS = {
    "true": "all", "all_files_have_same_headers": "all", "all": "all",
    "false": "none", "no_headers": "none", "none": "none",
    "only_first_file_has_headers": "first", "first": "first",
    "combine_all_files_headers": "combine", "combine": "combine",
}
_ENCODINGS = {"utf8": "utf-8", "iso88591": "latin-1", "latin1": "latin-1", "ascii": "ascii",
              "utf16": "utf-16", "utf32": "utf-32", "utf8bom": "utf-8-sig",
              "windows1252": "cp1252"}
_BOM = b"\xef\xbb\xbf"


def _codec(encoding: str) -> str:
    name = _ENCODINGS.get(str(encoding).lower().replace("-", "").replace("_", ""), encoding)
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise DataError(f"encoding={encoding!r} is not known; use one of utf8, utf8bom, latin1, "
                        "iso88591, windows1252, ascii, utf16, utf32 (or a Python codec name)") from None


def _byte_scannable(codec: str, separator: str) -> bool:
    """Whether newlines, quotes and the separator are single ASCII bytes in this encoding."""
    if codec.startswith(("utf-16", "utf-32")):
        return False
    try:
        return ('\n\r"' + separator).encode(codec) == ('\n\r"' + separator).encode("ascii")
    except (UnicodeEncodeError, UnicodeError):
        return False




class TabularDataset(AbstractDataset):
    """Rows of CSV, Parquet or JSON lines files; ``run()`` receives a pandas DataFrame.

    Example::

        ds = Dataset.Tabular.from_delimited_files(path="data/transactions/*.csv")
        ds = Dataset.Tabular.from_parquet_files(path="data/{region}/*.parquet", include_path=True)
        df = ds.to_pandas_dataframe()        # everything at once, for a quick look
    """

    kind = "tabular"

    def __init__(self, paths: Sequence[str], spec: ReadSpec, *, header: str = "all",
                 include_path: bool = False, partition_format: str | None = None,
                 mixed_schemas: str = "error", options: dict | None = None,
                 sources: dict | None = None):
        self.paths = list(paths)
        #: spec -> the datastore path it came from (resolves storage options when used)
        self.sources = dict(sources or {})
        self.spec = spec
        self.header = header
        self.include_path = include_path
        self.partition_format = partition_format
        self.mixed_schemas = mixed_schemas
        #: the constructor's arguments, to re-create the dataset (workspace registration)
        self.options = dict(options or {})
        #: Azure ML's subsetting steps (take, skip, keep_columns, drop_columns, random_split),
        #: applied in order to the rows read; see :meth:`_transformed`
        self.transforms: tuple = ()

    # Constructors (the names and arguments of Azure ML's Dataset.Tabular) --------------------
    @classmethod
    def from_delimited_files(cls, path: Any, validate: bool = True, include_path: bool = False,
                             infer_column_types: bool = True, set_column_types: dict | None = None,
                             separator: str = ",", header: Any = True,
                             partition_format: str | None = None, support_multi_line: bool = True,
                             empty_as_string: bool = False, encoding: str = "utf8",
                             quote_char: str | None = '"', skip_blank_lines: bool = True,
                             on_bad_lines: str = "count",
                             mixed_schemas: str = "error") -> "TabularDataset":
        """CSV (or any delimited) files at ``path``: a file, folder, glob, or a list of them.

        Example::

            ds = Dataset.Tabular.from_delimited_files("data/*.csv", separator=";",
                                                      set_column_types={"id": str})

        ``header``: True (every file starts with the same header), False (none; columns are
        named Column1, Column2...), ``"only_first_file_has_headers"`` or
        ``"combine_all_files_headers"`` (files may have different columns; every DataFrame has
        the union, missing values null). Files whose header differs fail the job with a clear
        error unless ``mixed_schemas="union"`` (the same union). ``infer_column_types=False``
        reads every column as text; ``set_column_types`` fixes some types (a value that does not
        convert makes its row a bad row). Empty fields are null unless ``empty_as_string``.
        ``on_bad_lines``: ``"count"`` (default: a row with a wrong field count, undecodable bytes
        or an unconvertible value is left out and counted as a failed record, with its file and
        line in ``logs/user/error.txt``), ``"skip"`` (left out, not counted) or ``"error"`` (the
        mini-batch fails). Quoted values may hold newlines; ``support_multi_line`` is accepted for
        Azure ML code and changes nothing (splits are always quote-aware).
        """
        if not isinstance(separator, str) or len(separator) != 1 or separator in '\r\n"':
            raise DataError(f"separator={separator!r} is not allowed: one character such as ',' "
                            "';' '|' or '\\t' (not a quote or newline)")
        if quote_char is not None and (not isinstance(quote_char, str) or len(quote_char) != 1):
            raise DataError(f"quote_char={quote_char!r} is not allowed: one character, or None "
                            "for no quoting")
        key = str(getattr(header, "name", header)).lower()
        if key not in _HEADERS:
            raise DataError(f"header={header!r} is not allowed: True, False, "
                            "'only_first_file_has_headers' or 'combine_all_files_headers'")
        header_mode = _HEADERS[key]
        if header_mode == "combine":
            mixed_schemas = "union"
        codec = _codec(encoding)
        spec = ReadSpec(
            "delimited", separator=separator, quote=quote_char, encoding=codec,
            column_types=_column_types(set_column_types),
            infer_column_types=bool(infer_column_types), skip_blank_lines=bool(skip_blank_lines),
            empty_as_string=bool(empty_as_string), on_bad_lines=_bad_rows(on_bad_lines))
        options = dict(include_path=include_path, infer_column_types=infer_column_types,
                       set_column_types=_types_record(set_column_types), separator=separator,
                       header=header_mode, partition_format=partition_format,
                       empty_as_string=empty_as_string, encoding=encoding, quote_char=quote_char,
                       skip_blank_lines=skip_blank_lines, on_bad_lines=on_bad_lines,
                       mixed_schemas=mixed_schemas)
        return cls._create(path, spec, validate, header=header_mode, include_path=include_path,
                           partition_format=partition_format, mixed_schemas=mixed_schemas,
                           options=options, constructor="from_delimited_files")

    @classmethod
    def from_parquet_files(cls, path: Any, validate: bool = True, include_path: bool = False,
                           set_column_types: dict | None = None,
                           partition_format: str | None = None,
                           mixed_schemas: str = "error") -> "TabularDataset":
        """Parquet files at ``path``. Mini-batches are row groups (or row ranges of a big one).

        Example::

            ds = Dataset.Tabular.from_parquet_files("data/{region}/*.parquet")

        Files with other columns than the first file fail the job with a clear error, unless
        ``mixed_schemas="union"`` (every DataFrame gets the union of the columns).
        """
        spec = ReadSpec("parquet", column_types=_column_types(set_column_types))
        options = dict(include_path=include_path, set_column_types=_types_record(set_column_types),
                       partition_format=partition_format, mixed_schemas=mixed_schemas)
        return cls._create(path, spec, validate, header="none", include_path=include_path,
                           partition_format=partition_format, mixed_schemas=mixed_schemas,
                           options=options, constructor="from_parquet_files")

    @classmethod
    def from_json_lines_files(cls, path: Any, validate: bool = True, include_path: bool = False,
                              set_column_types: dict | None = None,
                              partition_format: str | None = None, invalid_lines: str | None = None,
                              encoding: str = "utf8",
                              on_bad_lines: str = "count") -> "TabularDataset":
        """JSON lines files (one JSON object per line) at ``path``.

        Example::

            ds = Dataset.Tabular.from_json_lines_files("events/*.jsonl")

        A line that is not a JSON object (or has a value that does not convert to a type of
        ``set_column_types``) is a bad row, handled as ``on_bad_lines`` says (see
        :meth:`from_delimited_files`). Azure ML's ``invalid_lines='drop'`` means ``"count"``
        here (dropped rows still count as failed records) and ``'error'`` means ``"error"``.
        Each DataFrame has the keys found in its lines; give ``set_column_types`` to always
        have some columns with fixed types.
        """
        if invalid_lines is not None:
            if invalid_lines not in ("drop", "error"):
                raise DataError(f"invalid_lines={invalid_lines!r} is not allowed: 'drop' or 'error'")
            on_bad_lines = "error" if invalid_lines == "error" else "count"
        codec = _codec(encoding)
        if not _byte_scannable(codec, ","):
            raise DataError(f"encoding={encoding!r}: JSON lines files must be in an encoding where "
                            "a newline is one byte (utf8, latin1, windows1252...)")
        spec = ReadSpec("json_lines", quote=None, encoding=codec,
                        column_types=_column_types(set_column_types),
                        on_bad_lines=_bad_rows(on_bad_lines))
        options = dict(include_path=include_path, set_column_types=_types_record(set_column_types),
                       partition_format=partition_format, encoding=encoding,
                       on_bad_lines=on_bad_lines)
        return cls._create(path, spec, validate, header="none", include_path=include_path,
                           partition_format=partition_format, mixed_schemas="union",
                           options=options, constructor="from_json_lines_files")

    @classmethod
    def _create(cls, path: Any, spec: ReadSpec, validate: bool, constructor: str,
                **kwargs) -> "TabularDataset":
        raw = path_list(path, f"Dataset.Tabular.{constructor}")
        if kwargs["mixed_schemas"] not in MIXED_SCHEMAS:
            raise DataError(f"mixed_schemas={kwargs['mixed_schemas']!r} is not allowed: 'error' "
                            "(files must have the same columns) or 'union'")
        if kwargs["partition_format"] is not None:
            PartitionPattern.parse(kwargs["partition_format"])
        kwargs["options"]["constructor"] = constructor
        specs = [_as_spec(p) for p in raw]
        sources = {sp: p for sp, p in zip(specs, raw) if getattr(p, "url", None) is not None}
        dataset = cls(specs, spec, sources=sources, **kwargs)
        if validate:
            dataset._validate()
        return dataset

    @classmethod
    def from_record(cls, record: dict) -> "TabularDataset":
        """Re-create a dataset from :meth:`to_record` (how a workspace stores registrations)."""
        options = dict(record.get("options", {}))
        constructor = options.pop("constructor")
        dataset = getattr(cls, constructor)(record["paths"], validate=False, **options)
        dataset.transforms = tuple(tuple(t) for t in record.get("transforms", ()))
        return dataset

    def to_record(self) -> dict:
        """What re-creates this dataset: kind, paths (datastore paths as their records, never
        credentials) and the constructor's arguments (JSON-able)."""
        paths = []
        for spec in self.paths:
            source = self.sources.get(spec)
            paths.append(source.to_record() if hasattr(source, "to_record") else spec)
        record = {"kind": self.kind, "format": self.spec.format, "paths": paths,
                  "options": dict(self.options)}
        if self.transforms:
            record["transforms"] = [list(t) for t in self.transforms]
        return record

    def storage_options(self, spec: str) -> dict | None:
        """Options (credentials, endpoint) to read ``spec``: from its datastore, else those
        registered for its URL, else None (fsspec's defaults, e.g. environment variables)."""
        if not is_remote(spec):
            return None
        options = getattr(self.sources.get(spec), "storage_options", None)
        if options is not None:
            return dict(options)
        from parallelrun.data import remote

        return remote.registered_storage_options(spec)

    # AbstractDataset ---------------------------------------------------------------------------
    def check_mini_batch_size(self, value) -> None:
        parse_data_size(DEFAULT_MINI_BATCH_SIZE if value is None else value)

    def describe(self) -> str:
        return f"tabular {self.spec.format} " + ", ".join(self.paths)

    def plan(self, mini_batch_size, partition_keys=None, start_index=0,
             exclude: Iterable[str] = ()) -> Iterator[MiniBatch]:
        if self.transforms:
            # take/skip/random_split count rows across files: the rows they keep are written
            # once to a Parquet file (cached by definition and files), which is then planned
            yield from self._materialised().plan(mini_batch_size, partition_keys, start_index,
                                                 exclude)
            return
        size = parse_data_size(DEFAULT_MINI_BATCH_SIZE if mini_batch_size is None else mini_batch_size)
        planner = _Planner(self, size, exclude)
        if partition_keys:
            split = mini_batch_size is not None
            yield from planner.plan_partitions(list(partition_keys), split, start_index)
            return
        index = start_index
        for path, constants in planner.files():
            for part in planner.parts(path, constants, size):
                yield MiniBatch(index, None, TableSlice(planner.spec, [part]), _label(part))
                index += 1

    # For users ---------------------------------------------------------------------------------
    def to_pandas_dataframe(self):
        """Every row of the dataset in one DataFrame (bad rows left out), for small data.

        Example: ``Dataset.Tabular.from_delimited_files("data/*.csv").to_pandas_dataframe()``
        """
        import pandas as pd

        planner = _Planner(self, None)
        frames = []
        for path, constants in planner.files():
            for part in planner.parts(path, constants, None):
                frames.append(TableSlice(planner.spec, [part]).load())
        if not frames:
            return self._transformed(pd.DataFrame())
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        return self._transformed(frame)

    # Azure ML's subsetting (each returns a new dataset; data is read when it is used) --------
    def _with(self, *transform) -> "TabularDataset":
        derived = copy.copy(self)
        derived.transforms = self.transforms + (tuple(transform),)
        derived.registration = None
        return derived

    def take(self, count: int) -> "TabularDataset":
        """The first ``count`` rows. Example: ``ds.take(5).to_pandas_dataframe()``."""
        return self._with("take", _row_count("take", count))

    def skip(self, count: int) -> "TabularDataset":
        """Every row but the first ``count``."""
        return self._with("skip", _row_count("skip", count))

    def keep_columns(self, columns: Any, validate: bool = False) -> "TabularDataset":
        """Only the given columns (a name or a list), in the data's order."""
        return self._with("keep_columns", _column_list("keep_columns", columns))

    def drop_columns(self, columns: Any) -> "TabularDataset":
        """Every column but the given ones (a name or a list)."""
        return self._with("drop_columns", _column_list("drop_columns", columns))

    def random_split(self, percentage: float, seed: int | None = None) -> tuple:
        """Two datasets that split the rows at random, the first holding about ``percentage``
        (0 to 1) of them and the second the rest; the same ``seed`` gives the same split.

        Example: ``train, test = ds.random_split(0.8, seed=1)``.
        """
        if isinstance(percentage, bool) or not isinstance(percentage, (int, float)) \
                or not 0 <= percentage <= 1:
            raise DataError(f"percentage={percentage!r} is not allowed: a number from 0.0 to 1.0")
        if seed is None:
            # both halves must draw the same numbers: the seed is fixed now
            seed = int.from_bytes(os.urandom(4), "little")
        return (self._with("random_split", float(percentage), int(seed), 0),
                self._with("random_split", float(percentage), int(seed), 1))

    @property
    def partition_keys(self) -> list[str]:
        """The keys its paths are partitioned by (``partition_format`` or braces in the path),
        e.g. ``['Store', 'Brand']`` after :meth:`partition_by`; [] when none."""
        keys: list[str] = []
        patterns = [PartitionPattern.parse(self.partition_format)] if self.partition_format else []
        patterns += [PartitionPattern.parse(p) for p in self.paths if "{" in p and _KEY_RE.search(p)]
        for pattern in patterns:
            keys.extend(k for k in pattern.keys if k not in keys)
        return keys

    def partition_by(self, partition_keys: list[str], target: Any, name: str | None = None,
                     show_progress: bool = True,
                     partition_as_file_dataset: bool = False) -> "AbstractDataset":
        """Copy the rows to ``target`` (a ``(datastore, "folder")`` or ``DataPath``) as Parquet
        files, one folder per combination of ``partition_keys`` values
        (``<folder>/<id>/<key1>/<key2>/part-00000.parquet``), and return the dataset of that copy,
        partitioned by those keys (registered as ``name`` when given, in the target
        datastore's workspace). The key columns come back from the folder names, as text, after
        the other columns.

        Example::

            partitioned = ds.partition_by(["Store", "Brand"], target=(datastore, "by_store"))
            partitioned.partition_keys        # ['Store', 'Brand']
        """
        import uuid

        keys = _column_list("partition_keys", partition_keys)
        destination = path_list(target, "partition_by")
        if len(destination) != 1 or getattr(destination[0], "url", None) is None:
            raise DataError(f"target={target!r} is not allowed: a (datastore, 'folder') tuple or "
                            "a datastore path, e.g. (ws.get_default_datastore(), 'partitioned')")
        frame = self.to_pandas_dataframe()
        missing = [k for k in keys if k not in frame.columns]
        if missing:
            raise DataError(f"partition_keys {missing} are not columns of {self.describe()} "
                            f"(columns: {list(frame.columns)})")
        data_path = destination[0]
        folder = f"{getattr(data_path, 'path_on_datastore', '').strip('/')}/{uuid.uuid4().hex}"
        folder = folder.lstrip("/")
        staging = tempfile.mkdtemp(prefix="parallelrun-partition-")
        try:
            for combo, rows in frame.groupby(list(keys), sort=True, dropna=False):
                combo = combo if isinstance(combo, tuple) else (combo,)
                part_dir = os.path.join(staging, *[_folder_value(v) for v in combo])
                os.makedirs(part_dir, exist_ok=True)
                rows.drop(columns=list(keys)).to_parquet(os.path.join(part_dir, "part-00000.parquet"),
                                                   index=False)
            store = data_path.datastore
            from parallelrun.data import remote

            remote.upload_tree(staging, store.path(folder).url, store.storage_options)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        glob = "/".join([folder] + ["*"] * len(keys) + ["*.parquet"])
        pattern = "/".join([folder] + ["{%s}" % k for k in keys] + ["*.parquet"])
        if partition_as_file_dataset:
            from parallelrun.data.files import FileDataset

            result: AbstractDataset = FileDataset.from_files((store, glob), validate=False,
                                                             partition_format=pattern)
        else:
            result = TabularDataset.from_parquet_files((store, glob), validate=False,
                                                       partition_format=pattern)
        if name is not None:
            workspace = getattr(store, "workspace", None)
            if workspace is None:
                raise DataError(f"name={name!r}: the target datastore has no workspace to "
                                "register the dataset in; register it with .register(ws, name)")
            result = result.register(workspace, name, create_new_version=True)
        return result

    def _transformed(self, frame):
        """``frame`` (every row, in plan order) after this dataset's subsetting steps."""
        import numpy as np

        for step in self.transforms:
            kind = step[0]
            if kind == "take":
                frame = frame.iloc[:step[1]]
            elif kind == "skip":
                frame = frame.iloc[step[1]:]
            elif kind in ("keep_columns", "drop_columns"):
                missing = [c for c in step[1] if c not in frame.columns]
                if missing:
                    raise DataError(f"{kind}: columns {missing} are not in {self.describe()} "
                                    f"(columns: {list(frame.columns)})")
                frame = (frame[[c for c in frame.columns if c in step[1]]] if kind == "keep_columns"
                         else frame.drop(columns=list(step[1])))
            elif kind == "random_split":
                _, percentage, seed, side = step
                first = np.random.default_rng(seed).random(len(frame)) < percentage
                frame = frame[first if side == 0 else ~first]
            else:
                raise DataError(f"unknown dataset transform {kind!r}")
        return frame.reset_index(drop=True)

    def _materialised(self) -> "TabularDataset":
        """This dataset's rows as one Parquet file, written once per definition and files."""
        import hashlib
        import json

        from parallelrun.data import remote

        untransformed = copy.copy(self)
        untransformed.transforms = ()
        digest = hashlib.sha256(json.dumps(
            [self.to_record(), [tuple(e) for e in untransformed.file_entries()]],
            sort_keys=True, default=str).encode()).hexdigest()[:24]
        folder = os.path.join(remote.cache_base(), "transformed-datasets")
        os.makedirs(folder, exist_ok=True)
        target = os.path.join(folder, f"{digest}.parquet")
        if not os.path.exists(target):
            tmp = f"{target}.{os.getpid()}.tmp"
            self.to_pandas_dataframe().to_parquet(tmp, index=False)
            os.replace(tmp, target)
        return TabularDataset.from_parquet_files(target, validate=False)

    def iter_files(self) -> Iterator[str]:
        """The dataset's files in plan order."""
        for path, _ in _Planner(self, None).files():
            yield path

    def _validate(self) -> None:
        planner = _Planner(self, None)
        first = None
        for spec in self.paths:
            path = next(planner.files_of(spec), None)
            if path is None:
                raise DataError(_no_match_message(spec) if "{" not in spec else
                                f"{spec!r} matched no files whose paths fit the pattern")
            first = first or path
        try:
            planner.columns_of(first)
        except DataError:
            raise
        except Exception as exc:  # noqa: BLE001 - pyarrow/OS errors become a DataError naming the file
            raise DataError(f"{first} cannot be read as {self.spec.format}: {exc}. Check the "
                            "path and the constructor (from_delimited_files, from_parquet_files, "
                            "from_json_lines_files)") from exc


def _row_count(name: str, count: Any) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise DataError(f"{name}(count={count!r}) is not allowed: a whole number of rows >= 0")
    return count


def _column_list(name: str, columns: Any) -> tuple:
    items = [columns] if isinstance(columns, str) else list(columns or [])
    if not items or not all(isinstance(c, str) and c for c in items):
        raise DataError(f"{name}={columns!r} is not allowed: a column name or a non-empty list "
                        "of them, e.g. ['Store', 'Brand']")
    return tuple(items)


def _folder_value(value: Any) -> str:
    text = "__null__" if value is None or (isinstance(value, float) and value != value) else str(value)
    if not text or "/" in text or os.sep in text or text in (".", ".."):
        raise DataError(f"partition value {value!r} cannot be a folder name; partition by a "
                        "column without '/' in its values")
    return text


def _column_types(types: dict | None) -> tuple:
    if types is None:
        return ()
    if not isinstance(types, dict):
        raise DataError(f"set_column_types={types!r} is not allowed: a dict of column name to type, "
                        "e.g. {'id': str, 'amount': float}")
    return tuple((str(k), as_arrow_type(v, k)) for k, v in types.items())


def _types_record(types: dict | None) -> dict | None:
    if types is None:
        return None
    return {str(k): str(v) for k, v in _column_types(types)}


def _bad_rows(value: str) -> str:
    if value not in BAD_ROWS_ACTIONS:
        raise DataError(f"on_bad_lines={value!r} is not allowed: 'count' (leave the row out and "
                        "count it as a failed record), 'skip' (leave it out) or 'error' (fail "
                        "the mini-batch)")
    return value


def _label(part: TablePart) -> str:
    name = os.path.basename(part.path)
    if part.row_range is not None:
        return f"{name}[rows {part.first_row}:{part.first_row + part.row_range[2] - part.row_range[1]}]"
    if part.row_groups is not None:
        return f"{name}[row groups {part.row_groups[0]}-{part.row_groups[-1]}]"
    if part.end:
        return f"{name}[{part.start}:{part.end}]"
    return name


class _Planner:
    """Lists a dataset's files and cuts them into parts; one per plan() call."""

    def __init__(self, dataset: TabularDataset, size: int | None, exclude: Iterable[str] = ()):
        self.ds = dataset
        self.size = size
        #: local folders never listed (the job's own output and logs)
        self.exclude = tuple(exclude)
        self.spec = dataset.spec
        self.pattern = (PartitionPattern.parse(dataset.partition_format)
                        if dataset.partition_format else None)
        self._reference: tuple[str, tuple] | None = None     # first file and its columns
        self._first_file_columns: tuple | None = None
        self._union: list[str] | None = None
        self.quote = self.spec.quote.encode() if (self.spec.quote and self.spec.format == "delimited") else None
        self.delim = self.spec.separator.encode() if self.spec.format == "delimited" else b""
        self.scannable = _byte_scannable(self.spec.encoding, self.spec.separator)
        self._options: dict[str, dict | None] = {}      # remote path -> storage options

    def opts(self, path: str) -> dict | None:
        return self._options.get(path)

    # Files -------------------------------------------------------------------------------------
    def files_of(self, spec: str) -> Iterator[str]:
        pattern = self.pattern
        listing = spec
        if "{" in spec and _KEY_RE.search(spec):
            inline = PartitionPattern.parse(spec if is_url(spec) else os.path.abspath(spec))
            pattern = pattern or inline
            listing = inline.glob
        folder = not has_magic(listing) and not is_url(listing) and os.path.isdir(listing)
        options = self.ds.storage_options(spec)
        for path in iter_files(listing, options, self.exclude):
            if options is not None:
                self._options[path] = options
            # in a folder, _SUCCESS, .crc and such are not data (as pyarrow.dataset does)
            if folder and os.path.basename(path).startswith(("_", ".")):
                continue
            if pattern is not None and pattern.values(path) is None:
                continue
            yield path

    def files(self) -> Iterator[tuple[str, tuple]]:
        """``(path, constants)`` of every file, constants being partition values and Path."""
        if self.ds.mixed_schemas == "union" and self.spec.format != "json_lines":
            self._collect_union()
        for spec in self.ds.paths:
            pattern = self.pattern
            if pattern is None and "{" in spec and _KEY_RE.search(spec):
                pattern = PartitionPattern.parse(spec if is_url(spec) else os.path.abspath(spec))
            empty = True
            for path in self.files_of(spec):
                empty = False
                constants = list(pattern.values(path).items()) if pattern else []
                if self.ds.include_path:
                    constants.append((PATH_COLUMN, path))
                yield path, tuple(constants)
            if empty:
                raise DataError(_no_match_message(spec))

    def _collect_union(self) -> None:
        union: list[str] = []
        for spec in self.ds.paths:
            for path in self.files_of(spec):
                for name in self.columns_of(path):
                    if name not in union:
                        union.append(name)
        self._union = union
        self.spec = dataclasses.replace(self.spec, union_columns=tuple(union))

    def patterns(self) -> list[PartitionPattern]:
        found = [self.pattern] if self.pattern else []
        for spec in self.ds.paths:
            if "{" in spec and _KEY_RE.search(spec):
                found.append(PartitionPattern.parse(spec))
        return found

    # Schemas -----------------------------------------------------------------------------------
    def columns_of(self, path: str) -> tuple:
        """The file's column names (header, generated names, Parquet schema, or () for JSON)."""
        fmt = self.spec.format
        if fmt == "parquet":
            import pyarrow.parquet as pq

            with open_binary(path, self.opts(path)) as fh:
                return tuple(pq.ParquetFile(fh).schema_arrow.names)
        if fmt == "json_lines":
            return ()
        with open_binary(path, self.opts(path)) as fh:
            return self._delimited_header(fh, path, file_size(path, self.opts(path)))[0]

    def _check_schema(self, path: str, columns: tuple) -> None:
        if self.ds.mixed_schemas == "union" or self.spec.format == "json_lines":
            return
        if self._reference is None:
            self._reference = (path, columns)
            return
        first, expected = self._reference
        if columns != expected:
            missing = [c for c in expected if c not in columns]
            extra = [c for c in columns if c not in expected]
            detail = (f"missing {missing}, extra {extra}" if (missing or extra)
                      else "same names in another order")
            raise DataError(
                f"mixed schemas: {path} has columns {list(columns)} but {first} has "
                f"{list(expected)} ({detail}). Give files with the same columns, make separate "
                "datasets, or pass mixed_schemas='union' (or header='combine_all_files_headers') "
                "to get the union of all columns, missing values null")

    def _delimited_header(self, fh, path: str, file_size: int) -> tuple[tuple, int, int]:
        """(columns, offset where data starts, line where data starts) of a delimited file."""
        head = fh.read(3)
        start = 3 if head == _BOM and self.spec.encoding.startswith("utf-8") else 0
        mode = self.ds.header
        if mode == "first":
            mode = "all" if self._first_file_columns is None else "reuse"
        if mode == "reuse":
            return self._first_file_columns, start, 1
        end = first_record_end(fh, start, file_size, self.quote, self.delim)
        fh.seek(start)
        record = fh.read(end - start)
        fields = _split_header(record, self.spec)
        if mode == "none":
            columns = tuple(f"Column{i + 1}" for i in range(len(fields))) if fields else ()
            if self.ds.header == "first" and self._first_file_columns is None:
                self._first_file_columns = columns
            return columns, start, 1
        columns = tuple(fields)
        if self.ds.header == "first" and self._first_file_columns is None:
            self._first_file_columns = columns
        return columns, end, 1 + record.count(b"\n")

    # Parts -------------------------------------------------------------------------------------
    def parts(self, path: str, constants: tuple, size: int | None) -> Iterator[TablePart]:
        fmt = self.spec.format
        parts = (self._parquet_parts(path, constants, size) if fmt == "parquet"
                 else self._text_parts(path, constants, size))
        options = self.opts(path)
        for part in parts:
            part.storage_options = options
            yield part

    def _text_parts(self, path: str, constants: tuple, size: int | None) -> Iterator[TablePart]:
        total = file_size(path, self.opts(path))
        if total == 0:
            return
        delimited = self.spec.format == "delimited"
        if delimited and not self.scannable:
            # newlines are not single bytes: pyarrow reads the file whole, header included
            header = self.ds.header in ("all", "combine") or (
                self.ds.header == "first" and self._first_file_columns is None)
            if self.ds.header == "first" and self._first_file_columns is None:
                self._first_file_columns = ()
            yield TablePart(path, 0, total, 1, columns=None, header_in_data=header,
                            whole_file=True, constants=constants)
            return
        with open_binary(path, self.opts(path)) as fh:
            if delimited:
                columns, start, first_line = self._delimited_header(fh, path, total)
                self._check_schema(path, columns)
            else:
                head = fh.read(3)
                columns, first_line = None, 1
                start = 3 if head == _BOM and self.spec.encoding.startswith("utf-8") else 0
            if start >= total:
                return                       # a header and nothing else
            if size is None or total <= size:
                yield TablePart(path, start, total, first_line, columns=columns,
                                constants=constants)
                return
            quote = self.quote if delimited else None
            cuts = plan_cuts(scan_boundaries(fh, start, total, quote, self.delim, first_line),
                             start, size, first_line)
            for begin, end, line, end_line in cuts:
                yield TablePart(path, begin, end, line, columns=columns, constants=constants,
                                rows_hint=end_line - line)

    def _parquet_parts(self, path: str, constants: tuple, size: int | None) -> Iterator[TablePart]:
        import pyarrow.parquet as pq

        with open_binary(path, self.opts(path)) as fh:
            pf = pq.ParquetFile(fh)
            self._check_schema(path, tuple(pf.schema_arrow.names))
            meta = pf.metadata
        if meta.num_rows == 0:
            return
        if size is None or file_size(path, self.opts(path)) <= size:
            yield TablePart(path, row_groups=None, constants=constants, rows_hint=meta.num_rows)
            return
        group_rows = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
        group_bytes = [sum(meta.row_group(g).column(c).total_compressed_size
                           for c in range(meta.num_columns)) for g in range(meta.num_row_groups)]
        run: list[int] = []
        run_bytes, run_first, row = 0, 0, 0
        for g, (rows, nbytes) in enumerate(zip(group_rows, group_bytes)):
            if rows == 0:
                continue
            if run and run_bytes + nbytes > size:
                yield TablePart(path, row_groups=tuple(run), first_row=run_first,
                                constants=constants, rows_hint=row - run_first)
                run, run_bytes = [], 0
            if nbytes > size:
                pieces = min(-(-nbytes // size), MAX_RANGES_PER_ROW_GROUP)
                step = -(-rows // pieces)
                for lo in range(0, rows, step):
                    hi = min(rows, lo + step)
                    yield TablePart(path, row_range=(g, lo, hi), first_row=row + lo,
                                    constants=constants, rows_hint=hi - lo)
            else:
                if not run:
                    run_first = row
                run.append(g)
                run_bytes += nbytes
            row += rows
        if run:
            yield TablePart(path, row_groups=tuple(run), first_row=run_first, constants=constants,
                            rows_hint=row - run_first)

    # Partitions --------------------------------------------------------------------------------
    def plan_partitions(self, keys: list[str], split: bool, start_index: int) -> Iterator[MiniBatch]:
        pattern_keys: list[str] = []
        spec_keys = []
        for key in keys:
            if "{" in key and _KEY_RE.search(key):
                # a path pattern given as partition_keys: its keys partition the dataset
                p = PartitionPattern.parse(key)
                if self.pattern is None:
                    self.pattern = p
                spec_keys.extend(p.keys)
            else:
                spec_keys.append(key)
        keys = list(dict.fromkeys(spec_keys))
        for p in self.patterns():
            pattern_keys.extend(p.keys)
        path_keys = [k for k in keys if k in pattern_keys]
        column_keys = [k for k in keys if k not in pattern_keys]
        groups: dict[tuple, list[TablePart]] = {}
        orphans: list[TablePart] = []
        scan_size = self.size if (split or column_keys) else None
        for path, constants in self.files():
            values = dict(constants)
            base = tuple(values.get(k) for k in path_keys)
            for part in self.parts(path, constants, scan_size):
                if not column_keys:
                    groups.setdefault(base, []).append(part)
                    continue
                found = self._key_values(part, column_keys)
                if not found:
                    orphans.append(part)
                for combo in found:
                    groups.setdefault(base + combo, []).append(part)
        if not groups:
            return
        index = start_index
        seen_parts: set[int] = set()
        first_key = next(iter(groups))
        if orphans:
            groups[first_key] = orphans + groups[first_key]
        for combo, parts in groups.items():
            key_value = dict(zip(path_keys + column_keys, combo))
            flt = {k: key_value[k] for k in column_keys} or None
            own = []
            for part in parts:
                counted = id(part) not in seen_parts
                seen_parts.add(id(part))
                own.append(part if counted else dataclasses.replace(part, count_bad=False))
            for chunk in (self._chunks(own) if split else [own]):
                label = ",".join(f"{k}={v}" for k, v in key_value.items())
                if len(chunk) > 1:
                    label += f" ({len(chunk)} parts)"
                yield MiniBatch(index, None, TableSlice(self.spec, chunk, flt, key_value), label)
                index += 1

    def _chunks(self, parts: list[TablePart]) -> list[list[TablePart]]:
        chunks: list[list[TablePart]] = []
        current: list[TablePart] = []
        current_bytes = 0
        for part in parts:
            nbytes = (part.end - part.start) if part.end else self.size
            if current and current_bytes + nbytes > self.size:
                chunks.append(current)
                current, current_bytes = [], 0
            current.append(part)
            current_bytes += nbytes
        if current:
            chunks.append(current)
        return chunks

    def _key_values(self, part: TablePart, column_keys: list[str]) -> list[tuple]:
        """Distinct values of the key columns in one part, in order of first appearance."""
        constants = dict(part.constants)
        table, _ = read_part(self.spec, part)
        missing = [k for k in column_keys if k not in table.column_names and k not in constants]
        if missing:
            raise DataError(
                f"partition_keys {missing} are neither columns of {part.path} (it has "
                f"{table.column_names}) nor keys of a partition pattern; name columns of the data "
                "or give partition_format='{key}/...' when creating the dataset")
        arrays = []
        for k in column_keys:
            if k in table.column_names:
                arrays.append(table[k].to_pylist())
            else:
                arrays.append([constants[k]] * table.num_rows)
        return list(dict.fromkeys(_clean(v) for v in zip(*arrays)))


def _clean(values: tuple) -> tuple:
    return tuple(None if (isinstance(v, float) and v != v) else v for v in values)


def _split_header(record: bytes, spec: ReadSpec) -> list[str]:
    """The fields of one CSV record (a header line), with the dataset's separator and quoting."""
    import csv

    text = record.decode(spec.encoding, errors="replace").rstrip("\r\n")
    if not text.strip():
        return []
    if spec.quote:
        reader = csv.reader(io.StringIO(text), delimiter=spec.separator, quotechar=spec.quote,
                            doublequote=True, strict=False)
    else:
        reader = csv.reader(io.StringIO(text), delimiter=spec.separator, quoting=csv.QUOTE_NONE)
    return [field.strip() if spec.quote is None else field for field in next(reader, [])]
