"""The append_row output formats' conformance suite: every format (text, csv, parquet) passes it.

Each test runs a whole job through run_job with real workers and reads the output back the way a
user would (lines, pandas.read_csv, pyarrow.parquet). A format keeps every value whole and under
its own name, or refuses it loudly (the rules per format are in engine/outputs.py's docstring).
"""

from __future__ import annotations

import ast
import csv
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parallelrun import Dataset, ParallelRunConfig, run_job

FORMATS = ["text", "csv", "parquet"]

# run() turns each file's number n into the rows RESULT builds (an expression over `numbers`, the
# mini-batch's numbers, and `n`); with a file named "broken" beside the script, the mini-batch
# holding item 7 raises. Each call is noted in calls.txt.
SCRIPT = """
    import os
    import pandas as pd
    HERE = os.path.dirname(__file__)
    VALUES = {values!r}
    def init(): pass
    def run(mini_batch):
        numbers = [int(open(p).read()) for p in mini_batch]
        if 7 in numbers and os.path.exists(os.path.join(HERE, "broken")):
            raise RuntimeError("broken")
        with open(os.path.join(HERE, "calls.txt"), "a") as fh:
            fh.write(" ".join(map(str, numbers)) + "\\n")
        return {result}
"""


def job(make_script, make_files, tmp_path, fmt, result, values=(), files=10, resume=False,
        out="out", **overrides):
    """Run SCRIPT with ``result`` over ``files`` numbered files into ``tmp_path/out``."""
    src = make_script(SCRIPT.format(result=result, values=list(values)))
    settings = dict(source_directory=str(src), entry_script="score.py", mini_batch_size=2,
                    error_threshold=-1, output_action="append_row", process_count_per_node=2,
                    run_max_try=1, append_row_format=fmt)
    settings.update(overrides)
    data = Dataset.File.from_files(str(make_files(files, folder=f"data{files}")))
    return run_job(ParallelRunConfig(**settings), [data], tmp_path / out, resume=resume)


def read_rows(result, fmt) -> list:
    """The output's rows: dicts for csv and parquet (csv values as the text in the file), the
    lines for text."""
    if fmt == "csv":
        if not Path(result.output_file).read_bytes():
            return []
        frame = pd.read_csv(result.output_file, dtype=str, keep_default_na=False)
        return frame.to_dict("records")
    if fmt == "parquet":
        return pq.read_table(result.output_file).to_pylist()
    return Path(result.output_file).read_bytes().decode("utf-8").split("\n")[:-1]


def as_dicts(result, fmt) -> list[dict]:
    """Rows of dicts returned by run(), read back in any format (text: each line is str(dict))."""
    rows = read_rows(result, fmt)
    return [ast.literal_eval(r) for r in rows] if fmt == "text" else rows


def by_n(rows: list[dict]) -> dict[int, dict]:
    found = {}
    for row in rows:
        n = int(row["n"])
        assert n not in found, f"row {n} written twice"
        found[n] = row
    return found


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_row_exactly_once_across_a_resume(make_script, make_files, tmp_path, fmt):
    records = '[{"n": n, "square": n * n} for n in numbers]'
    src_broken = tmp_path / "scripts" / "broken"
    src_broken.parent.mkdir(parents=True, exist_ok=True)
    src_broken.touch()
    common = dict(error_threshold=0, process_count_per_node=1)
    first = job(make_script, make_files, tmp_path, fmt, records, files=20, **common)
    assert first.status == "Failed"
    kept = by_n(as_dicts(first, fmt))
    assert kept and 7 not in kept
    calls_before = (tmp_path / "scripts" / "calls.txt").read_text().split()
    src_broken.unlink()
    resumed = job(make_script, make_files, tmp_path, fmt, records, files=20, resume=True, **common)
    assert resumed.status == "Finished"
    rows = by_n(as_dicts(resumed, fmt))
    assert sorted(rows) == list(range(20))
    assert all(int(rows[n]["square"]) == n * n for n in rows)
    calls_after = (tmp_path / "scripts" / "calls.txt").read_text().split()[len(calls_before):]
    assert not {int(n) for n in calls_after} & set(kept)       # committed ones did not run again
    assert resumed.items_succeeded == 20


