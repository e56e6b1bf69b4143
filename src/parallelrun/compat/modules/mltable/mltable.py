"""The stand-in's ``MLTable``: a table definition (paths and transformations) and the folder its
relative paths start from, read with :func:`parallelrun.data.mltable.mltable_from_spec`."""

from __future__ import annotations

import copy
import enum
import os
from typing import Any
from urllib.parse import unquote, urlparse

import yaml

from parallelrun.data.mltable import MLTABLE_FILE, mltable_from_spec, read_mltable_file


class MLTableHeaders(enum.Enum):
    """How ``from_delimited_files`` reads column headers."""

    no_header = enum.auto()
    from_first_file = enum.auto()
    all_files_different_headers = enum.auto()
    all_files_same_headers = enum.auto()


class MLTableFileEncoding(enum.Enum):
    """Text encodings of delimited and JSON lines files."""

    utf8 = enum.auto()
    iso88591 = enum.auto()
    latin1 = enum.auto()
    ascii = enum.auto()
    utf16 = enum.auto()
    utf8bom = enum.auto()
    windows1252 = enum.auto()


class DataType:
    """A column type for ``convert_column_types``: ``DataType.to_int()``, ``to_float()``,
    ``to_string()``, ``to_bool(...)``, ``to_datetime(formats)``."""

    def __init__(self, value: Any):
        #: the column_type as the MLTable file writes it (``int``, ``{datetime: {...}}``)
        self.value = value

    @staticmethod
    def to_string() -> "DataType":
        return DataType("string")

    @staticmethod
    def to_int() -> "DataType":
        return DataType("int")

    @staticmethod
    def to_float() -> "DataType":
        return DataType("float")

    @staticmethod
    def to_bool(true_values: list[str] | None = None, false_values: list[str] | None = None,
                mismatch_as: str | None = None) -> "DataType":
        if (true_values is None) != (false_values is None):
            raise ValueError("`true_values` and `false_values` must both be None or non-empty "
                             "list of strings")
        options: dict = {}
        if true_values:
            options.update(true_values=list(true_values), false_values=list(false_values),
                           mismatch_as="error")
        if mismatch_as:
            options["mismatch_as"] = mismatch_as
        return DataType({"boolean": options} if options else "boolean")

    @staticmethod
    def to_datetime(formats: str | list[str], date_constant: str | None = None) -> "DataType":
        options: dict = {"formats": [formats] if isinstance(formats, str) else list(formats)}
        if date_constant is not None:
            options["date_constant"] = date_constant
        return DataType({"datetime": options})


class MLTable:
    """A table: ``paths`` and ``transformations``, as in an ``MLTable`` file.

    Example::

        tbl = mltable.load("./neural-iris-mltable")
        df = tbl.take(10).to_pandas_dataframe()
    """

    def __init__(self, spec: dict | None = None, base: str | None = None):
        self._spec = dict(spec or {"paths": []})
        #: the folder that relative paths start from (the MLTable file's, or the current one)
        self._base = os.path.abspath(base or os.getcwd())

    # reading -----------------------------------------------------------------------------------
    def _dataset(self):
        return mltable_from_spec(self._base, self._spec)

    def to_pandas_dataframe(self):
        """The whole table, every transformation applied (a paths-only table: one ``Path``
        column)."""
        import pandas as pd

        dataset = self._dataset()
        if hasattr(dataset, "to_pandas_dataframe"):
            return dataset.to_pandas_dataframe()
        return pd.DataFrame({"Path": list(dataset.iter_files())})

    def show(self, count: int = 20):
        """The first ``count`` rows."""
        return self.take(count).to_pandas_dataframe()

    @property
    def paths(self) -> list[dict]:
        """The table's ``paths`` entries (``{"file": ...}``, ``{"folder": ...}``,
        ``{"pattern": ...}``)."""
        return copy.deepcopy(self._spec.get("paths") or [])

    # transformations (each returns a new table) -----------------------------------------------
    def _with(self, name: str, value: Any) -> "MLTable":
        spec = copy.deepcopy(self._spec)
        spec.setdefault("transformations", []).append({name: value})
        return MLTable(spec, self._base)

    def take(self, count: int = 20) -> "MLTable":
        return self._with("take", count)

    def skip(self, count: int) -> "MLTable":
        return self._with("skip", count)

    def filter(self, expression: str) -> "MLTable":
        return self._with("filter", expression)

    def drop_columns(self, columns: str | list[str]) -> "MLTable":
        return self._with("drop_columns", _columns(columns))

    def keep_columns(self, columns: str | list[str]) -> "MLTable":
        return self._with("keep_columns", _columns(columns))

    def extract_columns_from_partition_format(self, partition_format: str) -> "MLTable":
        return self._with("extract_columns_from_partition_format",
                          {"partition_format": partition_format})

    def take_random_sample(self, probability: float, seed: int | None = None) -> "MLTable":
        options: dict = {"probability": probability}
        if seed is not None:
            options["seed"] = seed
        return self._with("take_random_sample", options)

    def convert_column_types(self, column_types: dict) -> "MLTable":
        """``{"a": DataType.to_int(), ("b", "c"): "float"}``."""
        entries = []
        for columns, kind in column_types.items():
            value = kind.value if isinstance(kind, DataType) else kind
            entries.append({"columns": list(columns) if isinstance(columns, tuple) else columns,
                            "column_type": value})
        return self._with("convert_column_types", entries)

    # writing -----------------------------------------------------------------------------------
    def _to_yaml_dict(self) -> dict:
        return copy.deepcopy(self._spec)

    def save(self, path: str | os.PathLike | None = None, overwrite: bool = True,
             colocated: bool = False, show_progress: bool = False,
             if_err_remove_files: bool = True) -> "MLTable":
        """Write the ``MLTable`` file into folder ``path`` (local paths rewritten relative to
        it, so the folder can move with its data)."""
        folder = os.path.abspath(_local(os.fspath(path or self._base)))
        target = os.path.join(folder, MLTABLE_FILE)
        if os.path.exists(target) and not overwrite:
            raise FileExistsError(f"{target} exists; save(..., overwrite=True) replaces it")
        os.makedirs(folder, exist_ok=True)
        spec = self._to_yaml_dict()
        spec["paths"] = [{kind: _relative(str(value), self._base, folder)
                          for kind, value in entry.items()} for entry in spec.get("paths") or []]
        with open(target, "w", encoding="utf-8") as handle:
            yaml.safe_dump(spec, handle, default_flow_style=False, sort_keys=False)
        return MLTable(spec, folder)

    def __str__(self) -> str:
        return yaml.safe_dump(self._spec, default_flow_style=False, sort_keys=False)

    def __repr__(self) -> str:
        return str(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MLTable) and self._spec == other._spec and \
            self._base == other._base


