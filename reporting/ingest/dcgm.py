"""NVIDIA dcgm-exporter telemetry → a long table of GPU samples, bad lines quarantined.

Reads Prometheus text exposition scrapes (one file per scrape; a sample's time is its own
timestamp if the line has one, else the scrape time given for the file) and Prometheus
`query_range` / `query` JSON dumps. Only the metrics in METRICS are kept; lines of other metrics
are counted in `ignored` and are neither accepted nor quarantined, so for every file
rows_read = accepted + quarantined.

Labels: host from `Hostname` (else `node`, else `instance` without port), GPU from `gpu` and
`UUID`, model from `modelName`. Pod, namespace and container come from `exported_pod` /
`exported_namespace` / `exported_container` when present (Prometheus renamed the exporter's own
labels because the scrape target's `pod` is the exporter pod), else `pod` / `namespace` /
`container`; an empty value (`pod=""`) means no pod. A sample of a kept metric without host
or GPU identity (the fixture's dummy `DCGM_FI_PROF_GR_ENGINE_ACTIVE 0`) cannot be placed and is
quarantined (`labels`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from reporting.ingest.limits import (
    DEFAULT_LIMITS,
    FIELD_TOO_LONG,
    Limits,
    cut_raw,
    json_leaves,
    json_too_deep,
    long_field,
    too_many_rows,
)
from reporting.schema import empty_quarantine, quarantine_frame

METRICS = {
    "DCGM_FI_DEV_POWER_USAGE": "power_w",
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": "energy_mj",
    "DCGM_FI_DEV_GPU_UTIL": "gpu_util_pct",
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE": "gr_engine_active_ratio",
}
SAMPLE_COLUMNS = [
    "source_file", "line", "host", "gpu", "uuid", "model", "namespace", "pod", "container",
    "metric", "timestamp", "value",
]  # fmt: skip
_LINE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?\s+(\S+)(?:\s+(-?\d+))?\s*$")
_EXPORTER = re.compile(r"dcgm-exporter", re.IGNORECASE)
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')


@dataclass(frozen=True)
class DcgmRead:
    samples: pd.DataFrame  # SAMPLE_COLUMNS, timestamp UTC, value float
    quarantine: pd.DataFrame  # QUARANTINE_COLUMNS
    rows_read: dict[str, int]  # per file: sample lines (text) or points (JSON) of METRICS
    file_errors: dict[str, str]
    ignored: dict[str, int] = field(default_factory=dict)  # per file: samples of other metrics


class _Bad(Exception):
    def __init__(self, check: str, reason: str) -> None:
        super().__init__(reason)
        self.check, self.reason = check, reason


def read_dcgm(
    paths: dict[str, Path],
    *,
    scrape_times: dict[str, pd.Timestamp] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> DcgmRead:
    """Read scrapes and query dumps (source name → path); `scrape_times` per text file.

    A sample with a label or value longer than `limits.max_field_bytes` is quarantined
    (`field_too_long`); a file of more than `limits.max_rows` samples is refused (an error).
    """
    frames, quarantines, rows_read, errors, ignored = [], [], {}, {}, {}
    for name, path in paths.items():
        try:
            body = path.read_bytes().decode("utf-8", errors="backslashreplace")
        except OSError as exc:
            errors[name] = f"cannot read the file: {exc.strerror or type(exc).__name__}"
            rows_read[name] = 0
            continue
        scrape = (scrape_times or {}).get(name)
        if path.name.lower().endswith(".json"):
            good, bad, skipped = _read_json(body, limits)
        else:
            good, bad, skipped = _read_text(body, scrape, limits)
        if error := too_many_rows(len(good) + len(bad), limits):
            good, bad, errors[name] = [], [], error
        bad = [(line, cut_raw(raw, limits), check, reason) for line, raw, check, reason in bad]
        rows_read[name], ignored[name] = len(good) + len(bad), skipped
        frames.append(_samples(good, name))
        quarantines.append(_quarantine(bad, name))
    samples = pd.concat(frames, ignore_index=True) if frames else _samples([], "")
    quarantine = pd.concat(quarantines, ignore_index=True) if quarantines else empty_quarantine()
    return DcgmRead(samples, quarantine, rows_read, errors, ignored)


def _read_text(
    body: str, scrape: pd.Timestamp | None, limits: Limits
) -> tuple[list[dict[str, Any]], list[tuple[int, str, str, str]], int]:
    good, bad, skipped = [], [], 0
    for number, line in enumerate(body.splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        match = _LINE.match(text)
        if match and match.group(1) not in METRICS:
            skipped += 1
            continue
        try:
            if not match:
                raise _Bad("syntax", "not a Prometheus sample line `name{labels} value [ts_ms]`")
            name = match.group(1)
            labels = _labels(match.group(3) or "")
            if problem := long_field([*labels.values(), match.group(4)], limits):
                raise _Bad(FIELD_TOO_LONG, problem)
            when = _text_time(match.group(5), scrape)
            good.append({**_identity(labels), **_point(name, match.group(4), when), "line": number})
        except _Bad as problem:
            bad.append((number, text, problem.check, problem.reason))
    return good, bad, skipped


def _labels(block: str) -> dict[str, str]:
    labels, position = {}, 0
    block = block.strip()
    while position < len(block):
        match = _LABEL.match(block, position)
        if not match:
            raise _Bad("syntax", f"cannot read the labels at {block[position : position + 40]!r}")
        labels[match.group(1)] = match.group(2).replace('\\"', '"').replace("\\\\", "\\")
        position = match.end()
    return labels


def _text_time(timestamp_ms: str | None, scrape: pd.Timestamp | None) -> pd.Timestamp:
    if timestamp_ms is not None:
        try:
            return pd.Timestamp(int(timestamp_ms), unit="ms", tz="UTC")
        except (ValueError, OverflowError):  # beyond pandas' years 1677–2262
            raise _Bad("timestamp", f"{timestamp_ms} ms is not a time pandas can hold") from None
    if scrape is None:
        raise _Bad("timestamp", "the sample has no timestamp and no scrape time for the file")
    scrape = pd.Timestamp(scrape)
    return scrape.tz_convert("UTC") if scrape.tzinfo else scrape.tz_localize("UTC")


def _point(name: str, value_text: str, when: datetime) -> dict[str, Any]:
    try:
        value = float(value_text)
    except ValueError:
        raise _Bad("value", f"{name} value {value_text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise _Bad("value", f"{name} value {value_text} is not a finite non-negative number")
    return {"metric": METRICS[name], "timestamp": when, "value": value}


def _identity(labels: dict[str, str]) -> dict[str, str | None]:
    def label(*names: str) -> str | None:
        # Label values are strings; JSON dumps can carry anything, which places nothing.
        values = (labels.get(n) for n in names)
        return next((v.strip() for v in values if isinstance(v, str) and v.strip()), None)

    instance = label("instance")
    host = label("Hostname", "node") or (instance.rsplit(":", 1)[0] if instance else None)
    gpu, uuid = label("gpu"), label("UUID")
    if host is None or (gpu is None and uuid is None):
        raise _Bad(
            "labels", "no Hostname and gpu/UUID labels: the sample cannot be placed on a GPU"
        )
    pod = label("exported_pod", "pod")
    if label("exported_pod") is None and _EXPORTER.search(pod or ""):
        # Scraped without honor_labels and without the exporter's pod mapping: `pod` is the
        # exporter's own pod, which must not be charged for the GPUs it watches.
        return {"host": host, "gpu": gpu, "uuid": uuid, "model": label("modelName"),
                "namespace": None, "pod": None, "container": None}  # fmt: skip
    return {
        "host": host,
        "gpu": gpu,
        "uuid": uuid,
        "model": label("modelName"),
        "namespace": label("exported_namespace", "namespace"),
        "pod": pod,
        "container": label("exported_container", "container"),
    }


def _read_json(
    body: str, limits: Limits
) -> tuple[list[dict[str, Any]], list[tuple[int, str, str, str]], int]:
    """A `query_range` (matrix) or `query` (vector) response; `line` numbers the points."""
    try:
        document = json.loads(body)
        result = document["data"]["result"]
        if document.get("status", "success") != "success" or not isinstance(result, list):
            raise TypeError
        if json_too_deep(document):
            raise TypeError
    except (ValueError, RecursionError, KeyError, TypeError, AttributeError):
        reason = 'expected {"status":"success","data":{"result":[{"metric":{},"values":[]}]}}'
        return [], [(1, body[:2000], "json_shape", reason)], 0
    good, bad, skipped = [], [], 0
    for series in result:
        metric = series.get("metric", {}) if isinstance(series, dict) else {}
        points = _points(series)
        name = metric.get("__name__") if isinstance(metric, dict) else None
        if isinstance(name, str) and name not in METRICS:
            skipped += len(points)
            continue
        labels = json_leaves(metric)
        try:  # the series' name and labels are checked once for all its points
            if not isinstance(name, str):
                raise _Bad("labels", "the series has no __name__: which metric is unknown")
            if problem := long_field(labels, limits):
                raise _Bad(FIELD_TOO_LONG, problem)
            identity, failure = _identity(metric), None
        except _Bad as failed:
            identity, failure = {}, failed
        for point in points:
            number = len(good) + len(bad) + 1
            try:
                if failure is not None:
                    raise failure
                if problem := long_field(json_leaves(point), limits):
                    raise _Bad(FIELD_TOO_LONG, problem)
                good.append({**identity, **_json_point(str(name), point), "line": number})
            except _Bad as failed:
                raw = json.dumps({"metric": metric, "value": point}, default=str)
                bad.append((number, raw, failed.check, failed.reason))
    return good, bad, skipped


def _points(series: Any) -> list[Any]:
    if not isinstance(series, dict):
        return [series]
    values = series.get("values", [series["value"]] if "value" in series else [])
    return values if isinstance(values, list) else [values]


def _json_point(name: str, point: Any) -> dict[str, Any]:
    if not isinstance(point, list) or len(point) != 2:
        raise _Bad("syntax", 'a point is not [unix_seconds, "value"]')
    try:
        seconds = float(point[0])
        if not math.isfinite(seconds):
            raise ValueError(seconds)
        when = datetime.fromtimestamp(seconds, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise _Bad("timestamp", f"{point[0]!r} is not a unix time") from None
    return _point(name, str(point[1]), when)


def _samples(good: list[dict[str, Any]], source_file: str) -> pd.DataFrame:
    frame = pd.DataFrame(good, columns=[c for c in SAMPLE_COLUMNS if c != "source_file"])
    frame.insert(0, "source_file", source_file)
    frame["line"] = frame["line"].astype("int64")
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True).astype("datetime64[ms, UTC]")
    frame["value"] = frame["value"].astype("float64")
    for column in ("host", "gpu", "uuid", "model", "namespace", "pod", "container", "metric"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame[SAMPLE_COLUMNS]


def _quarantine(bad: list[tuple[int, str, str, str]], source_file: str) -> pd.DataFrame:
    return quarantine_frame(
        source_file=source_file,
        line=[b[0] for b in bad],
        raw=[b[1] for b in bad],
        check=[b[2] for b in bad],
        reason=[b[3] for b in bad],
    )


def empty_samples() -> pd.DataFrame:
    """A samples table with no rows (and a `site` column, as the intake adds it)."""
    return _samples([], "").assign(site=pd.Series(dtype=object))
