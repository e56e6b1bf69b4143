"""Output actions: what happens to what ``run()`` returned, chosen by ``output_action``.

Each action has a worker half (a :class:`~parallelrun.script.ResultEncoder`, which turns results
into bytes inside the worker) and a coordinator half (``commit``, which appends those bytes once
per mini-batch). The coordinator is the only writer, so the file never has interleaved or
duplicate rows. The file's rows are made durable (``sync``) before the journal names them
(``parallelrun.engine.journal``).

``append_row_format`` picks how append_row writes what run() returned (SPEC.md section 5). Each
format keeps every value whole and under its own name, or refuses it loudly:

* ``text`` (default, the original's): one line per element, ``str(element)`` for lists and a
  DataFrame row's values joined by single spaces (in the DataFrame's column order; text has no
  header); a DataFrame value holding a space or a double quote is quoted as CSV quotes it, so
  ``pd.read_csv(path, sep=" ", header=None)`` reads the rows back with their columns, as Azure
  ML's notebooks read this file. A value holding a line break (``\\n`` or ``\\r``) would split
  its row in two, so the worker refuses it: that try of the mini-batch fails
  (``RUN_BAD_RESULT``, charged like an exception in run()) with a message naming the element.
  List elements are exactly what ``str()`` gives.
* ``csv``: a CSV file with one header line, written once (the columns of the first committed
  mini-batch), then every row. Values holding the separator, quotes or line breaks are quoted
  (RFC 4180, pandas ``to_csv``) and read back whole by CSV readers. Every mini-batch must return
  the same columns: in another order, its rows are reordered under the header; a different set
  of columns fails the job with a DataError naming both sets, and that mini-batch is not written.
  (Writing the union instead would mean rewriting the header at the top of a file that is only
  appended to, under a journal whose offsets count its bytes; results whose columns vary belong
  in ``parquet``, which takes the union.)
* ``parquet``: one Parquet file. Each mini-batch's rows travel as Arrow IPC bytes; the
  coordinator appends them to a staging file (``.<file name>.arrows`` beside the output) at
  commit, exactly like the text file, so the journal's offsets and the exactly-once contract are
  unchanged: on resume the staging file is cut back to the journal's end. When the job ends
  (finished, failed or canceled) the staging file is converted, streaming, into the Parquet file
  (written to a temporary name, synced, then renamed): columns are the union of every
  mini-batch's columns by name, types promoted where they differ (int and float -> float),
  missing values null. A column whose types cannot be promoted (int in one mini-batch, text in
  another) fails the job with a DataError naming the column and both types, when the mini-batch
  that disagrees is committed. The staging file stays so that the job can be resumed; delete it
  once the job is done.

Lists returned by run() are turned into a table for csv and parquet: a list of dicts is one row
per dict, a list of tuples/lists one row each (columns "0", "1"...), anything else one column
named "result". A pyarrow Table (what a script that reads ``pyarrow`` mini-batches may return)
is written as its ``to_pandas()`` DataFrame in ``text`` and ``csv``, and as it is in ``parquet``.

Longer than most modules: one concept, what the coordinator writes, and the commit, sync, size and
cut-back contract the journal and resume rely on is shared by every format.
"""

from __future__ import annotations

import csv
import io
import os
import threading

from parallelrun.config import APPEND_ROW_FORMATS as CONFIG_APPEND_ROW_FORMATS
from parallelrun.config import OUTPUT_ACTIONS
from parallelrun.engine.journal import fdatasync, sync_directory, write_all
from parallelrun.engine.text_rows import TextEncoder
from parallelrun.errors import ConfigurationError, DataError
from parallelrun.script import NullEncoder, ResultEncoder, is_arrow_table


class OutputAction:
    """Base: commits nothing (``summary_only``)."""

    name = "summary_only"
    path: str | None = None

    def __init__(self, output_dir: str, file_name: str, encoder: ResultEncoder | None = None):
        pass

    def encoder(self) -> ResultEncoder:
        return NullEncoder()

    def files(self) -> list[str]:
        """The files this action writes in the output folder (none for ``summary_only``)."""
        return []

    def size_on_disk(self) -> int | None:
        """Bytes of the file the journal's offsets count, as it is on disk now (0 when it is
        missing); None when the action writes no file. A resume checks the journal against it."""
        return None

    def open(self, resume_at: int | None) -> None:
        pass

    def commit(self, payload: bytes) -> tuple[int, int]:
        """Append one mini-batch's rows; returns where they start and how many bytes they take.

        ``offset + length`` is where the rows end in the file: what a resume cuts back to. The
        rows may wait in memory until :meth:`flush`. Raises :class:`DataError` for rows that
        cannot be written without misplacing a value (see the formats below).
        """
        return 0, 0

    def flush(self) -> None:
        """Write what commit() kept in memory (to the operating system, not yet to the disk)."""

    def sync(self) -> None:
        """Make every row written so far durable (``fdatasync``); the journal's writer thread
        calls it before it appends the lines naming those rows."""

    def close(self) -> None:
        pass


