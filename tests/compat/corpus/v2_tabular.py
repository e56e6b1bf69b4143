# Azure ML v2 tabular style: run() gets a DataFrame and returns it with a prediction column.
import os

import pandas as pd


def init():
    global factor
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "weights.txt")) as fh:
        factor = int(fh.read())


def run(mini_batch: pd.DataFrame) -> pd.DataFrame:
    mini_batch["prediction"] = mini_batch["x"] * factor
    return mini_batch[["id", "prediction"]]
