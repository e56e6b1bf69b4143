"""Lays out Microsoft's 2a iris sample (``pipeline.yml`` and ``iris_batch_prediction.py``) in a
working folder with what Azure ML would have had ready: a workspace, the compute
``cpu-cluster`` (2 nodes) and the MLflow model's pickle.

    python examples/azureml_v2/prepare.py [--folder demo_data/azureml_v2]
    cd demo_data/azureml_v2
    parallelrun job submit pipeline.yml --stream     # the YAML pipeline job
    python iris_batch_prediction.py                  # the same pipeline in SDK v2 Python

The sample's ``iris-model/model.pkl`` is scikit-learn 0.20, which today's scikit-learn cannot
load: a classifier of the same 44 columns (iris's 4 and 40 of noise, as ``neural-iris-mltable``
holds them) is trained and pickled beside the sample's ``MLmodel`` file instead.
"""

from __future__ import annotations

import argparse
import pickle
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLE = ["pipeline.yml", "iris_batch_prediction.py", "script", "neural-iris-mltable",
          "iris-model"]


def train_model(folder: Path) -> None:
    """A classifier of the sample's 44 columns, pickled as the MLflow model's model.pkl."""
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris()
    features = np.hstack([iris.data, np.random.RandomState(0).randn(150, 40)])
    model = LogisticRegression(max_iter=1000).fit(features, iris.target)
    (folder / "model.pkl").write_bytes(pickle.dumps(model))


def prepare(folder: Path) -> Path:
    from parallelrun import AmlCompute, ComputeTarget, Workspace

    folder.mkdir(parents=True, exist_ok=True)
    for name in SAMPLE:
        source = HERE / name
        if source.is_dir():
            shutil.copytree(source, folder / name, dirs_exist_ok=True)
        else:
            shutil.copy2(source, folder / name)
    train_model(folder / "iris-model")
    ws = Workspace.create(name="azureml-v2", path=folder, exist_ok=True)
    if "cpu-cluster" not in ws.compute_targets:
        ComputeTarget.create(ws, "cpu-cluster", AmlCompute.provisioning_configuration(max_nodes=2))
    return folder


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", default="demo_data/azureml_v2", type=Path)
    where = prepare(parser.parse_args().folder)
    print(f"ready: cd {where} && parallelrun job submit pipeline.yml --stream && "
          "python iris_batch_prediction.py")
