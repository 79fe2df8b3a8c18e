"""What was published, and restatements when factors, method or inputs changed since.

Each time a period's report is rendered, its headline figures and their basis (factor values,
methodology text, tool version, input file hashes) are kept in the ledger folder as
`_published/<start>..<end>/<run_date>.json`. A new record is written only when the figures or
their basis differ from the latest one, so re-rendering the same ledger changes nothing. The
report compares the current figures with the first publication of the period, and lists every
publication with what changed since the one before (GHG Protocol recalculation policy; 5 %
significance threshold, ESG_REPORTING §3(d)).
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import date
from pathlib import Path
from typing import Any

from reporting.summary import Period

PUBLISHED_DIR = "_published"  # leading _: parquet dataset readers skip it
SIGNIFICANCE_RATIO = 0.05
MAX_LISTED = 8  # factor changes named one by one before "and N more"


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def record_of(
    period: Period, run_date: date, summary: dict[str, Any], context: dict[str, Any]
) -> dict[str, Any]:
    """The published record: headline figures and the basis they rest on."""
    return {
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "run_date": run_date.isoformat(),
        "basis": {
            "tool_version": context["tool_version"],
            "methodology_sha256": _digest(context["methodology"]),
            "factors": {str(f["factor_id"]): float(f["value"]) for f in context["factors"]},
            "inputs": {
                str(i["source_file"]): i.get("sha256") for i in context["assurance"]["inputs"]
            },
        },
        "values": {k["key"]: k["value"] for k in summary["kpis"]},
    }


def _folder(root: Path, period: Period) -> Path:
    return root / PUBLISHED_DIR / f"{period.start.isoformat()}..{period.end.isoformat()}"


def read_records(root: Path, period: Period) -> list[dict[str, Any]]:
    """Earlier publications of the period, oldest first (by run date, then sequence)."""
    folder = _folder(root, period)
    if not folder.is_dir():
        return []
    paths = sorted(folder.glob("*.json"), key=lambda p: (p.name.split(".")[0], _sequence(p)))
    return [{**json.loads(p.read_text(encoding="utf-8")), "file": p.name} for p in paths]


def _sequence(path: Path) -> int:
    parts = path.name.split(".")
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else 1


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a["basis"] == b["basis"] and a["values"] == b["values"]


def _write(root: Path, period: Period, run_date: date, record: dict[str, Any]) -> str:
    folder = _folder(root, period)
    folder.mkdir(parents=True, exist_ok=True)
    name, n = f"{run_date.isoformat()}.json", 1
    while (folder / name).exists():
        n += 1
        name = f"{run_date.isoformat()}.{n}.json"
    tmp = folder / f".{name}.tmp"
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, folder / name)
    return name


def reasons(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Why the figures of two records differ, in words."""
    found = []
    if old["tool_version"] != new["tool_version"]:
        found.append(f"tool version {old['tool_version']} → {new['tool_version']}")
    if old["methodology_sha256"] != new["methodology_sha256"]:
        found.append("methodology text changed (formulas or rules)")
    found += _factor_reasons(old["factors"], new["factors"])
    changed = sorted(k for k in set(old["inputs"]) | set(new["inputs"])
                     if old["inputs"].get(k) != new["inputs"].get(k))  # fmt: skip
    if changed:
        found.append(f"input files added, changed or removed: {', '.join(changed[:MAX_LISTED])}"
                     + (f" and {len(changed) - MAX_LISTED} more" if len(changed) > MAX_LISTED else ""))  # fmt: skip
    return found or ["figures changed with the same factors, method and inputs"]


def _factor_reasons(old: dict[str, float], new: dict[str, float]) -> list[str]:
    changed = [
        f"factor {k}: {old[k]:g} → {new[k]:g}"
        for k in sorted(set(old) & set(new))
        if old[k] != new[k]
    ]
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    found = changed[:MAX_LISTED]
    if len(changed) > MAX_LISTED:
        found.append(f"and {len(changed) - MAX_LISTED} more factor values")
    if added:
        found.append(f"factors newly used: {', '.join(added[:MAX_LISTED])}")
    if removed:
        found.append(f"factors no longer used: {', '.join(removed[:MAX_LISTED])}")
    return found


def _changes(published: dict[str, float], restated: dict[str, float]) -> list[dict[str, Any]]:
    rows = []
    for key in sorted(set(published) | set(restated)):
        before, after = published.get(key), restated.get(key)
        ratio = (after - before) / abs(before) if before and after is not None else None
        rows.append({
            "key": key, "published": before, "restated": after,
            "change_ratio": round(ratio, 6) if ratio is not None else None,
            "significant": ratio is None and before != after or (ratio is not None and abs(ratio) >= SIGNIFICANCE_RATIO),
        })  # fmt: skip
    return rows


def publish(root: Path, period: Period, run_date: date, summary: dict[str, Any],
            context: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """Record this publication if it differs from the latest; compare with the first one.

    Returns `summary` (for summary.json) and `context` (for the report's section)."""
    current = record_of(period, run_date, summary, context)
    records = read_records(root, period)
    if not records or not _same(records[-1], current):
        records.append({**current, "file": _write(root, period, run_date, current)})
    first = records[0]
    restated = not _same(first, current)
    changes = [
        c for c in _changes(first["values"], current["values"]) if c["published"] != c["restated"]
    ]
    log = [
        {"run_date": r["run_date"], "file": r["file"],
         "reasons": reasons(records[i - 1]["basis"], r["basis"]) if i else ["first publication"]}
        for i, r in enumerate(records)
    ]  # fmt: skip
    block = {
        "publications": len(records),
        "first_published": first["run_date"],
        "restated": restated,
        "threshold_ratio": SIGNIFICANCE_RATIO,
        "significant": any(c["significant"] for c in changes),
        "changes": changes,
        "reasons": reasons(first["basis"], current["basis"]) if restated else [],
    }
    return {"summary": block, "context": {**block, "log": log}}
