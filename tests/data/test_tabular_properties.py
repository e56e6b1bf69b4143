"""Property tests: whatever the files and sizes, the mini-batches hold every input row exactly once."""

from __future__ import annotations

import csv
import io
import json

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings, strategies as st

from parallelrun import Dataset
from parallelrun.data.records import plan_cuts, scan_boundaries, split_records

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

texts = st.text(alphabet='ab ,"\n\r;é', max_size=12)
rows = st.lists(st.tuples(st.integers(-10**6, 10**6), texts), max_size=60)


@SETTINGS
@given(rows=rows, size=st.integers(1, 600), files=st.integers(1, 3))
def test_union_of_csv_mini_batches_is_every_row_once(tmp_path_factory, rows, size, files):
    folder = tmp_path_factory.mktemp("csv")
    expected = []
    for f in range(files):
        chunk = rows[f::files]
        with open(folder / f"{f}.csv", "w", newline="", encoding="utf-8") as fh:
            # "\r\n" line ends make the csv module quote values holding \r or \n
            writer = csv.writer(fh, lineterminator="\r\n",
                                quoting=csv.QUOTE_ALL if f % 2 else csv.QUOTE_MINIMAL)
            writer.writerow(["id", "text"])
            writer.writerows(chunk)
        expected.extend((i, t) for i, t in chunk)
    ds = Dataset.Tabular.from_delimited_files(str(folder), set_column_types={"text": str},
                                              empty_as_string=True)
    got = []
    for mb in ds.plan(size):
        df = mb.payload.load()
        assert mb.payload.read().failed_rows == 0
        got.extend(zip(df["id"].tolist(), df["text"].tolist()))
    assert got == expected


soup = st.lists(st.sampled_from(['a', 'b', ',', '"', '\n', '\r\n', '""', ' ']), max_size=200)


@SETTINGS
@given(tokens=soup, size=st.integers(1, 80), chunk=st.integers(1, 64))
def test_cuts_fall_on_pyarrow_record_starts_even_in_malformed_text(tokens, size, chunk):
    data = ("h1,h2\n" + "".join(tokens)).encode()
    start = 6
    fh = io.BytesIO(data)
    pieces = list(plan_cuts(scan_boundaries(fh, start, len(data), b'"', b",", 2, chunk=chunk),
                            start, size, 2))
    if len(data) > start:
        assert pieces[0][0] == start and pieces[-1][1] == len(data)
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))
    # every cut follows a line end, with the right line number; a record starting there has it
    starts = {s + start: line for s, _, line in split_records(data[start:], b'"', b",", 2)}
    for begin, end, line, _ in pieces[1:]:
        assert data[begin - 1:begin] == b"\n"
        assert line == data[:begin].count(b"\n") + 1 == starts.get(begin, line)
        assert size < end - begin or end - begin <= size

    def parse(blob: bytes):
        bad = []
        table = pa_csv.read_csv(
            io.BytesIO(blob), read_options=pa_csv.ReadOptions(column_names=["h1", "h2"],
                                                              use_threads=False),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True,
                                              invalid_row_handler=lambda r: bad.append(r.text) or "skip"),
            convert_options=pa_csv.ConvertOptions(column_types={"h1": pa.string(), "h2": pa.string()}))
        return table.to_pylist(), bad

    try:
        whole_rows, whole_bad = parse(data[start:])
    except pa.ArrowInvalid:
        return                                 # pyarrow rejects the whole text (e.g. open quote)
    got_rows, got_bad = [], []
    for begin, end, _, _ in pieces:
        r, b = parse(data[begin:end])
        got_rows += r
        got_bad += b
    assert got_rows == whole_rows and len(got_bad) == len(whole_bad)


@SETTINGS
@given(values=st.lists(st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 99)),
                       min_size=1, max_size=80),
       size=st.integers(1, 400))
def test_union_of_json_lines_mini_batches_is_every_line_once(tmp_path_factory, values, size):
    path = tmp_path_factory.mktemp("jsonl") / "x.jsonl"
    records = [dict(v, n=i) for i, v in enumerate(values)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    ds = Dataset.Tabular.from_json_lines_files(str(path))
    got = []
    for mb in ds.plan(size):
        got.extend(mb.payload.load()["n"].tolist())
    assert got == list(range(len(records)))


@SETTINGS
@given(n=st.integers(1, 3000), group=st.integers(1, 1000), size=st.integers(200, 40_000))
def test_union_of_parquet_mini_batches_is_every_row_once(tmp_path_factory, n, group, size):
    path = tmp_path_factory.mktemp("pq") / "x.parquet"
    pq.write_table(pa.table({"n": list(range(n))}), path, row_group_size=group)
    got = []
    for mb in Dataset.Tabular.from_parquet_files(str(path)).plan(size):
        got.extend(mb.payload.load()["n"].tolist())
    assert got == list(range(n))
