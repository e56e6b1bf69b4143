"""The original document's code end to end: examples/azureml_port/batch_inference.py (the
notebook, imports changed to parallelrun) with its images in an Azure Blob container (Azurite),
an AmlCompute made by the document's provisioning code, an Environment, a registered dataset and
model, the pipeline submitted to an experiment, waited for, and its output downloaded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from parallelrun import AmlCompute, Dataset, Run, Workspace

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "azureml_port" / "batch_inference.py"


def test_the_documents_notebook_runs_as_written(tmp_path, azurite):
    container = azurite.new_container("sampledata")
    notebook = tmp_path / "notebook"
    env = dict(os.environ, AML_COMPUTE_CLUSTER_MAX_NODES="2",  # two local worker processes
               OMP_NUM_THREADS="1")  # scikit-learn's BLAS threads would fight on 2 cores
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--images", "10", "--train-samples", "100",
         "--folder", str(notebook), "--blob-account-url", azurite.account_url,
         "--blob-account-name", azurite.account_name, "--blob-account-key", azurite.account_key,
         "--blob-container", container],
        capture_output=True, text=True, timeout=280, cwd=tmp_path, env=env)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "Prediction has  10  rows" in out and "accuracy:" in out
    assert "creating a new compute target..." in out and 'operation "Succeeded"' in out

    ws = Workspace.from_config(str(notebook))
    assert type(ws.compute_targets["cpu-cluster"]) is AmlCompute
    dataset = Dataset.get_by_name(ws, "mnist_sample_data")
    assert dataset.registration["paths"] == [{"datastore": "mnist_datastore", "path": "mnist/"}]
    [record] = [r for r in Run.list(ws)]
    assert record.get_status() == "Finished"
    step = record.find_step_run("batch-mnist")[0]
    assert step.get_counts()["items_succeeded"] == 10
    # node_count=4 on a cluster of 2 nodes: two workers on this machine
    workers = sorted(os.listdir(os.path.join(step.get_details()["logDir"], "sys", "node", "node0")))
    assert workers == ["process000.txt", "process001.txt"]
    # the notebook downloaded the output as Azure ML lays it out: <path_on_datastore>/<file>
    result = notebook / "results" / "azureml" / step.id / "inferences" / "parallel_run_step.txt"
    lines = result.read_text().splitlines()
    assert len(lines) == 10 and all(line.endswith(tuple(f": {d}" for d in range(10)))
                                    for line in lines)
