"""An entry script may ask for pyarrow Tables instead of pandas DataFrames (MINI_BATCH_FORMAT),
through run_job with real worker processes: what run() receives, rows once each, bad rows, the
refusal of an unknown format before any mini-batch runs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from parallelrun import Dataset, ParallelRunConfig, run_job

ROWS = 600


def csv_data(folder: Path, bad: dict | None = None) -> Path:
    """3 CSV files of 200 rows: id, x; ``bad`` maps an id to a raw bad line."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(3):
        lines = ["id,x"] + [(bad or {}).get(i, f"{i},{i * 0.5}") for i in range(f * 200, f * 200 + 200)]
        (folder / f"part-{f}.csv").write_text("\n".join(lines) + "\n")
    return folder


def job(make_script, tmp_path: Path, body: str, dataset, **overrides):
    values = dict(source_directory=str(make_script(body)), entry_script="score.py",
                  mini_batch_size="1KB", error_threshold=-1, output_action="append_row",
                  process_count_per_node=2, run_invocation_timeout=60)
    values.update(overrides)
    return run_job(ParallelRunConfig(**values), [dataset], tmp_path / "out")


# run() fails unless it gets a pyarrow Table; it returns the ids as a list
ARROW_LIST = """
    import pyarrow as pa
    MINI_BATCH_FORMAT = "pyarrow"
    def init(): pass
    def run(table):
        if not isinstance(table, pa.Table):
            raise TypeError(f"got {type(table).__name__}")
        return [f"{i} {x}" for i, x in zip(table["id"].to_pylist(), table["x"].to_pylist())]
"""


def test_a_script_asking_for_pyarrow_gets_tables_and_writes_every_row_once(make_script, tmp_path):
    dataset = Dataset.Tabular.from_delimited_files(str(csv_data(tmp_path / "data") / "*.csv"))
    result = job(make_script, tmp_path, ARROW_LIST, dataset)
    assert result.succeeded, result.error
    assert (result.items_succeeded, result.items_failed) == (ROWS, 0)
    rows = pd.read_csv(result.output_file, sep=" ", header=None, names=["id", "x"])
    assert sorted(rows["id"]) == list(range(ROWS))
    assert (rows["x"] == rows["id"] * 0.5).all()
    assert result.minibatches_succeeded > 3      # several mini-batches per file: byte ranges


def test_without_mini_batch_format_run_gets_a_dataframe_as_in_azure_ml(make_script, tmp_path):
    body = """
        import pandas as pd
        def init(): pass
        def run(df):
            assert isinstance(df, pd.DataFrame), type(df)
            return df["id"].tolist()
    """
    dataset = Dataset.Tabular.from_delimited_files(str(csv_data(tmp_path / "data") / "*.csv"))
    result = job(make_script, tmp_path, body, dataset)
    assert result.succeeded, result.error
    lines = Path(result.output_file).read_text().split()
    assert sorted(map(int, lines)) == list(range(ROWS))


