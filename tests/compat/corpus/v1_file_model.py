# Azure ML v1 style (the document's digit_identification.py shape): Model.get_model_path in init().
import argparse
import os

from azureml.core import Model


def init():
    global g_weights, g_offset
    parser = argparse.ArgumentParser()
    parser.add_argument("--offset", type=int, default=0)
    args, _ = parser.parse_known_args()
    g_offset = args.offset
    model_path = Model.get_model_path("mnist")
    with open(os.path.join(model_path, "weights.txt")) as fh:
        g_weights = int(fh.read())


def run(mini_batch):
    print(f'run method start: {__file__}, run({mini_batch})')
    resultList = []
    for image in mini_batch:
        value = int(open(image).read())
        resultList.append("{}: {}".format(os.path.basename(image), value * g_weights + g_offset))
    return resultList
