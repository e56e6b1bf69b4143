"""The original document's batch inference notebook ("Run batch inference on large amounts of
data by using Azure Machine Learning", 2019), ported to parallelrun: the same code, top to
bottom, with ``azureml.*`` imports changed to ``parallelrun``. See README.md for every change.

    python examples/azureml_port/batch_inference.py [--images 200] [--folder demo_data/azureml_port]

It works in ``--folder`` (the notebook's folder: ``config.json`` of the workspace, ``models/``,
``scripts/``, ``results/``). The sample images go to a local folder registered as the datastore
``mnist_datastore``; give ``--blob-account-url``, ``--blob-account-key`` and
``--blob-container`` to use an Azure Blob container (or Azurite) as the document does.
``AML_COMPUTE_CLUSTER_MAX_NODES`` (default 4) is the number of local worker processes.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "mnist"))

from mnist_data import accuracy, load_labels, make_images, train_model  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200, help="sample images to score")
    parser.add_argument("--folder", default="demo_data/azureml_port", help="the notebook's folder")
    parser.add_argument("--train-samples", type=int, default=3000,
                        help="images the stand-in classifier is trained on")
    parser.add_argument("--blob-account-url", default=None, help="e.g. Azurite's "
                        "http://127.0.0.1:10000/devstoreaccount1")
    parser.add_argument("--blob-account-name", default="devstoreaccount1")
    parser.add_argument("--blob-account-key", default=None)
    parser.add_argument("--blob-container", default="sampledata")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.makedirs(args.folder, exist_ok=True)
    os.chdir(args.folder)
    scripts_folder = "scripts"
    shutil.copytree(HERE / "scripts", scripts_folder, dirs_exist_ok=True)
    # [port] Azure ML's workspace is made in the portal and found through config.json; here it
    # is a folder, made once.
    from parallelrun import Workspace as _Workspace

    _Workspace.create(name="batch-inference", path=".", exist_ok=True)
    # [port] The document's images sit in the public container pipelinedata/sampledata under
    # mnist/; this makes such images (digits of scikit-learn, 28x28 PNGs) and their labels.
    samples = make_images("sample_images", args.images)

    # ------------------------------------------------------------------------------------------
    # Create a datastore with sample images
    from parallelrun import Datastore
    from parallelrun import Workspace

    # Load workspace authorization details from config.json
    ws = Workspace.from_config()

    if args.blob_account_url:
        mnist_blob = Datastore.register_azure_blob_container(ws,
                              datastore_name="mnist_datastore",
                              container_name=args.blob_container,
                              account_name=args.blob_account_name,
                              account_key=args.blob_account_key,
                              account_url=args.blob_account_url,  # [port] the emulator's address
                              create_if_not_exists=True,
                              overwrite=True)
    else:
        # [port] no cloud here: a local folder stands for the blob container
        os.makedirs("sampledata", exist_ok=True)
        mnist_blob = Datastore.register_local(ws, datastore_name="mnist_datastore",
                                              path="sampledata", overwrite=True)
    # [port] put the sample images where the document finds them: mnist/ on that datastore
    images = sorted(glob.glob(os.path.join(samples, "images", "*.png")))
    mnist_blob.upload_files(images, relative_root=os.path.join(samples, "images"),
                            target_path="mnist/", overwrite=True)

    def_data_store = ws.get_default_datastore()

    # ------------------------------------------------------------------------------------------
    # Configure data inputs and outputs
    from parallelrun import Dataset
    from parallelrun import PipelineData

    mnist_ds_name = 'mnist_sample_data'

    path_on_datastore = mnist_blob.path('mnist/')
    input_mnist_ds = Dataset.File.from_files(path=path_on_datastore, validate=False)
    registered_mnist_ds = input_mnist_ds.register(ws, mnist_ds_name, create_new_version=True)
    named_mnist_ds = registered_mnist_ds.as_named_input(mnist_ds_name)

    output_dir = PipelineData(name="inferences",
                              datastore=def_data_store,
                              output_path_on_compute="mnist/results")

    # ------------------------------------------------------------------------------------------
    # Set up a compute target
    from parallelrun import AmlCompute, ComputeTarget
    from parallelrun import ComputeTargetException  # noqa: F401 (imported by the document)

    # choose a name for your cluster
    compute_name = os.environ.get("AML_COMPUTE_CLUSTER_NAME", "cpu-cluster")
    compute_min_nodes = os.environ.get("AML_COMPUTE_CLUSTER_MIN_NODES", 0)
    compute_max_nodes = os.environ.get("AML_COMPUTE_CLUSTER_MAX_NODES", 4)

    # This example uses CPU VM. For using GPU VM, set SKU to STANDARD_NC6
    vm_size = os.environ.get("AML_COMPUTE_CLUSTER_SKU", "STANDARD_D2_V2")

    if compute_name in ws.compute_targets:
        compute_target = ws.compute_targets[compute_name]
        if compute_target and type(compute_target) is AmlCompute:
            print('found compute target. just use it. ' + compute_name)
    else:
        print('creating a new compute target...')
        provisioning_config = AmlCompute.provisioning_configuration(vm_size = vm_size,
                                                                    min_nodes = compute_min_nodes,
                                                                    max_nodes = compute_max_nodes)

        # create the cluster
        compute_target = ComputeTarget.create(ws, compute_name, provisioning_config)

        # can poll for a minimum number of nodes and for a specific timeout.
        # if no min node count is provided it will use the scale settings for the cluster
        compute_target.wait_for_completion(show_output=True, min_node_count=None, timeout_in_minutes=20)

         # For a more detailed view of current AmlCompute status, use get_status()
        print(compute_target.get_status().serialize())

    # ------------------------------------------------------------------------------------------
    # Prepare the model
    model_dir = 'models'
    if not os.path.isdir(model_dir):
        os.mkdir(model_dir)

    # [port] was: download mnist-tf.tar.gz and extract it into models/; here the classifier of
    # examples/mnist is trained into models/mnist-model.pkl (offline, a few seconds)
    train_model(model_dir, samples=args.train_samples)

    from parallelrun import Model

    # Register the downloaded model
    model = Model.register(model_path="models/",
                           model_name="mnist",
                           tags={'pretrained': "mnist"},
                           description="Mnist trained tensorflow model",
                           workspace=ws)

    # ------------------------------------------------------------------------------------------
    # Prepare the run environment
    from parallelrun import Environment
    from parallelrun import CondaDependencies
    from parallelrun import DEFAULT_GPU_IMAGE

    # [port] was: pip_packages=["tensorflow==1.13.1", "pillow"]
    batch_conda_deps = CondaDependencies.create(pip_packages=["scikit-learn", "pillow"])

    batch_env = Environment(name="batch_environment")
    batch_env.python.conda_dependencies = batch_conda_deps
    batch_env.docker.enabled = True
    batch_env.docker.base_image = DEFAULT_GPU_IMAGE
    batch_env.spark.precache_packages = False

    # ------------------------------------------------------------------------------------------
    # Specify the parameters for your batch inference pipeline step
    from parallelrun import ParallelRunConfig

    parallel_run_config = ParallelRunConfig(
        source_directory=scripts_folder,
        entry_script="digit_identification.py",
        mini_batch_size="5",
        error_threshold=10,
        output_action="append_row",
        environment=batch_env,
        compute_target=compute_target,
        node_count=4)

    # ------------------------------------------------------------------------------------------
    # Create the pipeline step
    from parallelrun import ParallelRunStep

    parallelrun_step = ParallelRunStep(
        name="batch-mnist",
        models=[model],
        parallel_run_config=parallel_run_config,
        inputs=[named_mnist_ds],
        output=output_dir,
        arguments=[],
        allow_reuse=True
    )

    # ------------------------------------------------------------------------------------------
    # Run the pipeline
    from parallelrun import Pipeline
    from parallelrun import Experiment

    pipeline = Pipeline(workspace=ws, steps=[parallelrun_step])
    pipeline_run = Experiment(ws, 'digit_identification').submit(pipeline)

    # ------------------------------------------------------------------------------------------
    # Monitor the batch inference job
    from parallelrun import RunDetails
    RunDetails(pipeline_run).show()

    pipeline_run.wait_for_completion(show_output=True)

    # ------------------------------------------------------------------------------------------
    # The notebook's last cells: download the step's output and look at it
    import pandas as pd

    step_run = pipeline_run.find_step_run("batch-mnist")[0]
    batch_output = step_run.get_output_data("inferences")
    batch_output.download(local_path="results")
    result_file = os.path.join("results", batch_output.path_on_datastore,
                               parallel_run_config.append_row_file_name)

    df = pd.read_csv(result_file, delimiter=":", header=None)
    df.columns = ["Filename", "Prediction"]
    print("Prediction has ", df.shape[0], " rows")
    print(df.head(10))

    score, lines = accuracy(result_file, load_labels(samples))
    print(f"accuracy: {score:.1%} over {lines} images; result file {os.path.abspath(result_file)}")
    return 0 if lines == args.images else 1


if __name__ == "__main__":
    sys.exit(main())
