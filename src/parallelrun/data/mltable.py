"""MLTable folders: Azure ML's table definitions (a folder holding an ``MLTable`` file), read the
way Azure ML's ``mltable`` package reads them.

Example ``MLTable``::

    type: mltable
    paths:
      - pattern: ./**/*.csv                 # or file: ./iris.csv, folder: ./data
    transformations:
      - read_delimited: {delimiter: ",", header: all_files_same_headers, include_path_column: true}
      - extract_columns_from_partition_format: {partition_format: "{Store}/{Brand}/{file_name}.{extension}"}
      - drop_columns: [Path, file_name, extension]

``load_mltable(folder)`` gives a dataset: a file dataset when the file has ``paths`` and no
``read_*`` transformation (Azure ML's file table: one ``Path`` column), else a tabular one whose
mini-batches are DataFrames with every transformation applied in the order written:

* ``read_delimited`` (``delimiter``, ``header``, ``encoding``, ``empty_as_string``,
  ``include_path_column``, ``infer_column_types``, ``support_multi_line``), ``read_parquet``,
  ``read_json_lines`` (``encoding``, ``invalid_lines``, ``include_path_column``);
* ``extract_columns_from_partition_format``: columns taken from each file's path, after the
  data's columns, as text; with partition keys from these columns a job plans without reading;
* ``drop_columns``, ``keep_columns``, ``convert_column_types`` (``int``, ``float``,
  ``boolean`` with ``true_values``/``false_values``/``mismatch_as``, ``string``, ``datetime``
  with ``formats``; a value that does not convert is null), ``filter`` (an expression over
  ``col("name")`` with comparisons, ``and``, ``or``, ``not``, arithmetic);
* ``skip`` and ``take`` (rows in table order: files sorted by path, rows in file order; the
  coordinator reads the mini-batches before the window once to count their rows), and
  ``take_random_sample`` (``probability``, ``seed``: rows kept at random, reproducibly for a
  seed, though not the same rows Azure ML's sampler picks).

The ``Path`` column comes first, as in Azure ML. Checked against ``mltable`` 1.7 (row order,
column order, types). Hand-written rather than built on ``mltable``: that package needs
``pyarrow<26`` and ``pandas<3`` and a native runtime of ~75 MB (see ARCHITECTURE.md).

Longer than most modules: one concept, the MLTable file: reading it, its transformations and the
dataset it makes, after Azure ML's ``mltable`` package.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import random
from pathlib import Path
from typing import Any, Iterator

import yaml

from parallelrun.data import minibatch as payloads
from parallelrun.data.base import AbstractDataset
from parallelrun.data.minibatch import Loaded, MiniBatch
from parallelrun.data.readers import PATH_COLUMN
from parallelrun.data.tabular import TabularDataset
from parallelrun.data.urls import is_url
from parallelrun.errors import DataError

MLTABLE_FILE = "MLTable"
READERS = ("read_delimited", "read_parquet", "read_json_lines")
#: transformations applied to each mini-batch's DataFrame, in the worker
ROW_TRANSFORMATIONS = ("drop_columns", "keep_columns", "convert_column_types", "filter",
                       "take_random_sample")
#: transformations over the whole table's row order, planned by the coordinator
WINDOW_TRANSFORMATIONS = ("skip", "take")
TRANSFORMATIONS = (*READERS, "extract_columns_from_partition_format", *ROW_TRANSFORMATIONS,
                   *WINDOW_TRANSFORMATIONS)
#: MLTable header values -> Dataset.Tabular.from_delimited_files(header=...)
_HEADERS = {"all_files_same_headers": True, "from_first_file": "only_first_file_has_headers",
            "all_files_different_headers": "combine_all_files_headers", "no_header": False}
_DELIMITED_KEYS = {"delimiter", "header", "encoding", "empty_as_string", "include_path_column",
                   "infer_column_types", "support_multi_line"}


@dataclasses.dataclass(frozen=True)
class Step:
    """One transformation applied to a DataFrame: ``("drop_columns", ["a"])``, or a window
    ``("rows", first, end)`` local to one mini-batch (what ``skip``/``take`` become)."""

    name: str
    value: Any = None
    end: int | None = None


def read_mltable_file(folder: str | os.PathLike) -> dict:
    """The parsed ``MLTable`` file of ``folder``; DataError when there is none or it is not
    a mapping."""
    path = os.path.join(os.fspath(folder), MLTABLE_FILE)
    try:
        spec = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{folder}: no MLTable file in this folder; an mltable input is a folder "
                        "holding a file named MLTable (paths: and transformations:)") from None
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"{path} cannot be read as YAML: {exc}") from None
    if not isinstance(spec, dict):
        raise DataError(f"{path}: a mapping with paths: and transformations:")
    return spec


def load_mltable(folder: str | os.PathLike) -> AbstractDataset:
    """The dataset an MLTable folder defines: a FileDataset for a ``paths``-only table, else an
    :class:`MLTableDataset`.

    Example: ``ds = load_mltable("neural-iris-mltable"); df = ds.to_pandas_dataframe()``.
    """
    folder = os.path.abspath(os.fspath(folder))
    return mltable_from_spec(folder, read_mltable_file(folder))


def mltable_from_spec(folder: str | os.PathLike, spec: dict) -> AbstractDataset:
    """The dataset of an MLTable definition (``{"paths": [...], "transformations": [...]}``)
    whose relative paths are relative to ``folder``, as :func:`load_mltable` reads it."""
    folder = os.path.abspath(os.fspath(folder))
    paths = _paths(folder, spec)
    transformations = _transformations(folder, spec)
    reader = next((t for t in transformations if t[0] in READERS), None)
    if reader is None:
        if transformations:
            raise DataError(f"{folder}/MLTable: {transformations[0][0]} needs a table; put a "
                            f"read_delimited, read_parquet or read_json_lines transformation first")
        from parallelrun.data.files import FileDataset

        return FileDataset.from_files(paths, validate=False)
    if transformations[0] is not reader:
        raise DataError(f"{folder}/MLTable: {reader[0]} must be the first transformation "
                        f"(it comes after {transformations[0][0]})")
    return MLTableDataset(folder, paths, transformations)


def output_mltable(output_file: str | os.PathLike, append_row_format: str = "text") -> str | None:
    """Write an ``MLTable`` file beside a job's append_row file, so that an output of
    ``type: mltable`` can be read as a table by the next step (an MLTable the script wrote
    there is kept). Returns the file written, or None.

    ``text`` rows are values joined by single spaces with no header (columns ``Column1``...),
    ``csv`` has its header, ``parquet`` is read as Parquet.

    Example: ``output_mltable("out/parallel_run_step.txt")`` writes ``out/MLTable``.
    """
    folder = os.path.dirname(os.path.abspath(os.fspath(output_file)))
    target = os.path.join(folder, MLTABLE_FILE)
    if os.path.exists(target):
        return None
    reader: dict[str, Any]
    if append_row_format == "parquet":
        reader = {"read_parquet": {"include_path_column": False}}
    elif append_row_format == "csv":
        reader = {"read_delimited": {"delimiter": ",", "header": "all_files_same_headers",
                                     "encoding": "utf8", "support_multi_line": True}}
    else:
        reader = {"read_delimited": {"delimiter": " ", "header": "no_header",
                                     "encoding": "utf8"}}
    spec = {"type": "mltable", "paths": [{"file": f"./{os.path.basename(output_file)}"}],
            "transformations": [reader]}
    with open(target, "w", encoding="utf-8") as handle:
        yaml.safe_dump(spec, handle, default_flow_style=False, sort_keys=False)
    return target


def _paths(folder: str, spec: dict) -> list[str]:
    paths = []
    for entry in spec.get("paths") or []:
        if not isinstance(entry, dict) or len(entry) != 1:
            raise DataError(f"{folder}/MLTable: paths entries are file:, folder: or pattern: "
                            f"(got {entry!r})")
        (kind, target), = entry.items()
        if kind not in ("file", "folder", "pattern"):
            raise DataError(f"{folder}/MLTable: paths: {kind!r} is not file, folder or pattern")
        target = str(target)
        if target.startswith("azureml://") or target.startswith("http"):
            raise DataError(f"{folder}/MLTable: {target!r}: paths must be local (relative to the "
                            "MLTable file) or fsspec URLs (az://, s3://)")
        paths.append(target if is_url(target) else os.path.normpath(os.path.join(folder, target)))
    if not paths:
        raise DataError(f"{folder}/MLTable: no paths; add e.g. paths: [{{file: ./data.csv}}]")
    return paths


def _transformations(folder: str, spec: dict) -> list[tuple[str, Any]]:
    found = []
    for item in spec.get("transformations") or []:
        if isinstance(item, str):
            item = {item: None}
        if not isinstance(item, dict) or len(item) != 1:
            raise DataError(f"{folder}/MLTable: each transformation is one name and its options "
                            f"(got {item!r})")
        (name, value), = item.items()
        if name not in TRANSFORMATIONS:
            raise DataError(f"{folder}/MLTable: transformation {name!r} is not supported; "
                            f"supported: {', '.join(TRANSFORMATIONS)}")
        found.append((name, value))
    return found


class MLTableDataset(AbstractDataset):
    """A tabular MLTable: a tabular dataset for the read and partition steps, plus the row
    transformations each mini-batch's DataFrame goes through in the worker."""

    kind = "tabular"
    record_kind = "mltable"

    def __init__(self, folder: str, paths: list[str], transformations: list[tuple[str, Any]]):
        self.folder = folder
        self.transformations = transformations
        self.table = self._reader(paths, transformations)
        self.paths = self.table.paths
        self.steps: list[Step | tuple] = []
        for name, value in transformations[1:]:
            if name == "extract_columns_from_partition_format":
                continue
            self.steps.append(_check_step(folder, name, value))

    def _reader(self, paths: list, transformations: list) -> AbstractDataset:
        name, options = transformations[0]
        options = dict(options or {})
        partition_format = None
        for other, value in transformations[1:]:
            if other == "extract_columns_from_partition_format":
                partition_format = value.get("partition_format") if isinstance(value, dict) \
                    else value
                if not isinstance(partition_format, str):
                    raise DataError(f"{self.folder}/MLTable: extract_columns_from_partition_format"
                                    " takes {partition_format: '{key}/.../{file_name}.csv'}")
        include_path = bool(options.get("include_path_column", False))
        common = dict(validate=False, include_path=include_path, partition_format=partition_format)
        if name == "read_parquet":
            return TabularDataset.from_parquet_files(paths, **common)
        if name == "read_json_lines":
            invalid = options.get("invalid_lines", "error")
            return TabularDataset.from_json_lines_files(
                paths, encoding=str(options.get("encoding", "utf8")),
                invalid_lines="drop" if invalid == "drop" else "error", **common)
        unknown = set(options) - _DELIMITED_KEYS
        if unknown:
            raise DataError(f"{self.folder}/MLTable: read_delimited: unknown option(s) "
                            f"{sorted(unknown)}; known: {', '.join(sorted(_DELIMITED_KEYS))}")
        header = str(options.get("header", "all_files_same_headers"))
        if header not in _HEADERS:
            raise DataError(f"{self.folder}/MLTable: read_delimited header {header!r}: one of "
                            f"{', '.join(_HEADERS)}")
        return TabularDataset.from_delimited_files(
            paths, separator=str(options.get("delimiter", ",")), header=_HEADERS[header],
            encoding=str(options.get("encoding", "utf8")),
            empty_as_string=bool(options.get("empty_as_string", False)),
            infer_column_types=bool(options.get("infer_column_types", True)), **common)

    # AbstractDataset ---------------------------------------------------------------------------
    def to_record(self) -> dict:
        """What re-creates this table (workspace registration, ``ml_client.data``): its folder,
        paths and transformations as read, so a version keeps its meaning if the file changes."""
        paths = self.table.to_record()["paths"]
        return {"kind": self.record_kind, "folder": self.folder, "paths": paths,
                "transformations": [[name, value] for name, value in self.transformations]}

    @classmethod
    def from_record(cls, record: dict) -> MLTableDataset:
        """Re-create a table from :meth:`to_record` (datastore paths already resolved)."""
        return cls(record["folder"], list(record["paths"]),
                   [(name, value) for name, value in record["transformations"]])

    def check_mini_batch_size(self, value) -> None:
        self.table.check_mini_batch_size(value)

    def check_inputs(self) -> None:
        self.table.check_inputs()

    def describe(self) -> str:
        return f"mltable {self.folder}"

    def iter_files(self) -> Iterator[str]:
        return self.table.iter_files()

    def plan(self, mini_batch_size, partition_keys=None, start_index=0, **options
             ) -> Iterator[MiniBatch]:
        windows = [s for s in self.steps if s.name in WINDOW_TRANSFORMATIONS]
        if windows and partition_keys:
            raise DataError(f"{self.folder}/MLTable: skip/take pick rows in table order, which "
                            "partition_keys do not keep; drop one of them")
        batches = self.table.plan(mini_batch_size, partition_keys, start_index, **options)
        if not windows:
            for mb in batches:
                yield MiniBatch(mb.index, mb.items, Transformed(mb.payload, self.steps, mb.label), mb.label)
            return
        yield from _windowed(batches, self.steps, start_index)

    # For users ---------------------------------------------------------------------------------
    def to_pandas_dataframe(self):
        """The whole table after every transformation, for small data (``mltable``'s name)."""
        import pandas as pd

        frames = [mb.payload.load() for mb in self.plan(None)]
        if not frames:
            return pd.DataFrame()
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _windowed(batches: Iterator[MiniBatch], steps: list[Step], start_index: int
              ) -> Iterator[MiniBatch]:
    """Mini-batches with ``skip``/``take`` turned into row windows of each: the coordinator
    loads what comes before the last window to count its rows (after the steps before it)."""
    first_window = next(i for i, s in enumerate(steps) if s.name in WINDOW_TRANSFORMATIONS)
    before, after = steps[:first_window], steps[first_window:]
    # each skip/take narrows the window [lo, hi) of row numbers counted after `before`
    lo, hi = 0, None
    rest: list[Step] = []
    for step in after:
        if step.name == "skip" and not rest:
            lo = lo + step.value if hi is None else min(hi, lo + step.value)
        elif step.name == "take" and not rest:
            hi = lo + step.value if hi is None else min(hi, lo + step.value)
        else:
            rest.append(step)
    if any(s.name in WINDOW_TRANSFORMATIONS for s in rest):
        raise DataError("MLTable: skip/take after a row transformation that follows an earlier "
                        "skip/take is not supported; put skip and take next to each other")
    seen = 0
    index = start_index
    for mb in batches:
        if hi is not None and seen >= hi:
            return
        inner = Transformed(mb.payload, before)
        rows = len(inner.load())
        first, end = max(lo - seen, 0), rows if hi is None else min(rows, hi - seen)
        seen += rows
        if end <= first:
            continue
        window = [*before, Step("rows", first, end), *rest]
        yield MiniBatch(index, None, Transformed(mb.payload, window, mb.label), mb.label)
        index += 1


