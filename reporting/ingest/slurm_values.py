"""Vectorised parsers for sacct's value formats: durations, memory sizes, TRES lists, states, times.

Each parser takes a Series of strings and returns parsed values with NaN/NaT where the text is
empty or a documented placeholder, plus (where it matters) a boolean Series of *unparseable*
cells, so the reader can quarantine those rows with a reason instead of guessing.

Cells in the form sacct prints (ASCII digits, no padding) are read with pyarrow.compute, a whole
column at once. Every other cell goes to the general parser of the same name in
reporting/ingest/slurm_general.py, so the answer is the general parser's for any text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reporting.ingest.slurm_general import (
    BYTES_PER_GB,
    EMPTY_TEXT,
    J_PER_KWH,
    MEM_UNIT_BYTES,
    S_PER_DAY,
    S_PER_HOUR,
    S_PER_MINUTE,
    UNLIMITED_TEXT,
    _tres_pairs,
    general_count,
    general_duration_s,
    general_memory_gb,
    general_state,
    general_time_text,
    parse_tres,
)

__all__ = ["parse_count", "parse_duration_s", "parse_energy_kwh", "parse_local_time"]
__all__ += ["parse_memory_gb", "parse_state", "parse_tres", "tres_values"]

TEXT = pa.large_string()
# Up to 15 digits a number reads the same through Arrow and pandas; longer ones go the general way.
_N = "[0-9]{1,15}"
_DURATION = rf"^(?:(?:(?P<d>{_N})-)?(?P<h>{_N}):)?(?P<m>{_N}):(?P<s>{_N}(?:\.{_N})?)$"
_MEMORY = rf"^(?P<num>{_N}(?:\.{_N})?)(?P<unit>[KMGTP]?)(?P<per>[nc]?)$"
_COUNT = rf"^{_N}$"
_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T -][0-9]{2}:[0-9]{2}:[0-9]{2}$"
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
# A TRES list of `key=value` items, keys plain ASCII: lower-casing and first-wins are regexes.
_TRES_KEY = r"[A-Za-z0-9/:_.\-]+"
_SIMPLE_TRES = rf"^(?:{_TRES_KEY}=[^,]*(?:,{_TRES_KEY}=[^,]*)*)?$"
_TYPED_GPU = r"(?i)(?:^|,)gres/gpu:(?P<v>[A-Za-z0-9/:_.\-]*)="
_GPU_TYPE_KEY = r"(?i)(?:^|,)gpu_type="  # a literal key of that name: left to the general way


def _arrow(text: pd.Series) -> pa.Array | None:
    """The column as Arrow text with "" for missing cells, or None when it holds non-text."""
    try:
        column = pa.array(text, type=TEXT, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    return pc.fill_null(column, "")


def _mask(values: Any) -> np.ndarray:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=bool)


def _is_in(column: pa.Array, texts: set[str] | frozenset[str]) -> np.ndarray:
    return _mask(pc.is_in(column, value_set=pa.array(sorted(texts), TEXT)))


def _numbers(text: pa.Array) -> np.ndarray:
    """Digits (maybe with a fraction) → float64; an empty group reads as 0."""
    filled = pc.if_else(pc.equal(text, ""), "0", text)
    return pc.cast(filled, pa.float64()).to_numpy(zero_copy_only=False)


def _with_general(
    text: pd.Series,
    values: np.ndarray,
    unparseable: np.ndarray,
    fast: np.ndarray,
    general: Callable[..., tuple[pd.Series, pd.Series]],
) -> tuple[pd.Series, pd.Series]:
    """Fill the cells not read the fast way from the general parser."""
    if not fast.all():
        other = ~fast
        # As Python strings: pandas' .str methods on Arrow text use RE2, where \d is ASCII only.
        general_values, general_bad = general(text[other].astype(object))
        values[other] = general_values.to_numpy()
        unparseable[other] = general_bad.to_numpy(dtype=bool)
    return pd.Series(values, index=text.index), pd.Series(unparseable, index=text.index)


def parse_duration_s(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """`[DD-[HH:]]MM:SS[.mmm]` → seconds; UNLIMITED/Partition_Limit/empty → NaN.

    Returns (seconds, unparseable).
    """
    column = _arrow(text)
    if column is None:
        return general_duration_s(text)
    parts = pc.extract_regex(column, _DURATION)
    matched = _mask(pc.is_valid(parts))
    days, hours, minutes, seconds = (_numbers(pc.struct_field(parts, k)) for k in "dhms")
    total_s = days * S_PER_DAY + hours * S_PER_HOUR + minutes * S_PER_MINUTE + seconds
    values = np.where(matched, total_s, np.nan)
    fast = matched | _is_in(column, EMPTY_TEXT | UNLIMITED_TEXT)
    return _with_general(text, values, np.zeros(len(text), bool), fast, general_duration_s)


def parse_memory_gb(
    text: pd.Series, n_cpus: pd.Series | float, n_nodes: pd.Series | float
) -> tuple[pd.Series, pd.Series]:
    """Memory like `32G`, `1294440K`, `0`, or legacy `6760Mc` (per CPU) / `250Gn` (per node) → GB total.

    `n_cpus`/`n_nodes`: numbers, or Series on `text`'s index. Returns (gigabytes, unparseable).
    """
    column = _arrow(text)
    if column is None:
        return general_memory_gb(text, n_cpus, n_nodes)
    parts = pc.extract_regex(column, _MEMORY)
    matched = _mask(pc.is_valid(parts))
    unit = pc.struct_field(parts, "unit")
    unit_bytes = np.full(len(text), np.nan)
    for letter, size in MEM_UNIT_BYTES.items():
        unit_bytes[_mask(pc.equal(unit, letter)) & matched] = size
    # The general parser's arithmetic, step by step, so the floats come out the same.
    gb = pd.Series(_numbers(pc.struct_field(parts, "num")) * unit_bytes / BYTES_PER_GB)
    gb.index = text.index
    per = pc.struct_field(parts, "per")
    per_cpu, per_node = _mask(pc.equal(per, "c")), _mask(pc.equal(per, "n"))
    gb = gb.where(~per_cpu, gb * n_cpus).where(~per_node, gb * n_nodes)
    values = np.where(matched, gb.to_numpy(dtype="float64"), np.nan)
    fast = matched | _is_in(column, EMPTY_TEXT)

    def general(rows: pd.Series) -> tuple[pd.Series, pd.Series]:
        def of(value: pd.Series | float) -> pd.Series | float:
            return value.loc[rows.index] if isinstance(value, pd.Series) else value

        return general_memory_gb(rows, of(n_cpus), of(n_nodes))

    return _with_general(text, values, np.zeros(len(text), bool), fast, general)


def parse_count(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Integer counts (NCPUS, NNodes, gres/gpu=N) → float with NaN for empty; (values, unparseable)."""
    column = _arrow(text)
    if column is None:
        return general_count(text)
    counted = _mask(pc.match_substring_regex(column, _COUNT))
    values = np.where(counted, _numbers(pc.if_else(counted, column, "")), np.nan)
    fast = counted | _is_in(column, EMPTY_TEXT)
    return _with_general(text, values, np.zeros(len(text), bool), fast, general_count)


