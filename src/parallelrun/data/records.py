"""Where records start in delimited and JSON lines files, found without parsing them.

The planner (coordinator) cuts big files into byte ranges that each start at a record; the
readers (workers) parse only their range with pyarrow. A cut must never fall inside a record,
and in CSV a quoted value may hold newlines, so not every newline ends a record.

How the scan decides, in one streaming pass over the file in ``CHUNK`` blocks (memory stays at
one block whatever the file's size):

* A newline outside quotes ends a record. Whether a byte is inside quotes is the parity of the
  quote *toggles* before it, where toggles follow pyarrow's CSV grammar (RFC 4180 with
  ``double_quote``): a quote opens a quoted value only at the start of a field (after the
  separator, a line end, or the file's start), any quote inside a quoted value closes it, and a
  quote right after a closing quote reopens it (``""`` is an escaped quote). A quote in the middle
  of an unquoted field (``5" screen``) is a literal character and toggles nothing.
* Fast path, numpy over the whole block: assume every quote toggles, then check that every
  assumed opening quote sits at a field start. Well-formed files pass this and never run a
  Python loop; a block that fails it (a literal quote somewhere) is walked quote by quote.
  A block without any quote byte costs one ``memchr``.
* JSON lines have no raw newlines inside values, so every newline ends a record (no quotes).
* Planning (:func:`plan_file_cuts`) needs only a few record starts per piece (the last one before
  each cut target) and newline counts, not every start: a block without quotes (and not inside a
  quoted value) answers those from its bytes (``find``/``rfind`` and a count), without arrays
  of every newline; only blocks with quotes build :class:`Boundaries`. :func:`scan_boundaries`
  builds them for every block and is the reference the cheaper blocks are tested against.

Line numbers (for error messages) are counted on the way: a record's line is one plus the number
of ``\\n`` bytes before it.
"""

from __future__ import annotations

from typing import BinaryIO, Iterator

import numpy as np

CHUNK = 4 * 1024 * 1024
_NL, _CR = 10, 13


class Boundaries:
    """Record starts found in one block: byte offsets (``starts``) and their line numbers."""

    __slots__ = ("starts", "lines")

    def __init__(self, starts: np.ndarray, lines: np.ndarray):
        self.starts = starts
        self.lines = lines

    def first_after(self, offset: int) -> int | None:
        """The first record start after ``offset`` in this block, or None."""
        i = int(np.searchsorted(self.starts, offset, side="right"))
        return int(self.starts[i]) if i < self.starts.size else None

    def last_upto(self, offset: int) -> int | None:
        """The last record start at or before ``offset`` in this block, or None."""
        j = int(np.searchsorted(self.starts, offset, side="right"))
        return int(self.starts[j - 1]) if j else None

    def line_at(self, record_start: int) -> int:
        """The line number of one of this block's record starts."""
        return int(self.lines[int(np.searchsorted(self.starts, record_start))])


class _PlainBlock:
    """A block where every newline ends a record (no quotes): starts found on demand.

    Answers what :class:`Boundaries` answers with ``find``/``rfind`` (C loops over the bytes)
    and newline counts from a cursor that only moves forward, instead of arrays of every
    newline: the planner asks a few questions per piece, not one per record. It reads the
    scan's reused buffer, so it is valid only until the scan reads the next block.
    """

    __slots__ = ("buf", "arr", "base", "size", "lines_before", "_at", "_count")

    def __init__(self, buf: bytearray, arr: np.ndarray, base: int, size: int, lines_before: int):
        self.buf, self.arr, self.base, self.size = buf, arr, base, size
        self.lines_before = lines_before
        self._at = self._count = 0           # newlines in buf[:_at]

    def first_after(self, offset: int) -> int | None:
        p = self.buf.find(b"\n", max(offset - self.base, 0), self.size)
        return self.base + p + 1 if p >= 0 else None

    def last_upto(self, offset: int) -> int | None:
        rel = min(offset - self.base, self.size)
        p = self.buf.rfind(b"\n", 0, rel) if rel > 0 else -1
        return self.base + p + 1 if p >= 0 else None

    def line_at(self, record_start: int) -> int:
        return self.lines_before + self._newlines_before(record_start - self.base) + 1

    def newlines(self) -> int:
        """How many newlines the whole block holds."""
        return self._newlines_before(self.size)

    def _newlines_before(self, rel: int) -> int:
        if rel < self._at:
            self._at = self._count = 0
        self._count += int(np.count_nonzero(self.arr[self._at:rel] == _NL))
        self._at = rel
        return self._count