def _check_step(folder: str, name: str, value: Any) -> Step:
    where = f"{folder}/MLTable: {name}"
    if name in ("drop_columns", "keep_columns"):
        columns = [value] if isinstance(value, str) else value
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise DataError(f"{where}: a column name or a list of them")
        return Step(name, tuple(columns))
    if name in ("skip", "take"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise DataError(f"{where}: {value!r}: a number of rows >= 0")
        return Step(name, value)
    if name == "filter":
        if not isinstance(value, str):
            raise DataError(f"{where}: an expression such as 'col(\"amount\") > 0'")
        _Expression(value)   # parse now: a bad expression fails before any work
        return Step(name, value)
    if name == "take_random_sample":
        value = value if isinstance(value, dict) else {}
        probability = value.get("probability")
        if isinstance(probability, bool) or not isinstance(probability, (int, float)) \
                or not 0 <= probability <= 1:
            raise DataError(f"{where}: probability: a number from 0 to 1")
        return Step(name, (float(probability), value.get("seed")))
    if name == "convert_column_types":
        entries = value if isinstance(value, list) else [value]
        checked = []
        for entry in entries:
            if not isinstance(entry, dict) or "columns" not in entry or "column_type" not in entry:
                raise DataError(f"{where}: entries of columns: [...] and column_type: ...")
            columns = entry["columns"]
            columns = [columns] if isinstance(columns, str) else list(columns)
            checked.append((tuple(columns), _column_type(where, entry["column_type"])))
        return Step(name, tuple(checked))
    raise DataError(f"{where}: not supported here")


def _column_type(where: str, value: Any) -> tuple:
    """``int`` / ``{datetime: {formats: [...]}}`` / ``{boolean: {...}}`` -> (kind, options)."""
    if isinstance(value, str):
        kind, options = value, {}
    elif isinstance(value, dict) and len(value) == 1:
        (kind, options), = value.items()
        options = dict(options or {})
    else:
        raise DataError(f"{where}: column_type {value!r}: int, float, string, boolean, datetime "
                        "or {datetime: {formats: [...]}}")
    kind = {"integer": "int", "double": "float", "str": "string", "bool": "boolean",
            "date": "datetime"}.get(str(kind), str(kind))
    if kind not in ("int", "float", "string", "boolean", "datetime"):
        raise DataError(f"{where}: column_type {kind!r}: int, float, string, boolean or datetime")
    frozen = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in options.items()))
    return kind, frozen


