"""Azure ML v1 dataset code as written (issue #18): (datastore, "path") tuples, FileDataset
partitions, download and mount, TabularDataset subsetting and partition_by."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from parallelrun import Dataset, DataError, ParallelRunConfig, Workspace, run_job


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return Workspace.create(name="v1-data", path=tmp_path)


def _audio_tree(store) -> None:
    """The partition-per-folder notebook's layout on a datastore: <user>/<season>/<genre>.wav."""
    for user, season, genre, size in [("user1", "winter", "disco", 3), ("user1", "fall", "orchestra", 5),
                                      ("user2", "summer", "piano", 7), ("user3", "fall", "spirituality", 11),
                                      ("user4", "spring", "piano", 13), ("user4", "fall", "piano", 17)]:
        folder = os.path.join("test_files", f"{user}-{season}")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{genre}.wav"), "wb") as fh:
            fh.write(b"x" * size)
        store.upload(folder, f"dataset_partition_test/{user}/{season}", overwrite=True,
                     show_progress=False)


PARTITION_SCRIPT = """
import os
def init():
    pass
def run(mini_batch, mini_batch_context):
    key = mini_batch_context.partition_key_value
    total = sum(os.path.getsize(p) for p in mini_batch)
    return [f"{os.path.basename(p)},{key['user']},{key['genres']},{total}" for p in mini_batch]
"""


def test_file_partitions_from_a_datastore_tuple_make_one_mini_batch_per_key(ws, tmp_path):
    store = ws.get_default_datastore()
    _audio_tree(store)
    ds = Dataset.File.from_files(path=(store, "dataset_partition_test/*/*/*.wav"),
                                 partition_format="dataset_partition_test/{user}/{season}/{genres}.wav",
                                 validate=False)
    assert ds.partition_keys == ["user", "season", "genres"]
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "sizes.py").write_text(PARTITION_SCRIPT)
    config = ParallelRunConfig(source_directory="code", entry_script="sizes.py", error_threshold=0,
                               output_action="append_row", partition_keys=["user", "genres"],
                               process_count_per_node=2)
    result = run_job(config, [ds], "out")
    assert result.status == "Finished" and result.minibatches_succeeded == 5
    rows = sorted(open("out/parallel_run_step.txt").read().split())
    # user4's two piano files (13 + 17 bytes) are one mini-batch; every other key has one file
    assert rows == sorted(["disco.wav,user1,disco,3", "orchestra.wav,user1,orchestra,5",
                           "piano.wav,user2,piano,7", "spirituality.wav,user3,spirituality,11",
                           "piano.wav,user4,piano,30", "piano.wav,user4,piano,30"])


def test_partition_keys_a_file_dataset_lacks_are_refused(ws):
    store = ws.get_default_datastore()
    _audio_tree(store)
    ds = Dataset.File.from_files(path=[(store, "dataset_partition_test/{user}/*/*.wav")])
    assert ds.partition_keys == ["user"]
    with pytest.raises(DataError, match=r"\['genre'\] are not keys"):
        list(ds.plan(None, ["genre"]))


def test_download_and_mount_give_the_files_locally(ws, tmp_path):
    store = ws.get_default_datastore()
    _audio_tree(store)
    ds = Dataset.File.from_files(path=(store, "dataset_partition_test/user4/"))
    files = ds.download(target_path="copy")
    assert sorted(os.path.relpath(f, "copy") for f in files) == ["fall/piano.wav", "spring/piano.wav"]
    with pytest.raises(DataError, match="already exists"):
        ds.download(target_path="copy")
    assert ds.download(target_path="copy", overwrite=True) == files
    both = Dataset.File.from_files(path=[(store, "dataset_partition_test/user1/"),
                                         (store, "dataset_partition_test/user2/")])
    with both.mount() as context:
        mounted = context.mount_point
        found = sorted(os.path.relpath(os.path.join(d, f), mounted)
                       for d, _, names in os.walk(mounted) for f in names)
        assert found == ["user1/fall/orchestra.wav", "user1/winter/disco.wav",
                         "user2/summer/piano.wav"]
        assert open(os.path.join(mounted, "user2/summer/piano.wav"), "rb").read() == b"x" * 7
    assert not os.path.exists(mounted)


