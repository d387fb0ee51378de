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


# Student's t at 0.975 for 1..30 degrees of freedom; beyond, the Cornish-Fisher expansion
# below is within 1e-4 of it.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(df: int) -> float:
    """Student's t quantile at 0.975 for `df` degrees of freedom (a 95% two-sided interval)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be ≥ 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    return (z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3))


def t_interval(xs: list[float]) -> tuple[float, float, float]:
    """The mean of a few values (seeds, say) and the 95% interval of that mean, Student's t:
    mean ± t(0.975, n-1)·s/√n. Returns (mean, low, high); the interval is NaN for fewer
    than two values."""
    m = mean(xs)
    if len(xs) < 2:
        return (m, math.nan, math.nan)
    half = t975(len(xs) - 1) * std(xs) / math.sqrt(len(xs))
    return (m, m - half, m + half)