class Transformed:
    """Payload of an MLTable mini-batch: the table's own payload, then the steps."""

    __slots__ = ("inner", "steps", "salt")

    def __init__(self, inner: Any, steps: list[Step], salt: str = ""):
        self.inner = inner
        self.steps = steps
        self.salt = salt     # the mini-batch's label: take_random_sample differs per mini-batch

    def load(self):
        return self.read().data

    def read(self, mini_batch_format: str = "pandas") -> Loaded:
        """The inner payload's rows with the steps applied (they work on a DataFrame; a script
        asking for ``pyarrow`` gets the result as a Table); its bad rows' account unchanged."""
        loaded = payloads.read(self.inner, "pandas")
        frame = loaded.data
        if PATH_COLUMN in frame.columns and frame.columns[0] != PATH_COLUMN:
            # Azure ML puts the path column first
            frame = frame[[PATH_COLUMN, *[c for c in frame.columns if c != PATH_COLUMN]]]
        frame = _dates_as_datetimes(frame)
        for step in self.steps:
            frame = apply_step(frame, step, self.salt)
        if mini_batch_format == "pyarrow":
            import pyarrow as pa

            frame = pa.Table.from_pandas(frame, preserve_index=False)
        return loaded._replace(data=frame)

    # what the worker and the scheduler read from a payload (see minibatch.Payload)
    @property
    def rows_hint(self) -> int:
        return 0 if self.steps else payloads.rows_hint(self.inner)

    @property
    def partition_key_value(self):
        return payloads.partition_key_value(self.inner)

    def __getstate__(self):
        return (self.inner, self.steps, self.salt)

    def __setstate__(self, state):
        self.inner, self.steps, self.salt = state


