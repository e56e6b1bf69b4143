"""Output actions: what happens to what ``run()`` returned, chosen by ``output_action``.

Each action has a worker half (a :class:`~parallelrun.script.ResultEncoder`, which turns results
into bytes inside the worker) and a coordinator half (``commit``, which appends those bytes once
per mini-batch). The coordinator is the only writer, so the file never has interleaved or
duplicate rows.
"""

from __future__ import annotations

import os

from parallelrun.config import APPEND_ROW_FORMATS as CONFIG_APPEND_ROW_FORMATS
from parallelrun.script import NullEncoder, ResultEncoder


class OutputAction:
    """Base: commits nothing (``summary_only``)."""

    name = "summary_only"
    path: str | None = None

    def __init__(self, output_dir: str, file_name: str, encoder: ResultEncoder | None = None):
        pass

    def encoder(self) -> ResultEncoder:
        return NullEncoder()

    def open(self, resume_at: int | None) -> None:
        pass

    def commit(self, payload: bytes) -> int:
        """Append one mini-batch's rows; returns the offset they start at.

        The rows may wait in memory until :meth:`flush`; the scheduler flushes the output before
        the journal, so the journal never names rows that are not in the file.
        """
        return 0

    def flush(self) -> None:
        """Write what commit() kept in memory."""

    def close(self) -> None:
        pass


class AppendRowOutput(OutputAction):
    """``append_row``: every mini-batch's rows appended to one file in the output folder."""

    name = "append_row"

    def __init__(self, output_dir: str, file_name: str, encoder: ResultEncoder | None = None):
        self.path = os.path.join(output_dir, file_name)
        self._encoder = encoder or ResultEncoder()
        self._fd: int | None = None
        self._offset = 0
        self._pending: list[bytes] = []

    def encoder(self) -> ResultEncoder:
        return self._encoder

    def open(self, resume_at: int | None) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        # A fresh job starts an empty file; a resumed one drops rows of uncommitted mini-batches.
        os.ftruncate(self._fd, resume_at or 0)
        self._offset = resume_at or 0
        os.lseek(self._fd, self._offset, os.SEEK_SET)

    def commit(self, payload: bytes) -> int:
        offset = self._offset
        self._pending.append(payload)
        self._offset += len(payload)
        return offset

    def flush(self) -> None:
        if self._pending:
            write_all(self._fd, b"".join(self._pending))
            self._pending.clear()

    def close(self) -> None:
        self.flush()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


#: output_action name -> class; every class takes (output_dir, file_name, encoder)
OUTPUT_ACTIONS: dict[str, type[OutputAction]] = {
    "append_row": AppendRowOutput,
    "summary_only": OutputAction,
}


# append_row formats -------------------------------------------------------------------------
#
# ``append_row_format`` picks how append_row writes what run() returned (SPEC.md section 5):
#
# * ``text`` (default, the original's): one line per element, ``str(element)`` for lists and a
#   DataFrame row's values joined by single spaces.
# * ``csv``: a CSV file with one header line, written once (the columns of the first committed
#   mini-batch), then every row. Fields are quoted where needed (pandas ``to_csv``).
# * ``parquet``: one Parquet file. Each mini-batch's rows travel as Arrow IPC bytes; the
#   coordinator appends them to a staging file (``.<file name>.arrows`` beside the output) at
#   commit, exactly like the text file, so the journal's offsets and the exactly-once contract are
#   unchanged: on resume the staging file is cut back to the journal's end. When the job ends
#   (finished, failed or canceled) the staging file is converted, streaming, into the Parquet file
#   (written to a temporary name, then renamed): columns are the union of every mini-batch's
#   columns, types promoted where they differ (int and float -> float), missing values null.
#   The staging file stays so that the job can be resumed; delete it once the job is done.
#
# Lists returned by run() are turned into a table for csv and parquet: a list of dicts is one row
# per dict, a list of tuples/lists one row each (columns "0", "1"...), anything else one column
# named "result".

APPEND_ROW_FORMATS = CONFIG_APPEND_ROW_FORMATS


def _as_frame(result):
    """What run() returned, as a DataFrame with string column names."""
    import pandas as pd

    from parallelrun.script import is_dataframe

    if is_dataframe(result):
        frame = result
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
        return text.encode("utf-8"), len(frame)


class ArrowEncoder(ResultEncoder):
    """Worker half of ``parquet``: an 8-byte length, then the rows as one Arrow IPC stream."""

    def encode(self, result):
        import pyarrow as pa

        frame = _as_frame(result)
        if frame.empty:
            return b"", 0
        table = _to_arrow(frame)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        body = sink.getvalue()
        return len(body).to_bytes(8, "little") + body.to_pybytes(), len(frame)


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
    ``commit`` returns ``end - len(payload)`` so that the journal's ``offset + length`` is the end
    of the rows in the file (what resume cuts back to), even though a header was dropped.
    """

    def __init__(self, output_dir: str, file_name: str, encoder: ResultEncoder | None = None):
        super().__init__(output_dir, file_name, encoder or CsvEncoder())
        self._header: bytes | None = None
        self.mismatched_headers = 0

    def open(self, resume_at: int | None) -> None:
        super().open(resume_at)
        self._header = None
        if resume_at:
            with open(self.path, "rb") as fh:
                self._header = fh.read(_header_end(fh.read(1 << 20)))

    def commit(self, payload: bytes) -> int:
        end = _header_end(payload)
        header = payload[:end]
        if self._header is None:
            self._header = header
            rows = payload
        else:
            if header != self._header:
                # written under the first header anyway; counted so the mismatch is visible
                self.mismatched_headers += 1
            rows = payload[end:]
        self._pending.append(rows)
        self._offset += len(rows)
        return self._offset - len(payload)


def _header_end(data: bytes) -> int:
    import io

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

    def open(self, resume_at: int | None) -> None:
        os.makedirs(os.path.dirname(self.staging_path) or ".", exist_ok=True)
        self._fd = os.open(self.staging_path, os.O_WRONLY | os.O_CREAT, 0o644)
        os.ftruncate(self._fd, resume_at or 0)
        self._offset = resume_at or 0
        os.lseek(self._fd, self._offset, os.SEEK_SET)

    def close(self) -> None:
        was_open = self._fd is not None
        super().close()
        if was_open:
            write_parquet_from_staging(self.staging_path, self.parquet_path, self.ROW_GROUP_ROWS)


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
    """The output action of a job: ``OUTPUT_ACTIONS[output_action]``, in the chosen format.

    Example: ``make_output_action("append_row", "out/", "rows.csv", "csv").path == "out/rows.csv"``
    """
    if output_action == "append_row":
        return _FORMAT_ACTIONS[append_row_format](output_dir, file_name)
    return OUTPUT_ACTIONS[output_action](output_dir, file_name)
