"""Worker side of tabular datasets: read one planned piece of a file into a DataFrame.

A :class:`TableSlice` is the payload of a tabular mini-batch. Its ``load()`` runs inside the
worker process and reads only the byte ranges (CSV, JSON lines) or row groups / row ranges
(Parquet) it names, with pyarrow, so a worker holds about one mini-batch, never a whole file.

Bad rows (a wrong number of fields, bytes the encoding cannot decode, a value that does not
convert to a type of ``set_column_types``, a line that is not a JSON object) never fail the
mini-batch by default: they are left out of the DataFrame, counted in what ``read()`` returns as
``failed_rows`` (the worker adds them to the mini-batch's failed records, so they count toward
``error_threshold``) and described, with file and line, in ``failed_rows_report`` (it goes to
``logs/user/error.txt`` and ``logs/user/error/<node>/<process>.txt``).

How a bad row is found: wrong field counts come from pyarrow's ``invalid_row_handler``, which
numbers the non-empty records it saw; :func:`~parallelrun.data.records.split_records` maps that
number to a line. Any other error of pyarrow (or of decoding) fails the whole parse, so the piece
is split into records and parsed in halves, recursively, until each error is pinned to one record
(a handful of bad rows costs about two parses of the piece).

Longer than most modules: one concept, reading one piece of a table in the worker, for three
formats, with the bisection that pins each bad row to its line.
"""

from __future__ import annotations

import codecs
import dataclasses
import io
import os
from typing import Any

from parallelrun.data.minibatch import Loaded
from parallelrun.data.records import split_records
from parallelrun.data.urls import is_remote, local_path  # is_remote: also asked as readers.is_remote
from parallelrun.errors import DataError

BAD_ROWS_ACTIONS = ("count", "skip", "error")
#: rows listed in one mini-batch's report; the rest are counted only
REPORT_LIMIT = 100
PATH_COLUMN = "Path"

_TYPE_NAMES = {
    "int": "int64", "integer": "int64", "long": "int64", "float": "float64", "double": "float64",
    "number": "float64", "decimal": "float64", "str": "string", "string": "string",
    "text": "string", "bool": "bool", "boolean": "bool", "datetime": "timestamp[us]",
    "timestamp": "timestamp[us]", "date": "date32",
}


def as_arrow_type(value: Any, column: str = "?"):
    """A pyarrow type for a ``set_column_types`` value: ``int``, ``"float64"``, ``pa.int32()``...

    >>> str(as_arrow_type(int))
    'int64'
    """
    import pyarrow as pa

    if isinstance(value, pa.DataType):
        return value
    if isinstance(value, type):
        value = {int: "int64", float: "float64", str: "string", bool: "bool"}.get(value, value.__name__)
    name = str(getattr(value, "name", value) if not isinstance(value, str) else value).strip()
    name = _TYPE_NAMES.get(name.lower(), name)
    try:
        return pa.type_for_alias(name)
    except (ValueError, KeyError):
        try:
            import numpy as np

            return pa.from_numpy_dtype(np.dtype(name))
        except (TypeError, ValueError, KeyError, pa.ArrowNotImplementedError):
            pass
    raise DataError(
        f"set_column_types[{column!r}]={value!r} is not a type parallelrun knows; use int, float, "
        "str, bool, 'datetime', 'date', a pyarrow type name such as 'int32' or a pyarrow DataType")


@dataclasses.dataclass(frozen=True)
class ReadSpec:
    """How to read the files of one tabular dataset; shared by all its mini-batches."""

    format: str                              # delimited | json_lines | parquet
    separator: str = ","
    quote: str | None = '"'
    encoding: str = "utf-8"                  # a Python codec name
    column_types: tuple = ()                 # ((column, pyarrow type), ...)
    infer_column_types: bool = True
    skip_blank_lines: bool = True
    empty_as_string: bool = False
    on_bad_lines: str = "count"
    #: when files have different columns and the dataset asked for their union (None: as read)
    union_columns: tuple | None = None

    @property
    def types(self) -> dict:
        return dict(self.column_types)