def load(uri: str | os.PathLike, storage_options: dict | None = None,
         ml_client: Any = None) -> MLTable:
    """The table defined by the ``MLTable`` file in folder ``uri``."""
    folder = os.path.abspath(_local(os.fspath(uri)))
    if os.path.basename(folder) == MLTABLE_FILE and os.path.isfile(folder):
        folder = os.path.dirname(folder)
    return MLTable(read_mltable_file(folder), folder)


def from_delimited_files(paths: list[dict], header: str | MLTableHeaders = "all_files_same_headers",
                         delimiter: str = ",", support_multi_line: bool = False,
                         empty_as_string: bool = False,
                         encoding: str | MLTableFileEncoding = "utf8",
                         include_path_column: bool = False,
                         infer_column_types: bool = True) -> MLTable:
    """A table of delimited text files (CSV by default)."""
    options = {"delimiter": delimiter, "encoding": _name(encoding), "header": _name(header),
               "empty_as_string": empty_as_string, "include_path_column": include_path_column,
               "infer_column_types": infer_column_types}
    if support_multi_line:
        options["support_multi_line"] = True
    return MLTable({"paths": _paths(paths), "transformations": [{"read_delimited": options}]})


def from_parquet_files(paths: list[dict], include_path_column: bool = False) -> MLTable:
    """A table of Parquet files."""
    return MLTable({"paths": _paths(paths), "transformations": [
        {"read_parquet": {"include_path_column": include_path_column}}]})


def from_json_lines_files(paths: list[dict], invalid_lines: str = "error",
                          encoding: str | MLTableFileEncoding = "utf8",
                          include_path_column: bool = False) -> MLTable:
    """A table of JSON lines files."""
    return MLTable({"paths": _paths(paths), "transformations": [
        {"read_json_lines": {"invalid_lines": invalid_lines, "encoding": _name(encoding),
                             "include_path_column": include_path_column}}]})


def from_paths(paths: list[dict]) -> MLTable:
    """A table of files (one ``Path`` column): a file dataset for a parallel job."""
    return MLTable({"paths": _paths(paths)})


def _paths(paths: Any) -> list[dict]:
    if isinstance(paths, dict):
        paths = [paths]
    if not isinstance(paths, list) or not all(isinstance(p, dict) and len(p) == 1 and
                                              next(iter(p)) in ("file", "folder", "pattern")
                                              for p in paths):
        raise ValueError(f"paths {paths!r}: a list of {{'file': ...}}, {{'folder': ...}} or "
                         "{'pattern': ...} entries")
    return [dict(p) for p in paths]


def _columns(columns: Any) -> Any:
    return list(columns) if isinstance(columns, (list, tuple, set)) else columns


def _name(value: Any) -> str:
    return value.name if isinstance(value, enum.Enum) else str(value)


def _local(text: str) -> str:
    parsed = urlparse(text)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    if parsed.scheme and len(parsed.scheme) > 1:
        raise ValueError(f"{text!r}: parallelrun's mltable stand-in loads local folders (or "
                         "file://); give the job's input folder (${{inputs.data}})")
    return text


def _relative(path: str, base: str, folder: str) -> str:
    if "://" in path:
        return path
    absolute = path if os.path.isabs(path) else os.path.normpath(os.path.join(base, path))
    relative = os.path.relpath(absolute, folder)
    return relative if relative.startswith("..") else f"./{relative}"
