"""Random draws for the simulation.

Only ``Random.random()`` is used (the helpers here build on it), because its stream is stable
across CPython versions while ``randint``/``choice`` are not: the same seed must give
byte-identical dumps on any CPython 3.11+.
"""

from __future__ import annotations

from functools import lru_cache
from random import Random


def uniform(rng: Random, low: float, high: float) -> float:
    return low + (high - low) * rng.random()


def randint(rng: Random, low: int, high: int) -> int:
    """Integer in [low, high], both ends included."""
    return low + int(rng.random() * (high - low + 1))


def pick(rng: Random, items):
    return items[int(rng.random() * len(items))]


def chance(rng: Random, probability: float) -> bool:
    return rng.random() < probability


def log_uniform(rng: Random, low: float, high: float) -> float:
    """Durations and sizes spread over orders of magnitude look log-uniform in real logs."""
    return low * (high / low) ** rng.random()


@lru_cache(maxsize=256)
def total_weight(pairs: tuple) -> float:
    return sum(weight for _, weight in pairs)


def weighted(rng: Random, pairs: tuple):
    """Pick the key of (key, weight) pairs with probability proportional to weight."""
    target = rng.random() * total_weight(pairs)
    for key, weight in pairs:
        target -= weight
        if target < 0:
            return key
    return pairs[-1][0]
