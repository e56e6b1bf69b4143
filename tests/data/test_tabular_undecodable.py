"""Undecodable bytes in any kind of CSV column are bad rows named by file and line, whatever
the reader's fast path (UTF-8 checked by pyarrow, not by decoding the piece first)."""

from __future__ import annotations

import pytest

from parallelrun import Dataset

ROWS = b"id,name,amount\n1,a,1.5\n2,b,2.5\n3,c,3.5\n4,d,4.5\n"


@pytest.mark.parametrize("where, types", [
    ("name", {}),                          # a text column pyarrow would infer as binary
    ("amount", {}),                        # a number column
    ("name", {"name": str}),               # a column asked for as text
    ("amount", {"amount": float}),
])
def test_undecodable_bytes_in_any_column_are_a_bad_row_of_their_line(tmp_path, where, types):
    bad = b"3,\xff\xfe,3.5\n" if where == "name" else b"3,c,3.\xff5\n"
    path = tmp_path / "t.csv"
    path.write_bytes(ROWS.replace(b"3,c,3.5\n", bad))
    dataset = Dataset.Tabular.from_delimited_files(str(path), set_column_types=types)
    [minibatch] = dataset.plan(None)
    loaded = minibatch.payload.read()
    assert loaded.data["id"].tolist() == [1, 2, 4]
    assert loaded.failed_rows == 1
    assert f"{path} line 4: undecodable bytes for encoding utf-8" in loaded.failed_rows_report