@dataclasses.dataclass
class TablePart:
    """One contiguous piece of one file: a byte range, or row groups / a row range (Parquet)."""

    path: str
    start: int = 0
    end: int = 0
    first_line: int = 1
    columns: tuple | None = None             # delimited: names when the header is not in the range
    header_in_data: bool = False             # whole_file: the file starts with a header
    whole_file: bool = False                 # pyarrow reads the file whole (UTF-16/32 text)
    row_groups: tuple | None = None          # parquet: these whole row groups
    row_range: tuple | None = None           # parquet: (row group, first row, end row) in it
    first_row: int = 0                       # parquet: the first row's number in the file
    constants: tuple = ()                    # ((column, value), ...): partition keys, Path
    count_bad: bool = True                   # whether this mini-batch counts the part's bad rows
    #: fsspec options (credentials) for a remote path; never shown by repr
    storage_options: dict | None = dataclasses.field(default=None, repr=False, compare=False)
    rows_hint: int = 0                       # rows as planned (lines, Parquet rows); 0 = unknown


class BadRow:
    __slots__ = ("path", "where", "reason")

    def __init__(self, path: str, where: str, reason: str):
        self.path = path
        self.where = where
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path} {self.where}: {self.reason}"


class TableSlice:
    """Payload of a tabular mini-batch; ``read()`` (in the worker) returns its rows as a pandas
    DataFrame, or as a pyarrow Table for an entry script whose ``MINI_BATCH_FORMAT`` is
    ``"pyarrow"``, with the account of the bad rows left out. Immutable: reading it twice gives
    the same.

    ``filter`` keeps only rows whose columns equal the given values (partitions by data
    columns); ``partition_key_value`` is the mini-batch's key, also put in ``df.attrs``.
    """

    __slots__ = ("spec", "parts", "filter", "partition_key_value")

    def __init__(self, spec: ReadSpec, parts: list[TablePart], filter: dict | None = None,
                 partition_key_value: dict | None = None):
        self.spec = spec
        self.parts = parts
        self.filter = filter
        self.partition_key_value = partition_key_value

    @property
    def rows_hint(self) -> int:
        """Rows as the planner counted them (0 if unknown): what a mini-batch whose worker died or
        timed out, or whose data could not be read, counts as failed records."""
        if self.filter:
            return 0
        return sum(part.rows_hint for part in self.parts)

    def __getstate__(self):
        return (self.spec, self.parts, self.filter, self.partition_key_value)

    def __setstate__(self, state):
        self.spec, self.parts, self.filter, self.partition_key_value = state

    def load(self):
        """The rows as a pandas DataFrame (bad rows left out; :meth:`read` also counts them)."""
        return self.read().data

    def read(self, mini_batch_format: str = "pandas") -> Loaded:
        """The rows in ``mini_batch_format`` (``pandas`` or ``pyarrow``) and the bad rows' account;
        raises DataError for bad rows under ``on_bad_lines="error"``."""
        tables, bad = [], []
        for part in self.parts:
            table, part_bad = read_part(self.spec, part)
            tables.append((part, table))
            if part.count_bad:
                bad.extend(part_bad)
        data = (self._as_arrow(tables) if mini_batch_format == "pyarrow"
                else self._as_pandas(tables))
        return Loaded(data, *self._account(bad))

    def _as_pandas(self, tables: list):
        import pandas as pd

        frames = []
        for part, table in tables:
            frame = table.to_pandas()
            for name, value in part.constants:
                if name not in frame.columns:
                    frame[name] = value
            if self.filter:
                frame = _filtered(frame, self.filter)
            frames.append(frame)
        if len(frames) == 1:
            df = frames[0]
        else:
            frames = [f for f in frames if len(f.columns)] or frames[:1]
            df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        if self.spec.union_columns is not None:
            df = df.reindex(columns=list(self.spec.union_columns) + [
                c for c in df.columns if c not in self.spec.union_columns])
        if self.partition_key_value:
            df.attrs["partition_key_value"] = dict(self.partition_key_value)
        return df

    def _as_arrow(self, tables: list):
        """The same rows and columns as :meth:`_as_pandas`, as one pyarrow Table (no pandas)."""
        import pyarrow as pa

        pieces = []
        for part, table in tables:
            for name, value in part.constants:
                if name not in table.column_names:
                    table = table.append_column(name, pa.array([value] * table.num_rows))
            if self.filter:
                table = _filtered_arrow(table, self.filter)
            pieces.append(table)
        pieces = [t for t in pieces if t.num_columns] or pieces[:1]
        table = _concat(pieces) if pieces else pa.table({})
        if self.spec.union_columns is not None:
            names = list(self.spec.union_columns) + [
                c for c in table.column_names if c not in self.spec.union_columns]
            table = pa.table({n: table[n] if n in table.column_names else pa.nulls(table.num_rows)
                              for n in names})
        return table

    def _account(self, bad: list[BadRow]) -> tuple[int, str | None]:
        """The bad rows as the worker counts them: (how many, the report of their lines)."""
        action = self.spec.on_bad_lines
        if not bad or action == "skip":
            return 0, None
        lines = [f"  {row}" for row in bad[:REPORT_LIMIT]]
        if len(bad) > REPORT_LIMIT:
            lines.append(f"  ... and {len(bad) - REPORT_LIMIT} more")
        if action == "error":
            raise DataError(f"{len(bad)} bad rows (on_bad_lines='error'); fix the data or use "
                            "on_bad_lines='count':\n" + "\n".join(lines))
        return len(bad), (
            f"{len(bad)} bad rows left out of run()'s DataFrame, counted as failed records:\n"
            + "\n".join(lines))


