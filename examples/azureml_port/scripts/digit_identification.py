# The original document's entry script, ported. Snippets from the sample script
# digit_identification.py (https://aka.ms/batch-inference-notebooks).
# [port] What changed, and only that: the TensorFlow 1.x graph and session became the
# scikit-learn classifier of examples/mnist/mnist_data.py (a pickled model file), and the import
# of Model comes from parallelrun (`from azureml.core import Model` works unchanged too).

import os
import pickle

import numpy as np
from PIL import Image

from parallelrun import Model


def init():
    global g_model

    # Pull down the model from the workspace
    model_path = Model.get_model_path("mnist")

    # [port] was: construct a TF graph, import the meta graph and restore the session
    with open(os.path.join(model_path, "mnist-model.pkl"), "rb") as fh:
        g_model = pickle.load(fh)


def run(mini_batch):
    print(f'run method start: {__file__}, run({mini_batch})')
    resultList = []

    for image in mini_batch:
        # Prepare each image
        data = Image.open(image)
        np_im = np.array(data).reshape((1, 784))
        # Perform inference
        # [port] was: output.eval(feed_dict={in_tensor: np_im}, session=g_tf_sess); this
        # classifier was trained on pixels scaled to 0..1
        inference_result = g_model.predict_proba(np_im / 255.0)
        # Find the best probability, and add it to the result list
        best_result = np.argmax(inference_result)
        resultList.append("{}: {}".format(os.path.basename(image), best_result))

    return resultList
