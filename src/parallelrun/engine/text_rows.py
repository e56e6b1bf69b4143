"""The worker half of append_row's ``text`` format, with a fast path for numbers.

``run()`` of a scoring script usually returns one float per row (``scores.tolist()``), and
``str()`` per float is the costliest step a worker takes after parsing its piece: ~3 ms for the
6,000 rows of a 1 MB mini-batch of 20 float columns, against ~6 ms to parse it. Arrow formats the
same floats in ~1 ms. Both write the shortest text that reads back as the same float, so the
digits agree; only the notation may differ (Arrow writes ``3`` for ``3.0``, ``0.00001`` for
``1e-05``, and an exponent for some 17-digit numbers): every value where it may, or where Arrow
wrote an exponent, is written by ``str()`` instead. The bytes are exactly what
:class:`~parallelrun.script.ResultEncoder` writes (a property test holds it to that).
"""

from __future__ import annotations

from typing import Any

from parallelrun.script import ResultEncoder, is_arrow_table, is_dataframe

#: below this many values, str() per element is as quick as setting up Arrow
_FAST_MIN = 64


class TextEncoder(ResultEncoder):
    """``text``: :class:`ResultEncoder`'s rule, byte for byte; lists of floats, and DataFrames
    whose columns are all float64 / int64 (numbers are never quoted), written by Arrow.

    A pyarrow Table is written as its ``to_pandas()`` DataFrame is.
    """

    def encode(self, result: Any) -> tuple[bytes, int]:
        if is_arrow_table(result):
            result = result.to_pandas()
        if isinstance(result, list):
            if len(result) >= _FAST_MIN and set(map(type, result)) == {float}:
                return float_lines(result), len(result)
        elif (is_dataframe(result) and len(result) >= _FAST_MIN and result.shape[1]
              and all(dtype.name in ("float64", "int64") for dtype in result.dtypes)):
            # numbers only (an id and a score): never quoted, so the columns' texts joined
            return number_rows([result.iloc[:, i].to_numpy() for i in range(result.shape[1])]), \
                len(result)
        return super().encode(result)


def float_lines(values: list[float]) -> bytes:
    """``"\\n".join(map(str, values)) + "\\n"``, encoded, for a list of Python floats."""
    import numpy as np

    return _lines(float_text(np.asarray(values, dtype=np.float64)))


def number_rows(columns: list) -> bytes:
    """Rows of numpy float64 / int64 columns, values as ``str()`` writes them joined by spaces,
    one line each (what the text format writes for a DataFrame of numbers)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    texts = [float_text(c) if c.dtype.kind == "f" else pc.cast(pa.array(c), pa.string())
             for c in columns]
    return _lines(texts[0] if len(texts) == 1 else pc.binary_join_element_wise(*texts, " "))


def float_text(array):
    """A float64 numpy array as an Arrow string array of what ``str()`` writes for each."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.cast(pa.array(array), pa.string())
    with np.errstate(invalid="ignore"):
        magnitude = np.abs(array)
        # where str() and Arrow may write the same float differently: nan/inf, whole numbers
        # (3.0 against 3), and str()'s exponent range (below 1e-4, from 1e16 on)
        by_str = (~np.isfinite(array) | (array == np.trunc(array)) | (magnitude < 1e-4)
                  | (magnitude >= 1e16))
    if b"e" in text.buffers()[2].to_pybytes():
        # Arrow wrote an exponent where str() writes digits (some 17-digit values)
        by_str |= pc.match_substring(text, "e").to_numpy(zero_copy_only=False)
    if by_str.any():
        fixed = pa.array([str(value) for value in array[by_str].tolist()], pa.string())
        text = pc.replace_with_mask(text, pa.array(by_str), fixed)
    return text


def _lines(text) -> bytes:
    """The strings of an Arrow string array, each followed by a line feed, as one bytes."""
    import numpy as np
    import pyarrow.compute as pc

    joined = pc.binary_join_element_wise(text, "", "\n")     # each value + "\n" + ""
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32, count=len(joined) + 1,
                            offset=joined.offset * 4)
    return joined.buffers()[2].to_pybytes()[offsets[0]:offsets[-1]]