def _dates_as_datetimes(frame):
    """Date columns (pyarrow's date32, in pandas as datetime.date objects) as datetime64:
    what Azure ML's reader infers for ``1990-06-14``."""
    import datetime

    import pandas as pd

    for column in frame.columns:
        if frame[column].dtype == object:
            first = frame[column].dropna().head(1)
            if len(first) and type(first.iloc[0]) is datetime.date:
                frame[column] = pd.to_datetime(frame[column])
    return frame


def apply_step(frame, step: Step, salt: str = ""):
    """``frame`` after one transformation."""
    import pandas as pd

    if step.name == "rows":
        return frame.iloc[step.value:step.end].reset_index(drop=True)
    if step.name == "drop_columns":
        return frame.drop(columns=[c for c in step.value if c in frame.columns])
    if step.name == "keep_columns":
        missing = [c for c in step.value if c not in frame.columns]
        if missing:
            raise DataError(f"keep_columns: {missing} not in the table (it has {list(frame.columns)})")
        return frame[list(step.value)]
    if step.name == "filter":
        mask = _Expression(step.value).evaluate(frame)
        return frame[mask.fillna(False).astype(bool)].reset_index(drop=True)
    if step.name == "take_random_sample":
        probability, seed = step.value
        rng = random.Random(f"{seed}:{salt}") if seed is not None else random.Random()
        keep = [rng.random() < probability for _ in range(len(frame))]
        return frame[pd.Series(keep, index=frame.index)].reset_index(drop=True)
    if step.name == "convert_column_types":
        frame = frame.copy()
        for columns, (kind, options) in step.value:
            for column in columns:
                if column not in frame.columns:
                    raise DataError(f"convert_column_types: column {column!r} is not in the table "
                                    f"(it has {list(frame.columns)})")
                frame[column] = _convert(frame[column], kind, dict(options))
        return frame
    raise DataError(f"MLTable transformation {step.name!r} is not supported")


