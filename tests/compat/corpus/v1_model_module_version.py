# `from azureml.core.model import Model` with an explicit version.
import os

from azureml.core.model import Model


def init():
    global path
    path = Model.get_model_path(model_name="mnist", version=2)


def run(mini_batch):
    return [f"{os.path.basename(p)} {os.path.basename(path)}" for p in mini_batch]
