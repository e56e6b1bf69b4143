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

This module holds the dataset's API: Azure ML's constructors and methods, records for workspace
registration, and ``plan()``. Its jobs live in sibling modules: argument checks in
:mod:`~parallelrun.data.tabular_options`, cutting files into parts in
:mod:`~parallelrun.data.tabular_planning`, subsetting and the copies it makes in
:mod:`~parallelrun.data.tabular_subsets`; reading a part (the mini-batch payload,
:class:`~parallelrun.data.readers.TableSlice`) in :mod:`~parallelrun.data.readers`.
"""

from __future__ import annotations

import copy
import os
from typing import Any, Iterable, Iterator, Sequence

from parallelrun.config import parse_data_size
from parallelrun.data import tabular_subsets
from parallelrun.data.base import AbstractDataset
from parallelrun.data.files import _as_spec, _no_match_message, path_list
from parallelrun.data.minibatch import MiniBatch
from parallelrun.data.partitions import KEY_RE as _KEY_RE
from parallelrun.data.partitions import PartitionPattern
from parallelrun.data.readers import ReadSpec, TableSlice, is_remote
from parallelrun.data.tabular_options import (
    HEADERS, bad_rows, byte_scannable, codec_of, column_list, column_types, row_count,
    types_record,
)
from parallelrun.data.tabular_planning import MAX_RANGES_PER_ROW_GROUP  # noqa: F401 - named above
from parallelrun.data.tabular_planning import TablePlanner, part_label
from parallelrun.errors import DataError

DEFAULT_MINI_BATCH_SIZE = "1MB"
FORMATS = ("delimited", "parquet", "json_lines")
MIXED_SCHEMAS = ("error", "union")


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
        #: applied in order to the rows read; see
        #: :func:`~parallelrun.data.tabular_subsets.transformed_rows`
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
        if key not in HEADERS:
            raise DataError(f"header={header!r} is not allowed: True, False, "
                            "'only_first_file_has_headers' or 'combine_all_files_headers'")
        header_mode = HEADERS[key]
        if header_mode == "combine":
            mixed_schemas = "union"
        codec = codec_of(encoding)
        spec = ReadSpec(
            "delimited", separator=separator, quote=quote_char, encoding=codec,
            column_types=column_types(set_column_types),
            infer_column_types=bool(infer_column_types), skip_blank_lines=bool(skip_blank_lines),
            empty_as_string=bool(empty_as_string), on_bad_lines=bad_rows(on_bad_lines))
        options = dict(include_path=include_path, infer_column_types=infer_column_types,
                       set_column_types=types_record(set_column_types), separator=separator,
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
        spec = ReadSpec("parquet", column_types=column_types(set_column_types))
        options = dict(include_path=include_path, set_column_types=types_record(set_column_types),
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
        codec = codec_of(encoding)
        if not byte_scannable(codec, ","):
            raise DataError(f"encoding={encoding!r}: JSON lines files must be in an encoding where "
                            "a newline is one byte (utf8, latin1, windows1252...)")
        spec = ReadSpec("json_lines", quote=None, encoding=codec,
                        column_types=column_types(set_column_types),
                        on_bad_lines=bad_rows(on_bad_lines))
        options = dict(include_path=include_path, set_column_types=types_record(set_column_types),
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
            dataset.check_inputs()
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
            yield from tabular_subsets.materialised(self).plan(mini_batch_size, partition_keys,
                                                               start_index, exclude)
            return
        size = parse_data_size(DEFAULT_MINI_BATCH_SIZE if mini_batch_size is None else mini_batch_size)
        planner = TablePlanner(self, size, exclude)
        if partition_keys:
            split = mini_batch_size is not None
            yield from planner.plan_partitions(list(partition_keys), split, start_index)
            return
        index = start_index
        for path, constants in planner.files():
            for part in planner.parts(path, constants, size):
                yield MiniBatch(index, None, TableSlice(planner.spec, [part]), part_label(part))
                index += 1

    # For users ---------------------------------------------------------------------------------
    def to_pandas_dataframe(self):
        """Every row of the dataset in one DataFrame (bad rows left out), for small data.

        Example: ``Dataset.Tabular.from_delimited_files("data/*.csv").to_pandas_dataframe()``
        """
        import pandas as pd

        planner = TablePlanner(self, None)
        frames = []
        for path, constants in planner.files():
            for part in planner.parts(path, constants, None):
                frames.append(TableSlice(planner.spec, [part]).load())
        if not frames:
            return tabular_subsets.transformed_rows(self, pd.DataFrame())
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        return tabular_subsets.transformed_rows(self, frame)

    # Azure ML's subsetting (each returns a new dataset; data is read when it is used) --------
    def _with(self, *transform) -> "TabularDataset":
        derived = copy.copy(self)
        derived.transforms = self.transforms + (tuple(transform),)
        derived.registration = None
        return derived

    def take(self, count: int) -> "TabularDataset":
        """The first ``count`` rows. Example: ``ds.take(5).to_pandas_dataframe()``."""
        return self._with("take", row_count("take", count))

    def skip(self, count: int) -> "TabularDataset":
        """Every row but the first ``count``."""
        return self._with("skip", row_count("skip", count))

    def keep_columns(self, columns: Any, validate: bool = False) -> "TabularDataset":
        """Only the given columns (a name or a list), in the data's order."""
        return self._with("keep_columns", column_list("keep_columns", columns))

    def drop_columns(self, columns: Any) -> "TabularDataset":
        """Every column but the given ones (a name or a list)."""
        return self._with("drop_columns", column_list("drop_columns", columns))

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
        return tabular_subsets.partition_by(self, partition_keys, target, name,
                                            partition_as_file_dataset)

    def iter_files(self) -> Iterator[str]:
        """The dataset's files in plan order."""
        for path, _ in TablePlanner(self, None).files():
            yield path

    def check_inputs(self) -> None:
        """Every path names a file, and the first file reads as the dataset's format."""
        planner = TablePlanner(self, None)
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

