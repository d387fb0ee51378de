"""Small statistics for honest reporting. No TensorFlow.

    wilson_interval(990, 1000)                 # (0.9817..., 0.9946...)
    pooled_accuracy([(9, 10), (7, 10)])        # (0.8, low, high)
"""

from __future__ import annotations

import math


def wilson_interval(successes: int, trials: int, *, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion (95% by default).

    Unlike the normal approximation it stays inside [0, 1] and is sensible at 0 or 100%.
    """
    if trials <= 0:
        return (0.0, 1.0)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return (low, high)


def pooled_accuracy(counts: list[tuple[int, int]]) -> tuple[float, float, float]:
    """Pool (correct, targets) counts of several runs, seeds say, into one accuracy with the
    Wilson interval of the pooled counts. Returns (accuracy, low, high); NaNs with no targets.
    """
    correct = sum(c for c, _ in counts)
    targets = sum(t for _, t in counts)
    if not targets:
        return (math.nan, math.nan, math.nan)
    low, high = wilson_interval(correct, targets)
    return (correct / targets, low, high)


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def std(xs: list[float]) -> float:
    """The sample standard deviation (n-1); 0 for one value, NaN for none."""
    if len(xs) < 2:
        return 0.0 if xs else math.nan
    m = mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))
