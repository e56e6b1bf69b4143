"""Azure ML's notebook tabular-dataset-inference-iris (MachineLearningNotebooks,
how-to-use-azureml/machine-learning-pipelines/parallel-run/), its cells as a script, on
parallelrun. Every line that differs from the notebook is marked ``# [port]`` and listed in
README.md ("tabular_iris.py").

    python examples/azureml_port/tabular_iris.py [--folder demo_data/iris_port]

It works in ``--folder`` (the notebook's folder). The notebook reads the public container
``sampledata`` of the account ``pipelinedata`` (``iris/`` and the model ``iris-model/``); here
:func:`make_sample_data` writes the same shapes into local folders first: the iris table as
CSV files and a scikit-learn classifier trained on it.
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent


def make_sample_data(folder: Path) -> None:
    """[port] The public containers' content: sampledata/iris/*.csv and iris-model/iris_model.pkl."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris(as_frame=True)
    frame = iris.data.copy()
    frame.columns = ["sepal.length", "sepal.width", "petal.length", "petal.width"]
    names = {0: "Setosa", 1: "Versicolor", 2: "Virginica"}
    labels = iris.target.map(names)
    (folder / "sampledata" / "iris").mkdir(parents=True, exist_ok=True)
    frame.iloc[:75].to_csv(folder / "sampledata" / "iris" / "iris_0.csv", index=False)
    frame.iloc[75:].to_csv(folder / "sampledata" / "iris" / "iris_1.csv", index=False)
    (folder / "iris-model").mkdir(exist_ok=True)
    model = LogisticRegression(max_iter=500).fit(frame.to_numpy(), labels)
    with open(folder / "iris-model" / "iris_model.pkl", "wb") as fh:
        pickle.dump(model, fh)
    frame.assign(variety=labels).to_csv(folder / "iris_truth.csv", index=False)
    (folder / "Code").mkdir(exist_ok=True)
    shutil.copy(HERE / "scripts" / "iris_score.py", folder / "Code" / "iris_score.py")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", default="demo_data/iris_port",
                        help="where the notebook runs (default: demo_data/iris_port)")
    args = parser.parse_args(argv)
    folder = Path(args.folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(folder)
    make_sample_data(folder)
    # [port] a second run in the same folder: the model cell downloads into iris_model.pkl/
    # again, which Datastore.download refuses to overwrite
    shutil.rmtree(folder / "iris_model.pkl", ignore_errors=True)
    from parallelrun import Workspace  # [port]
    Workspace.create(name="iris-port", path=".", exist_ok=True)  # [port] the portal's workspace
    notebook()


def notebook() -> None:
    # %% Connect to workspace
    from parallelrun import Workspace  # [port] was: from azureml.core import Workspace

    ws = Workspace.from_config()
    print('Workspace name: ' + ws.name,
          'Azure region: ' + ws.location,
          'Subscription id: ' + ws.subscription_id,
          'Resource group: ' + ws.resource_group, sep='\n')

    # %% Create or Attach existing compute resource
    from parallelrun import AmlCompute, ComputeTarget  # [port] was: azureml.core.compute

    # choose a name for your cluster
    compute_name = os.environ.get("AML_COMPUTE_CLUSTER_NAME", "cpu-cluster")
    compute_min_nodes = os.environ.get("AML_COMPUTE_CLUSTER_MIN_NODES", 0)
    compute_max_nodes = os.environ.get("AML_COMPUTE_CLUSTER_MAX_NODES", 2)  # [port] 4 -> 2

    # This example uses CPU VM. For using GPU VM, set SKU to STANDARD_NC6s_v3
    vm_size = os.environ.get("AML_COMPUTE_CLUSTER_SKU", "STANDARD_D2_V2")

    if compute_name in ws.compute_targets:
        compute_target = ws.compute_targets[compute_name]
        if compute_target and type(compute_target) is AmlCompute:
            print('found compute target. just use it. ' + compute_name)
    else:
        print('creating a new compute target...')
        provisioning_config = AmlCompute.provisioning_configuration(vm_size=vm_size,
                                                                    min_nodes=compute_min_nodes,
                                                                    max_nodes=compute_max_nodes)

        # create the cluster
        compute_target = ComputeTarget.create(ws, compute_name, provisioning_config)

        # can poll for a minimum number of nodes and for a specific timeout.
        # if no min node count is provided it will use the scale settings for the cluster
        compute_target.wait_for_completion(show_output=True, min_node_count=None,
                                           timeout_in_minutes=20)

        # For a more detailed view of current AmlCompute status, use get_status()
        print(compute_target.get_status().serialize())

    # %% Create a datastore containing sample iris data
    from parallelrun import Datastore  # [port] was: from azureml.core import Datastore

    account_name = "pipelinedata"
    datastore_name = "iris_datastore_data"
    container_name = "sampledata"

    # [port] was: Datastore.register_azure_blob_container(ws, datastore_name=datastore_name,
    # container_name=container_name, account_name=account_name, overwrite=True)
    iris_data = Datastore.register_local(ws, datastore_name=datastore_name, path=container_name,
                                         overwrite=True)

    # %% Create a TabularDataset
    from parallelrun import Dataset  # [port] was: from azureml.core.dataset import Dataset

    iris_ds_name = 'iris_data'

    path_on_datastore = iris_data.path('iris/')
    input_iris_ds = Dataset.Tabular.from_delimited_files(path=path_on_datastore, validate=False)
    named_iris_ds = input_iris_ds.as_named_input(iris_ds_name)

    # %% Intermediate/Output Data
    from parallelrun import PipelineData  # [port] was: from azureml.pipeline.core import PipelineData

    datastore = ws.get_default_datastore()
    output_folder = PipelineData(name='inferences', datastore=datastore)

    # %% Registering the Model with the Workspace
    model_container_name = "iris-model"
    model_datastore_name = "iris_model_datastore"

    # [port] was: Datastore.register_azure_blob_container(ws, datastore_name=model_datastore_name,
    # container_name=model_container_name, account_name=account_name, overwrite=True)
    model_datastore = Datastore.register_local(ws, datastore_name=model_datastore_name,
                                               path=model_container_name, overwrite=True)

    from parallelrun import Model  # [port] was: from azureml.core.model import Model

    model_datastore.download('iris_model.pkl')

    # register downloaded model
    model = Model.register(model_path="iris_model.pkl/iris_model.pkl",
                           model_name="iris-prs",  # this is the name the model is registered as
                           tags={'pretrained': "iris"},
                           workspace=ws)

    # %% Specify the environment to run the script
    from parallelrun import Environment  # [port] was: from azureml.core import Environment
    from parallelrun import CondaDependencies  # [port] was: azureml.core.conda_dependencies

    # [port] was: predict_conda_deps = CondaDependencies.create(python_version="3.8",
    # conda_packages=['pip==20.2.4'], pin_sdk_version=False, pip_packages=["numpy==1.19.5",
    # "pandas==1.4.4", "scikit-learn==0.22.2", "azureml-core==1.54.0",
    # "azureml-dataset-runtime[fuse]==1.54.0"]) and
    # predict_env.python.conda_dependencies = predict_conda_deps
    predict_env = Environment(name="predict_environment")
    predict_env.spark.precache_packages = False

    # %% Create the configuration to wrap the inference script
    # [port] was: from azureml.pipeline.steps import ParallelRunStep, ParallelRunConfig
    from parallelrun import ParallelRunStep, ParallelRunConfig

    scripts_folder = "Code"
    script_file = "iris_score.py"

    # In a real-world scenario, you'll want to shape your process per node and nodes to fit
    # your problem domain.
    parallel_run_config = ParallelRunConfig(
        source_directory=scripts_folder,
        entry_script=script_file,  # the user script to run against each input
        mini_batch_size='1KB',
        error_threshold=5,
        output_action='append_row',
        append_row_file_name="iris_outputs.txt",
        environment=predict_env,
        compute_target=compute_target,
        node_count=2,
        run_invocation_timeout=600
    )

    # %% Create the pipeline step
    distributed_csv_iris_step = ParallelRunStep(
        name='example-iris',
        inputs=[named_iris_ds],
        output=output_folder,
        parallel_run_config=parallel_run_config,
        arguments=['--model_name', 'iris-prs'],
        allow_reuse=False
    )

    # %% Run the pipeline
    from parallelrun import Experiment  # [port] was: from azureml.core import Experiment
    from parallelrun import Pipeline  # [port] was: from azureml.pipeline.core import Pipeline

    pipeline = Pipeline(workspace=ws, steps=[distributed_csv_iris_step])

    pipeline_run = Experiment(ws, 'iris-prs').submit(pipeline)

    # %% View progress of Pipeline run
    from parallelrun import RunDetails  # [port] was: from azureml.widgets import RunDetails
    RunDetails(pipeline_run).show()

    # %%
    pipeline_run.wait_for_completion(show_output=True)

    # %% View Results
    import pandas as pd
    import tempfile

    prediction_run = pipeline_run.find_step_run(distributed_csv_iris_step.name)[0]
    prediction_output = prediction_run.get_output_data(output_folder.name)

    target_dir = tempfile.mkdtemp()
    prediction_output.download(local_path=target_dir)
    result_file = os.path.join(target_dir, prediction_output.path_on_datastore,
                               parallel_run_config.append_row_file_name)

    df = pd.read_csv(result_file, delimiter=" ", header=None)

    df.columns = ["sepal.length", "sepal.width", "petal.length", "petal.width", "variety"]
    print("Prediction has ", df.shape[0], " rows")

    random_subset = df.sample(n=10)
    random_subset.head(10)
    print(random_subset.head(10))  # [port] a notebook shows a cell's last value; a script prints

    # %% [port] not in the notebook: the predictions against the true labels
    truth = pd.read_csv("iris_truth.csv")
    merged = df.merge(truth, on=["sepal.length", "sepal.width", "petal.length", "petal.width"],
                      suffixes=("", "_true")).drop_duplicates()
    print(f"accuracy: {(merged['variety'] == merged['variety_true']).mean():.3f} "
          f"over {len(merged)} rows")
    df.to_csv("predictions.csv", index=False)


if __name__ == "__main__":
    main()
