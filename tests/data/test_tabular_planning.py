"""Tabular datasets: how files are cut into mini-batches, and what each mini-batch reads."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parallelrun import ConfigurationError, DataError, Dataset, TabularDataset


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def loaded(dataset, size=None, partition_keys=None):
    """(mini-batch, DataFrame) for every planned mini-batch, loaded as a worker would."""
    return [(mb, mb.payload.load()) for mb in dataset.plan(size, partition_keys)]


def rows_of(batches, column="id") -> list:
    return [v for _, df in batches for v in df[column].tolist()]


# Boundaries -----------------------------------------------------------------------------------
def test_file_exactly_at_the_size_is_one_mini_batch_one_byte_over_is_two(tmp_path):
    path = write(tmp_path / "d.csv", "ab\n" * 10)          # 30 bytes, no header
    ds = Dataset.Tabular.from_delimited_files(str(path), header=False)
    [(mb, df)] = loaded(ds, 30)
    assert df["Column1"].tolist() == ["ab"] * 10 and mb.items is None
    over = loaded(ds, 29)
    assert [len(df) for _, df in over] == [9, 1]
    assert [(p.start, p.end) for mb, _ in over for p in mb.payload.parts] == [(0, 27), (27, 30)]


def test_default_size_is_1mb_and_sizes_take_units(tmp_path):
    path = write(tmp_path / "d.csv", "id\n" + "".join(f"{i}\n" for i in range(350_000)))
    ds = Dataset.Tabular.from_delimited_files(str(path))
    assert 2 * 1024 * 1024 < os.path.getsize(path) < 2.5 * 1024 * 1024
    assert len(list(ds.plan(None))) == 3
    assert len(list(ds.plan("1mb"))) == 3 and len(list(ds.plan(1024 * 1024))) == 3
    assert len(list(ds.plan("512KB"))) == 5
    with pytest.raises(ConfigurationError, match="mini_batch_size"):
        ds.check_mini_batch_size("1TB")


def test_many_tiny_files_one_mini_batch_each_in_sorted_order(tmp_path):
    for i in reversed(range(30)):
        write(tmp_path / "d" / f"part-{i:03d}.csv", f"id,v\n{i},{i * 2}\n")
    ds = Dataset.Tabular.from_delimited_files(str(tmp_path / "d" / "*.csv"))
    batches = loaded(ds, "1KB")
    assert [mb.index for mb, _ in batches] == list(range(30))
    assert rows_of(batches) == list(range(30))
    assert [mb.label for mb, _ in batches][:2] == ["part-000.csv[5:9]", "part-001.csv[5:9]"]


def test_huge_file_split_in_many_pieces_of_at_most_the_size(tmp_path):
    path = write(tmp_path / "big.csv", "id,name\n" + "".join(f"{i},name-{i}\n" for i in range(20_000)))
    ds = Dataset.Tabular.from_delimited_files(str(path))
    batches = loaded(ds, "8KB")
    assert len(batches) > 30
    sizes = [p.end - p.start for mb, _ in batches for p in mb.payload.parts]
    assert max(sizes) <= 8 * 1024
    assert rows_of(batches) == list(range(20_000))
    # each piece starts at a record: its first line number is the line of its first row
    for mb, df in batches:
        part = mb.payload.parts[0]
        assert part.first_line == df["id"].iloc[0] + 2
        assert mb.payload.rows_hint == len(df)


def test_quoted_fields_with_newlines_are_never_cut(tmp_path):
    rows = [(i, f"line one of {i}\nline, two \"quoted\"\n\nend {i}" if i % 3 else f"plain {i}")
            for i in range(2000)]
    path = tmp_path / "q.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["id", "text"])
        writer.writerows(rows)
    ds = Dataset.Tabular.from_delimited_files(str(path))
    for size in (100, 1000, 4096):
        batches = loaded(ds, size)
        assert len(batches) > 10
        got = [(i, t) for _, df in batches for i, t in zip(df["id"], df["text"])]
        assert got == rows
        assert sum(mb.payload.read().failed_rows for mb, _ in batches) == 0


def test_literal_quotes_inside_unquoted_fields_follow_pyarrow(tmp_path):
    # 5" is a literal quote (not at a field start); only the real quoted value spans lines
    body = "".join(f'{i},5" screen,"a\nb"\n' if i % 2 else f'{i},size 7",x\n' for i in range(500))
    path = write(tmp_path / "inches.csv", "id,what,extra\n" + body)
    ds = Dataset.Tabular.from_delimited_files(str(path), set_column_types={"what": str})
    whole = pd.read_csv(path)
    for size in (64, 700):
        batches = loaded(ds, size)
        assert rows_of(batches) == list(range(500))
        assert [w for _, df in batches for w in df["what"]] == whole["what"].tolist()


def test_empty_and_header_only_files_make_no_mini_batch(tmp_path):
    write(tmp_path / "d" / "a_empty.csv", "")
    write(tmp_path / "d" / "b_header.csv", "id,v\n")
    write(tmp_path / "d" / "c_blank_lines.csv", "id,v\n\n\n")
    write(tmp_path / "d" / "d_rows.csv", "id,v\n1,2\n")
    ds = Dataset.Tabular.from_delimited_files(str(tmp_path / "d"))
    batches = loaded(ds, "1KB")
    assert [os.path.basename(mb.payload.parts[0].path) for mb, _ in batches] == [
        "c_blank_lines.csv", "d_rows.csv"]
    assert [len(df) for _, df in batches] == [0, 1]
    assert list(batches[0][1].columns) == ["id", "v"]
    empty = Dataset.Tabular.from_delimited_files(str(tmp_path / "d" / "[ab]_*.csv"))
    assert list(empty.plan("1KB")) == []
    assert list(Dataset.Tabular.from_json_lines_files(str(write(tmp_path / "e.jsonl", ""))).plan(None)) == []


def test_mixed_schemas_are_a_clear_error_or_a_union(tmp_path):
    write(tmp_path / "d" / "a.csv", "id,x\n1,10\n")
    write(tmp_path / "d" / "b.csv", "id,y\n2,20\n")
    ds = Dataset.Tabular.from_delimited_files(str(tmp_path / "d"))
    with pytest.raises(DataError, match=r"mixed schemas: .*b\.csv has columns \['id', 'y'\] but "
                                        r".*a\.csv has \['id', 'x'\].*mixed_schemas='union'"):
        loaded(ds, "1KB")
    for union in (Dataset.Tabular.from_delimited_files(str(tmp_path / "d"), mixed_schemas="union"),
                  Dataset.Tabular.from_delimited_files(str(tmp_path / "d"),
                                                       header="combine_all_files_headers")):
        frames = [df for _, df in loaded(union, "1KB")]
        assert [list(f.columns) for f in frames] == [["id", "x", "y"]] * 2
        assert frames[0]["y"].isna().all() and frames[1]["y"].tolist() == [20]
    pq.write_table(pa.table({"id": [1]}), tmp_path / "p1.parquet")
    pq.write_table(pa.table({"id": [2], "z": ["b"]}), tmp_path / "p2.parquet")
    with pytest.raises(DataError, match="mixed schemas"):
        loaded(Dataset.Tabular.from_parquet_files(str(tmp_path / "p*.parquet")), "1KB")
    merged = pd.concat([df for _, df in loaded(Dataset.Tabular.from_parquet_files(
        str(tmp_path / "p*.parquet"), mixed_schemas="union"))])
    assert merged["id"].tolist() == [1, 2] and merged["z"].tolist()[1] == "b"


def test_header_options(tmp_path):
    write(tmp_path / "d" / "1.csv", "a;b\n1;x\n")
    write(tmp_path / "d" / "2.csv", "2;y\n3;z\n")
    first = Dataset.Tabular.from_delimited_files(str(tmp_path / "d"), separator=";",
                                                 header="only_first_file_has_headers")
    df = pd.concat([df for _, df in loaded(first)])
    assert list(df.columns) == ["a", "b"] and df["a"].tolist() == [1, 2, 3]
    none = Dataset.Tabular.from_delimited_files(str(tmp_path / "d" / "2.csv"), separator=";",
                                                header=False, infer_column_types=False)
    [(_, df)] = loaded(none)
    assert list(df.columns) == ["Column1", "Column2"] and df["Column1"].tolist() == ["2", "3"]


def test_include_path_types_encoding_and_empty_values(tmp_path):
    path = write(tmp_path / "l.csv", "id,name,score\n007,caf\xe9,\n8,,1.5\n".encode("latin-1"))
    ds = Dataset.Tabular.from_delimited_files(str(path), encoding="latin1", include_path=True,
                                              set_column_types={"id": str, "score": "float32"})
    [(_, df)] = loaded(ds)
    assert df["id"].tolist() == ["007", "8"] and df["name"].tolist()[0] == "café"
    assert pd.isna(df["name"].tolist()[1]) and str(df["score"].dtype) == "float32"
    assert df["Path"].tolist() == [str(path)] * 2
    as_text = Dataset.Tabular.from_delimited_files(str(path), encoding="latin1", empty_as_string=True)
    [(_, df)] = loaded(as_text)
    assert df["name"].tolist()[1] == ""


def test_utf16_files_are_read_whole(tmp_path):
    path = write(tmp_path / "u.csv", "id,name\n1,ä\n2,ö\n".encode("utf-16"))
    ds = Dataset.Tabular.from_delimited_files(str(path), encoding="utf16")
    batches = loaded(ds, 8)
    assert len(batches) == 1 and batches[0][1]["name"].tolist() == ["ä", "ö"]


# Bad rows -------------------------------------------------------------------------------------
def test_bad_rows_are_left_out_counted_and_named_by_file_and_line(tmp_path):
    text = 'id,name,amount\n1,a,1.0\n2,b\n3,"multi\nline",3.0\n4,d,4.0,extra\n5,e,5.0\n'.encode()
    text += b"6,\xff\xfe,6.0\n7,g,seven\n8,h,8.0\n"
    path = write(tmp_path / "bad.csv", text)
    ds = Dataset.Tabular.from_delimited_files(str(path), set_column_types={"amount": float})
    [(mb, df)] = loaded(ds)
    assert df["id"].tolist() == [1, 3, 5, 8]
    payload = mb.payload
    assert payload.read().failed_rows == 4
    report = payload.read().failed_rows_report
    assert f"{path} line 3: expected 3 fields, got 2" in report
    assert f"{path} line 6: expected 3 fields, got 4" in report
    assert f"{path} line 8: undecodable bytes for encoding utf-8" in report
    assert f"{path} line 9: " in report and "seven" in report
    skipped = Dataset.Tabular.from_delimited_files(str(path), set_column_types={"amount": float},
                                                   on_bad_lines="skip")
    [(mb, df)] = loaded(skipped)
    assert len(df) == 4 and mb.payload.read().failed_rows == 0
    strict = Dataset.Tabular.from_delimited_files(str(path), on_bad_lines="error")
    with pytest.raises(DataError, match="line 3"):
        next(strict.plan(None)).payload.load()


def test_bad_rows_in_a_later_piece_keep_their_file_line(tmp_path):
    lines = ["id,v"] + [f"{i},{i}" for i in range(1000)]
    lines[901] = "900,9,9"       # line 902 of the file
    path = write(tmp_path / "late.csv", "\n".join(lines) + "\n")
    ds = Dataset.Tabular.from_delimited_files(str(path))
    batches = loaded(ds, "1KB")
    reports = [r.failed_rows_report for r in (mb.payload.read() for mb, _ in batches)
               if r.failed_rows]
    assert len(reports) == 1 and f"{path} line 902: expected 2 fields, got 3" in reports[0]
    assert len(rows_of(batches)) == 999


def test_json_lines_pieces_and_bad_lines(tmp_path):
    lines = [json.dumps({"id": i, "text": f"t{i}\nwith newline"}) for i in range(3000)]
    lines[10] = '{"id": 10, "text": '           # truncated
    lines[20] = "[1, 2]"                        # not an object
    path = write(tmp_path / "e.jsonl", "\n".join(lines) + "\n\n")
    ds = Dataset.Tabular.from_json_lines_files(str(path))
    batches = loaded(ds, "16KB")
    assert len(batches) > 3
    assert rows_of(batches) == [i for i in range(3000) if i not in (10, 20)]
    report = "".join(mb.payload.read().failed_rows_report or "" for mb, _ in batches)
    assert f"{path} line 11" in report and f"{path} line 21" in report
    assert sum(mb.payload.read().failed_rows for mb, _ in batches) == 2
    typed = Dataset.Tabular.from_json_lines_files(str(path), set_column_types={"id": "int32"},
                                                  invalid_lines="drop")
    assert str(next(typed.plan(None)).payload.load()["id"].dtype) == "int32"


# Parquet --------------------------------------------------------------------------------------
def test_parquet_row_groups_packed_by_size_and_big_groups_cut_into_row_ranges(tmp_path):
    table = pa.table({"id": pa.array(range(100_000), pa.int64()),
                      "x": pa.array([float(i) * 0.5 for i in range(100_000)])})
    path = tmp_path / "p.parquet"
    pq.write_table(table, path, row_group_size=10_000, compression="none")
    ds = Dataset.Tabular.from_parquet_files(str(path))
    group_bytes = pq.ParquetFile(path).metadata.row_group(0).total_byte_size
    packed = loaded(ds, 2 * group_bytes + 100)
    assert [p.row_groups for mb, _ in packed for p in mb.payload.parts] == [
        (0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    assert rows_of(packed) == list(range(100_000))
    cut = loaded(ds, group_bytes // 3)
    assert len(cut) >= 30 and all(p.row_range for mb, _ in cut for p in mb.payload.parts)
    assert rows_of(cut) == list(range(100_000))
    ranges = [(p.first_row, p.first_row + p.row_range[2] - p.row_range[1])
              for mb, _ in cut for p in mb.payload.parts]
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:])) and ranges[-1][1] == 100_000
    assert cut[1][0].label == f"p.parquet[rows {ranges[1][0]}:{ranges[1][1]}]"
    [(mb, whole)] = loaded(ds, "10MB")
    assert len(whole) == 100_000 and mb.payload.parts[0].row_groups is None


def test_parquet_set_column_types_unconvertible_values_are_bad_rows(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "v": ["1", "x", "3"]}), path)
    ds = Dataset.Tabular.from_parquet_files(str(path), set_column_types={"v": int})
    [(mb, df)] = loaded(ds)
    assert df["v"].tolist() == [1, 3] and mb.payload.read().failed_rows == 1
    assert f"{path} row 2: column 'v'" in mb.payload.read().failed_rows_report


# Partitions -----------------------------------------------------------------------------------
def make_partitioned(root: Path) -> None:
    n = 0
    for region in ("eu", "us"):
        for date in ("2024-01-01", "2024-01-02"):
            for part in range(2):
                rows = "".join(f"{n + i},{region}-{i}\n" for i in range(50))
                write(root / region / date / f"part{part}.csv", "id,val\n" + rows)
                n += 50
    write(root / "_SUCCESS", "")


def test_path_pattern_partitions_one_mini_batch_per_key(tmp_path):
    make_partitioned(tmp_path / "data")
    ds = Dataset.Tabular.from_delimited_files(str(tmp_path / "data" / "{region}" / "{date}" / "*.csv"))
    batches = loaded(ds, None, ["region", "date"])
    keys = [mb.payload.partition_key_value for mb, _ in batches]
    assert keys == [{"region": r, "date": d} for r in ("eu", "us")
                    for d in ("2024-01-01", "2024-01-02")]
    for mb, df in batches:
        assert len(df) == 100 and set(df["region"]) == {mb.payload.partition_key_value["region"]}
        assert df.attrs["partition_key_value"] == mb.payload.partition_key_value
    assert sorted(rows_of(batches)) == list(range(400))
    by_region = loaded(ds, None, ["region"])
    assert [len(df) for _, df in by_region] == [200, 200]
    # the same keys from partition_format, or from a pattern given as partition_keys
    fmt = Dataset.Tabular.from_delimited_files(str(tmp_path / "data"),
                                               partition_format="{region}/{date}/*.csv")
    assert [len(df) for _, df in loaded(fmt, None, ["region"])] == [200, 200]
    plain = Dataset.Tabular.from_delimited_files(str(tmp_path / "data"))
    assert [mb.payload.partition_key_value for mb, _ in loaded(plain, None, ["{region}/{date}/*.csv"])] == keys


def test_a_set_in_a_partition_pattern_means_what_it_means_in_listing(tmp_path):
    # listing read [01] as a set while partitioning read it as two plain characters, so the
    # files listed were then dropped ("matched no files")
    make_partitioned(tmp_path / "data")
    ds = Dataset.Tabular.from_delimited_files(str(tmp_path / "data" / "{region}" / "*" / "part[01].csv"))
    by_region = loaded(ds, None, ["region"])
    assert [mb.payload.partition_key_value for mb, _ in by_region] == [{"region": "eu"}, {"region": "us"}]
    assert [len(df) for _, df in by_region] == [200, 200]
    files = Dataset.File.from_files(str(tmp_path / "data" / "{region}" / "*" / "part[0].csv"))
    assert [(mb.items, mb.payload.partition_key_value) for mb in files.plan(None, partition_keys=["region"])] \
        == [(2, {"region": "eu"}), (2, {"region": "us"})]


def test_partitions_with_a_size_are_split_further_never_mixing_keys(tmp_path):
    make_partitioned(tmp_path / "data")
    ds = Dataset.Tabular.from_delimited_files(str(tmp_path / "data" / "{region}" / "{date}" / "*.csv"))
    batches = loaded(ds, "256", ["region"])
    assert len(batches) > 8
    for mb, df in batches:
        assert set(df["region"]) == {mb.payload.partition_key_value["region"]}
    assert sorted(rows_of(batches)) == list(range(400))


def test_column_partition_keys_group_rows_across_pieces(tmp_path):
    rows = "".join(f"{i},{'abc'[i % 3]},{i * 2}\n" for i in range(3000))
    write(tmp_path / "c.csv", "id,customer,v\n" + rows + "3000,a,x,y\n")
    ds = Dataset.Tabular.from_delimited_files(str(tmp_path / "c.csv"))
    batches = loaded(ds, "4KB", ["customer"])
    # with a size each key's rows are cut further; without, one mini-batch per key
    assert all(set(df["customer"]) == {mb.payload.partition_key_value["customer"]} for mb, df in batches)
    assert sorted(rows_of(batches)) == list(range(3000))
    per_key = loaded(ds, None, ["customer"])
    assert [(mb.payload.partition_key_value["customer"], len(df)) for mb, df in per_key] == [
        ("a", 1000), ("b", 1000), ("c", 1000)]
    # the bad row is counted once, by one mini-batch
    assert sum(mb.payload.read().failed_rows for mb, _ in per_key) == 1
    with pytest.raises(DataError, match=r"partition_keys \['nope'\] are neither columns"):
        loaded(ds, None, ["nope"])


# Construction ---------------------------------------------------------------------------------
def test_validation_errors_name_the_value_and_the_fix(tmp_path):
    with pytest.raises(DataError, match="matched no files"):
        Dataset.Tabular.from_delimited_files(str(tmp_path / "none*.csv"))
    write(tmp_path / "x.csv", "a\n1\n")
    with pytest.raises(DataError, match="cannot be read as parquet"):
        Dataset.Tabular.from_parquet_files(str(tmp_path / "x.csv"))
    with pytest.raises(DataError, match="separator"):
        Dataset.Tabular.from_delimited_files(str(tmp_path / "x.csv"), separator=";;")
    with pytest.raises(DataError, match="header"):
        Dataset.Tabular.from_delimited_files(str(tmp_path / "x.csv"), header="sometimes")
    with pytest.raises(DataError, match="set_column_types"):
        Dataset.Tabular.from_delimited_files(str(tmp_path / "x.csv"), set_column_types={"a": "money"})
    with pytest.raises(DataError, match="encoding"):
        Dataset.Tabular.from_delimited_files(str(tmp_path / "x.csv"), encoding="klingon")
    with pytest.raises(DataError, match="on_bad_lines"):
        Dataset.Tabular.from_delimited_files(str(tmp_path / "x.csv"), on_bad_lines="ignore")


def test_record_round_trip_and_to_pandas(tmp_path):
    path = write(tmp_path / "r.csv", "id|v\n1|a\n2|b\n")
    ds = Dataset.Tabular.from_delimited_files(str(path), separator="|", include_path=True,
                                              set_column_types={"id": "int32"})
    record = json.loads(json.dumps(ds.to_record()))
    again = TabularDataset.from_record(record)
    assert again.describe() == ds.describe() and again.spec == ds.spec
    df = again.to_pandas_dataframe()
    assert df["v"].tolist() == ["a", "b"] and str(df["id"].dtype) == "int32"
    assert ds.as_named_input("tx").name == "tx" and ds.kind == "tabular"
