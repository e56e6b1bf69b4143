"""``Dataset``: the factory names users know from Azure ML (``Dataset.File.from_files``...)."""

from __future__ import annotations

from parallelrun.data.base import AbstractDataset
from parallelrun.data.files import FileDataset
from parallelrun.data.registry import DatasetWorkspace


class _FileFactory:
    from_files = staticmethod(FileDataset.from_files)


class _TabularFactory:
    """``Dataset.Tabular.from_*``; the tabular module (numpy, and pyarrow when used) loads on call."""

    @staticmethod
    def from_delimited_files(path, *args, **kwargs):
        from parallelrun.data.tabular import TabularDataset

        return TabularDataset.from_delimited_files(path, *args, **kwargs)

    @staticmethod
    def from_parquet_files(path, *args, **kwargs):
        from parallelrun.data.tabular import TabularDataset

        return TabularDataset.from_parquet_files(path, *args, **kwargs)

    @staticmethod
    def from_json_lines_files(path, *args, **kwargs):
        from parallelrun.data.tabular import TabularDataset

        return TabularDataset.from_json_lines_files(path, *args, **kwargs)


class Dataset:
    """Entry point for datasets, as in Azure ML.

    Example::

        ds = Dataset.File.from_files(path="data/mnist/*.png")
        ds = Dataset.Tabular.from_delimited_files(path="data/transactions/*.csv")
    """

    File = _FileFactory
    Tabular = _TabularFactory

    @staticmethod
    def get_by_name(workspace: DatasetWorkspace, name: str, version: int | str = "latest"):
        """A registered dataset: ``Dataset.get_by_name(ws, "mnist_sample_data", version="latest")``."""
        return AbstractDataset.get_by_name(workspace, name, version)

    @staticmethod
    def get_by_id(workspace: DatasetWorkspace, id: str):
        """A registered dataset version by id: ``Dataset.get_by_id(ws, ds.id)``."""
        return AbstractDataset.get_by_id(workspace, id)