class AppendRowOutput(OutputAction):
    """``append_row``: every mini-batch's rows appended to one file in the output folder."""

    name = "append_row"

    def __init__(self, output_dir: str, file_name: str, encoder: ResultEncoder | None = None):
        self.path = os.path.join(output_dir, file_name)
        self._encoder = encoder or TextEncoder()
        self._fd: int | None = None
        self._offset = 0
        self._pending: list[bytes] = []
        # sync() runs on the journal's thread; closing waits for it, so no sync hits a closed fd
        self._fd_lock = threading.Lock()

    @property
    def rows_path(self) -> str:
        """The file the rows are appended to (and the journal's offsets count)."""
        return self.path

    def encoder(self) -> ResultEncoder:
        return self._encoder

    def files(self) -> list[str]:
        return [self.path]

    def size_on_disk(self) -> int:
        try:
            return os.path.getsize(self.rows_path)
        except FileNotFoundError:
            return 0

    def open(self, resume_at: int | None) -> None:
        path = self.rows_path
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        resume_at = resume_at or 0
        size = self.size_on_disk()
        if resume_at > size:
            # never extend the file (with NUL bytes) to meet the journal: rows would be lost
            raise DataError(
                f"the journal names {resume_at} bytes of {path}, but the file holds only {size}: "
                "it lost rows (a crash or a copy cut it short). Load the journal with the "
                "file's size (Journal.load(output.size_on_disk())) so that the mini-batches "
                "whose rows are missing run again, or start the job anew without resume.")
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        # A fresh job starts an empty file; a resumed one drops rows of uncommitted mini-batches.
        os.ftruncate(self._fd, resume_at)
        sync_directory(os.path.dirname(path))    # the file itself survives a crash
        self._offset = resume_at
        os.lseek(self._fd, self._offset, os.SEEK_SET)

    def commit(self, payload: bytes) -> tuple[int, int]:
        return self._append(payload)

    def _append(self, rows: bytes) -> tuple[int, int]:
        offset = self._offset
        self._pending.append(rows)
        self._offset += len(rows)
        return offset, len(rows)

    def flush(self) -> None:
        if self._pending:
            write_all(self._fd, b"".join(self._pending))
            self._pending.clear()

    def sync(self) -> None:
        with self._fd_lock:
            if self._fd is not None:
                fdatasync(self._fd)

    def close(self) -> None:
        if self._fd is None:
            return
        self.flush()
        with self._fd_lock:
            try:
                fdatasync(self._fd)
            finally:
                os.close(self._fd)
                self._fd = None


# append_row formats (the rules are in the module docstring) -------------------------------

APPEND_ROW_FORMATS = CONFIG_APPEND_ROW_FORMATS


def _as_frame(result):
    """What run() returned, as a DataFrame with string column names."""
    import pandas as pd

    from parallelrun.script import is_dataframe

    if is_dataframe(result):
        frame = result
    elif is_arrow_table(result):
        frame = result.to_pandas()
    elif result and all(isinstance(r, dict) for r in result):
        frame = pd.DataFrame.from_records(list(result))
    elif result and all(isinstance(r, (tuple, list)) for r in result):
        frame = pd.DataFrame([list(r) for r in result])
    else:
        frame = pd.DataFrame({"result": list(result)})
    if not all(isinstance(c, str) for c in frame.columns):
        frame = frame.rename(columns=str)
    return frame


class CsvEncoder(ResultEncoder):
    """Worker half of ``csv``: the header line, then the rows (the coordinator drops repeats)."""

    def encode(self, result):
        frame = _as_frame(result)
        if frame.empty:
            return b"", 0
        text = frame.to_csv(index=False, lineterminator="\n")
        if "\r" in text:
            # Python's csv writer (before 3.12; pandas writes with it) quotes a line feed but
            # not a lone carriage return, which CSV readers take for a line end: quote it all
            text = frame.to_csv(index=False, lineterminator="\n", quoting=csv.QUOTE_ALL)
        return text.encode("utf-8"), len(frame)


class ArrowEncoder(ResultEncoder):
    """Worker half of ``parquet``: an 8-byte length, then the rows as one Arrow IPC stream."""

    def encode(self, result):
        import pyarrow as pa

        if is_arrow_table(result):   # the rows as they are, without a trip through pandas
            table, rows = result, result.num_rows
        else:
            frame = _as_frame(result)
            table, rows = _to_arrow(frame), len(frame)
        if not rows:
            return b"", 0
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        body = sink.getvalue()
        return len(body).to_bytes(8, "little") + body.to_pybytes(), rows