def _filtered_arrow(table, values: dict):
    import pyarrow as pa
    import pyarrow.compute as pc

    mask = pa.array([True] * table.num_rows)
    for column, value in values.items():
        if column not in table.column_names:
            return table.slice(0, 0)
        col = table[column]
        if value is None:
            equal = pc.is_null(col)
        else:
            try:
                equal = pc.fill_null(pc.equal(col, pa.scalar(value, type=col.type)), False)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                equal = pa.array([False] * table.num_rows)   # a value of another type: no match
        mask = pc.and_(mask, equal)
    return table.filter(mask)


def _filtered(frame, values: dict):
    import pandas as pd

    mask = pd.Series(True, index=frame.index)
    for column, value in values.items():
        if column not in frame.columns:
            return frame.iloc[0:0]
        col = frame[column]
        mask &= col.isna() if value is None else (col == value)
    return frame[mask].reset_index(drop=True)


def open_binary(path: str, storage_options: dict | None = None):
    """A local path or an fsspec URL (``az://``, ``s3://``...), opened for reading bytes."""
    if is_remote(path):
        from parallelrun.data import remote

        fs, key = remote.filesystem(path, storage_options)
        try:
            return fs.open(key, "rb")
        except Exception as exc:  # noqa: BLE001 - named, with the fix, by the remote module
            raise remote.storage_error(exc, path, "reading") from exc
    return open(local_path(path), "rb")


def file_size(path: str, storage_options: dict | None = None) -> int:
    if is_remote(path):
        from parallelrun.data import remote

        fs, key = remote.filesystem(path, storage_options)
        try:
            return int(fs.size(key))
        except Exception as exc:  # noqa: BLE001
            raise remote.storage_error(exc, path, "reading") from exc
    return os.path.getsize(local_path(path))


def read_part(spec: ReadSpec, part: TablePart):
    """One part as a pyarrow Table, and the bad rows left out of it."""
    if spec.format == "parquet":
        return _read_parquet(spec, part)
    if part.whole_file:
        return _read_whole_delimited(spec, part)
    with open_binary(part.path, part.storage_options) as fh:
        fh.seek(part.start)
        data = fh.read(part.end - part.start)
    return _Parser(spec, part).read(data)


