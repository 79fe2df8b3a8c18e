"""Vectorised number text is exactly what numpy and pandas print (reporting/text.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reporting.text import as_text, float_text


def _awkward_floats() -> np.ndarray:
    """Values around every layout switch of repr, plus random bit patterns of every size."""
    rng = np.random.default_rng(20260930)
    edges = [0.0, -0.0, 1e-4, 9.999999999999999e-05, 5e-05, 1e-05, 1e16, 9999999999999998.0,
             1e15, 123456789012345.6, 1e13, 9999999999999.0, 0.1 + 0.2, 1 / 3, 5e-324,
             np.inf, -np.inf, np.nan, 2.0**53, -(2.0**53) + 1, 1e22, 1.5e300]  # fmt: skip
    bits = rng.integers(0, 2**64, 200_000, dtype=np.uint64).view(np.float64)
    return np.concatenate(
        [
            edges,
            bits[np.isfinite(bits)],
            rng.lognormal(0, 6, 200_000),
            -rng.lognormal(10, 8, 100_000),
            np.round(rng.lognormal(0, 4, 100_000), 1),
            rng.integers(-(2**53), 2**53, 100_000).astype(float),
            10 ** rng.uniform(-20, 20, 100_000),
        ]
    )


def test_float_text_is_numpys_text() -> None:
    values = _awkward_floats()
    ours = float_text(values).to_numpy(zero_copy_only=False)
    theirs = values.astype(str)
    nan = np.isnan(values)
    assert (ours[~nan] == theirs[~nan]).all()
    assert all(v is None for v in ours[nan])


def test_as_text_is_astype_str() -> None:
    values = pd.Series(_awkward_floats()[:50_000], index=np.arange(50_000) * 3)
    pd.testing.assert_series_equal(as_text(values), values.astype(str))
    ints = pd.Series([1, -2, 30])
    pd.testing.assert_series_equal(as_text(ints), ints.astype(str))
