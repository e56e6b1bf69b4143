# Azure ML v2 parallel job style: AZUREML_MODEL_DIR, argparse, a DataFrame result, shutdown().
import argparse
import os

import pandas as pd


def init():
    global model_dir, scale
    parser = argparse.ArgumentParser(allow_abbrev=False)
    parser.add_argument("--scale", type=int, default=1)
    args, _ = parser.parse_known_args()
    scale = args.scale
    model_dir = os.environ["AZUREML_MODEL_DIR"]
    assert os.path.exists(os.path.join(model_dir, "weights.txt"))


def run(mini_batch):
    rows = []
    for file_path in mini_batch:
        rows.append({"file": os.path.basename(file_path), "score": int(open(file_path).read()) * scale})
    return pd.DataFrame(rows)


def shutdown():
    print("shutdown called")
