"""Per-row values worked out once per distinct value.

Report columns such as factor ids, days and owners repeat a handful of values over millions of
ledger rows; a Python function applied per row (`Series.map(function)`) would run millions of
times. `map_distinct` runs it once per distinct value and spreads the results by code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd


def map_distinct(values: pd.Series, function: Callable[[Any], Any]) -> pd.Series:
    """`values.map(function)`, calling `function` once per distinct value (missing included:
    it gets the column's own missing value, as `map` would pass it)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    results = [function(value) for value in uniques]
    missing = codes < 0
    # Code -1 (missing) takes the last slot: the function of the first missing value present.
    results.append(function(values.iloc[int(np.argmax(missing))]) if missing.any() else None)
    table = np.empty(len(results), dtype=object)
    table[:] = results
    return pd.Series(table[codes], index=values.index, dtype=object)
