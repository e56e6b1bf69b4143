"""Handwritten-digit images and a small classifier for the demo and the benchmarks, offline.

scikit-learn ships 1,797 8x8 digits. Each is upscaled to 28x28 (the MNIST size) and varied by a
small shift and noise to make as many distinct PNG files as asked, named ``<n>.png`` with the
true labels in ``labels.csv``. The classifier is a logistic regression on the 784 pixels,
trained on varied copies of them and pickled into a model folder.
"""

from __future__ import annotations

import csv
import os
import pickle
import warnings
from pathlib import Path

import numpy as np


def _upscaled_digits() -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.stack([
        np.asarray(Image.fromarray((img * 255 / 16).astype(np.uint8)).resize((28, 28), Image.BILINEAR))
        for img in digits.images])
    return images, digits.target


def _varied(base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One digit shifted by up to 2 pixels and given a little noise."""
    dx, dy = rng.integers(-2, 3, size=2)
    img = np.roll(np.roll(base, dx, axis=1), dy, axis=0).astype(np.int16)
    return np.clip(img + rng.integers(-12, 13, size=img.shape), 0, 255).astype(np.uint8)


def make_images(folder: str | os.PathLike, count: int, seed: int = 0) -> Path:
    """Write ``count`` 28x28 grayscale PNGs and ``labels.csv`` into ``folder`` (kept if present)."""
    from PIL import Image

    folder = Path(folder)
    labels_path = folder / "labels.csv"
    if labels_path.exists() and sum(1 for _ in open(labels_path)) == count + 1:
        return folder
    images_dir = folder / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    base, targets = _upscaled_digits()
    rng = np.random.default_rng(seed)
    with open(labels_path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "label"])
        for n in range(count):
            i = n % len(base)
            img = _varied(base[i], rng)
            name = f"{n:06d}.png"
            Image.fromarray(img).save(images_dir / name, optimize=False, compress_level=1)
            writer.writerow([name, int(targets[i])])
    return folder


def train_model(model_dir: str | os.PathLike, samples: int = 3000, seed: int = 1) -> Path:
    """Train the classifier and pickle it to ``model_dir/mnist-model.pkl`` (kept if present)."""
    from sklearn.linear_model import LogisticRegression

    model_dir = Path(model_dir)
    path = model_dir / "mnist-model.pkl"
    if path.exists():
        return model_dir
    model_dir.mkdir(parents=True, exist_ok=True)
    base, targets = _upscaled_digits()
    # trained on its own varied copies (another seed than the images it will score)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(base), size=samples)
    images = np.stack([_varied(base[i], rng) for i in picks])
    model = LogisticRegression(max_iter=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a not fully converged fit is fine for a demo model
        model.fit(images.reshape(len(images), -1) / 255.0, targets[picks])
    with open(path, "wb") as fh:
        pickle.dump(model, fh)
    return model_dir


def load_labels(folder: str | os.PathLike) -> dict[str, int]:
    with open(Path(folder) / "labels.csv", newline="") as fh:
        return {row["file"]: int(row["label"]) for row in csv.DictReader(fh)}


def accuracy(predictions_file: str | os.PathLike, labels: dict[str, int]) -> tuple[float, int]:
    """Share of ``"<file>: <digit>"`` lines whose digit is the true label, and the line count."""
    right = total = 0
    with open(predictions_file) as fh:
        for line in fh:
            name, _, digit = line.strip().partition(": ")
            total += 1
            right += labels[name] == int(digit)
    return (right / total if total else 0.0), total
