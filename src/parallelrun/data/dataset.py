"""``Dataset``: the factory names users know from Azure ML (``Dataset.File.from_files``...)."""

from __future__ import annotations

from parallelrun.data.files import FileDataset


class _FileFactory:
    from_files = staticmethod(FileDataset.from_files)


class Dataset:
    """Entry point for datasets, as in Azure ML.

    Example::

        ds = Dataset.File.from_files(path="data/mnist/*.png")
    """

    File = _FileFactory
