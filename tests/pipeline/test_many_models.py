"""The many-models pattern (train one model per partition, then score with each): entry scripts
register models from inside run() and find them with Model.list(ws, tags=...) (issue #18)."""

from __future__ import annotations

import pandas as pd

from parallelrun import (Dataset, Experiment, ParallelRunConfig, ParallelRunStep, Pipeline,
                         PipelineData, PipelineParameter)

from pipeline_helpers import rows_of, script

TRAIN = script("""
    import os, pickle
    from azureml.core import Model, Run

    def init():
        pass

    def run(mini_batch, mini_batch_context):
        store = mini_batch_context.partition_key_value["Store"]
        run = Run.get_context()
        mean = float(mini_batch["Quantity"].mean())          # the "model": a mean per store
        path = f"model_{store}.pkl"
        with open(path, "wb") as fh:
            pickle.dump(mean, fh)
        run.upload_file(f"outputs/{path}", path)
        os.remove(path)
        run.register_model(model_name=f"store-{store}", model_path=f"outputs/{path}",
                           tags={"Store": store, "kind": "many-models"})
        run.log_table("trained", {"store": [store], "rows": [len(mini_batch)]})
        run.child_run(name=f"store-{store}").log("mean", mean)
        assert run.get_status() == "Running" and run.parent is not None
        return [f"{store} {mean}"]
""")

SCORE = script("""
    import pickle
    from azureml.core import Model, Run

    def init():
        global models
        ws = Run.get_context().experiment.workspace
        models = {m.tags["Store"]: m for m in Model.list(ws, tags=[["kind", "many-models"]])}

    def run(mini_batch, mini_batch_context):
        store = mini_batch_context.partition_key_value["Store"]
        with open(Model.get_model_path(models[store].name), "rb") as fh:
            mean = pickle.load(fh)
        return [f"{store} {q} {q - mean}" for q in mini_batch["Quantity"]]
""")


def test_train_per_partition_then_score_with_the_registered_models(ws, tmp_path):
    frame = pd.DataFrame({"Store": [1, 1, 2, 2, 2], "Quantity": [10, 20, 1, 2, 3]})
    frame.to_csv("sales.csv", index=False)
    store = ws.get_default_datastore()
    store.upload_files(["./sales.csv"], ".", "sales", overwrite=True)
    sales = Dataset.Tabular.from_delimited_files(path=(store, "sales/*.csv"))
    partitioned = sales.partition_by(["Store"], target=(store, "by_store"))
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "train.py").write_text(TRAIN)
    (tmp_path / "code" / "score.py").write_text(SCORE)
    trained = PipelineData("trained", datastore=store)
    scored = PipelineData("scored", datastore=store)
    workers = PipelineParameter(name="workers", default_value=1)
    config = dict(source_directory="code", output_action="append_row", partition_keys=["Store"],
                  process_count_per_node=workers, run_max_try=1)
    # training returns one row per partition, not per input row: error_threshold=-1, as the
    # many-models accelerator sets it
    train = ParallelRunStep(name="train", inputs=[partitioned.as_named_input("sales")],
                            parallel_run_config=ParallelRunConfig(entry_script="train.py",
                                                                  error_threshold=-1, **config),
                            output=trained)
    score = ParallelRunStep(name="score", inputs=[partitioned.as_named_input("sales")],
                            parallel_run_config=ParallelRunConfig(entry_script="score.py",
                                                                  error_threshold=0, **config),
                            output=scored)
    score.run_after(train)
    run = Experiment(ws, "many-models").submit(Pipeline(workspace=ws, steps=[train, score]),
                                               pipeline_parameters={"workers": 2})
    run.wait_for_completion(raise_on_error=True)
    train_run, score_run = run.find_step_run("train")[0], run.find_step_run("score")[0]
    assert rows_of(train_run.get_output_data("trained").local_path + "/parallel_run_step.txt") == \
        ["1 15.0", "2 2.0"]
    assert rows_of(score_run.get_output_data("scored").local_path + "/parallel_run_step.txt") == \
        ["1 10 -5.0", "1 20 5.0", "2 1 -1.0", "2 2 0.0", "2 3 1.0"]
    metrics = train_run.get_metrics()
    assert (metrics["store-1/mean"], metrics["store-2/mean"]) == (15.0, 2.0)
    assert sorted(t["rows"] for t in metrics["trained"]) == [[2], [3]]
