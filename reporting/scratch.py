"""Working arrays of a day's length, reused from one day partition to the next.

A new float array of a day's rows (about 1 MB at 100,000 rows) comes from the C allocator,
which hands the memory back to the system when the day's arrays are freed; the next day's
arrays then fault every page in again. On a 10M-row quarter that cost more CPU than the
arithmetic done in the arrays (rollup.py, uncertainty.py): the day-by-day readers keep one
Scratch and work in its arrays instead.
"""

from __future__ import annotations

import numpy as np


class Scratch:
    """Named arrays, each grown when a longer one is asked for; one name, one use at a time."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def array(self, name: str, rows: int, dtype: type = np.float64) -> np.ndarray:
        """A `rows`-long array for `name`, holding whatever it held before (to overwrite)."""
        found = self._arrays.get(name)
        if found is None or len(found) < rows or found.dtype != dtype:
            found = self._arrays[name] = np.empty(rows + rows // 8, dtype)  # room to grow
        return found[:rows]
