"""Output actions: what happens to what ``run()`` returned, chosen by ``output_action``.

Each action has a worker half (a :class:`~parallelrun.script.ResultEncoder`, which turns results
into bytes inside the worker) and a coordinator half (``commit``, which appends those bytes once
per mini-batch). The coordinator is the only writer, so the file never has interleaved or
duplicate rows.
"""

from __future__ import annotations

import os

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
