"""examples/azureml_v2: Microsoft's 2a iris pipeline as YAML (parallelrun job submit) and as SDK v2
Python (the notebook's cells, imports changed) give the same rows, the model's predictions."""

from __future__ import annotations

import importlib.util
import pickle
import subprocess
import sys
from pathlib import Path

import pandas as pd

EXAMPLE = Path(__file__).parents[2] / "examples" / "azureml_v2"


def test_the_example_pipeline_runs_the_same_as_yaml_and_as_sdk_v2(tmp_path):
    spec = importlib.util.spec_from_file_location("prepare_azureml_v2", EXAMPLE / "prepare.py")
    prepare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prepare)
    folder = prepare.prepare(tmp_path / "example")
    for command in ([sys.executable, "-m", "parallelrun.cli.__main__", "job", "submit",
                     "pipeline.yml", "--stream"],
                    [sys.executable, "iris_batch_prediction.py"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=folder)
        assert done.returncode == 0, done.stdout + done.stderr
    store = folder / ".parallelrun" / "datastores" / "workspaceblobstore"
    [from_yaml] = store.glob("batch_prediction_*/aggregated_returns.csv")
    [from_sdk] = store.glob("parallel_train_*/aggregated_returns.csv")

    def rows(path: Path) -> list[tuple[float, ...]]:
        return sorted(tuple(float(v) for v in line.split())
                      for line in path.read_text().splitlines() if line)

    model = pickle.loads((folder / "iris-model" / "model.pkl").read_bytes())
    table = pd.read_csv(folder / "neural-iris-mltable" / "iris.csv")
    expected = sorted(tuple(float(v) for v in row[:4]) + (float(label),)
                      for row, label in zip(table.to_numpy(), model.predict(table.to_numpy())))
    assert len(expected) == 74
    assert rows(from_yaml) == expected
    assert rows(from_sdk) == expected