def _convert(series, kind: str, options: dict):
    import pandas as pd

    if kind == "string":
        return series.astype("string").astype(object).where(series.notna(), None)
    if kind in ("int", "float"):
        numbers = pd.to_numeric(series, errors="coerce")
        if kind == "float":
            return numbers.astype("float64")
        return numbers.astype("int64") if not numbers.isna().any() else numbers.astype("Int64")
    if kind == "boolean":
        true_values = {str(v).lower() for v in options.get("true_values", ("true", "1"))}
        false_values = {str(v).lower() for v in options.get("false_values", ("false", "0"))}
        mismatch = options.get("mismatch_as", "error")

        def one(value):
            text = str(value).lower()
            if text in true_values:
                return True
            if text in false_values:
                return False
            return {"true": True, "false": False}.get(str(mismatch))

        return series.map(one).astype("boolean")
    formats = list(options.get("formats", ()))
    if not formats:
        return pd.to_datetime(series, errors="coerce")
    result = pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns]")
    for fmt in formats:
        parsed = pd.to_datetime(series, format=fmt, errors="coerce")
        result = result.fillna(parsed)
    return result


class _Expression:
    """An MLTable filter expression (``col("a") > 5 and col("b") == "x"``), parsed with Python's
    ``ast`` and evaluated over a DataFrame's columns; nothing else can be called."""

    _COMPARE = {ast.Eq: "__eq__", ast.NotEq: "__ne__", ast.Lt: "__lt__", ast.LtE: "__le__",
                ast.Gt: "__gt__", ast.GtE: "__ge__"}
    _ARITH = {ast.Add: "__add__", ast.Sub: "__sub__", ast.Mult: "__mul__",
              ast.Div: "__truediv__", ast.Mod: "__mod__"}

    def __init__(self, text: str):
        self.text = text
        try:
            self.tree = ast.parse(text.replace("&&", " and ").replace("||", " or "),
                                  mode="eval").body
        except SyntaxError as exc:
            raise DataError(f"filter {text!r} does not parse: {exc.msg}") from None
        self._check(self.tree)

    def _check(self, node: ast.AST) -> None:
        if isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id == "col" and len(node.args) == 1
                    and isinstance(node.args[0], ast.Constant) and not node.keywords):
                raise DataError(f"filter {self.text!r}: only col(\"name\") can be called")
            return
        allowed = (ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.Compare,
                   ast.BinOp, ast.Constant, *self._COMPARE, *self._ARITH)
        if not isinstance(node, allowed):
            raise DataError(f"filter {self.text!r}: {type(node).__name__} is not allowed; use "
                            "col(\"name\"), constants, comparisons, and, or, not, + - * / %")
        for child in ast.iter_child_nodes(node):
            self._check(child)

    def evaluate(self, frame):
        import pandas as pd

        value = self._eval(self.tree, frame)
        if not isinstance(value, pd.Series):
            value = pd.Series([bool(value)] * len(frame), index=frame.index)
        return value

    def _eval(self, node: ast.AST, frame):
        if isinstance(node, ast.Call):
            name = node.args[0].value
            if name not in frame.columns:
                raise DataError(f"filter {self.text!r}: no column {name!r} (the table has "
                                f"{list(frame.columns)})")
            return frame[name]
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.BoolOp):
            values = [self._eval(v, frame) for v in node.values]
            result = values[0]
            for other in values[1:]:
                result = (result & other) if isinstance(node.op, ast.And) else (result | other)
            return result
        if isinstance(node, ast.UnaryOp):
            operand = self._eval(node.operand, frame)
            return ~operand if isinstance(node.op, ast.Not) else -operand
        if isinstance(node, ast.BinOp):
            left, right = self._eval(node.left, frame), self._eval(node.right, frame)
            return getattr(left, self._ARITH[type(node.op)])(right) \
                if hasattr(left, "index") else getattr(right, "__r" + self._ARITH[type(node.op)][2:])(left)
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, frame)
            result = None
            for op, comparator in zip(node.ops, node.comparators):
                right = self._eval(comparator, frame)
                part = _compare(left, right, self._COMPARE[type(op)])
                result = part if result is None else (result & part)
                left = right
            return result
        raise DataError(f"filter {self.text!r}: cannot evaluate {type(node).__name__}")


def _compare(left, right, method: str):
    import pandas as pd

    if not isinstance(left, pd.Series) and isinstance(right, pd.Series):
        flipped = {"__lt__": "__gt__", "__gt__": "__lt__", "__le__": "__ge__",
                   "__ge__": "__le__"}.get(method, method)
        return getattr(right, flipped)(left)
    return getattr(left, method)(right)