@pytest.mark.parametrize("append_row_format", ["text", "csv", "parquet"])
def test_floats_returned_as_a_list_are_written_as_str_writes_them(make_script, tmp_path,
                                                                   append_row_format):
    # whole numbers, tiny and huge values and 17 digits: where a fast formatter could differ
    body = """
        MINI_BATCH_FORMAT = "pyarrow"
        VALUES = [3.0, -0.0, 1e-05, 1.5e16, 1/3, -13463053035.748682, 0.1, 1e300, 2.5]
        def init(): pass
        def run(table):
            return [VALUES[i % len(VALUES)] * (1 + i // len(VALUES)) for i in table["id"].to_pylist()]
    """
    dataset = Dataset.Tabular.from_delimited_files(str(csv_data(tmp_path / "data") / "*.csv"))
    result = job(make_script, tmp_path, body, dataset, mini_batch_size="4KB",
                 append_row_format=append_row_format)
    assert result.succeeded, result.error
    values = [3.0, -0.0, 1e-05, 1.5e16, 1 / 3, -13463053035.748682, 0.1, 1e300, 2.5]
    expected = sorted((values[i % 9] * (1 + i // 9) for i in range(ROWS)))
    if append_row_format == "text":
        lines = Path(result.output_file).read_text().splitlines()
        assert sorted(lines, key=float) == [str(v) for v in expected]
    elif append_row_format == "csv":
        assert sorted(pd.read_csv(result.output_file)["result"]) == expected
    else:
        assert sorted(pq.read_table(result.output_file)["result"].to_pylist()) == expected


def test_bad_rows_of_a_pyarrow_mini_batch_count_as_failed_records(make_script, tmp_path):
    data = csv_data(tmp_path / "data", bad={5: "5,0.5,extra", 401: "401"})
    dataset = Dataset.Tabular.from_delimited_files(str(data / "*.csv"))
    result = job(make_script, tmp_path, ARROW_LIST, dataset)
    assert (result.items_succeeded, result.items_failed) == (ROWS - 2, 2)
    rows = pd.read_csv(result.output_file, sep=" ", header=None, names=["id", "x"])
    assert sorted(rows["id"]) == sorted(set(range(ROWS)) - {5, 401})
    errors = (Path(result.log_dir) / "user" / "error.txt").read_text()
    assert "part-0.csv line 7" in errors and "part-2.csv line 3" in errors


def test_partition_keys_reach_a_pyarrow_script_as_columns_and_context(make_script, tmp_path):
    for region in ("east", "west"):
        folder = tmp_path / "data" / region
        folder.mkdir(parents=True)
        (folder / "a.csv").write_text("id,x\n" + "".join(f"{i},{i}.5\n" for i in range(50)))
    body = """
        MINI_BATCH_FORMAT = "pyarrow"
        def init(): pass
        def run(table, context):
            region = context.partition_key_value["region"]
            assert set(table["region"].to_pylist()) == {region}
            return [f"{region} {i}" for i in table["id"].to_pylist()]
    """
    dataset = Dataset.Tabular.from_delimited_files(
        str(tmp_path / "data" / "{region}" / "*.csv"))
    result = job(make_script, tmp_path, body, dataset, mini_batch_size=None,
                 partition_keys=["region"])
    assert result.succeeded, result.error
    lines = sorted(Path(result.output_file).read_text().splitlines())
    assert lines == sorted(f"{r} {i}" for r in ("east", "west") for i in range(50))


def test_an_unknown_mini_batch_format_fails_the_job_before_any_mini_batch(make_script, tmp_path):
    body = """
        MINI_BATCH_FORMAT = "arrow"
        def init(): pass
        def run(table):
            open(__file__ + ".ran", "w").close()
            return []
    """
    dataset = Dataset.Tabular.from_delimited_files(str(csv_data(tmp_path / "data") / "*.csv"))
    result = job(make_script, tmp_path, body, dataset)
    assert not result.succeeded
    assert "MINI_BATCH_FORMAT = 'arrow'" in result.error
    assert "'pandas', 'pyarrow'" in result.error
    assert result.items_succeeded == 0
    assert not (tmp_path / "scripts" / "score.py.ran").exists()


@pytest.mark.parametrize("append_row_format", ["text", "parquet"])
def test_run_may_return_a_pyarrow_table(make_script, tmp_path, append_row_format):
    body = """
        import pyarrow.compute as pc
        MINI_BATCH_FORMAT = "pyarrow"
        def init(): pass
        def run(table):
            return table.append_column("score", pc.multiply(table["x"], 2.0)).select(["id", "score"])
    """
    dataset = Dataset.Tabular.from_delimited_files(str(csv_data(tmp_path / "data") / "*.csv"))
    result = job(make_script, tmp_path, body, dataset, append_row_format=append_row_format)
    assert result.succeeded, result.error
    if append_row_format == "text":
        rows = pd.read_csv(result.output_file, sep=" ", header=None, names=["id", "score"])
    else:
        rows = pq.read_table(result.output_file).to_pandas()
    assert sorted(rows["id"]) == list(range(ROWS)) and (rows["score"] == rows["id"]).all()