class _Parser:
    """Parses one byte range of a delimited or JSON lines file, pinning errors to records."""

    def __init__(self, spec: ReadSpec, part: TablePart):
        import pyarrow as pa

        self.spec = spec
        self.part = part
        self.codec = codecs.lookup(spec.encoding).name
        self.utf8 = self.codec == "utf-8"
        self.quote = spec.quote.encode() if (spec.quote and spec.format == "delimited") else None
        self.delim = spec.separator.encode() if spec.format == "delimited" else b""
        self.errors = (pa.ArrowInvalid, UnicodeDecodeError)
        self.types = spec.types
        if spec.format == "delimited" and not spec.infer_column_types:
            self.types = {c: pa.string() for c in (part.columns or ())} | self.types

    def read(self, data: bytes):
        bad: list[BadRow] = []
        if not data or data.isspace():          # not data.strip(): that copies the piece
            return self._empty(), bad
        try:
            table, invalid = self._parse(data, utf8_by_pyarrow=True)
        except self.errors:
            records = split_records(data, self.quote, self.delim, self.part.first_line)
            tables: list = []
            self._bisect(data, records, 0, len(records), tables, bad)
            table = _concat(tables) if tables else self._empty()
            return table, sorted(bad, key=_line_of)
        if invalid:
            records = split_records(data, self.quote, self.delim, self.part.first_line)
            for number, reason in invalid:
                line = records[number - 1][2] if 0 < number <= len(records) else None
                bad.append(BadRow(self.part.path, f"line {line}" if line else f"record {number}",
                                  reason))
        return table, bad

    def _bisect(self, data: bytes, records: list, lo: int, hi: int, tables: list,
                bad: list) -> None:
        if lo >= hi:
            return
        blob = b"\n".join(data[s:e] for s, e, _ in records[lo:hi]) + b"\n"
        try:
            table, invalid = self._parse(blob)
        except self.errors as exc:
            if hi - lo == 1:
                bad.append(BadRow(self.part.path, f"line {records[lo][2]}", _reason(exc, self.codec)))
                return
            mid = (lo + hi) // 2
            self._bisect(data, records, lo, mid, tables, bad)
            self._bisect(data, records, mid, hi, tables, bad)
            return
        tables.append(table)
        for number, reason in invalid:
            bad.append(BadRow(self.part.path, f"line {records[lo + number - 1][2]}", reason))

    def _parse(self, blob: bytes, utf8_by_pyarrow: bool = False):
        if utf8_by_pyarrow and self.utf8 and self.spec.format == "delimited":
            # The whole piece's first parse leaves UTF-8 to pyarrow: undecodable bytes fail the
            # conversion of their column, or make pyarrow infer it as binary (checked here);
            # either way the records are then parsed again below, each decoded first so that its
            # error names the bytes. The decode costs ~0.7 ms per MB, a tenth of the parse.
            table, invalid = self._parse_csv(blob)
            if not any(_is_binary(field.type) and field.name not in self.types
                       for field in table.schema):
                return table, invalid
        text = blob.decode(self.codec)           # UnicodeDecodeError names undecodable bytes
        if not self.utf8:
            blob = text.encode("utf-8")
        del text
        if self.spec.format == "json_lines":
            return self._parse_json(blob), []
        return self._parse_csv(blob)

    def _parse_csv(self, blob: bytes):
        import pyarrow.csv as pa_csv

        invalid: list[tuple[int, str]] = []

        def on_invalid(row) -> str:
            invalid.append((row.number or 0, f"expected {row.expected_columns} fields, got "
                                             f"{row.actual_columns}: {_clip(row.text)}"))
            return "skip"

        spec = self.spec
        table = pa_csv.read_csv(
            io.BytesIO(blob),
            read_options=pa_csv.ReadOptions(
                use_threads=False, column_names=list(self.part.columns or ()),
                block_size=min(max(len(blob) + 1, 1 << 16), (1 << 31) - 1)),
            parse_options=pa_csv.ParseOptions(
                delimiter=spec.separator, quote_char=spec.quote or False,
                newlines_in_values=bool(self.quote and self.quote in blob),
                ignore_empty_lines=spec.skip_blank_lines, invalid_row_handler=on_invalid),
            convert_options=pa_csv.ConvertOptions(
                column_types=self.types, strings_can_be_null=not spec.empty_as_string))
        return table, invalid

    def _parse_json(self, blob: bytes):
        import pyarrow as pa
        import pyarrow.json as pa_json

        schema = pa.schema(list(self.types.items())) if self.types else None
        return pa_json.read_json(
            io.BytesIO(blob),
            read_options=pa_json.ReadOptions(
                use_threads=False, block_size=min(max(len(blob) + 1, 1 << 16), (1 << 31) - 1)),
            parse_options=pa_json.ParseOptions(explicit_schema=schema,
                                               unexpected_field_behavior="infer"))

    def _empty(self):
        import pyarrow as pa

        names = list(self.part.columns or ())
        return pa.table({n: pa.array([], type=self.types.get(n, pa.string())) for n in names})


def _is_binary(arrow_type) -> bool:
    import pyarrow as pa

    return pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type)


