"""Data layer: dataset kinds and their planners of mini-batches.

The names below are imported on first use, like ``parallelrun``'s own: a worker process
imports ``parallelrun.data.minibatch`` (what it unpickles) and should not pay for the planners,
globbing and config that the dataset classes pull in (about 40 ms of every worker's start-up).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parallelrun._lazy import lazy_exports

_EXPORTS = {
    "AbstractDataset": "parallelrun.data.base",
    "Dataset": "parallelrun.data.dataset",
    "FileDataset": "parallelrun.data.files",
    "MiniBatch": "parallelrun.data.minibatch",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from parallelrun.data.base import AbstractDataset
    from parallelrun.data.dataset import Dataset
    from parallelrun.data.files import FileDataset
    from parallelrun.data.minibatch import MiniBatch
