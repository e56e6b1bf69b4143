"""examples/azureml_port/tabular_iris.py, Azure ML's tabular-dataset-inference-iris notebook as
a script, run as a user runs it (twice in one folder), with its predictions checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "azureml_port" / "tabular_iris.py"


def test_the_iris_notebook_port_runs_and_predicts_the_labels(tmp_path):
    folder = tmp_path / "notebook"
    for attempt in range(2):                 # a second run in the same folder works too
        result = subprocess.run([sys.executable, str(EXAMPLE), "--folder", str(folder)],
                                capture_output=True, text=True, timeout=240, cwd=tmp_path)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "Prediction has  150  rows" in result.stdout
    predictions = pd.read_csv(folder / "predictions.csv")
    truth = pd.read_csv(folder / "iris_truth.csv")
    columns = ["sepal.length", "sepal.width", "petal.length", "petal.width"]
    merged = predictions.merge(truth, on=columns, suffixes=("", "_true")).drop_duplicates()
    assert len(predictions) == 150 and len(merged) >= 149
    assert (merged["variety"] == merged["variety_true"]).mean() > 0.9
    assert "accuracy: 0.9" in result.stdout
