"""MLTable folders read as Azure ML's mltable 1.7 reads them (the expected frames below are what
mltable.load(folder).to_pandas_dataframe() gave for the same files): row order, Path first,
partition columns from the path, and each transformation."""

from __future__ import annotations

import pytest
import yaml

from parallelrun.data.files import FileDataset
from parallelrun.data.mltable import load_mltable
from parallelrun.errors import DataError

READ = {"read_delimited": {"delimiter": ",", "encoding": "ascii",
                           "header": "all_files_same_headers", "include_path_column": True}}
PARTITIONS = {"extract_columns_from_partition_format":
              {"partition_format": "{Store}/{Brand}/{file_name}.{extension}"}}


@pytest.fixture
def table(tmp_path):
    """The 1a sample's partitioned output shape: <Store>/<Brand>/partitioned_data.csv."""
    for store, brand, rows in [("1000", "dominicks", ["1990-06-14,5", "1990-06-21,6"]),
                               ("1000", "tropicana", ["1990-06-14,7"]),
                               ("2", "dominicks", ["1990-06-14,9"])]:
        folder = tmp_path / "t" / store / brand
        folder.mkdir(parents=True)
        (folder / "partitioned_data.csv").write_text("WeekStarting,Quantity\n" + "\n".join(rows) + "\n")

    def write(*transformations, paths=({"pattern": "./**/*.csv"},)):
        (tmp_path / "t" / "MLTable").write_text(yaml.safe_dump(
            {"type": "mltable", "paths": list(paths), "transformations": list(transformations)}))
        return load_mltable(tmp_path / "t")

    return write


def frame(ds):
    df = ds.to_pandas_dataframe()
    return [list(df.columns)] + [[str(v) for v in row] for row in df.itertuples(index=False)]


def test_partition_columns_come_from_the_path_after_the_data_and_path_comes_first(table):
    ds = table(READ, PARTITIONS)
    rows = frame(ds)
    assert rows[0] == ["Path", "WeekStarting", "Quantity", "Store", "Brand", "file_name",
                       "extension"]
    assert [r[1:5] for r in rows[1:]] == [
        ["1990-06-14 00:00:00", "5", "1000", "dominicks"],
        ["1990-06-21 00:00:00", "6", "1000", "dominicks"],
        ["1990-06-14 00:00:00", "7", "1000", "tropicana"],
        ["1990-06-14 00:00:00", "9", "2", "dominicks"]]
    assert rows[1][0].endswith("/t/1000/dominicks/partitioned_data.csv")
    # the 1a sample's table: partition keys Store, Brand plan one mini-batch per key, no reads
    ds = table(READ, PARTITIONS, {"drop_columns": ["Path", "file_name", "extension"]})
    batches = list(ds.plan(None, ["Store", "Brand"]))
    assert [mb.payload.partition_key_value for mb in batches] == [
        {"Store": "1000", "Brand": "dominicks"}, {"Store": "1000", "Brand": "tropicana"},
        {"Store": "2", "Brand": "dominicks"}]
    assert list(batches[0].payload.load().columns) == ["WeekStarting", "Quantity", "Store", "Brand"]


@pytest.mark.parametrize("transformation, expected", [
    ({"take": 2}, [["5"], ["6"]]),
    ({"skip": 1}, [["6"], ["7"], ["9"]]),
    ({"filter": 'col("Quantity") > 5'}, [["6"], ["7"], ["9"]]),
    ({"filter": 'col("Quantity") >= 6 and not col("Quantity") == 9'}, [["6"], ["7"]]),
    ({"convert_column_types": [{"columns": "Quantity", "column_type": "float"}]},
     [["5.0"], ["6.0"], ["7.0"], ["9.0"]]),
])
def test_row_transformations(table, transformation, expected):
    rows = frame(table(READ, transformation, {"keep_columns": ["Quantity"]}))
    assert rows[0] == ["Quantity"] and rows[1:] == expected


def test_take_and_skip_count_rows_across_mini_batches(table):
    ds = table(READ, {"skip": 1}, {"take": 2}, {"keep_columns": "Quantity"})
    batches = list(ds.plan(None))
    assert [mb.index for mb in batches] == [0, 1]      # the last file is outside the window
    assert [list(mb.payload.load()["Quantity"]) for mb in batches] == [[6], [7]]


def test_datetime_conversion_with_formats_and_column_selection(table):
    ds = table(READ, {"convert_column_types": [
        {"columns": ["WeekStarting"], "column_type": {"datetime": {"formats": ["%Y-%m-%d"]}}}]},
        {"drop_columns": "Path"})
    df = ds.to_pandas_dataframe()
    assert str(df["WeekStarting"].dtype).startswith("datetime64") and "Path" not in df.columns


def test_a_paths_only_table_is_a_file_dataset(table):
    ds = table()
    assert isinstance(ds, FileDataset)
    assert [p.split("/t/")[1] for p in ds.iter_files()] == [
        "1000/dominicks/partitioned_data.csv", "1000/tropicana/partitioned_data.csv",
        "2/dominicks/partitioned_data.csv"]


@pytest.mark.parametrize("transformation, message", [
    ({"filter": "__import__('os')"}, "only col"),
    ({"take": -1}, "a number of rows"),
    ({"read_delta_lake": {}}, "not supported"),
])
def test_bad_transformations_are_refused_before_any_work(table, transformation, message):
    with pytest.raises(DataError, match=message):
        table(READ, transformation)
