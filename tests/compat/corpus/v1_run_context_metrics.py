# Run.get_context() metrics and tags, as scripts log them in Azure ML.
import os

from azureml.core import Run

run_context = None


def init():
    global run_context
    run_context = Run.get_context()
    run_context.tag("stage", "scoring")


def run(mini_batch):
    values = [int(open(p).read()) for p in mini_batch]
    run_context.log("batch_size", len(mini_batch))
    run_context.log_list("values", values)
    names = sorted(run_context.input_datasets)
    return [f"{os.path.basename(p)} {','.join(names)}" for p in mini_batch]
