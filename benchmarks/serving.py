"""The sample serving volume: requests and tokens per inference model and UTC day.

ILLUSTRATIVE numbers for the demo, not measurements: each model has a base daily volume (tokens
per day, tokens per request) chosen so that kg CO2e per 1M tokens lands in the range published
estimates give for models of its size; weekdays carry more than weekends, volume grows slowly
over the quarter and each day varies a little (seeded, so the file is the same every time).
Two lines are deliberately bad (a negative count; a model and day given twice) and listed in
EXPECTED.json with their 1-based line numbers (header included). Standard library only.
"""

from __future__ import annotations

import csv
import random
from datetime import date, timedelta

# model → (tokens per day at the quarter's start, tokens per request); the demo's inference models
MODELS = {
    "orca-70b-chat": (380_000_000, 700),
    "orca-7b-chat": (600_000_000, 500),
    "orca-7b": (45_000_000, 300),
}
WEEKEND_RATIO = 0.7
GROWTH_PER_DAY = 0.003
NOISE = 0.08
HEADER = ["model", "day", "requests", "tokens"]
NOTES = (
    "Illustrative serving volume (requests, tokens per model and UTC day) of the sample lab's "
    "inference models; bad_lines are deliberately bad and must be quarantined."
)


def _volume(rng: random.Random, base_tokens: int, per_request: int, n: int, day: date) -> list[int]:
    factor = (1 + GROWTH_PER_DAY) ** n * (WEEKEND_RATIO if day.weekday() >= 5 else 1.0)
    tokens = int(base_tokens * factor * rng.uniform(1 - NOISE, 1 + NOISE))
    requests = int(tokens / (per_request * rng.uniform(0.9, 1.1)))
    return [requests, tokens]


def generate(seed: int, start: str, end: str, path: str) -> dict:
    """Write the CSV (days start..end, end exclusive); return its EXPECTED entry."""
    rng = random.Random(seed)
    first, stop = date.fromisoformat(start), date.fromisoformat(end)
    rows: list[list[str]] = []
    for n in range((stop - first).days):
        day = first + timedelta(days=n)
        for model, (base, per_request) in MODELS.items():
            counts = _volume(rng, base, per_request, n, day)
            rows.append([model, day.isoformat(), *map(str, counts)])
    bad = {"negative_count": 40, "repeated_model_day": 150}  # index into rows
    rows[bad["negative_count"]][2] = "-" + rows[bad["negative_count"]][2]
    repeat = list(rows[bad["repeated_model_day"] - 3])  # the same model, the day before
    rows.insert(bad["repeated_model_day"], repeat)
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(rows)
    return {
        "data_lines": len(rows),
        # +2: the header is line 1 and rows are 0-based; the repeat is the later of its pair
        "bad_lines": {kind: index + 2 for kind, index in sorted(bad.items())},
        "models": sorted(MODELS),
    }
