"""The arguments of a tabular dataset, checked and normalised before any file is read.

``Dataset.Tabular.from_*_files`` and the subsetting methods (``take``, ``keep_columns``...) take
Azure ML's argument names and values; this module turns them into what the planner and the reader
use (header modes, Python codec names, pyarrow types, bad-row actions) or fails with a
:class:`~parallelrun.errors.DataError` naming the value and what is allowed. It is separate from
:mod:`parallelrun.data.tabular` so that the dataset class reads as its API, and so that the
planner (:mod:`parallelrun.data.tabular_planning`) can ask :func:`byte_scannable` without
importing the class.
"""

from __future__ import annotations

import codecs
from typing import Any

from parallelrun.data.readers import BAD_ROWS_ACTIONS, as_arrow_type
from parallelrun.errors import DataError

#: header= values (Azure ML's PromoteHeadersBehavior names too) -> what parallelrun does
HEADERS = {
    "true": "all", "all_files_have_same_headers": "all", "all": "all",
    "false": "none", "no_headers": "none", "none": "none",
    "only_first_file_has_headers": "first", "first": "first",
    "combine_all_files_headers": "combine", "combine": "combine",
}
_ENCODINGS = {"utf8": "utf-8", "iso88591": "latin-1", "latin1": "latin-1", "ascii": "ascii",
              "utf16": "utf-16", "utf32": "utf-32", "utf8bom": "utf-8-sig",
              "windows1252": "cp1252"}


def codec_of(encoding: str) -> str:
    """The Python codec name of an ``encoding=`` value (Azure ML's names or a codec name)."""
    name = _ENCODINGS.get(str(encoding).lower().replace("-", "").replace("_", ""), encoding)
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise DataError(f"encoding={encoding!r} is not known; use one of utf8, utf8bom, latin1, "
                        "iso88591, windows1252, ascii, utf16, utf32 (or a Python codec name)") from None


def byte_scannable(codec: str, separator: str) -> bool:
    """Whether newlines, quotes and the separator are single ASCII bytes in this encoding."""
    if codec.startswith(("utf-16", "utf-32")):
        return False
    try:
        return ('\n\r"' + separator).encode(codec) == ('\n\r"' + separator).encode("ascii")
    except (UnicodeEncodeError, UnicodeError):
        return False


def row_count(name: str, count: Any) -> int:
    """``count`` of ``take``/``skip`` (``name``), checked to be a whole number of rows >= 0."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise DataError(f"{name}(count={count!r}) is not allowed: a whole number of rows >= 0")
    return count


def column_list(name: str, columns: Any) -> tuple:
    """Column names given as one name or a list (argument ``name``), as a non-empty tuple."""
    items = [columns] if isinstance(columns, str) else list(columns or [])
    if not items or not all(isinstance(c, str) and c for c in items):
        raise DataError(f"{name}={columns!r} is not allowed: a column name or a non-empty list "
                        "of them, e.g. ['Store', 'Brand']")
    return tuple(items)


def column_types(types: dict | None) -> tuple:
    """``set_column_types`` as ``((column, pyarrow type), ...)``; () when not given."""
    if types is None:
        return ()
    if not isinstance(types, dict):
        raise DataError(f"set_column_types={types!r} is not allowed: a dict of column name to type, "
                        "e.g. {'id': str, 'amount': float}")
    return tuple((str(k), as_arrow_type(v, k)) for k, v in types.items())


def types_record(types: dict | None) -> dict | None:
    """``set_column_types`` as JSON-able text (column -> pyarrow type name), to store."""
    if types is None:
        return None
    return {str(k): str(v) for k, v in column_types(types)}


def bad_rows(value: str) -> str:
    """``on_bad_lines``, checked to be one of the reader's bad-row actions."""
    if value not in BAD_ROWS_ACTIONS:
        raise DataError(f"on_bad_lines={value!r} is not allowed: 'count' (leave the row out and "
                        "count it as a failed record), 'skip' (leave it out) or 'error' (fail "
                        "the mini-batch)")
    return value