class _QuoteState:
    """What the scan carries from one block to the next."""

    __slots__ = ("inside", "prev_byte", "last_close")

    def __init__(self) -> None:
        self.inside = False
        self.prev_byte = _NL        # the data starts at a record start
        self.last_close = -2        # global offset of the last closing quote


def _toggles(arr: np.ndarray, base: int, quote: int, delim: int, state: _QuoteState) -> np.ndarray:
    """Offsets (relative to the block) of the quotes that open or close a quoted value."""
    q = np.flatnonzero(arr == quote)
    if q.size == 0:
        return q
    # Fast path: every quote toggles; valid when each assumed opening quote is at a field start.
    opens = q[1::2] if state.inside else q[0::2]
    if opens.size:
        prev = np.where(opens > 0, arr[np.maximum(opens - 1, 0)], state.prev_byte)
        ok = (prev == delim) | (prev == _NL) | (prev == _CR)
        # an escaped quote: the byte before is the quote that just closed
        ok |= (prev == quote) & ((opens > 0) | (state.last_close == base - 1))
        fast = bool(ok.all())
    else:
        fast = True
    if fast:
        n = q.size
        ends_inside = state.inside != bool(n % 2)
        # the last toggle closes when we end outside
        if not ends_inside:
            state.last_close = base + int(q[-1])
        state.inside = ends_inside
        return q
    toggles = []
    inside, last_close = state.inside, state.last_close
    for r in q.tolist():
        g = base + r
        if inside:
            toggles.append(r)
            inside = False
            last_close = g
        else:
            prev = int(arr[r - 1]) if r > 0 else state.prev_byte
            if prev in (delim, _NL, _CR) or (prev == quote and last_close == g - 1):
                toggles.append(r)
                inside = True
    state.inside, state.last_close = inside, last_close
    return np.asarray(toggles, dtype=np.int64)


def scan_boundaries(fh: BinaryIO, start: int, end: int, quote: bytes | None, delim: bytes,
                    first_line: int, chunk: int = CHUNK) -> Iterator[Boundaries]:
    """Record starts in ``fh[start:end]`` (``start`` is a record start), block by block.

    The last one yielded is ``end`` itself, so every record lies between two boundaries. Every
    block is an array of all its record starts: the reference that :func:`plan_file_cuts`'
    cheaper blocks are tested against.
    """
    return _scan(fh, start, end, quote, delim, first_line, chunk, plain=False)


def plan_file_cuts(fh: BinaryIO, start: int, end: int, quote: bytes | None, delim: bytes,
                   first_line: int, size: int, chunk: int = CHUNK) -> Iterator[tuple[int, int, int, int]]:
    """:func:`plan_cuts` of ``fh[start:end]``: the same pieces as over :func:`scan_boundaries`.

    Blocks that need no quote-aware scan (no quote byte, not inside a quoted value) are planned
    from their bytes without an array of every newline (the 320 MB float CSV of
    ``bench/bench_tabular.py``: 0.20 s of CPU before, 0.06 s now).
    """
    return plan_cuts(_scan(fh, start, end, quote, delim, first_line, chunk, plain=True),
                     start, size, first_line)


def _read_into(fh: BinaryIO, view: memoryview) -> int:
    readinto = getattr(fh, "readinto", None)
    if readinto is not None:
        return readinto(view) or 0
    data = fh.read(len(view))
    view[:len(data)] = data
    return len(data)