@pytest.mark.parametrize("fmt", FORMATS)
def test_columns_that_differ_between_mini_batches(make_script, make_files, tmp_path, fmt):
    # even mini-batches return n and score, odd ones n and label
    records = ('[{"n": n, "score": n / 2} if numbers[0] % 4 == 0 else {"n": n, "label": f"L{n}"} '
               "for n in numbers]")
    result = job(make_script, make_files, tmp_path, fmt, records, files=12)
    rows = as_dicts(result, fmt)
    if fmt == "csv":
        # one header cannot hold both: the job fails, naming both column sets
        assert result.status == "Failed"
        assert "['n', 'score']" in result.error and "['n', 'label']" in result.error
        assert "append_row_format='parquet'" in result.error
        header = Path(result.output_file).read_text().splitlines()[0]
        assert header in ("n,score", "n,label")
        kind = header.split(",")[1]
        # what was written is under its own name: every row of the file is of the header's kind
        for row in rows:
            n = int(row["n"])
            assert (n // 2) % 2 == (0 if kind == "score" else 1)
            assert row[kind] == (str(n / 2) if kind == "score" else f"L{n}")
        return
    assert result.status == "Finished" and result.items_succeeded == 12
    found = by_n(rows)
    assert sorted(found) == list(range(12))
    for n, row in found.items():
        if (n // 2) % 2 == 0:
            assert row["score"] == n / 2 and row.get("label") is None
        else:
            assert row["label"] == f"L{n}" and row.get("score") is None
    if fmt == "parquet":       # the union of the columns, each value under its own name
        assert set(pq.read_schema(result.output_file).names) == {"n", "score", "label"}


@pytest.mark.parametrize("fmt", FORMATS)
def test_same_columns_in_another_order(make_script, make_files, tmp_path, fmt):
    frame = ('pd.DataFrame({"n": numbers, "a": [VALUES[0] + str(n) for n in numbers], '
             '"b": [f"b{n}" for n in numbers]})[["n", "a", "b"] if numbers[0] % 4 == 0 '
             'else ["b", "n", "a"]]')
    a = "a" if fmt == "text" else 'a, "\r\n'      # reordered rows keep their quoting
    result = job(make_script, make_files, tmp_path, fmt, frame, values=[a], files=12)
    assert result.status == "Finished" and result.items_succeeded == 12
    rows = read_rows(result, fmt)
    if fmt == "text":           # no header: values in the DataFrame's own order
        assert sorted(rows) == sorted(f"{n} a{n} b{n}" if (n // 2) % 2 == 0 else f"b{n} {n} a{n}"
                                      for n in range(12))
        return
    found = by_n(rows)
    assert sorted(found) == list(range(12))
    assert all(row["a"] == f"{a}{n}" and row["b"] == f"b{n}" for n, row in found.items())
    if fmt == "csv":             # (a repeated header would have failed by_n: n == "n")
        header = Path(result.output_file).read_text().split("\n")[0]
        assert header.replace('"', "") in ("n,a,b", "b,n,a")


TRICKY = ["a,b", 'say "hi"', "two\nlines", "tab\there", "cr\rhere", "semi;colon", "  padded  ",
          "", "back\\slash", "quote'single"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_values_holding_newlines_separators_and_quotes(make_script, make_files, tmp_path, fmt):
    # a DataFrame: text writes its values as they are (a list of dicts would be repr()-escaped)
    frame = 'pd.DataFrame({"n": numbers, "value": [VALUES[n] for n in numbers]})'
    result = job(make_script, make_files, tmp_path, fmt, frame, values=TRICKY, files=10,
                 mini_batch_size=1)
    if fmt == "text":
        # a line break would split a row in two: those mini-batches are refused, loudly
        broken = [n for n, v in enumerate(TRICKY) if "\n" in v or "\r" in v]
        assert result.status == "Finished" and result.minibatches_failed == len(broken)
        assert result.items_failed == len(broken)
        errors = (Path(result.log_dir) / "user" / "error.txt").read_text()
        assert "RUN_BAD_RESULT" in errors and "line break" in errors
        lines = read_rows(result, fmt)
        assert len(lines) == 10 - len(broken)
        # values holding a space or a quote are quoted as CSV quotes them, with a space as the
        # separator: read back as Azure ML's notebooks read it (pd.read_csv(sep=" "))
        found = dict(csv.reader(lines, delimiter=" "))
        assert found == {str(n): v for n, v in enumerate(TRICKY) if n not in broken}
        return
    assert result.status == "Finished" and result.items_succeeded == 10
    found = by_n(read_rows(result, fmt))
    assert {n: row["value"] for n, row in found.items()} == dict(enumerate(TRICKY))


@pytest.mark.parametrize("fmt", FORMATS)
def test_more_results_than_items_fails_that_mini_batch(make_script, make_files, tmp_path, fmt):
    # the mini-batch holding item 4 returns three rows per item
    records = ('[{"n": n, "copy": c} for n in numbers for c in range(3 if 4 in numbers else 1)]')
    result = job(make_script, make_files, tmp_path, fmt, records, files=10, run_max_try=2)
    assert result.status == "Finished"
    assert (result.items_succeeded, result.items_failed) == (8, 2)
    assert result.minibatches_failed == 1 and result.retries == 1   # charged like an exception
    found = by_n(as_dicts(result, fmt))
    assert sorted(found) == [0, 1, 2, 3, 6, 7, 8, 9]                 # nothing of it written
    errors = (Path(result.log_dir) / "user" / "error.txt").read_text()
    assert "returned 6 results for a mini-batch of 2 items" in errors


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_results(make_script, make_files, tmp_path, fmt):
    # every item fails (run() returns nothing) except those of the mini-batch holding item 2
    records = '[{"n": n} for n in numbers] if 2 in numbers else []'
    result = job(make_script, make_files, tmp_path, fmt, records, files=10)
    assert result.status == "Finished"
    assert (result.items_succeeded, result.items_failed) == (2, 8)
    assert sorted(by_n(as_dicts(result, fmt))) == [2, 3]
    nothing = job(make_script, make_files, tmp_path, fmt, "[]", files=4, out="o2")
    assert nothing.status == "Finished" and nothing.items_failed == 4
    assert read_rows(nothing, fmt) == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_unicode(make_script, make_files, tmp_path, fmt):
    values = ["héllo", "日本語", "🙂 emoji", "e\u0301 combining", "שלום", "Ωmega ß"]
    records = '[{"n": n, "naïve": VALUES[n % len(VALUES)]} for n in numbers]'
    result = job(make_script, make_files, tmp_path, fmt, records, values=values, files=6)
    assert result.status == "Finished" and result.items_succeeded == 6
    found = by_n(as_dicts(result, fmt))
    assert {n: row["naïve"] for n, row in found.items()} == dict(enumerate(values))


def test_parquet_promotes_numbers_and_refuses_a_column_of_two_kinds(make_script, make_files,
                                                                     tmp_path):
    # ints in some mini-batches, floats in others: promoted to float, every value kept
    mixed_numbers = '[{"n": n, "x": n if numbers[0] % 4 == 0 else n + 0.5} for n in numbers]'
    result = job(make_script, make_files, tmp_path, "parquet", mixed_numbers, files=8)
    assert result.status == "Finished"
    table = pq.read_table(result.output_file)
    assert table.schema.field("x").type == pa.float64()
    assert {r["n"]: r["x"] for r in table.to_pylist()} == {
        n: float(n) if (n // 2) % 2 == 0 else n + 0.5 for n in range(8)}
    # ints in some, text in others: one Parquet column cannot hold both; the job says which
    mixed_kinds = '[{"n": n, "x": n if numbers[0] % 4 == 0 else f"x{n}"} for n in numbers]'
    failed = job(make_script, make_files, tmp_path, "parquet", mixed_kinds, files=8, out="o2")
    assert failed.status == "Failed"
    assert "column 'x' is" in failed.error and "int64" in failed.error and "string" in failed.error
    kept = pq.read_table(failed.output_file).to_pylist()    # what was committed is readable
    assert len({type(r["x"]) for r in kept}) == 1 and kept