def _read_whole_delimited(spec: ReadSpec, part: TablePart):
    """A file in an encoding whose bytes cannot be scanned (UTF-16/32): pyarrow reads it whole."""
    import pyarrow.csv as pa_csv

    bad: list[BadRow] = []

    def on_invalid(row) -> str:
        bad.append(BadRow(part.path, f"record {row.number}", f"expected {row.expected_columns} "
                          f"fields, got {row.actual_columns}: {_clip(row.text)}"))
        return "skip"

    with open_binary(part.path, part.storage_options) as fh:
        data = fh.read()
    table = pa_csv.read_csv(
        io.BytesIO(data),
        read_options=pa_csv.ReadOptions(use_threads=False, encoding=spec.encoding,
                                        autogenerate_column_names=not part.header_in_data),
        parse_options=pa_csv.ParseOptions(delimiter=spec.separator, quote_char=spec.quote or False,
                                          newlines_in_values=True,
                                          ignore_empty_lines=spec.skip_blank_lines,
                                          invalid_row_handler=on_invalid),
        convert_options=pa_csv.ConvertOptions(column_types=spec.types,
                                              strings_can_be_null=not spec.empty_as_string))
    if not part.header_in_data:
        table = table.rename_columns([f"Column{i + 1}" for i in range(table.num_columns)])
    return table, bad


def _read_parquet(spec: ReadSpec, part: TablePart):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(open_binary(part.path, part.storage_options))
    if part.row_range is not None:
        group, first, end = part.row_range
        batches, seen = [], 0
        # Reads the row group batch by batch so memory stays near the range, not the group.
        for batch in pf.iter_batches(batch_size=min(65536, max(1, end - first)),
                                     row_groups=[group], use_threads=False):
            lo, hi = max(first - seen, 0), min(end - seen, batch.num_rows)
            if hi > lo:
                batches.append(batch.slice(lo, hi - lo))
            seen += batch.num_rows
            if seen >= end:
                break
        table = pa.Table.from_batches(batches, schema=pf.schema_arrow)
    else:
        groups = list(part.row_groups) if part.row_groups is not None else list(range(pf.num_row_groups))
        table = pf.read_row_groups(groups, use_threads=False)
    return _cast_columns(table, spec.types, part)


def _cast_columns(table, types: dict, part: TablePart):
    """Cast to ``set_column_types``; values that do not convert make their rows bad rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    bad_rows: dict[int, str] = {}
    for name, typ in types.items():
        if name not in table.column_names:
            continue
        column = table[name]
        try:
            converted = pc.cast(column, typ)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            values = []
            for i, value in enumerate(column.to_pylist()):
                try:
                    values.append(pa.scalar(value).cast(typ).as_py() if value is not None else None)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    values.append(None)
                    bad_rows.setdefault(i, f"column {name!r}: cannot convert {_clip(repr(value))} "
                                           f"to {typ}: {exc}")
            converted = pa.array(values, type=typ)
        table = table.set_column(table.column_names.index(name), name, converted)
    bad = []
    if bad_rows:
        import numpy as np

        keep = np.ones(table.num_rows, dtype=bool)
        keep[list(bad_rows)] = False
        table = table.filter(pa.array(keep))
        bad = [BadRow(part.path, f"row {part.first_row + i + 1}", reason)
               for i, reason in sorted(bad_rows.items())]
    return table, bad


def _concat(tables: list):
    import pyarrow as pa

    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # halves that inferred incompatible types (int and text): everything as text
        import pyarrow.compute as pc

        names = list(dict.fromkeys(n for t in tables for n in t.column_names))
        return pa.concat_tables([
            pa.table({n: pc.cast(t[n], pa.string()) if n in t.column_names
                      else pa.nulls(t.num_rows, pa.string()) for n in names}) for t in tables])


def _line_of(row: BadRow) -> int:
    digits = row.where.rsplit(" ", 1)[-1]
    return int(digits) if digits.isdigit() else 0


def _reason(exc: BaseException, codec: str) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return (f"undecodable bytes for encoding {codec} at byte {exc.start} of the row: "
                f"{exc.reason} ({_clip(repr(exc.object[max(0, exc.start - 10):exc.end + 10]))})")
    return _clip(str(exc).replace("\n", " "), 300)


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