def _oj(store) -> pd.DataFrame:
    frame = pd.DataFrame({"WeekStarting": ["1990-06-14", "1990-06-21", "1990-06-14", "1990-06-21",
                                           "1990-06-14", "1990-06-21"],
                          "Store": [2, 2, 2, 2, 5, 5], "Brand": ["dominicks", "dominicks", "tropicana",
                                                                 "tropicana", "dominicks", "dominicks"],
                          "INCOME": [10.5, 10.5, 10.5, 10.5, 11.0, 11.0]})
    frame.to_csv("oj.csv", index=False)
    store.upload_files(["./oj.csv"], ".", "oj_sales_data", overwrite=True, show_progress=False)
    return frame


def test_tabular_subsetting_as_azure_ml_defines_it(ws):
    store = ws.get_default_datastore()
    frame = _oj(store)
    ds = Dataset.Tabular.from_delimited_files(path=(store, "oj_sales_data/*.csv"))
    assert ds.take(2).to_pandas_dataframe()["WeekStarting"].astype(str).tolist() == \
        ["1990-06-14", "1990-06-21"]
    assert ds.skip(4).to_pandas_dataframe()["Store"].tolist() == [5, 5]
    assert list(ds.keep_columns(["INCOME", "Store"]).to_pandas_dataframe().columns) == ["Store", "INCOME"]
    assert list(ds.drop_columns("Brand").to_pandas_dataframe().columns) == ["WeekStarting", "Store", "INCOME"]
    first, second = ds.random_split(0.5, seed=7)
    a, b = first.to_pandas_dataframe(), second.to_pandas_dataframe()
    assert len(a) + len(b) == len(frame)
    assert len(pd.concat([a, b]).drop_duplicates()) == len(frame)     # each row in one half
    assert first.to_pandas_dataframe().equals(a)            # the same seed, the same split
    with pytest.raises(DataError, match="not in"):
        ds.keep_columns("Nope").to_pandas_dataframe()
    # a subset is a job input like any other: its rows are what the job reads
    registered = ds.skip(1).take(3).register(ws, "oj-middle")
    again = Dataset.get_by_name(ws, "oj-middle")
    assert again.to_pandas_dataframe().equals(registered.to_pandas_dataframe())
    planned = list(again.plan("1MB"))
    assert len(planned) == 1 and len(planned[0].payload.load()) == 3


def test_partition_by_copies_the_rows_and_partitions_by_the_keys(ws):
    store = ws.get_default_datastore()
    _oj(store)
    ds = Dataset.Tabular.from_delimited_files(path=(store, "oj_sales_data/*.csv"))
    partitioned = ds.partition_by(partition_keys=["Store", "Brand"],
                                  target=(store, "partition_by_key_res"), name="partitioned_oj_data")
    assert partitioned.partition_keys == ["Store", "Brand"]
    assert Dataset.get_by_name(ws, "partitioned_oj_data").partition_keys == ["Store", "Brand"]
    df = partitioned.to_pandas_dataframe()
    assert list(df.columns) == ["WeekStarting", "INCOME", "Store", "Brand"]   # keys last, as text
    assert sorted(zip(df["Store"], df["Brand"])) == sorted(
        [("2", "dominicks")] * 2 + [("2", "tropicana")] * 2 + [("5", "dominicks")] * 2)
    plans = list(partitioned.plan(None, ["Store", "Brand"]))
    assert sorted(mb.label for mb in plans) == ["Store=2,Brand=dominicks", "Store=2,Brand=tropicana",
                                                "Store=5,Brand=dominicks"]
