"""append_row's text format writes a list of floats byte for byte as str() does, fast path or not."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from parallelrun.engine.text_rows import TextEncoder, float_lines
from parallelrun.script import ResultEncoder

EDGES = [0.0, -0.0, 1.0, -3.0, 1e-4, 9.999999999999999e-05, 1e-05, 1e16, 9999999999999998.0,
         1.5e16, 5e-324, 1.7976931348623157e308, math.inf, -math.inf, math.nan, 0.1, 1 / 3,
         -13463053035.748682, 897910207200143.2, 123456789.123, 2.5e-7]


def as_str(values: list[float]) -> bytes:
    return ("\n".join(map(str, values)) + "\n").encode()


def test_values_where_arrow_and_str_write_differently_are_written_as_str_does():
    assert float_lines(EDGES) == as_str(EDGES)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=1,
                max_size=300))
def test_any_floats_are_written_as_str_writes_them(values):
    assert float_lines(values) == as_str(values)


@given(st.lists(st.one_of(st.floats(), st.integers(), st.booleans(), st.text(max_size=5)),
                min_size=64, max_size=200))
def test_the_text_encoder_writes_what_the_default_encoder_writes(values):
    try:
        expected = ResultEncoder().encode(values)
    except Exception as exc:   # e.g. a line break in a str: both refuse it
        expected = type(exc)
    try:
        got = TextEncoder().encode(values)
    except Exception as exc:
        got = type(exc)
    assert got == expected


@settings(max_examples=100, deadline=None)
@given(st.integers(64, 200).flatmap(lambda n: st.tuples(
    st.lists(st.floats(width=64), min_size=n, max_size=n),
    st.lists(st.integers(-2**63, 2**63 - 1), min_size=n, max_size=n))))
def test_a_dataframe_of_numbers_is_written_as_the_default_encoder_writes_it(columns):
    import pandas as pd

    floats, ints = columns
    frame = pd.DataFrame({"id": pd.Series(ints, dtype="int64"), "score": floats,
                          "again": pd.Series(floats, dtype="float64")})
    assert TextEncoder().encode(frame) == ResultEncoder().encode(frame)
    assert TextEncoder().encode(frame[["score"]]) == ResultEncoder().encode(frame[["score"]])
