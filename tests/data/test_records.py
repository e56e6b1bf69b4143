"""Property tests of the planner's cuts: the cheap scan of quote-free blocks plans exactly the
pieces (offsets and line numbers) of the quote-aware scan of every record start."""

from __future__ import annotations

import io

from hypothesis import given, settings, strategies as st

from parallelrun.data.records import plan_cuts, plan_file_cuts, scan_boundaries

SETTINGS = settings(max_examples=300, deadline=None)

# CRLF, empty lines, quoted values with newlines and escaped quotes, literal mid-field quotes,
# and long runs of bytes that make records longer than a piece
quoted_tokens = st.sampled_from(["a", "bb", ",", '"', '""', "\n", "\r\n", "\n\n", "\r",
                                 '"x\ny"', 'q"z', "0123456789" * 3])
plain_tokens = st.sampled_from(["a", "bb", ",", "\n", "\r\n", "\n\n", "\r", "0123456789" * 3])


class _ReadOnly:
    """A file object without ``readinto`` (some remote file systems' files)."""

    def __init__(self, data: bytes):
        self._fh = io.BytesIO(data)

    def seek(self, offset: int) -> int:
        return self._fh.seek(offset)

    def read(self, n: int) -> bytes:
        return self._fh.read(n)


def greedy_cuts(data: bytes, start: int, size: int, first_line: int, record_starts: list[int]):
    """The documented rule, written plainly over a list of every record start."""
    ends = [s for s in record_starts if s > start]
    pieces, begin = [], start
    line = lambda offset: first_line + data[start:offset].count(b"\n")  # noqa: E731
    while begin < len(data):
        fitting = [s for s in ends if begin < s <= begin + size]
        cut = fitting[-1] if fitting else next(s for s in ends if s > begin)
        pieces.append((begin, cut, line(begin), line(cut)))
        begin = cut
    return pieces


@SETTINGS
@given(body=st.one_of(st.lists(plain_tokens, max_size=120), st.lists(quoted_tokens, max_size=120)),
       header=st.sampled_from(["", "h1,h2\n", '"h1","h2"\r\n']),
       quote=st.sampled_from([b'"', None]), size=st.integers(1, 90), chunk=st.integers(1, 70),
       first_line=st.integers(1, 5), read_only=st.booleans())
def test_cheap_scan_plans_the_same_cuts_and_lines_as_the_quote_aware_scan(
        body, header, quote, size, chunk, first_line, read_only):
    data = (header + "".join(body)).encode()
    start = len(header)
    reference = list(plan_cuts(scan_boundaries(io.BytesIO(data), start, len(data), quote, b",",
                                               first_line, chunk=chunk),
                               start, size, first_line))
    fh = _ReadOnly(data) if read_only else io.BytesIO(data)
    cheap = list(plan_file_cuts(fh, start, len(data), quote, b",", first_line, size, chunk=chunk))
    assert cheap == reference

    # and both follow the rule over every record start (lines counted from ``start``)
    whole = scan_boundaries(io.BytesIO(data), start, len(data), quote, b",", first_line,
                            chunk=max(len(data), 1))
    record_starts = [int(s) for block in whole for s in block.starts]
    assert cheap == greedy_cuts(data, start, size, first_line, record_starts)


def test_a_float_csv_in_many_blocks_is_cut_where_its_lines_end():
    rows = [f"{i * 0.5:.5f},{-i:.5f}\n".encode() for i in range(5000)]
    data = b"".join(rows) + b"9.0,9.0"                     # a last line without its newline
    pieces = list(plan_file_cuts(io.BytesIO(data), 0, len(data), b'"', b",", 1, 1000, chunk=4096))
    newline_ends = [i + 1 for i, b in enumerate(data) if b == 10]
    assert pieces == greedy_cuts(data, 0, 1000, 1, newline_ends + [len(data)])
    assert pieces[-1][1] == len(data) and pieces[-1][3] == 5001
    assert sum(end_line - line for _, _, line, end_line in pieces) == 5000
