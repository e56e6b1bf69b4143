# Microsoft's 3a digit_identification.py with one change: the model is a scikit-learn
# classifier pickled in the model folder instead of a TensorFlow 1 graph.
import os
import pickle
import numpy as np
import argparse
from PIL import Image


def init():
    global g_model

    parser = argparse.ArgumentParser(
        allow_abbrev=False, description="ParallelRunStep Agent"
    )
    parser.add_argument("--model", type=str, default=0)
    args, _ = parser.parse_known_args()

    # pull down model from workspace
    model_path = args.model

    with open(os.path.join(model_path, "mnist-sklearn.pkl"), "rb") as fh:
        g_model = pickle.load(fh)


def run(mini_batch):
    print(f"run method start: {__file__}, run({mini_batch})")
    resultList = []

    for image in mini_batch:
        # prepare each image
        data = Image.open(image)
        np_im = np.array(data).reshape((1, 784))
        # perform inference
        best_result = g_model.predict(np_im)[0]
        # find best probability, and add to result list
        resultList.append("{}: {}".format(os.path.basename(image), best_result))

    return resultList
