"""What every dataset kind provides: a deterministic plan of mini-batches."""

from __future__ import annotations

import abc
import copy
from typing import Iterator

from parallelrun.data.minibatch import MiniBatch


class AbstractDataset(abc.ABC):
    """A dataset kind (files, tables). Subclasses plan mini-batches; the engine runs them.

    ``name`` is set by :meth:`as_named_input` and lets the entry script find its input by name.
    """

    #: "file" or "tabular": decides what mini_batch_size means and what run() receives.
    kind: str = ""
    name: str | None = None
    #: set when the dataset was registered in a workspace (id and version of the record)
    registration: dict | None = None

    @abc.abstractmethod
    def plan(self, mini_batch_size: int | str | None, partition_keys: list[str] | None = None,
             start_index: int = 0) -> Iterator[MiniBatch]:
        """Yield mini-batches in a deterministic order, numbered from ``start_index``."""

    @abc.abstractmethod
    def check_mini_batch_size(self, value: int | str | None) -> None:
        """Raise ConfigurationError when ``value`` means nothing for this kind of dataset."""

    @abc.abstractmethod
    def describe(self) -> str:
        """A short, human description for logs and errors, e.g. ``files data/*.png``."""

    def as_named_input(self, name: str) -> "AbstractDataset":
        """A copy of this dataset known to the entry script as ``name``.

        Example: ``step inputs=[ds.as_named_input("mnist")]``; inside the script,
        ``Run.get_context().input_datasets["mnist"]``.
        """
        named = copy.copy(self)
        named.name = name
        return named

    def as_mount(self) -> "AbstractDataset":
        """Accepted for code written for Azure ML; files are always handed over as local paths."""
        return self

    as_download = as_mount
