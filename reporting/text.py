"""Numbers as text, vectorised, exactly as pandas and numpy print them.

`Series.astype(str)` and `to_csv` format a float with Python's repr one value at a time; for
the millions of findings of a quarter that dominated the audit and the CSV export. Arrow's
shortest round-trip text has the same digits: `float_text` takes it, and makes the values whose
layout Arrow writes differently (whole numbers without `.0`, exponents, tiny or huge values,
inf) the numpy way. tests/test_text.py checks it against numpy on millions of values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

TEXT = pa.large_string()
POINT_ZERO, EMPTY = pa.scalar(".0", TEXT), pa.scalar("", TEXT)


def float_text(values: np.ndarray) -> pa.Array:
    """`values.astype(str)` of a float64 array as Arrow text, NaN as null."""
    text = pc.cast(pa.array(values, type=pa.float64()), TEXT)
    with np.errstate(invalid="ignore"):
        size = np.abs(values)
        odd = ~(size < 1e16) | ((size < 1e-4) & (values != 0))  # NaN and inf too
        odd |= pc.match_substring(text, "e").to_numpy(zero_copy_only=False)
        whole = ~odd & (values == np.trunc(values))
    if whole.any():
        point = pc.binary_join_element_wise(text.filter(whole), POINT_ZERO, EMPTY)
        text = pc.replace_with_mask(text, pa.array(whole), point)
    if odd.any():
        numpy_text = pa.array(values[odd].astype(str), TEXT)
        text = pc.replace_with_mask(text, pa.array(odd), numpy_text)
    return pc.if_else(pa.array(np.isnan(values)), pa.scalar(None, TEXT), text)


def as_text(series: pd.Series) -> pd.Series:
    """`series.astype(str)` (missing values stay missing), fast for float64 columns."""
    if series.dtype != np.float64:
        return series.astype(str)
    text = text_array(series).to_pandas()
    text.index = series.index
    return text


def text_array(series: pd.Series) -> pa.Array:
    """`as_text(series)` as an Arrow string array."""
    if series.dtype != np.float64:
        return pa.array(series.astype(str), pa.string(), from_pandas=True)
    return float_text(series.to_numpy()).cast(pa.string())
