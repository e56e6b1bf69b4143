# Imports something parallelrun does not provide inside entry scripts.
from azureml.core import Workspace


def init():
    pass


def run(mini_batch):
    return mini_batch
