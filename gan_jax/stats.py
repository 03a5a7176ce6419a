"""Summaries over seeds: mean, std, median, quartiles and a 95% confidence interval of the mean.

The interval is Student's t: mean +- t_{0.975, n-1} * std / sqrt(n), with std the sample
standard deviation (ddof = 1). It says where the *mean over seeds* lies; the spread of single
runs is the std and the quartiles.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


class Summary(NamedTuple):
    n: int
    mean: float
    std: float
    median: float
    q25: float
    q75: float
    ci_low: float
    ci_high: float


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (Lentz's method)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
                    -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """CDF of Student's t distribution."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """Quantile of Student's t distribution, by bisection on the CDF (|error| < 1e-10)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    lo, hi = -1e3, 1e3
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


def summarize(values, level: float = 0.95) -> Summary:
    """Summary of the finite values of one metric over seeds (non-finite ones are dropped)."""
    x = np.asarray([v for v in np.ravel(np.asarray(values, dtype=float)) if np.isfinite(v)])
    n = x.size
    if n == 0:
        nan = float("nan")
        return Summary(0, nan, nan, nan, nan, nan, nan, nan)
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if n > 1 else float("nan")
    if n > 1:
        half = t_quantile(0.5 + level / 2, n - 1) * std / math.sqrt(n)
    else:
        half = float("nan")
    q25, median, q75 = (float(q) for q in np.percentile(x, [25, 50, 75]))
    return Summary(n, mean, std, median, q25, q75, mean - half, mean + half)


def fmt(x: float, digits: int = 4) -> str:
    """A number for a table: `digits` significant figures, 'nan' for missing."""
    if x is None or not math.isfinite(x):
        return "nan"
    return f"{x:.{digits}g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"