def _scan(fh: BinaryIO, start: int, end: int, quote: bytes | None, delim: bytes, first_line: int,
          chunk: int, plain: bool) -> Iterator[Boundaries | _PlainBlock]:
    """The scan behind both: ``plain`` yields a :class:`_PlainBlock` where quotes play no part."""
    quote_b = quote[0] if quote else None
    delim_b = delim[0] if delim else -1
    state = _QuoteState()
    lines_before = first_line - 1
    pos = start
    fh.seek(start)
    # one buffer for every block: a fresh 4 MB bytes per read costs more than the scan itself
    buf = bytearray(max(min(chunk, end - start), 1))
    view, whole = memoryview(buf), np.frombuffer(buf, dtype=np.uint8)
    ends_record = False                      # the last byte read is a newline that ends a record
    while pos < end:
        n = _read_into(fh, view[:min(chunk, end - pos)])
        if not n:
            break
        arr = whole[:n]
        if quote_b is not None and (state.inside or buf.find(quote, 0, n) >= 0):
            newlines = np.flatnonzero(arr == _NL)
            inside_at_start = state.inside
            toggles = _toggles(arr, pos, quote_b, delim_b, state)
            state.prev_byte = buf[n - 1]
            before = np.searchsorted(toggles, newlines) + int(inside_at_start)
            keep = np.flatnonzero(before % 2 == 0)
            count = int(newlines.size)
        elif plain:
            state.prev_byte = buf[n - 1]
            block = _PlainBlock(buf, arr, pos, n, lines_before)
            ends_record = buf[n - 1] == _NL
            yield block
            count = block.newlines()
            block.buf = block.arr = None     # the buffer is about to be overwritten
            lines_before += count
            pos += n
            continue
        else:
            newlines = np.flatnonzero(arr == _NL)
            keep = np.arange(newlines.size)
            count = int(newlines.size)
            state.prev_byte = buf[n - 1]
        starts = pos + newlines[keep].astype(np.int64) + 1
        lines = lines_before + keep.astype(np.int64) + 2
        ends_record = bool(starts.size) and int(starts[-1]) == pos + n
        lines_before += count
        pos += n
        if starts.size:
            yield Boundaries(starts, lines)
    if not (ends_record and pos == end):
        yield Boundaries(np.asarray([end], dtype=np.int64), np.asarray([lines_before + 1], dtype=np.int64))


def plan_cuts(boundaries: Iterator[Boundaries | _PlainBlock], start: int, size: int,
              first_line: int) -> Iterator[tuple[int, int, int, int]]:
    """Cut ``[start, end)`` into ``(begin, end, first_line, end_line)`` pieces of at most ``size`` bytes.

    A piece ends at the last record boundary at or before ``begin + size``; only a single record
    longer than ``size`` makes a longer piece (it is never cut). The last boundary of the
    iterator is the end of the range. ``end_line - first_line`` is the piece's number of lines.
    """
    begin, line = start, first_line
    carry: tuple[int, int] | None = None     # last boundary <= target seen in earlier blocks
    for block in boundaries:
        while block.first_after(begin) is not None:
            target = begin + size
            beyond = block.first_after(target)
            if beyond is None:
                # every boundary left in this block fits; a later block decides
                last = block.last_upto(target)
                carry = (last, block.line_at(last))
                break
            best = block.last_upto(target)
            if best is not None and best > begin:
                cut = (best, block.line_at(best))
            elif carry is not None:
                cut = carry
            else:
                cut = (beyond, block.line_at(beyond))    # one record longer than size
            yield begin, cut[0], line, cut[1]
            (begin, line), carry = cut, None
    if carry is not None and carry[0] > begin:
        yield begin, carry[0], line, carry[1]


def split_records(data: bytes, quote: bytes | None, delim: bytes,
                  first_line: int) -> list[tuple[int, int, int]]:
    """The non-empty records of ``data`` as ``(start, end, line)``, in pyarrow's counting.

    Used by readers when something in a piece is wrong, to name the line of a bad row: pyarrow
    numbers rows by non-empty record, this maps that number back to a line of the file. Like
    pyarrow, a lone ``\\r`` also ends a record here and an empty record (no byte before its line
    end) is skipped.
    """
    if not data:
        return []
    arr = np.frombuffer(data, dtype=np.uint8)
    state = _QuoteState()
    ends = np.flatnonzero((arr == _NL) | (arr == _CR))
    if quote:
        toggles = _toggles(arr, 0, quote[0], delim[0] if delim else -1, state)
        ends = ends[(np.searchsorted(toggles, ends) % 2) == 0]
    nl_before = np.cumsum(arr == _NL)
    records = []
    begin = 0
    for e in ends.tolist():
        if e > begin:
            records.append((begin, e, first_line + (int(nl_before[begin - 1]) if begin else 0)))
        begin = e + 1
    if begin < len(data):
        records.append((begin, len(data), first_line + (int(nl_before[begin - 1]) if begin else 0)))
    return records


def first_record_end(fh: BinaryIO, start: int, end: int, quote: bytes | None,
                     delim: bytes) -> int:
    """Offset just after the first record in ``fh[start:end]`` (e.g. a header line)."""
    for block in scan_boundaries(fh, start, end, quote, delim, 1, chunk=64 * 1024):
        return int(block.starts[0])
    return end
