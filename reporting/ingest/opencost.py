"""OpenCost / Kubecost allocations → `usage` rows (one per allocation and step window).

Reads the `/allocation` API JSON response (`{"code":200,"data":[{name: allocation, ...}, ...]}`,
one map per step window) and the OpenCost CSV export (one row per pod/container and day, with
optional `Labels` JSON or `Label_<key>` columns). Both become the same canonical records, then
`usage` rows: requests, usage averages, hours, efficiencies and costs (`cost`, `currency`).

Decisions:
- `n_cpus` is OpenCost's allocation `cpuCores` = max(request, usage average); the request alone
  is kept as `cpu_request_cores`. A best-effort pod (request 0, usage > 0) still has cores, and
  `cpu_util_ratio` = usage / allocation never exceeds 1.
- `__idle__`, `__unallocated__` and `__unmounted__` entries are kept as their own rows
  (`allocation_kind` idle / unallocated / unmounted) so no cost is lost: idle rows get namespace
  "__idle__", unmounted PV rows "__unmounted__" when they carry no namespace. Nothing here
  shares idle: if the query used `shareIdle=true` there are no idle rows and pods carry it.
- `line` is the 1-based allocation number in the file (step maps in order, entries in order)
  for JSON; the physical row line for CSV.
- Re-queried windows: per (cluster, namespace, pod[/container] or name) windows must not
  overlap. The same window twice keeps the record with the later actual `end` (then the later
  file) and quarantines the other as `duplicate`; a window overlapping a kept one is quarantined
  as `overlapping_window` (counted and visible, never summed twice).
- A window ending after `as_of` is `RUNNING` (counted, not attributed); others `COMPLETED`.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reporting.ingest.billing.common import (
    RowProblems,
    column_lookup,
    parse_decimal,
    parse_tags_object,
    parse_time,
    read_raw,
    text,
)
from reporting.ingest.limits import (
    DEFAULT_LIMITS,
    FIELD_TOO_LONG,
    MAX_JSON_DEPTH,
    Limits,
    TooLarge,
    cut_raw,
    json_leaves,
    json_too_deep,
    long_field,
    read_bytes,
    too_many_rows,
)
from reporting.schema import USAGE_COLUMNS, empty_quarantine, empty_usage, quarantine_frame

BYTES_PER_GB = 1024**3  # as the Slurm reader: GB are binary
SPECIAL_NAMES = {"__idle__": "idle", "__unallocated__": "unallocated", "__unmounted__": "unmounted"}

# allocation JSON field → canonical record column (numbers)
JSON_NUMBERS = {
    "minutes": "minutes",
    "cpuCores": "cpu_cores",
    "cpuCoreRequestAverage": "cpu_request",
    "cpuCoreUsageAverage": "cpu_usage",
    "cpuCoreHours": "cpu_core_hours",
    "cpuEfficiency": "cpu_efficiency",
    "gpuCount": "gpu_count",
    "gpuRequestAverage": "gpu_request",
    "gpuUsageAverage": "gpu_usage",
    "gpuHours": "gpu_hours",
    "gpuEfficiency": "gpu_efficiency",
    "ramBytes": "ram_bytes",
    "ramByteRequestAverage": "ram_request",
    "ramByteUsageAverage": "ram_usage",
    "ramEfficiency": "ram_efficiency",
    "totalEfficiency": "total_efficiency",
    "cpuCost": "cpu_cost",
    "gpuCost": "gpu_cost",
    "ramCost": "ram_cost",
    "pvCost": "pv_cost",
    "networkCost": "network_cost",
    "loadBalancerCost": "lb_cost",
    "sharedCost": "shared_cost",
    "externalCost": "external_cost",
    "totalCost": "total_cost",
}
JSON_PROPERTIES = {
    "cluster": "cluster",
    "node": "node",
    "namespace": "namespace",
    "pod": "pod",
    "container": "container",
    "controller": "controller",
    "controllerKind": "controller_kind",
    "providerID": "provider_id",
}
# CSV export header (normalised by column_lookup) → canonical record column
CSV_COLUMNS = {
    "namespace": "namespace",
    "controllerkind": "controller_kind",
    "controllername": "controller",
    "pod": "pod",
    "container": "container",
    "cpucoreusageaverage": "cpu_usage",
    "cpucorerequestaverage": "cpu_request",
    "rambytesusageaverage": "ram_usage",
    "rambytesrequestaverage": "ram_request",
    "gpus": "gpu_count",
    "cpucost": "cpu_cost",
    "ramcost": "ram_cost",
    "networkcost": "network_cost",
    "pvcost": "pv_cost",
    "gpucost": "gpu_cost",
    "totalcost": "total_cost",
}
NUMBER_FIELDS = sorted(set(JSON_NUMBERS.values()) | {"ram_usage_max"})
TEXT_FIELDS = ["name", *JSON_PROPERTIES.values()]
EXTRA_COLUMNS = [
    "labels", "cost", "currency", "cluster", "node", "provider_id", "workload", "allocation_kind",
    "cpu_request_cores", "cpu_core_hours", "gpu_hours", "ram_usage_avg_gb", "cpu_cost",
    "gpu_cost", "ram_cost", "pv_cost", "network_cost", "total_efficiency",
]  # fmt: skip


@dataclass(frozen=True)
class OpenCostRead:
    usage: pd.DataFrame  # USAGE_COLUMNS + EXTRA_COLUMNS + raw
    quarantine: pd.DataFrame  # QUARANTINE_COLUMNS
    rows_read: dict[str, int]  # per source file: allocations (JSON) or data rows (CSV)
    file_errors: dict[str, str]  # source file → why it could not be read at all


def read_opencost(
    paths: dict[str, Path],
    *,
    site: str,
    cluster: str | None = None,
    currency: str = "USD",
    as_of: pd.Timestamp | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> OpenCostRead:
    """Read allocation JSON responses and CSV exports (source name → path) of one input.

    `cluster` names the cluster of CSV exports (they carry none) and of JSON allocations without
    `properties.cluster`; default "default".
    """
    usages, quarantines, rows_read, errors = [], [], {}, {}
    for order, (name, path) in enumerate(paths.items()):
        if path.name.lower().endswith((".json", ".json.gz")):
            records, quarantine, count, error = _json_records(path, name, limits)
        else:
            records, quarantine, count, error = _csv_records(path, name, limits)
        rows_read[name] = count
        quarantines.append(quarantine)
        if error:
            errors[name] = error
        if records is not None and not records.empty:
            usage, bad = _to_usage(records.assign(_order=order), name, site, cluster, currency)
            usages.append(usage)
            quarantines.append(bad)
    usage = pd.concat(usages, ignore_index=True) if usages else _empty_usage()
    usage, dropped = _drop_overlaps(usage)
    if as_of is not None:
        usage.loc[usage["ended_at"] > as_of, "state"] = "RUNNING"
    quarantine = pd.concat([*quarantines, dropped], ignore_index=True)
    return OpenCostRead(usage.reset_index(drop=True), quarantine, rows_read, errors)


# ---- JSON ----------------------------------------------------------------------------------


def _json_records(
    path: Path, name: str, limits: Limits
) -> tuple[pd.DataFrame | None, pd.DataFrame, int, str]:
    """(records, quarantine, rows read, file error) of one `/allocation` response."""
    try:
        body = read_bytes(path).decode("utf-8-sig")  # gunzipped within the ratio limit
    except (OSError, UnicodeDecodeError, EOFError, zlib.error, TooLarge) as exc:
        return None, empty_quarantine(), 0, f"cannot read the file: {exc}"
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:  # ValueError: also ints of > 4,300 digits
        return None, _whole_file(name, body, "json", f"not valid JSON: {exc}"), 1, ""
    if json_too_deep(document):
        reason = f"nested deeper than {MAX_JSON_DEPTH} levels"
        return None, _whole_file(name, body, "json", reason), 1, ""
    steps = document.get("data") if isinstance(document, dict) else None
    if isinstance(steps, dict):  # some Kubecost versions: one map, not a list of maps
        steps = [steps]
    if not isinstance(steps, list) or document.get("code", 200) != 200:
        reason = "expected an /allocation response {'code': 200, 'data': [{name: allocation}]}"
        return None, _whole_file(name, body, "json_shape", reason), 1, ""
    allocations = [
        item
        for step in steps
        for item in ((step or {}).items() if isinstance(step, dict) else [("", step)])
    ]
    if error := too_many_rows(len(allocations), limits):
        return None, empty_quarantine(), 0, error
    records, quarantine = _allocations(allocations, name, limits)
    return records, quarantine, len(allocations), ""


def _allocations(
    allocations: list[tuple[Any, Any]], name: str, limits: Limits
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, bad = [], []
    for number, (key, value) in enumerate(allocations, start=1):
        raw = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
        if not isinstance(value, dict):
            bad.append((number, raw, "json_shape", "an allocation is not a JSON object"))
        elif problem := long_field([key, *json_leaves(value)], limits):
            bad.append((number, cut_raw(raw, limits), FIELD_TOO_LONG, problem))
        else:
            rows.append({**_flatten(str(key), value), "line": number, "raw": raw})
    quarantine = quarantine_frame(
        source_file=name,
        line=[b[0] for b in bad],
        raw=[b[1] for b in bad],
        check=[b[2] for b in bad],
        reason=[b[3] for b in bad],
    )
    return pd.DataFrame(rows), quarantine


def _whole_file(name: str, body: str, check: str, reason: str) -> pd.DataFrame:
    return quarantine_frame(
        source_file=name, line=[1], raw=[body[:2000]], check=check, reason=reason
    )


def _flatten(key: str, allocation: dict[str, Any]) -> dict[str, Any]:
    properties = allocation.get("properties") or {}
    properties = properties if isinstance(properties, dict) else {}
    window = allocation.get("window") or {}
    window = window if isinstance(window, dict) else {}
    raw_only = allocation.get("rawAllocationOnly") or {}
    record: dict[str, Any] = {
        "name": allocation.get("name") or key,
        "labels": properties.get("labels"),
        "window_start": window.get("start"),
        "window_end": window.get("end"),
        "start": allocation.get("start"),
        "end": allocation.get("end"),
        "ram_usage_max": raw_only.get("ramByteUsageMax") if isinstance(raw_only, dict) else None,
    }
    for field, column in JSON_PROPERTIES.items():
        record[column] = properties.get(field)
    for field, column in JSON_NUMBERS.items():
        record[column] = allocation.get(field)
    return record


# ---- CSV -----------------------------------------------------------------------------------


def _csv_records(
    path: Path, name: str, limits: Limits
) -> tuple[pd.DataFrame | None, pd.DataFrame, int, str]:
    table = read_raw(path, name, limits)
    if table.error:
        return None, table.quarantine, table.rows_read, table.error
    raw = table.records
    lookup = column_lookup(table.columns)
    if "date" not in lookup:
        problems = RowProblems()
        problems.add(pd.Series(True, index=raw.index), "required_column", "no Date column")
        quarantine = pd.concat([table.quarantine, problems.quarantine(raw, name)])
        return None, quarantine, table.rows_read, ""
    records = pd.DataFrame({"line": raw["line"], "raw": raw["raw"]}, index=raw.index)
    for key, column in CSV_COLUMNS.items():
        records[column] = text(raw, lookup.get(key))
    day = text(raw, lookup["date"])
    records["window_start"] = day
    records["window_end"] = (pd.to_datetime(day, errors="coerce") + pd.Timedelta(days=1)).astype(
        str
    )
    records["labels"] = _csv_labels(raw, table.columns)
    records["_labels_bad"] = records["labels"].isna()
    records["name"] = records["pod"].fillna(records["namespace"])
    return records, table.quarantine, table.rows_read, ""


def _csv_labels(raw: pd.DataFrame, columns: list[str]) -> pd.Series:
    """`Labels` JSON text parsed (None if unparseable) merged with `Label_<key>` columns."""
    label_columns = [c for c in columns if c.lower().startswith("label_")]
    labels_column = next((c for c in columns if c.lower() == "labels"), None)
    parsed = [parse_tags_object(v) for v in text(raw, labels_column)]
    result = []
    for position, labels in enumerate(parsed):
        if labels is not None:
            for column in label_columns:
                value = str(raw[column].iloc[position]).strip()
                if value:
                    labels.setdefault(column[len("label_") :], value)
        result.append(labels)
    return pd.Series(result, index=raw.index, dtype=object)


# ---- records → usage -----------------------------------------------------------------------


def _to_usage(
    records: pd.DataFrame, source_file: str, site: str, cluster: str | None, currency: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    problems = RowProblems()
    frame = records.copy()
    for column in [*TEXT_FIELDS, "labels", "start", "end"]:
        if column not in frame.columns:
            frame[column] = None
    for column in TEXT_FIELDS:
        values = frame[column].astype(object)
        frame[column] = values.where(values.notna() & (values.astype(str).str.strip() != ""), None)
    for column in NUMBER_FIELDS:
        values = frame[column] if column in frame.columns else pd.Series(None, index=frame.index)
        frame[column], bad = parse_decimal(values.astype(object).where(values.notna(), None))
        problems.add(bad, "number", f"{column} is not a number")
    for column in ("window_start", "window_end", "start", "end"):
        values = frame[column].astype(object).where(frame[column].notna(), None)
        frame[column], bad = parse_time(values)
        problems.add(bad, "window", f"{column} is not a timestamp")
    missing = frame["window_start"].isna() | frame["window_end"].isna()
    problems.add(missing, "window", "the allocation has no window start/end")
    reversed_ = frame["window_end"] < frame["window_start"]
    problems.add(reversed_, "window", "window end is before its start")
    bad_labels = frame["labels"].map(lambda v: v is not None and not isinstance(v, dict))
    if "_labels_bad" in frame.columns:
        bad_labels = bad_labels | frame["_labels_bad"]
    problems.add(bad_labels, "labels", "labels (Labels) is not a JSON object")
    frame["cluster"] = frame["cluster"].fillna(cluster or "default")
    good = frame[~problems.mask(frame.index)]
    return _usage(good, source_file, site, currency), problems.quarantine(records, source_file)


def _kind(frame: pd.DataFrame) -> pd.Series:
    kind = pd.Series("pod", index=frame.index, dtype=object)
    kind = kind.where(frame["pod"].notna(), "aggregate")
    for marker, label in SPECIAL_NAMES.items():
        kind = kind.where(~frame["name"].astype(str).str.contains(marker, regex=False), label)
    return kind


def _usage(frame: pd.DataFrame, source_file: str, site: str, currency: str) -> pd.DataFrame:
    kind = _kind(frame)
    namespace = frame["namespace"].astype(object)
    namespace = namespace.where(kind != "idle", "__idle__")
    namespace = namespace.where(~((kind == "unmounted") & namespace.isna()), "__unmounted__")
    ident = [
        "/".join(p for p in (ns, pod, container) if p) if pod and k == "pod" else str(name)
        for ns, pod, container, name, k in zip(
            namespace, frame["pod"], frame["container"], frame["name"], kind, strict=True
        )
    ]
    key = [f"k8s:{c}:{i}:" for c, i in zip(frame["cluster"], ident, strict=True)]
    started = frame["start"].fillna(frame["window_start"])
    ended = frame["end"].fillna(frame["window_end"])
    cores = frame["cpu_cores"].fillna(np.fmax(frame["cpu_request"], frame["cpu_usage"]))
    gpus = frame["gpu_request"].fillna(frame["gpu_count"])
    gpu_util = (frame["gpu_usage"] / gpus).fillna(frame["gpu_efficiency"]).where(gpus > 0)
    window_key = frame["window_start"].dt.strftime("%Y%m%dT%H%M%SZ")
    usage = pd.DataFrame(
        {
            "usage_id": pd.Series(key, index=frame.index, dtype=object) + window_key.astype(object),
            "source": "opencost",
            "source_file": source_file,
            "line": frame["line"].astype("int64"),
            "lines_merged": 1,
            "site": site,
            "started_at": started,
            "ended_at": ended,
            "duration_s": (ended - started).dt.total_seconds(),
            "namespace": namespace,
            "job_name": frame["pod"].fillna(frame["controller"]).fillna(frame["name"]),
            "workload": frame["controller"].fillna(frame["pod"]).fillna(frame["name"]),
            "state": "COMPLETED",
            "node_list": frame["node"],
            "n_nodes": frame["node"].notna().astype("float64").where(frame["node"].notna()),
            "n_cpus": cores,
            "n_gpus": gpus.fillna(0.0),
            "mem_requested_gb": frame["ram_request"] / BYTES_PER_GB,
            "mem_used_max_gb": frame["ram_usage_max"] / BYTES_PER_GB,
            "cpu_util_ratio": (frame["cpu_usage"] / cores).where(cores > 0).clip(upper=1.0),
            "gpu_util_ratio": gpu_util,
            "measured_energy_kwh": np.nan,
            "labels": frame["labels"].map(_labels_json),
            "cost": frame["total_cost"],
            "currency": currency,
            "cluster": frame["cluster"],
            "node": frame["node"],
            "provider_id": frame["provider_id"],
            "allocation_kind": kind,
            "cpu_request_cores": frame["cpu_request"],
            "cpu_core_hours": frame["cpu_core_hours"],
            "gpu_hours": frame["gpu_hours"],
            "ram_usage_avg_gb": frame["ram_usage"] / BYTES_PER_GB,
            **{c: frame[c] for c in ("cpu_cost", "gpu_cost", "ram_cost", "pv_cost")},
            "network_cost": frame["network_cost"],
            "total_efficiency": frame["total_efficiency"],
            "_order": frame["_order"],
            "_end": frame["end"].fillna(frame["window_end"]),
            "_window_start": frame["window_start"],
            "_window_end": frame["window_end"],
            "raw": frame["raw"],
        },
        index=frame.index,
    )
    return _complete(usage)


def _labels_json(labels: Any) -> str:
    labels = labels if isinstance(labels, dict) else {}
    return json.dumps({str(k): str(v) for k, v in labels.items()}, sort_keys=True)


def _complete(usage: pd.DataFrame) -> pd.DataFrame:
    """Every USAGE_COLUMN present with the reader types; extra columns kept after them."""
    template = _empty_usage()
    for column in template.columns:
        if column not in usage.columns:
            usage[column] = None
        if str(template[column].dtype) != "object":
            usage[column] = usage[column].astype(template[column].dtype)
    helpers = [c for c in usage.columns if c.startswith("_")]
    return usage[[*template.columns, *helpers]]


def _empty_usage() -> pd.DataFrame:
    base = empty_usage()
    for column in EXTRA_COLUMNS:
        base[column] = pd.Series(dtype="float64" if column.endswith(("cost", "_gb")) else object)
    for column in ("cpu_request_cores", "cpu_core_hours", "gpu_hours", "total_efficiency"):
        base[column] = base[column].astype("float64")
    return base[[*USAGE_COLUMNS, *EXTRA_COLUMNS, "raw"]]


def _drop_overlaps(usage: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep non-overlapping windows per allocation identity; quarantine re-queried repeats."""
    if usage.empty:
        return usage.drop(columns=[c for c in usage if c.startswith("_")]), empty_quarantine()
    identity = usage["usage_id"].str.rsplit(":", n=1).str[0]
    ranked = usage.assign(_identity=identity).sort_values(
        ["_identity", "_window_start", "_window_end", "_end", "_order", "line"],
        ascending=[True, True, True, False, False, True],
    )
    verdicts: dict[Any, str] = {}
    last: dict[str, tuple[pd.Timestamp, pd.Timestamp, str]] = {}
    columns = ["_identity", "_window_start", "_window_end", "source_file", "line"]
    rows = zip(ranked.index, *(ranked[c] for c in columns), strict=True)
    for label, identity, start, end, source_file, line in rows:
        kept = last.get(identity)
        if kept is not None and start < kept[1]:
            same = start == kept[0] and end == kept[1]
            verdicts[label] = ("duplicate" if same else "overlapping_window") + "|" + kept[2]
            continue
        last[identity] = (start, end, f"{source_file}:{line}")
    dropped = usage.loc[list(verdicts)]
    quarantine = quarantine_frame(
        source_file=dropped["source_file"].tolist(),
        line=dropped["line"].tolist(),
        raw=dropped["raw"].tolist(),
        check=[v.split("|")[0] for v in verdicts.values()],
        reason=[_overlap_reason(v) for v in verdicts.values()],
    )
    kept = usage.drop(index=list(verdicts))
    return kept.drop(columns=[c for c in kept if c.startswith("_")]), quarantine


def _overlap_reason(verdict: str) -> str:
    check, where = verdict.split("|", 1)
    if check == "duplicate":
        return f"the same allocation window was read again; kept the record at {where}"
    return f"window overlaps an already-read window of the same allocation (kept {where})"
