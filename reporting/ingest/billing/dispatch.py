"""Cloud billing exports → the canonical `charges` table (one reader per vendor family).

`read_billing` reads the files of one `[[inputs]]` entry: each file's family comes from the
config kind, or from its header when the kind is `billing`. A file whose header matches no
family (or another family than the configured one) has every row quarantined with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from reporting.ingest.billing import aws_cur, azure, focus, gcp
from reporting.ingest.billing.common import (
    CHARGE_COLUMNS,
    FamilyRead,
    RawTable,
    RowProblems,
    finish_charges,
    normalise_name,
    parse_decimal,
    read_raw,
    text,
)
from reporting.ingest.limits import DEFAULT_LIMITS, Limits
from reporting.schema import CARRIED, empty_quarantine

# A family's cost and currency columns as written (normalised keys, first found wins): what a
# quarantined row would have been billed, read from its raw fields (see `_with_carried_cost`).
RAW_COST = {
    "focus": (("billedcost",), ("billingcurrency",)),
    "aws_cur": (("lineitemunblendedcost",), ("lineitemcurrencycode",)),
    "gcp_billing": (("cost",), ("currency",)),
    "azure_cost": (("costinbillingcurrency", "cost", "pretaxcost"),
                   ("billingcurrency", "billingcurrencycode", "currency")),
}  # fmt: skip
# ... and its provider and service as the family's reader names them (flat columns only: a
# service inside a CUR 2.0 `product` map or a GCP `service` record is not looked for, so such a
# row's estimate falls back to its provider's lines).
RAW_SERVICE = {
    "focus": ("servicename",),
    "aws_cur": ("productproductname", "lineitemproductcode"),
    "gcp_billing": ("servicedescription",),
    "azure_cost": ("metercategory", "servicename", "consumedservice"),
}
FAMILY_PROVIDER = {"aws_cur": "aws", "gcp_billing": "gcp", "azure_cost": "azure"}

READERS: dict[str, tuple[Callable[[list[str]], bool], Callable[..., FamilyRead]]] = {
    "focus": (focus.detect, focus.read),
    "aws_cur": (aws_cur.detect, aws_cur.read),
    "azure_cost": (azure.detect, azure.read),
    "gcp_billing": (gcp.detect, gcp.read),
}


@dataclass
class BillingRead:
    charges: pd.DataFrame  # CHARGE_COLUMNS
    quarantine: pd.DataFrame
    rows_read: dict[str, int] = field(default_factory=dict)  # per source file
    file_errors: dict[str, str] = field(default_factory=dict)
    families: dict[str, str] = field(default_factory=dict)  # per source file, e.g. "aws_cur"
    views: dict[str, str] = field(default_factory=dict)  # per file: CUR generation, Azure view


def detect_family(columns: list[str]) -> str | None:
    for family, (detect, _) in READERS.items():
        if detect(columns):
            return family
    return None


def empty_charges() -> pd.DataFrame:
    frame = pd.DataFrame({c: [] for c in CHARGE_COLUMNS} | {"raw": [], "line": []})
    return finish_charges(frame, "none", "")


def read_billing(
    paths: dict[str, Path], kind: str, *, day_first: bool = False, limits: Limits = DEFAULT_LIMITS
) -> BillingRead:
    """Read billing files (name in reports → path); bad rows and files are quarantined."""
    result = BillingRead(empty_charges(), empty_quarantine())
    charges, quarantines = [], [empty_quarantine()]
    for name, path in paths.items():
        table = read_raw(path, name, limits)
        result.rows_read[name] = table.rows_read
        quarantines.append(table.quarantine)
        if table.error:
            result.file_errors[name] = table.error
            continue
        family = detect_family(table.columns)
        wanted = family if kind == "billing" else kind
        if family is None or family != wanted:
            quarantines.append(_with_carried_cost(_wrong_family(table, name, kind, family), table, family))  # fmt: skip
            continue
        result.families[name] = family
        read = _read_family(family, table, name, day_first)
        result.views[name] = _view(family, table)
        charges.append(read.charges)
        quarantines.append(_with_carried_cost(read.quarantine, table, family))
    table = None  # the last file's text is freed before the charges are joined
    non_empty = [c for c in charges if not c.empty]
    result.charges = (
        non_empty[0]  # one file: its charges as they are, not copied by a concat of one
        if len(non_empty) == 1
        else pd.concat(non_empty, ignore_index=True)
        if non_empty
        else empty_charges()
    )
    result.quarantine = pd.concat(quarantines, ignore_index=True)
    return result


def _read_family(family: str, table: RawTable, name: str, day_first: bool) -> FamilyRead:
    if family == "azure_cost":
        return azure.read(table, name, day_first=day_first)
    return READERS[family][1](table, name)


def _view(family: str, table: RawTable) -> str:
    if family == "aws_cur":
        return aws_cur.cur_generation(table.columns)
    if family == "azure_cost":
        return azure.cost_view(table.columns, table.records)
    return family


def _wrong_family(table: RawTable, name: str, kind: str, family: str | None) -> pd.DataFrame:
    problems = RowProblems()
    if family is None:
        reason = (
            "the header matches no known billing export (FOCUS, AWS CUR, GCP billing export, "
            f"Azure cost export); first columns: {', '.join(table.columns[:6])}"
        )
    else:
        reason = f"the header looks like a {family} export, but the input's kind is {kind!r}: fix the kind or the path"  # fmt: skip
    problems.add(pd.Series(True, index=table.records.index), "format", reason)
    return problems.quarantine(table.records, name)


def _with_carried_cost(
    quarantine: pd.DataFrame, table: RawTable, family: str | None
) -> pd.DataFrame:
    """Quarantined rows with what they would have carried (`carried` = {cost, currency,
    provider, service}) where the family's cost column parses as a number beside a three-letter
    currency; provider and service (None when unreadable) choose the lines its energy is
    estimated from (see validation/carried.py)."""
    if quarantine.empty or family is None:
        return quarantine
    records = table.records
    column = _raw_columns(table)
    cost_keys, currency_keys = RAW_COST[family]
    cost, _ = parse_decimal(text(records, column(cost_keys)))
    currency = text(records, column(currency_keys)).fillna("").str.strip().str.upper()
    readable = cost.notna() & currency.str.fullmatch(r"[A-Z]{3}").astype(bool)
    service = text(records, column(RAW_SERVICE[family]))
    provider = (
        focus.provider_key(text(records, column(("providername", "serviceprovidername"))))
        if family == "focus"
        else pd.Series(FAMILY_PROVIDER[family], index=records.index, dtype=object)
    )
    found = {
        int(line): {"cost": float(amount), "currency": str(code), "provider": who, "service": what}
        for line, amount, code, who, what in zip(
            records.loc[readable, "line"], cost[readable], currency[readable],
            provider[readable], service[readable], strict=True,
        )
    }  # fmt: skip
    return quarantine.assign(**{CARRIED: [found.get(int(n)) for n in quarantine["line"]]})


def _raw_columns(table: RawTable) -> Callable[[tuple[str, ...]], str | None]:
    """The first header (as written) matching one of the normalised keys, or None."""
    by_key: dict[str, str] = {}
    for name in table.columns:
        by_key.setdefault(_header_key(name), name)
    return lambda keys: next((by_key[k] for k in keys if k in by_key), None)


_ENGLISH = re.compile(r"\(([^()]+)\)\s*$")  # localised Azure headers: `Kosten (Cost)` → Cost


def _header_key(name: str) -> str:
    match = _ENGLISH.search(name)
    return normalise_name(match.group(1) if match else name)
