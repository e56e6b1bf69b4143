# Entry script of the demo, in the shape of Azure ML's digit_identification.py:
# init() loads the model once per worker, run() classifies a mini-batch of image files and
# returns one "<file>: <digit>" line per image.
import argparse
import os
import pickle

import numpy as np
from PIL import Image


def init():
    global g_model, g_batch_predict
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-file", default="mnist-model.pkl")
    args, _ = parser.parse_known_args()
    # v2 style: the model the step was given is in AZUREML_MODEL_DIR
    model_path = os.path.join(os.environ["AZUREML_MODEL_DIR"], args.model_file)
    with open(model_path, "rb") as fh:
        g_model = pickle.load(fh)


def run(mini_batch):
    images = np.stack([np.asarray(Image.open(path), dtype=np.float64).reshape(784) / 255.0
                       for path in mini_batch])
    digits = g_model.predict(images)
    return [f"{os.path.basename(path)}: {digit}" for path, digit in zip(mini_batch, digits)]
