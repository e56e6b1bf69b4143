"""Data layer: dataset kinds and their planners of mini-batches."""

from parallelrun.data.base import AbstractDataset
from parallelrun.data.dataset import Dataset
from parallelrun.data.files import FileDataset
from parallelrun.data.minibatch import MiniBatch

__all__ = ["AbstractDataset", "Dataset", "FileDataset", "MiniBatch"]