def parse_energy_kwh(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """ConsumedEnergyRaw joules → kWh; empty or 0 (no energy plugin) → NaN; (kwh, unparseable)."""
    joules, unparseable = parse_count(text)
    return (joules / J_PER_KWH).where(joules > 0), unparseable


def parse_state(text: pd.Series) -> pd.Series:
    """`CANCELLED by 123` → `CANCELLED`; `CANCELLED+` → `CANCELLED`; upper-case first token.
    A handful of distinct states: each is read once."""
    codes, distinct = pd.factorize(text, use_na_sentinel=False)
    states = general_state(pd.Series(distinct, dtype=object)).to_numpy(dtype=object)
    return pd.Series(states[codes], index=text.index, dtype=object)


def parse_local_time(text: pd.Series, timezone: str) -> tuple[pd.Series, pd.Series]:
    """Naive sacct timestamps in the site's timezone → UTC; `Unknown`/`None`/empty → NaT.

    In the repeated hour when clocks go back, a naive time is read as the first (summer-time)
    occurrence; a time that does not exist (clocks go forward) is shifted forward. sacct gives no
    offset, so nothing better is possible without `TZ=UTC` at the source.
    Returns (utc_times, unparseable).
    """
    column = _arrow(text)
    if column is None:
        normalised, blank = general_time_text(text)
    else:
        # sacct prints `2024-04-04T21:45:17`; SLURM_TIME_FORMAT may give `2024-03-15-20:24:16`.
        timed = _mask(pc.match_substring_regex(column, _TIME))
        blank = _is_in(column, EMPTY_TEXT)
        texts = pc.utf8_replace_slice(pc.if_else(timed, column, "0" * 19), 10, 11, "T")
        normalised = pd.Series(texts.to_numpy(zero_copy_only=False), index=text.index)
        normalised = normalised.where(timed)
        if not (other := ~(timed | blank)).any():
            blank = pd.Series(blank, index=text.index)
        else:
            other_text, other_blank = general_time_text(text[other].astype(object))
            normalised[other] = other_text.to_numpy(dtype=object)
            blank[other] = other_blank.to_numpy(dtype=bool)
            blank = pd.Series(blank, index=text.index)
    parsed = pd.to_datetime(normalised.astype(object), format=_TIME_FORMAT, errors="coerce")
    localised = parsed.dt.tz_localize(
        timezone, ambiguous=np.ones(len(parsed), dtype=bool), nonexistent="shift_forward"
    )
    return localised.dt.tz_convert("UTC").dt.as_unit("s"), parsed.isna() & ~blank


def tres_values(text: pd.Series, keys: list[str]) -> dict[str, pd.Series]:
    """The columns `keys` of `parse_tres(text)` that it has (`gpu_type`: the typed GPU entry's
    type), without a Python call per cell for lists of plain `key=value` items."""
    column = _arrow(text)
    table = parse_tres(text) if column is None else None
    if table is not None:
        return {key: table[key] for key in keys if key in table.columns}
    encoded = pc.dictionary_encode(column)
    if 2 * len(encoded.dictionary) < len(column):  # AllocTRES repeats: read each list once
        distinct = tres_values(pd.Series(pd.arrays.ArrowExtensionArray(encoded.dictionary)), keys)
        positions = encoded.indices.to_numpy()
        return {
            key: pd.Series(values.to_numpy(dtype=object)[positions], index=text.index, dtype="str")
            for key, values in distinct.items()
        }
    simple = _mask(pc.match_substring_regex(column, _SIMPLE_TRES))
    simple &= ~_mask(pc.match_substring_regex(column, _GPU_TYPE_KEY))
    others = _general_pairs(column, ~simple)
    found = {}
    for key in keys:
        pattern = _TYPED_GPU if key == "gpu_type" else rf"(?i)(?:^|,){re.escape(key)}=(?P<v>[^,]*)"
        parts = pc.extract_regex(column, pattern)
        value = pc.struct_field(parts, "v")
        value = pc.utf8_lower(value) if key == "gpu_type" else value
        cells = pc.if_else(pc.and_(pc.is_valid(parts), pa.array(simple)), value, None)
        values = np.asarray(cells.to_numpy(zero_copy_only=False), dtype=object)
        values[~_mask(pc.is_valid(cells))] = np.nan  # parse_tres's mark of a missing key
        for position, pairs in others.items():
            values[position] = pairs.get(key, np.nan)
        if not pd.isna(values).all():
            found[key] = pd.Series(values, index=text.index, dtype="str")
    return found


def _general_pairs(column: pa.Array, rows: np.ndarray) -> dict[int, dict[str, str]]:
    """{position: TRES pairs} of the given rows, read the general way once per distinct list."""
    positions = np.flatnonzero(rows)
    texts = column.take(pa.array(positions)).to_pylist()
    pairs = {value: _tres_pairs(value) for value in set(texts)}
    return {int(p): pairs[t] for p, t in zip(positions, texts, strict=True)}