def _to_arrow(frame):
    import pyarrow as pa

    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        # a column of mixed Python objects: that column as text, the others keep their types
        arrays = {}
        for name in frame.columns:
            try:
                arrays[name] = pa.array(frame[name], from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                arrays[name] = pa.array(frame[name].map(lambda v: None if v is None else str(v)))
        return pa.table(arrays)


class CsvAppendRowOutput(AppendRowOutput):
    """``append_row`` with ``append_row_format="csv"``: one header line, then every row.

    Each payload starts with its own header line; the first commit writes it, later ones drop it.
    A payload whose columns are the header's in another order is reordered under the header; one
    with other columns raises :class:`DataError` naming both sets (the module docstring says why).
    """

    def __init__(self, output_dir: str, file_name: str, encoder: ResultEncoder | None = None):
        super().__init__(output_dir, file_name, encoder or CsvEncoder())
        self._header: bytes | None = None
        self._columns: list[str] = []

    def open(self, resume_at: int | None) -> None:
        super().open(resume_at)
        self._header, self._columns = None, []
        if resume_at:
            with open(self.path, "rb") as fh:
                head = fh.read(min(resume_at, 1 << 20))
            self._set_header(head[:_header_end(head)])

    def _set_header(self, header: bytes) -> None:
        self._header, self._columns = header, _csv_columns(header)

    def commit(self, payload: bytes) -> tuple[int, int]:
        end = _header_end(payload)
        header = payload[:end]
        if self._header is None:
            self._set_header(header)
            return self._append(payload)
        if header == self._header:
            return self._append(payload[end:])
        columns = _csv_columns(header)
        if columns == self._columns:               # the same columns, quoted otherwise
            return self._append(payload[end:])
        if sorted(columns) != sorted(self._columns) or len(set(columns)) != len(columns):
            raise DataError(
                f"append_row_format='csv': a mini-batch returned the columns {columns}, but "
                f"{os.path.basename(self.path)} was started with the columns {self._columns}. "
                "A CSV file has one header, so every mini-batch must return the same columns "
                "(in any order). Return the same columns from every run() (missing values as "
                "None), or use append_row_format='parquet', which takes the union of the columns. "
                "The mini-batches committed so far are kept; fix the script and run the job anew.")
        return self._append(_reorder_csv_rows(payload[end:], columns, self._columns))


def _csv_columns(header: bytes) -> list[str]:
    return next(csv.reader(io.StringIO(header.decode("utf-8"), newline="")), [])


def _reorder_csv_rows(rows: bytes, columns: list[str], wanted: list[str]) -> bytes:
    """CSV rows written in ``columns`` order, rewritten in ``wanted`` order (same names).

    The csv module is what pandas ``to_csv`` writes with, so quoting is unchanged (a row with a
    carriage return is quoted whole, as CsvEncoder does).
    """
    order = [columns.index(name) for name in wanted]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    quote_all = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for row in csv.reader(io.StringIO(rows.decode("utf-8"), newline="")):
        row = [row[i] for i in order]
        (quote_all if any("\r" in value for value in row) else writer).writerow(row)
    return out.getvalue().encode("utf-8")


def _header_end(data: bytes) -> int:
    from parallelrun.data.records import first_record_end

    return first_record_end(io.BytesIO(data), 0, len(data), b'"', b",")


class ParquetAppendRowOutput(AppendRowOutput):
    """``append_row`` with ``append_row_format="parquet"``: staged as Arrow IPC, Parquet at close."""

    #: rows per Parquet row group (batches of several mini-batches are gathered up to this)
    ROW_GROUP_ROWS = 1_000_000

    def __init__(self, output_dir: str, file_name: str, encoder: ResultEncoder | None = None):
        super().__init__(output_dir, file_name, encoder or ArrowEncoder())
        self.parquet_path = self.path
        self.staging_path = os.path.join(output_dir, f".{file_name}.arrows")
        self.path = self.parquet_path

    def files(self) -> list[str]:
        return [self.parquet_path, self.staging_path, self.parquet_path + ".tmp"]

    @property
    def rows_path(self) -> str:
        return self.staging_path

    def open(self, resume_at: int | None) -> None:
        super().open(resume_at)
        # the columns committed so far, so that a resumed job checks new ones against them
        self._schema = None
        for schema in iter_staged_tables(self.staging_path, schemas_only=True):
            self._schema = schema if self._schema is None else _unify(self._schema, schema)

    def commit(self, payload: bytes) -> tuple[int, int]:
        import pyarrow as pa

        schema = pa.ipc.open_stream(pa.py_buffer(payload)[8:]).schema
        if self._schema is None:
            self._schema = schema
        elif not schema.equals(self._schema):
            self._schema = _unify(self._schema, schema)
        return self._append(payload)

    def close(self) -> None:
        was_open = self._fd is not None
        super().close()
        if was_open:
            import pyarrow as pa

            try:
                write_parquet_from_staging(self.staging_path, self.parquet_path,
                                           self.ROW_GROUP_ROWS)
            except pa.ArrowException as exc:
                raise DataError(f"the staged rows cannot be written to {self.parquet_path}: "
                                f"{exc}. They are kept in {self.staging_path}.") from exc


def _unify(committed, schema):
    """The union of two mini-batches' schemas, types promoted; a DataError naming the column
    whose types cannot be (int64 in one mini-batch, string in another)."""
    import pyarrow as pa

    try:
        return pa.unify_schemas([committed, schema], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        clashes = [f"{f.name!r} is {committed.field(f.name).type} in earlier mini-batches and "
                   f"{f.type} in this one" for f in schema
                   if f.name in committed.names and not _promotable(committed.field(f.name), f)]
        raise DataError(
            f"append_row_format='parquet': column {'; column '.join(clashes) or str(exc)}. "
            "A Parquet column has one type; numbers of different widths and int/float are "
            "promoted, other mixes are not. Return one type per column from every run() (e.g. "
            "df[name] = df[name].astype(str)). The mini-batches committed so far are kept.") \
            from exc


def _promotable(a, b) -> bool:
    import pyarrow as pa

    try:
        pa.unify_schemas([pa.schema([a]), pa.schema([b.with_name(a.name)])],
                         promote_options="permissive")
        return True
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return False


def iter_staged_tables(staging_path: str, schemas_only: bool = False):
    """The tables (or only their schemas) of a parquet staging file, in commit order."""
    import pyarrow as pa

    size = os.path.getsize(staging_path) if os.path.exists(staging_path) else 0
    if not size:
        return
    # plain reads, not a memory map: the coordinator's memory stays at one mini-batch's rows
    with pa.OSFile(staging_path, "rb") as source:
        offset = 0
        while offset + 8 <= size:
            source.seek(offset)
            length = int.from_bytes(source.read(8), "little")
            if offset + 8 + length > size:
                break                            # a torn last frame (resume cuts it anyway)
            if schemas_only:
                yield pa.ipc.open_stream(source).schema     # reads the schema message only
            else:
                yield pa.ipc.open_stream(source.read_buffer(length)).read_all()
            offset += 8 + length


def write_parquet_from_staging(staging_path: str, parquet_path: str,
                               row_group_rows: int = 1_000_000) -> None:
    """Convert the staged mini-batches into one Parquet file, streaming, schemas unified."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schemas = list(iter_staged_tables(staging_path, schemas_only=True))
    if schemas:
        schema = pa.unify_schemas(schemas, promote_options="permissive")
        schema = pa.schema([f.with_type(pa.string()) if pa.types.is_null(f.type) else f
                            for f in schema]).remove_metadata()
    else:
        schema = pa.schema([])
    tmp = parquet_path + ".tmp"
    # dictionary-encode text only: on numbers it costs a third of the write and rarely pays
    text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
            or pa.types.is_dictionary(f.type)]
    with pq.ParquetWriter(tmp, schema, use_dictionary=text) as writer:
        group: list = []
        rows = 0
        for table in iter_staged_tables(staging_path):
            group.append(_conform(table, schema))
            rows += table.num_rows
            if rows >= row_group_rows:
                writer.write_table(pa.concat_tables(group), row_group_size=row_group_rows)
                group, rows = [], 0
        if group:
            writer.write_table(pa.concat_tables(group), row_group_size=row_group_rows)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)   # the file's data on disk before the rename makes it the output
    finally:
        os.close(fd)
    os.replace(tmp, parquet_path)


def _conform(table, schema):
    import pyarrow as pa

    columns = []
    for field in schema:
        if field.name in table.column_names:
            columns.append(table[field.name].cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)


_FORMAT_ACTIONS: dict[str, type[AppendRowOutput]] = {
    "text": AppendRowOutput, "csv": CsvAppendRowOutput, "parquet": ParquetAppendRowOutput,
}


def make_output_action(output_action: str, output_dir: str, file_name: str,
                       append_row_format: str = "text") -> OutputAction:
    """The output action of a job, for one of ``config.OUTPUT_ACTIONS`` (the names' one owner):
    ``append_row`` in the chosen format, or ``summary_only``, which commits nothing.

    Example: ``make_output_action("append_row", "out/", "rows.csv", "csv").path == "out/rows.csv"``
    """
    # no match statement: workers import this module and may run Python 3.8
    if output_action == "append_row":
        return _FORMAT_ACTIONS[append_row_format](output_dir, file_name)
    if output_action == "summary_only":
        return OutputAction(output_dir, file_name)
    raise ConfigurationError("output_action", output_action, f"one of {', '.join(OUTPUT_ACTIONS)}")
