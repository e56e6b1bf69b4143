"""Tabular datasets on remote storage (S3 served by moto): planned and read through fsspec."""

from __future__ import annotations

import io

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from parallelrun import Dataset, Datastore, ParallelRunConfig, TabularDataset, Workspace, run_job


def test_csv_and_parquet_on_s3_split_read_and_scored(moto_s3, make_script, tmp_path):
    bucket = moto_s3.new_bucket()
    client = moto_s3.client()
    rows = "".join(f'{i},"note\n{i}"\n' for i in range(3000))
    client.put_object(Bucket=bucket, Key="tx/2024/a.csv", Body=("id,note\n" + rows).encode())
    client.put_object(Bucket=bucket, Key="tx/2024/b.csv", Body=b"id,note\n3000,x\n3001,y,z\n")
    buf = io.BytesIO()
    pq.write_table(pa.table({"id": list(range(5000))}), buf, row_group_size=1000)
    client.put_object(Bucket=bucket, Key="pq/p.parquet", Body=buf.getvalue())
    ws = Workspace.create("ws", path=tmp_path)
    store = Datastore.register_s3_bucket(ws, "raw", bucket=bucket, endpoint_url=moto_s3.endpoint_url,
                                         access_key_id=moto_s3.access_key_id,
                                         secret_access_key=moto_s3.secret_access_key)

    ds = Dataset.Tabular.from_delimited_files(store.path("tx/{year}/*.csv"))
    batches = list(ds.plan("8KB"))
    assert len(batches) > 3
    assert moto_s3.secret_access_key not in repr([mb.payload.parts for mb in batches])
    frames = [mb.payload.load() for mb in batches]
    assert sorted(pd.concat(frames)["id"]) == list(range(3001))
    assert set(pd.concat(frames)["year"]) == {"2024"}
    assert sum(mb.payload.read().failed_rows for mb in batches) == 1
    record = ds.to_record()
    assert moto_s3.secret_access_key not in repr(record)
    assert isinstance(TabularDataset.from_record(dict(record, paths=[store.path("tx/{year}/*.csv")])),
                      TabularDataset)

    src = make_script("""
        def init(): pass
        def run(df):
            return df[["id"]]
    """)
    config = ParallelRunConfig(source_directory=str(src), entry_script="score.py",
                               error_threshold=-1, output_action="append_row",
                               process_count_per_node=2, mini_batch_size="4KB",
                               append_row_format="csv")
    parquet = Dataset.Tabular.from_parquet_files(store.path("pq/p.parquet"))
    result = run_job(config, [parquet], tmp_path / "out")
    assert result.status == "Finished" and result.minibatches_total > 1
    assert sorted(pd.read_csv(result.output_file)["id"]) == list(range(5000))
