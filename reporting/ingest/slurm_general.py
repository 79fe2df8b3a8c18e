"""The general parsers of sacct's value formats: any text, Python's regex and number rules.

Each takes a Series of strings and returns parsed values with NaN/NaT where the text is empty or
a documented placeholder, plus (where it matters) a boolean Series of *unparseable* cells, so
the reader can quarantine those rows with a reason instead of guessing. They run a Python
function per cell; reporting/ingest/slurm_values.py reads the usual forms at C speed and hands
only the other cells (padded, placeholders it does not know, odd digits, junk) to these.
"""

from __future__ import annotations

import pandas as pd

S_PER_MINUTE = 60
S_PER_HOUR = 3_600
S_PER_DAY = 86_400
BYTES_PER_GB = 1024**3  # sacct's K/M/G/T are binary multiples
MEM_UNIT_BYTES = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}
J_PER_KWH = 3_600_000

# Placeholders sacct prints instead of a value; they mean "no value", not "bad value".
EMPTY_TEXT = {"", "Unknown", "None", "N/A", "INVALID"}
UNLIMITED_TEXT = {"UNLIMITED", "Partition_Limit", "NONE"}

_DURATION = r"^(?:(?:(?P<d>\d+)-)?(?P<h>\d+):)?(?P<m>\d+):(?P<s>\d+(?:\.\d+)?)$"
_MEMORY = r"^(?P<num>\d+(?:\.\d+)?)(?P<unit>[KMGTP]?)(?P<per>[nc]?)$"


def _numeric(text: pd.Series) -> pd.Series:
    """Numbers from extracted text; an all-empty column stays float (not a string dtype)."""
    return pd.to_numeric(text.astype(object), errors="coerce").astype("float64")


def _blank(text: pd.Series, extra: frozenset[str] | set[str] = frozenset()) -> pd.Series:
    return text.isna() | text.str.strip().isin(EMPTY_TEXT | set(extra))


def general_duration_s(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """`[DD-[HH:]]MM:SS[.mmm]` → seconds; UNLIMITED/Partition_Limit/empty → NaN.

    Returns (seconds, unparseable).
    """
    stripped = text.fillna("").str.strip()
    parts = stripped.str.extract(_DURATION)
    days, hours, minutes, seconds = (_numeric(parts[k]).fillna(0.0) for k in "dhms")
    total_s = days * S_PER_DAY + hours * S_PER_HOUR + minutes * S_PER_MINUTE + seconds
    blank = _blank(stripped, UNLIMITED_TEXT)
    unparseable = parts["m"].isna() & ~blank
    return total_s.where(parts["m"].notna()).astype("float64"), unparseable


def general_memory_gb(
    text: pd.Series, n_cpus: pd.Series, n_nodes: pd.Series
) -> tuple[pd.Series, pd.Series]:
    """Memory like `32G`, `1294440K`, `0`, or legacy `6760Mc` (per CPU) / `250Gn` (per node) → GB total.

    Returns (gigabytes, unparseable).
    """
    stripped = text.fillna("").str.strip()
    parts = stripped.str.extract(_MEMORY)
    number = _numeric(parts["num"])
    unit_bytes = _numeric(parts["unit"].map(MEM_UNIT_BYTES))
    # No unit in ReqMem/MaxRSS means megabytes for ReqMem but bytes for MaxRSS; sacct always
    # prints a unit for non-zero ReqMem, so a bare number here is 0 or bytes.
    gb = number * unit_bytes / BYTES_PER_GB
    per = parts["per"].fillna("")
    gb = gb.where(per != "c", gb * n_cpus).where(per != "n", gb * n_nodes)
    unparseable = parts["num"].isna() & ~_blank(stripped)
    return gb.astype("float64"), unparseable


def parse_tres(text: pd.Series) -> pd.DataFrame:
    """TRES list `billing=8,cpu=8,gres/gpu:a100=1,gres/gpu=1,mem=10G,node=1` → one column per key.

    Values stay text (durations and sizes differ by key); keys are lower-case. The typed GPU
    entry `gres/gpu:<type>=N` becomes column `gpu_type` (its type) so GPUs are counted from the
    untyped `gres/gpu=` entry only (the typed entry repeats the count).
    """
    # Plain string splitting per distinct text: TRES lists repeat a lot (every step of a job
    # shares its AllocTRES), and this is ~10x faster than a regex extractall + pivot.
    distinct = text.fillna("").astype(str).unique()
    parsed = {value: _tres_pairs(value) for value in distinct}
    rows = [parsed[value] for value in text.fillna("").astype(str)]
    return pd.DataFrame.from_records(rows, index=text.index).reindex(
        columns=sorted({k for pairs in parsed.values() for k in pairs})
    )


def _tres_pairs(value: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in value.split(","):
        key, sep, amount = item.partition("=")
        key = key.strip().lower()
        if not sep or not key:
            continue
        if key.startswith("gres/gpu:"):
            pairs.setdefault("gpu_type", key[len("gres/gpu:") :])
        else:
            pairs.setdefault(key, amount)
    return pairs


def general_count(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Integer counts (NCPUS, NNodes, gres/gpu=N) → float with NaN for empty; (values, unparseable)."""
    stripped = text.fillna("").str.strip()
    number = _numeric(stripped.where(stripped.str.fullmatch(r"\d+")))
    return number, number.isna() & ~_blank(stripped)


def general_state(text: pd.Series) -> pd.Series:
    """`CANCELLED by 123` → `CANCELLED`; `CANCELLED+` → `CANCELLED`; upper-case first token."""
    return text.fillna("").str.strip().str.split(" ", n=1).str[0].str.rstrip("+").str.upper()


def general_time_text(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Timestamps rewritten to `%Y-%m-%dT%H:%M:%S` where they have one of sacct's two forms
    (NaN where blank), and which are blank (`Unknown`, `None`, empty)."""
    stripped = text.fillna("").str.strip()
    blank = _blank(stripped)
    # sacct prints `2024-04-04T21:45:17`; SLURM_TIME_FORMAT may give `2024-03-15-20:24:16`.
    normalised = stripped.str.replace(
        r"^(\d{4}-\d{2}-\d{2})[T -](\d{2}:\d{2}:\d{2})$", r"\1T\2", regex=True
    )
    return normalised.where(~blank), blank
