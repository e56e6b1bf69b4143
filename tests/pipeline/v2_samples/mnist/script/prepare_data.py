# Microsoft's 3a prepare_data.py with one change: the images come from scikit-learn's digits
# (upscaled to MNIST's 28x28) instead of a download, so the test runs offline.
import os
import argparse
import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

parser = argparse.ArgumentParser(allow_abbrev=False, description="parse user arguments")
parser.add_argument("--output_folder", type=str, default=0)

args, _ = parser.parse_known_args()

data_folder = os.path.join(args.output_folder, "mnist")
os.makedirs(data_folder, exist_ok=True)
digits = load_digits()
imagearray = [
    np.asarray(Image.fromarray((img * 255 / 16).astype(np.uint8)).resize((28, 28)))
    for img in digits.images
]

# Choose the first 12 images and save to the output folder.
for i in range(12):
    im = Image.fromarray(imagearray[i])
    im.save(os.path.join(data_folder, f"{i}.png"))

print("Saved 12 images to the output folder")
