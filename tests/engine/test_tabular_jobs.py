"""Whole tabular jobs through run_job with real worker processes: rows, failed records, formats."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fixtures.timeout_clock import TimeoutClock, use_timeout_clock
from parallelrun import Dataset, ParallelRunConfig, run_job

# Scores each row; rows whose id is in SHORT are left out (returned short), a mini-batch holding
# an id in RAISE raises (unless HEALED is set in the environment), and with FLAKY each mini-batch's first try raises (a marker file per
# mini-batch records that it was tried).
SCORE = """
    import os
    SHORT = {short}
    RAISE = set() if os.environ.get("HEALED") else {raise_}
    FLAKY = {flaky}
    def init(): pass
    def run(df):
        ids = set(df["id"])
        if ids & RAISE:
            raise ValueError(f"cannot score ids {{sorted(ids & RAISE)}}")
        if FLAKY:
            marker = os.path.join(os.path.dirname(__file__), f"tried-{{min(ids)}}")
            if not os.path.exists(marker):
                open(marker, "w").close()
                raise RuntimeError("first try fails")
        out = df[~df["id"].isin(SHORT)].copy()
        out["score"] = out["x"] * 2.0
        return out[["id", "score"]]
"""


def csv_data(folder: Path, rows: int = 600, files: int = 3, bad: dict | None = None) -> Path:
    """``files`` CSV files of ``rows`` rows in all: id, x; ``bad`` maps an id to a raw bad line."""
    folder.mkdir(parents=True, exist_ok=True)
    per = rows // files
    for f in range(files):
        lines = ["id,x"]
        for i in range(f * per, (f + 1) * per):
            lines.append((bad or {}).get(i, f"{i},{i * 0.5}"))
        (folder / f"part-{f}.csv").write_text("\n".join(lines) + "\n")
    return folder


def job(make_script, tmp_path, dataset, short=(), raise_=(), flaky=False, out="out", **overrides):
    src = make_script(SCORE.format(short=set(short), raise_=set(raise_), flaky=flaky))
    values = dict(source_directory=str(src), entry_script="score.py", mini_batch_size="1KB",
                  error_threshold=-1, output_action="append_row", process_count_per_node=2,
                  run_invocation_timeout=30, run_max_try=2)
    values.update(overrides)
    return run_job(ParallelRunConfig(**values), [dataset], tmp_path / out)


def text_ids(result) -> list[int]:
    return sorted(int(line.split()[0]) for line in Path(result.output_file).read_text().splitlines())


def test_rows_scored_in_text_format_each_once(make_script, tmp_path):
    ds = Dataset.Tabular.from_delimited_files(str(csv_data(tmp_path / "d")))
    result = job(make_script, tmp_path, ds)
    assert result.status == "Finished"
    assert result.minibatches_total == 6                      # 3 files of ~1.9KB at 1KB
    assert (result.items_succeeded, result.items_failed) == (600, 0)
    assert text_ids(result) == list(range(600))
    assert "7 7.0" in Path(result.output_file).read_text().splitlines()   # order not guaranteed


def test_failed_records_count_rows_short_raised_and_bad(make_script, tmp_path):
    bad = {10: "10,0.5,extra", 300: "300"}
    ds = Dataset.Tabular.from_delimited_files(str(csv_data(tmp_path / "d", bad=bad)))
    result = job(make_script, tmp_path, ds, short={1, 2}, raise_={450}, mini_batch_size="10MB")
    # one mini-batch per file (200 rows): file 2 raised, files 0 and 1 have a bad row each
    assert result.status == "Finished"
    assert (result.minibatches_succeeded, result.minibatches_failed) == (2, 1)
    assert result.items_failed == 2 + 2 + 200
    assert result.items_succeeded == 400 - 2 - 2
    assert set(text_ids(result)) == set(range(400)) - {1, 2, 10, 300}
    summary = (Path(result.log_dir) / "user/error.txt").read_text()
    assert "BadRows: 1 bad rows, first: " in summary
    assert f"{tmp_path / 'd' / 'part-0.csv'} line 12: expected 2 fields, got 3" in summary
    details = "".join(p.read_text() for p in (Path(result.log_dir) / "user/error").rglob("*.txt"))
    assert f"{tmp_path / 'd' / 'part-1.csv'} line 102: expected 2 fields, got 1" in details
    assert "ValueError: cannot score ids [450]" in details


def test_error_threshold_counts_rows(make_script, tmp_path):
    bad = {i: f"{i},not-a-number" for i in (5, 6, 7)}
    ds = Dataset.Tabular.from_delimited_files(str(csv_data(tmp_path / "d", bad=bad)),
                                              set_column_types={"x": float})
    ok = job(make_script, tmp_path, ds, error_threshold=3, out="ok")
    assert ok.status == "Finished" and ok.items_failed == 3
    failed = job(make_script, tmp_path, ds, error_threshold=2, out="failed")
    assert failed.status == "Failed"
    assert "error_threshold=2 exceeded: 3 items failed" in failed.error


def test_csv_format_writes_one_header_and_every_row_once_after_retries(make_script, tmp_path):
    ds = Dataset.Tabular.from_delimited_files(str(csv_data(tmp_path / "d")))
    result = job(make_script, tmp_path, ds, flaky=True, append_row_format="csv")
    assert result.status == "Finished" and result.retries == result.minibatches_total
    assert result.output_file.endswith("parallel_run_step.csv")
    text = Path(result.output_file).read_text()
    assert text.count("id,score") == 1 and text.startswith("id,score\n")
    df = pd.read_csv(result.output_file)
    assert sorted(df["id"]) == list(range(600))
    assert df.set_index("id").loc[7, "score"] == 7.0


def test_parquet_format_every_row_once_after_retries(make_script, tmp_path):
    ds = Dataset.Tabular.from_delimited_files(str(csv_data(tmp_path / "d")))
    result = job(make_script, tmp_path, ds, flaky=True, append_row_format="parquet",
                 append_row_file_name="scores.parquet")
    assert result.status == "Finished" and result.retries > 0
    table = pq.read_table(result.output_file)
    assert sorted(table["id"].to_pylist()) == list(range(600))
    assert table.schema.field("score").type == pa.float64()


def test_parquet_output_resumes_without_duplicates(make_script, tmp_path):
    ds = Dataset.Tabular.from_parquet_files(str(tmp_path / "p.parquet"), validate=False)
    pq.write_table(pa.table({"id": list(range(1000)), "x": [i * 0.5 for i in range(1000)]}),
                   tmp_path / "p.parquet", row_group_size=100)
    common = dict(append_row_format="parquet", mini_batch_size="1KB", error_threshold=0,
                  process_count_per_node=1, run_max_try=1)
    first = job(make_script, tmp_path, ds, raise_={550}, **common)
    assert first.status == "Failed"
    kept = pq.read_table(first.output_file)["id"].to_pylist()
    assert kept and 550 not in kept and len(kept) == len(set(kept))
    # the job is resumed as it was (same script, same settings), with the cause fixed
    src = make_script(SCORE.format(short=set(), raise_={550}, flaky=False))
    config = ParallelRunConfig(source_directory=str(src), entry_script="score.py",
                               output_action="append_row", environment_variables={"HEALED": "1"},
                               **common)
    resumed = run_job(config, [ds], tmp_path / "out", resume=True)
    assert resumed.status == "Finished"
    assert sorted(pq.read_table(resumed.output_file)["id"].to_pylist()) == list(range(1000))


def test_partitioned_job_hands_keys_to_run_as_columns_and_context(make_script, tmp_path):
    for region in ("eu", "us", "apac"):
        for day in (1, 2):
            folder = tmp_path / "data" / region / f"day={day}"
            folder.mkdir(parents=True)
            (folder / "rows.csv").write_text("v\n" + "".join(f"{i}\n" for i in range(day * 10)))
    src = make_script("""
        def init(): pass
        def run(df, mini_batch_context):
            key = mini_batch_context.partition_key_value
            assert set(df["region"]) == {key["region"]}, (set(df["region"]), key)
            return [f"{key['region']} {len(df)} {df['v'].sum()}"]
    """)
    config = ParallelRunConfig(source_directory=str(src), entry_script="score.py",
                               error_threshold=-1, output_action="append_row",
                               process_count_per_node=2, partition_keys=["region"])
    ds = Dataset.Tabular.from_delimited_files(str(tmp_path / "data"),
                                              partition_format="{region}/day={day}/rows.csv")
    result = run_job(config, [ds], tmp_path / "out")
    assert result.status == "Finished" and result.minibatches_total == 3
    lines = sorted(Path(result.output_file).read_text().splitlines())
    assert lines == ["apac 30 235", "eu 30 235", "us 30 235"]
    # one output element per mini-batch stands for 1 of its 30 rows: the rest count as failed
    assert result.items_succeeded == 3 and result.items_failed == 87


def test_cli_runs_a_tabular_job(make_script, tmp_path):
    data = csv_data(tmp_path / "d", rows=90)
    src = make_script(SCORE.format(short=set(), raise_=set(), flaky=False))
    out = subprocess.run(
        [sys.executable, "-m", "parallelrun.cli", "run", "--source-directory", str(src),
         "--entry-script", "score.py", "--input", str(data / "*.csv"), "--input-format", "csv",
         "--input-option", "set_column_types=x:float", "--mini-batch-size", "512",
         "--append-row-format", "csv", "--output", str(tmp_path / "out"),
         "--process-count-per-node", "2", "--quiet"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    df = pd.read_csv(tmp_path / "out" / "parallel_run_step.csv")
    assert sorted(df["id"]) == list(range(90))
    bad = subprocess.run(
        [sys.executable, "-m", "parallelrun.cli", "run", "--entry-script", str(src / "score.py"),
         "--input", str(data), "--input-format", "parquet", "--output", str(tmp_path / "o2")],
        capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "cannot be read as parquet" in bad.stderr


@pytest.mark.parametrize("fmt", ["text", "csv", "parquet"])
def test_list_results_in_every_format(make_script, tmp_path, fmt):
    ds = Dataset.Tabular.from_json_lines_files(str(_jsonl(tmp_path)))
    src = make_script("""
        def init(): pass
        def run(df):
            return [{"n": int(n), "twice": int(n) * 2} for n in df["n"]]
    """)
    config = ParallelRunConfig(source_directory=str(src), entry_script="score.py",
                               error_threshold=0, output_action="append_row",
                               process_count_per_node=2, mini_batch_size="256",
                               append_row_format=fmt)
    result = run_job(config, [ds], tmp_path / "out")
    assert result.status == "Finished" and result.items_succeeded == 50
    if fmt == "parquet":
        assert sorted(pq.read_table(result.output_file)["twice"].to_pylist()) == list(range(0, 100, 2))
    elif fmt == "csv":
        assert sorted(pd.read_csv(result.output_file)["twice"]) == list(range(0, 100, 2))
    else:
        assert "{'n': 0, 'twice': 0}" in Path(result.output_file).read_text().splitlines()


def _jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(f'{{"n": {i}}}\n' for i in range(50)))
    return path


def test_a_timed_out_mini_batch_counts_its_planned_rows_as_failed(make_script, tmp_path,
                                                                   monkeypatch):
    pq.write_table(pa.table({"id": list(range(400)), "x": [0.5] * 400}), tmp_path / "p.parquet",
                   row_group_size=100, compression="none")
    src = make_script(f"""
        import time
        import pyarrow.parquet, pandas   # at import, so the first run() is not slowed by them
        def init(): pass
        def run(df):
            if 150 in set(df["id"]):
                open({str(tmp_path / "hung")!r}, "w").close()
                time.sleep(60)
            return df
    """)
    # the timeout on a scripted clock: it fires once the piece of rows 150-199 (mini-batch 3)
    # hangs and is the one its worker runs, never for a slow piece on a loaded machine
    clock = TimeoutClock(tmp_path / "hung", hung_index=3)
    use_timeout_clock(monkeypatch, clock)
    config = ParallelRunConfig(source_directory=str(src), entry_script="score.py",
                               error_threshold=-1, output_action="append_row",
                               process_count_per_node=1, mini_batch_size="1KB",
                               run_invocation_timeout=2, run_max_try=1)
    result = run_job(config, [Dataset.Tabular.from_parquet_files(str(tmp_path / "p.parquet"))],
                     tmp_path / "out", listeners=[clock])
    assert result.status == "Finished" and result.minibatches_failed == 1
    assert result.items_failed == 50 and result.items_succeeded == 350    # pieces of 50 rows


def test_text_format_of_dataframes_is_values_joined_by_spaces_missing_ones_included():
    from parallelrun.script import ResultEncoder

    df = pd.DataFrame({"id": [1, 2], "x": [0.5, None], "name": ["a b", None],
                       "n": pd.array([None, 3], dtype="Int64")})
    payload, rows = ResultEncoder().encode(df)
    # a value holding a space is quoted, so that the file reads back with its columns
    assert rows == 2 and payload.decode().splitlines() == ['1 0.5 "a b" <NA>', "2 nan nan 3"]


def test_text_rows_read_back_with_their_columns_as_azure_ml_notebooks_read_them(tmp_path):
    # the many-models notebook reads the concatenated output with sep=" " and a fixed column
    # count although some values (dates with times, names) hold spaces
    from parallelrun.script import ResultEncoder

    df = pd.DataFrame({"week": pd.to_datetime(["1990-06-14 10:00", "1990-06-21 00:30"]),
                       "store": ["Store 1", 'the "big" one'], "sales": [10.5, 20.0]})
    payload, _ = ResultEncoder().encode(df)
    (tmp_path / "out.txt").write_bytes(payload)
    back = pd.read_csv(tmp_path / "out.txt", sep=" ", header=None, names=["week", "store", "sales"],
                       parse_dates=["week"])
    pd.testing.assert_frame_equal(back, df, check_dtype=False)


def test_mixed_schemas_fail_the_job_with_a_clear_error(make_script, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text("id,x\n1,0.5\n")
    (tmp_path / "d" / "b.csv").write_text("id,y\n2,0.5\n")
    ds = Dataset.Tabular.from_delimited_files(str(tmp_path / "d"))
    result = job(make_script, tmp_path, ds)
    assert result.status == "Failed"
    assert "mixed schemas" in result.error and "b.csv has columns ['id', 'y']" in result.error
    assert "mixed schemas" in (Path(result.log_dir) / "job_error.txt").read_text()
