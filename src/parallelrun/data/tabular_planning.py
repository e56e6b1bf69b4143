"""The coordinator side of a tabular dataset: its files cut into row-aligned parts.

:class:`TablePlanner` lists a dataset's files (partition patterns, folders' ``_SUCCESS`` and
dot-files left out), reads what it needs of each (a delimited file's header, a Parquet footer,
or one streaming pass over a big text file for its record boundaries) and yields
:class:`~parallelrun.data.readers.TablePart` pieces of at most the mini-batch size; for
``partition_keys`` it groups them into one mini-batch per key value. The parts are what a
:class:`~parallelrun.data.readers.TableSlice` (the mini-batch payload) reads in the worker.

Separate from :mod:`parallelrun.data.tabular` (the dataset's API) because planning is its own
job, run on the scheduler's feeder thread once per ``plan()``; the rules it follows are in that
module's docstring.
"""

from __future__ import annotations

import dataclasses
import io
import os
from typing import TYPE_CHECKING, Iterable, Iterator

from parallelrun.data import globbing
from parallelrun.data.files import _no_match_message, iter_files
from parallelrun.data.minibatch import MiniBatch
from parallelrun.data.partitions import KEY_RE as _KEY_RE
from parallelrun.data.partitions import PartitionPattern
from parallelrun.data.readers import (
    PATH_COLUMN, ReadSpec, TablePart, TableSlice, file_size, open_binary, read_part,
)
from parallelrun.data.records import first_record_end, plan_file_cuts
from parallelrun.data.tabular_options import byte_scannable
from parallelrun.data.urls import is_url
from parallelrun.errors import DataError

if TYPE_CHECKING:
    from parallelrun.data.tabular import TabularDataset

#: pyarrow cannot seek to a row inside a row group: a range is decoded from the group's start, so
#: a big row group is cut into at most this many ranges (decode work <= 4.5x, memory ~1/8 group)
MAX_RANGES_PER_ROW_GROUP = 8
_BOM = b"\xef\xbb\xbf"


def part_label(part: TablePart) -> str:
    """How a one-part mini-batch is named in progress and logs: the file and its piece."""
    name = os.path.basename(part.path)
    if part.row_range is not None:
        return f"{name}[rows {part.first_row}:{part.first_row + part.row_range[2] - part.row_range[1]}]"
    if part.row_groups is not None:
        return f"{name}[row groups {part.row_groups[0]}-{part.row_groups[-1]}]"
    if part.end:
        return f"{name}[{part.start}:{part.end}]"
    return name


def _bare(path: str) -> str:
    """A listed path or listing without its scheme and trailing '/' (a local one absolute), so
    a listing's own file and the files below its folder are told apart by length."""
    if is_url(path):
        return path.split("://", 1)[1].rstrip("/")
    return os.path.abspath(os.path.expanduser(path))


class TablePlanner:
    """Lists a dataset's files and cuts them into parts; one per plan() call."""

    def __init__(self, dataset: "TabularDataset", size: int | None, exclude: Iterable[str] = ()):
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
        self.scannable = byte_scannable(self.spec.encoding, self.spec.separator)
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
        # a folder's _SUCCESS, .crc and such are not data (globbing's rule for tables); a file
        # named outright is (it is the listing itself: the same path, one the longer below it)
        named = None if globbing.has_magic(listing) else len(_bare(listing))
        options = self.ds.storage_options(spec)
        for path in iter_files(listing, options, self.exclude):
            if options is not None:
                self._options[path] = options
            if (named is not None and len(_bare(path)) > named
                    and globbing.is_table_bookkeeping(os.path.basename(path))):
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
            cuts = plan_file_cuts(fh, start, total, quote, self.delim, first_line, size)
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
