"""OutputFileDatasetConfig (destination, as_upload, read_delimited_files, register_on_complete,
as_input) and DataReference, as Azure ML's v1 pipelines use them (issue #18)."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from parallelrun import (ConfigurationError, Dataset, DataReference, Datastore, Experiment,
                         OutputFileDatasetConfig, ParallelRunConfig, ParallelRunStep, Pipeline,
                         PythonScriptStep, StorageError)

from pipeline_helpers import rows_of, script

# writes one CSV per store, a note that as_upload's source_globs leaves behind, and checks
# the variables Azure ML sets
PREP = script("""
    import argparse, os
    import pandas as pd

    parser = argparse.ArgumentParser()
    parser.add_argument("--raw")
    parser.add_argument("--out")
    args = parser.parse_args()
    assert os.environ["prepared"] == args.out == os.environ["AZUREML_DATAREFERENCE_prepared"]
    assert os.environ["AZUREML_DATAREFERENCE_raw"] == args.raw
    frame = pd.read_csv(os.path.join(args.raw, "sales.csv"))
    for store, rows in frame.groupby("Store"):
        os.makedirs(os.path.join(args.out, str(store)), exist_ok=True)
        rows.to_csv(os.path.join(args.out, str(store), "part.csv"), index=False)
    open(os.path.join(args.out, "notes.txt"), "w").write("not uploaded")
""")

TOTALS = script("""
    def init():
        pass

    def run(mini_batch):
        return [f"{store} {quantity}" for store, quantity in
                mini_batch.groupby("Store")["Quantity"].sum().items()]
""")


@pytest.fixture
def sales(ws, tmp_path):
    (tmp_path / "raw").mkdir()
    pd.DataFrame({"Store": [1, 1, 2], "Quantity": [10, 20, 5]}).to_csv(
        tmp_path / "raw" / "sales.csv", index=False)
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "prep.py").write_text(PREP)
    (tmp_path / "code" / "totals.py").write_text(TOTALS)
    return Datastore.register_local(ws, datastore_name="raw_store", path=str(tmp_path / "raw"))


def test_an_uploaded_output_is_registered_and_read_as_a_table_by_the_next_step(ws, sales):
    store = ws.get_default_datastore()
    raw = DataReference(datastore=sales, data_reference_name="raw")
    prepared = (OutputFileDatasetConfig(name="prepared", destination=(store, "prep/{run-id}"))
                .as_upload(overwrite=False, source_globs=["*/*.csv"])
                .read_delimited_files(partition_format="{Part}/part.csv")
                .register_on_complete("prepared_sales", description="per store",
                                      tags={"stage": "prep"}))
    prep = PythonScriptStep(script_name="prep.py", source_directory="code", inputs=[raw],
                            arguments=["--raw", raw, "--out", prepared])
    totals = ParallelRunStep(
        name="totals", inputs=[prepared.as_input("sales")],
        parallel_run_config=ParallelRunConfig(
            source_directory="code", entry_script="totals.py", mini_batch_size="1MB",
            error_threshold=-1, output_action="append_row", process_count_per_node=1,
            partition_keys=["Part"]),
        output=OutputFileDatasetConfig(name="totals"))
    run = Experiment(ws, "outputs").submit(Pipeline(workspace=ws, steps=[prep, totals]))
    run.wait_for_completion(raise_on_error=True)
    prep_run = run.find_step_run("prep.py")[0]
    # delivered under the destination, {run-id} filled in, only the files the globs chose
    target = os.path.join(store.path_on_disk, "prep", prep_run.id)
    assert sorted(os.listdir(target)) == ["1", "2"]
    # registered, as a table with the partition column
    registered = Dataset.get_by_name(ws, "prepared_sales")
    assert registered.kind == "tabular" and registered.registration["tags"] == {"stage": "prep"}
    frame = registered.to_pandas_dataframe().sort_values("Quantity")
    assert frame["Quantity"].tolist() == [5, 10, 20]
    assert frame["Part"].astype(str).tolist() == ["2", "1", "1"]
    # the next step read it as a table, one mini-batch per part; its own output went to the
    # default destination dataset/{run-id}/{output-name}
    totals_run = run.find_step_run("totals")[0]
    folder = os.path.join(store.path_on_disk, "dataset", totals_run.id, "totals")
    assert rows_of(os.path.join(folder, "parallel_run_step.txt")) == ["1 30", "2 5"]


def test_upload_without_overwrite_refuses_a_file_already_there(ws, sales):
    store = ws.get_default_datastore()
    os.makedirs(os.path.join(store.path_on_disk, "fixed", "1"))
    open(os.path.join(store.path_on_disk, "fixed", "1", "part.csv"), "w").write("old")
    raw = DataReference(datastore=sales, data_reference_name="raw")
    prepared = OutputFileDatasetConfig(name="prepared", destination=(store, "fixed")).as_upload()
    prep = PythonScriptStep(script_name="prep.py", source_directory="code", inputs=[raw],
                            arguments=["--raw", raw, "--out", prepared])
    run = Experiment(ws, "outputs").submit(Pipeline(workspace=ws, steps=[prep]))
    run.wait_for_completion(raise_on_error=False)
    assert run.get_status() == "Failed"
    assert "overwrite=True" in run.find_step_run("prep.py")[0].get_details()["error"]
    assert open(os.path.join(store.path_on_disk, "fixed", "1", "part.csv")).read() == "old"


def test_mistakes_are_named(ws):
    with pytest.raises(ConfigurationError, match="destination"):
        OutputFileDatasetConfig(destination="just/a/path")
    with pytest.raises(ConfigurationError, match="source_globs"):
        OutputFileDatasetConfig().as_upload(source_globs=[3])
    with pytest.raises(ConfigurationError, match="datastore"):
        DataReference("workspaceblobstore")
    output = OutputFileDatasetConfig(name="scores")
    with pytest.raises(ConfigurationError, match="as_input"):
        PythonScriptStep(script_name="x.py", outputs=[output.as_input("scores_in")])


def test_a_script_step_never_clears_a_destination_holding_the_users_files(ws, sales, tmp_path):
    # mount mode on a local datastore writes in place: the folder the user named is theirs
    store = ws.get_default_datastore()
    target = os.path.join(store.path_on_disk, "shared")
    os.makedirs(target)
    with open(os.path.join(target, "keep.txt"), "w") as fh:
        fh.write("the user's")
    out = OutputFileDatasetConfig(name="prepared", destination=(store, "shared"))
    raw = DataReference(datastore=sales, data_reference_name="raw")
    prep = PythonScriptStep(script_name="prep.py", source_directory="code", inputs=[raw],
                            arguments=["--raw", raw, "--out", out])
    run = Experiment(ws, "in-place").submit(Pipeline(workspace=ws, steps=[prep]))
    run.wait_for_completion(raise_on_error=True)
    assert open(os.path.join(target, "keep.txt")).read() == "the user's"
    assert os.path.exists(os.path.join(target, "1", "part.csv"))
