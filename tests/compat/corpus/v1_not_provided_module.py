# Imports a module parallelrun does not provide inside entry scripts.
from azureml.pipeline.steps import ParallelRunStep


def init():
    pass


def run(mini_batch):
    return mini_batch
