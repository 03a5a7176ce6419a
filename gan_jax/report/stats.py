"""Statistics over seeds: summaries, bootstrap intervals, paired comparisons and tests.

Pure Python and NumPy (no JAX, no SciPy). Everything random takes a `seed` and draws from
`np.random.default_rng(seed)`, so a call with the same data, seed and resample count returns
the same numbers on every machine and every run. Bad arguments raise
`gan_jax.core.errors.ConfigError` (a ValueError) worded `FIELD: got VALUE; RULE`, as elsewhere in the
package.

Summaries (`summarize`) give, per table cell, the mean, sample std (ddof 1), median, quartiles,
interquartile mean and an interval of the mean. Comparisons of two configurations use the seeds:
runs with the same seed share their random real-data draws (common random numbers), so
`a[i] - b[i]` removes the per-seed component both runs share and `paired_difference` resamples
seeds (pairs) -- typically a much narrower interval than `unpaired_difference`, which resamples
the two groups independently and so carries the shared per-seed variance twice.

Public functions
    summarize, bootstrap_interval, bootstrap_replicates, iqm, success_rate,
    paired_difference, unpaired_difference, probability_of_improvement,
    sign_flip_pvalue, sign_flip_floor, cluster_bootstrap_replicates, cluster_count, holm,
    benjamini_hochberg, performance_profile, rank, spearman, t_cdf, t_quantile, fmt.

Clusters (seeds). When runs that share a seed are compared in several pairs (A and B at each of
two learning rates: four runs, two pairs, one seed), the pairs are not independent -- they drew
the same real data. `paired_difference`, `probability_of_improvement` and `sign_flip_pvalue`
take `clusters`, one label (the seed) per pair, and then resample and flip whole seeds: n is
the number of seeds, not of pairs. Without clusters, or with one pair per seed, they are the
plain methods, bit for bit.

Defaults and why
    resamples = 10_000 (bootstrap). The Monte Carlo error of a 2.5% / 97.5% percentile
        endpoint from B replicates is about sqrt(0.025 * 0.975 / B) / phi(1.96) = 0.027
        standard errors of the statistic at B = 10_000 (0.085 at B = 1_000, roughly the least
        Efron & Tibshirani 1993 suggest for interval endpoints). BCa's adjusted levels can fall
        further into the tails, which need more replicates; 10_000 covers both. rliable's
        get_interval_estimates defaults to 50_000; 10_000 already puts the endpoint noise well
        below the interval's own uncertainty at a fifth of the cost (a table computes one
        interval per cell and metric), and the fixed seed removes it from reruns.
    method = "percentile". For the small n of a sweep (5-20 seeds), BCa's bias correction z0 and
        its jackknife acceleration are themselves estimated from those few values and move the
        endpoints by amounts comparable to their own noise; the percentile interval is the
        simpler, transformation-respecting choice and rliable's default (Agarwal et al. 2021).
        Both stay inside the range of the data, so a metric in [lo, hi] gets an interval in
        [lo, hi]. BCa (`method="bca"`, Efron 1987) is offered for larger, skewed samples.
    seed = 0. A fixed seed makes tables and figures reproducible byte for byte; the resamples
        are not the experiment's randomness, so one fixed stream is all that is needed.
    level = 0.95, the conventional level.
    success_rate method = "wilson": see `success_rate` (the bootstrap collapses to a zero-width
        interval when every seed succeeds or every seed fails).
    probability_of_improvement, paired, method = "wilson" over seeds, for the same reason (a
        win on every seed gave [1, 1]); unpaired stays the percentile bootstrap (rliable).
    sign_flip_pvalue resamples = 100_000 (Monte Carlo, n > 16 pairs only; n <= 16 is exact). The
        smallest Monte Carlo p-value is 1 / (resamples + 1); after a Holm or Benjamini-Hochberg
        adjustment over tens of comparisons, p-values near 1e-3 must be resolved (standard error
        about 1e-4 at 100_000).
    summarize interval = "bootstrap" (percentile, seed 0): it stays inside the range of the
        data, so a bounded metric never gets an impossible interval (a 4-seed mode_balance in
        [0, 1] got [-0.12, 0.64] from Student's t). "t" remains available by name; see the
        caveat on small n below for what the bootstrap costs in coverage at 4-5 seeds.

Caveat on small n. Every interval here except Student's t and Wilson is a large-sample
approximation. For the mean of n normal values the percentile bootstrap interval is about
mean +- z_{0.975} * sqrt((n - 1) / n) * s / sqrt(n), narrower than Student's
t_{0.975, n-1} * s / sqrt(n): at n = 5 about 0.63 of the t width. Simulated coverage of a nominal
95% for normal data (`bootstrap_coverage`, 4,000 samples each): 80% at n = 4, 84% at n = 5, 90%
at n = 10, 92% at n = 20 (Student t: 95-96%). Tables quote these (`PERCENTILE_COVERAGE`) in their
captions. Report n next to every interval, and prefer more seeds to a cleverer interval.

References
    Efron, B. (1987). Better bootstrap confidence intervals. JASA 82(397), 171-185.
    Efron, B. & Tibshirani, R. J. (1993). An Introduction to the Bootstrap. Chapman & Hall.
    Agarwal, R., Schwarzer, M., Castro, P. S., Courville, A. & Bellemare, M. G. (2021). Deep
        reinforcement learning at the edge of the statistical precipice. NeurIPS (rliable).
    Wilson, E. B. (1927). Probable inference, the law of succession, and statistical inference.
        JASA 22(158), 209-212.
    Brown, L. D., Cai, T. T. & DasGupta, A. (2001). Interval estimation for a binomial
        proportion. Statistical Science 16(2), 101-133.
    Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scand. J. Statist.
        6(2), 65-70.
    Benjamini, Y. & Hochberg, Y. (1995). Controlling the false discovery rate. JRSS B 57(1),
        289-300.
    Phipson, B. & Smyth, G. K. (2010). Permutation p-values should never be zero. Statistical
        Applications in Genetics and Molecular Biology 9(1), article 39.
    Davison, A. C. & Hinkley, D. V. (1997). Bootstrap Methods and their Application. Cambridge
        University Press (sec. 3.8: resampling clusters).
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Mapping, NamedTuple, Sequence, Union

import numpy as np

from gan_jax.core.errors import ConfigError, field_error

RESAMPLES = 10_000          # bootstrap replicates (see the module docstring)
PERMUTATIONS = 100_000      # Monte Carlo sign patterns of sign_flip_pvalue for n > EXACT_MAX
EXACT_MAX = 16              # sign_flip_pvalue enumerates all 2^n sign patterns up to this n
_BLOCK = 1 << 20            # elements per resample block: bounds memory for large n

Statistic = Union[str, Callable[[np.ndarray], np.ndarray]]


class Summary(NamedTuple):
    """One metric over seeds. `ci_low`, `ci_high`: interval of the mean by `interval`."""

    n: int
    mean: float
    std: float
    median: float
    q25: float
    q75: float
    ci_low: float
    ci_high: float
    iqm: float = float("nan")
    interval: str = "bootstrap"


class Interval(NamedTuple):
    """A point estimate with its interval.

    n: the number of units resampled -- values, seeds (pairs) -- or (n_a, n_b) for two
    independent groups. method: how the interval was made, e.g. "percentile", "bca", "wilson".
    """

    value: float
    ci_low: float
    ci_high: float
    n: Union[int, tuple]
    method: str


class Profile(NamedTuple):
    """A performance profile of one configuration: `fraction[k]` of its runs beat `taus[k]`.

    `ci_low`, `ci_high`: pointwise percentile bootstrap band over runs (not simultaneous).
    """

    taus: np.ndarray
    fraction: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n: int


# --------------------------------------------------------------------------------------------
# Student's t and the normal distribution
# --------------------------------------------------------------------------------------------

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


@functools.lru_cache(maxsize=1024)
def t_quantile(p: float, df: float) -> float:
    """Quantile of Student's t distribution, by bisection on the CDF (|error| < 1e-10).
    Remembered: a table asks for the same few (level, seeds) pairs in every cell."""
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


def _norm_cdf(z: float) -> float:
    """Standard normal CDF, Phi(z) = erfc(-z / sqrt 2) / 2 (accurate in both tails)."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _norm_ppf(p: float) -> float:
    """Standard normal quantile, by bisection on `_norm_cdf` (|error| < 1e-12)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _norm_cdf(mid) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-13:
            break
    return 0.5 * (lo + hi)


# --------------------------------------------------------------------------------------------
# Statistics applied along the last axis
# --------------------------------------------------------------------------------------------

def _iqm_last_axis(x: np.ndarray) -> np.ndarray:
    n = x.shape[-1]
    k = n // 4
    return np.sort(x, axis=-1)[..., k:n - k].mean(axis=-1)


_STATISTICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": lambda x: np.mean(x, axis=-1),
    "median": lambda x: np.median(x, axis=-1),
    "iqm": _iqm_last_axis,
}


def _statistic(statistic: Statistic) -> Callable[[np.ndarray], np.ndarray]:
    """The function (..., n) -> (...) that `statistic` names, or the callable itself."""
    if callable(statistic):
        return statistic
    try:
        return _STATISTICS[statistic]
    except KeyError:
        raise field_error("statistic", statistic,
                          f"must be one of {', '.join(_STATISTICS)} or a callable") from None


def _point(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> float:
    """fn applied to the one-row matrix x[None, :], as a float."""
    return float(np.asarray(fn(x[None, :])).reshape(-1)[0])


def iqm(values) -> float:
    """Interquartile mean: the mean of the middle 50% of the values.

    With the values sorted, x_(1) <= ... <= x_(n), and k = floor(n / 4),
        IQM = (1 / (n - 2k)) * sum_{i = k+1}^{n-k} x_(i),
    i.e. k values are trimmed from each end (scipy.stats.trim_mean(x, 0.25) semantics, as used by
    rliable, Agarwal et al. 2021). Robust to a quarter of the runs failing badly at either end,
    and less noisy than the median. For n < 4 nothing is trimmed (the mean).

    NaN is refused rather than sorted: NumPy sorts NaN last, where trimming would silently drop
    it (iqm([1, 2, nan, 4]) would be 3.0, the IQM of values that are not the ones given) or keep
    it, depending on n. A missing value is either dropped by the caller (as `summarize` does) or
    counted as the worst value, +-inf, which trimming handles like any value: rliable's
    robustness to a quarter of the runs failing.

    Args:
      values: array-like of numbers (flattened); +-inf allowed, NaN not.

    Returns:
      The IQM, or nan for no values.

    Raises:
      ConfigError: for NaN values.
    """
    x = np.ravel(np.asarray(values, dtype=float))
    if np.any(np.isnan(x)):
        raise ConfigError(f"values: got {int(np.sum(np.isnan(x)))} nan value(s); drop them "
                          "(x[np.isfinite(x)]) or count them as the worst value (+-inf) first")
    return float("nan") if x.size == 0 else float(_iqm_last_axis(x))


# --------------------------------------------------------------------------------------------
# The bootstrap
# --------------------------------------------------------------------------------------------

def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise field_error("level", level, "must be in (0, 1)")


def _bootstrap_values(values, resamples) -> np.ndarray:
    """The finite values a bootstrap resamples (at least one), its resample count checked."""
    x = _finite_1d(values)
    if x.size == 0:
        raise ConfigError("values: got none; the bootstrap needs at least one")
    _check_resamples(resamples)
    return x


def _check_resamples(resamples: int) -> None:
    if int(resamples) != resamples or resamples < 1:
        raise field_error("resamples", resamples, "must be a positive integer")


def _finite_1d(values, name: str = "values") -> np.ndarray:
    x = np.ravel(np.asarray(values, dtype=float))
    if not np.all(np.isfinite(x)):
        raise ConfigError(f"{name}: got {int(np.sum(~np.isfinite(x)))} non-finite value(s); "
                          "drop them or count them as failures before calling")
    return x


def _rows_per_block(width: int) -> int:
    return max(1, _BLOCK // max(int(width), 1))


def _index_blocks(rng: np.random.Generator, n: int, resamples: int, width: int | None = None):
    """Yield (start, idx): bootstrap index matrices idx (m, n), in blocks of bounded size."""
    rows = _rows_per_block(n if width is None else width)
    for start in range(0, resamples, rows):
        m = min(rows, resamples - start)
        yield start, rng.integers(0, n, size=(m, n))


def _counts(idx: np.ndarray, n: int) -> np.ndarray:
    """How often each of the n units appears in each row of idx (m, n): counts (m, n)."""
    m = idx.shape[0]
    flat = (idx + n * np.arange(m)[:, None]).ravel()
    return np.bincount(flat, minlength=m * n).reshape(m, n).astype(float)


def bootstrap_replicates(values, statistic: Statistic = "mean", *, resamples: int = RESAMPLES,
                         seed: int = 0) -> np.ndarray:
    """The statistic of `resamples` bootstrap resamples of the values (rows drawn with replacement).

    theta*_b = statistic(x*_b), where x*_b is n values drawn with replacement from x (Efron &
    Tibshirani 1993, ch. 6). Resamples are drawn in blocks of at most 2^20 values, so memory
    stays bounded for any n; for a given n the block size is fixed, so the same seed gives the
    same replicates.

    Args:
      values: finite numbers (flattened); at least one.
      statistic: "mean", "median", "iqm", or a callable mapping an array (..., n) to (...).
      resamples: number of bootstrap replicates B.
      seed: seed of `np.random.default_rng`.

    Returns:
      Array (B,) of replicates.
    """
    x = _bootstrap_values(values, resamples)
    fn = _statistic(statistic)
    out = np.empty(int(resamples))
    for start, idx in _index_blocks(np.random.default_rng(seed), x.size, int(resamples)):
        out[start:start + idx.shape[0]] = fn(x[idx])
    return out


def _percentile(replicates: np.ndarray, level: float) -> tuple[float, float]:
    alpha = 1.0 - level
    lo, hi = np.quantile(replicates, [alpha / 2, 1.0 - alpha / 2])
    return float(lo), float(hi)


def _jackknife(x: np.ndarray, fn: Callable[[np.ndarray], np.ndarray],
               statistic: Statistic) -> np.ndarray:
    """Leave-one-out values theta_(i) = statistic(x without x_i), i = 1..n."""
    n = x.size
    if isinstance(statistic, str) and statistic == "mean":
        return (x.sum() - x) / (n - 1)
    out = np.empty(n)
    cols = np.arange(n - 1)
    for start in range(0, n, _rows_per_block(n - 1)):
        rows = np.arange(start, min(n, start + _rows_per_block(n - 1)))
        idx = cols[None, :] + (cols[None, :] >= rows[:, None])   # row i skips index i
        out[rows] = fn(x[idx])
    return out


def _acceleration(jack: np.ndarray) -> float:
    """BCa acceleration from jackknife values (Efron 1987, eq. 6.6; Efron & Tibshirani eq. 14.15).

    a = sum_i (mean(theta_(.)) - theta_(i))^3 / (6 * (sum_i (mean(theta_(.)) - theta_(i))^2)^1.5);
    0 when the jackknife values are all equal.
    """
    d = jack.mean() - jack
    scale = float(np.max(np.abs(d)))
    if scale == 0.0 or not math.isfinite(scale):
        return 0.0
    d = d / scale                       # a is scale-free; this avoids under- and overflow
    return float(np.sum(d ** 3) / (6.0 * float(np.sum(d * d)) ** 1.5))


def _bca(replicates: np.ndarray, estimate: float, accel: float,
         level: float) -> tuple[float, float]:
    """BCa interval from replicates (Efron 1987; Efron & Tibshirani 1993, ch. 14).

    z0 = Phi^{-1}(#{theta* < theta_hat} / B + #{theta* = theta_hat} / (2B)), clipped to
    [1/(2B), 1 - 1/(2B)] so it stays finite; for each tail z_alpha,
        alpha' = Phi(z0 + (z0 + z_alpha) / (1 - a (z0 + z_alpha))),
    and the endpoints are the alpha' quantiles of the replicates.
    """
    b = replicates.size
    frac = (np.sum(replicates < estimate) + 0.5 * np.sum(replicates == estimate)) / b
    z0 = _norm_ppf(min(max(frac, 0.5 / b), 1.0 - 0.5 / b))
    alpha = 1.0 - level
    levels = []
    for tail in (alpha / 2, 1.0 - alpha / 2):
        z = z0 + _norm_ppf(tail)
        denom = 1.0 - accel * z
        # a (z0 + z_alpha) >= 1 sends the adjusted level to the end of the distribution.
        adj = _norm_cdf(z0 + z / denom) if denom > 0 else (1.0 if z > 0 else 0.0)
        levels.append(adj)
    lo, hi = np.quantile(replicates, levels)
    return float(lo), float(hi)


def bootstrap_interval(values, statistic: Statistic = "mean", *, level: float = 0.95,
                       resamples: int = RESAMPLES, seed: int = 0,
                       method: str = "percentile") -> tuple[float, float]:
    """Bootstrap confidence interval of a statistic of the values.

    percentile: [q_{alpha/2}, q_{1-alpha/2}] of the replicates theta*_b (Efron & Tibshirani 1993,
      ch. 13), alpha = 1 - level; quantiles by linear interpolation between replicates.
    bca: bias-corrected and accelerated (Efron 1987): the quantiles at
      alpha_1 = Phi(z0 + (z0 + z_{alpha/2}) / (1 - a (z0 + z_{alpha/2}))) and likewise
      alpha_2 with z_{1-alpha/2}, where z0 = Phi^{-1}(fraction of replicates below the estimate,
      ties counted half) corrects median bias and the acceleration a is estimated by the
      jackknife, a = sum (theta_bar - theta_(i))^3 / (6 (sum (theta_bar - theta_(i))^2)^{3/2}).
      Second-order accurate; worth it for skewed data and n of at least a few tens.

    Both endpoints are replicates or interpolations between two, so for "mean", "median" and
    "iqm" the interval lies within [min(values), max(values)] (enforced against floating-point
    rounding): a metric bounded in [lo, hi] gets an interval inside [lo, hi] (unlike
    mean +- t * s / sqrt(n)).

    Degenerate cases: no values -> (nan, nan); one value, or all values equal ->
    (statistic, statistic).

    Args:
      values: finite numbers (flattened).
      statistic: "mean", "median", "iqm", or a callable mapping an array (..., n) to (...)
        (applied along axis -1 of a resample matrix).
      level: confidence level in (0, 1).
      resamples: bootstrap replicates B.
      seed: seed of `np.random.default_rng`; same seed and B -> the same interval.
      method: "percentile" or "bca".

    Returns:
      (low, high).
    """
    _check_level(level)
    _check_resamples(resamples)
    if method not in ("percentile", "bca"):
        raise field_error("method", method, "must be 'percentile' or 'bca'")
    x = _finite_1d(values)
    fn = _statistic(statistic)
    if x.size == 0:
        return float("nan"), float("nan")
    if x.size == 1 or np.all(x == x[0]):
        theta = float(x[0]) if isinstance(statistic, str) else _point(fn, x)
        return theta, theta
    reps = bootstrap_replicates(x, statistic, resamples=resamples, seed=seed)
    if method == "percentile":
        lo, hi = _percentile(reps, level)
    else:
        lo, hi = _bca(reps, _point(fn, x), _acceleration(_jackknife(x, fn, statistic)), level)
    if isinstance(statistic, str):
        # Means of values in [min, max] lie in [min, max]; floating-point rounding of a sum can
        # put one a unit in the last place outside, which a bounded metric must not show.
        lo, hi = (float(min(max(v, x.min()), x.max())) for v in (lo, hi))
    return lo, hi


def bootstrap_coverage(n: int, *, samples: int = 4000, level: float = 0.95,
                       resamples: int = RESAMPLES, seed: int = 0) -> float:
    """Simulated coverage of the percentile bootstrap interval of the mean (`bootstrap_interval`,
    seed 0 as the tables use it) for n standard normal values: the fraction of `samples` draws
    whose interval contains 0. What a table's caption quotes (`PERCENTILE_COVERAGE`)."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(samples):
        lo, hi = bootstrap_interval(rng.normal(size=n), level=level, resamples=resamples)
        hits += lo <= 0.0 <= hi
    return hits / samples


# bootstrap_coverage(n) at n = 4, 5, 10, 20 (4,000 samples each, seed 0; a standard error of
# about 0.006); tests/test_stats.py recomputes it with fewer samples.
PERCENTILE_COVERAGE = {"c4": 0.795, "c5": 0.842, "c10": 0.901, "c20": 0.920}


# --------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------

_INTERVALS = ("bootstrap", "bca", "t")


def summarize(values, level: float = 0.95, *, interval: str = "bootstrap", resamples: int = RESAMPLES,
              seed: int = 0, bounds: tuple[float, float] | None = None) -> Summary:
    """Summary of the finite values of one metric over seeds (non-finite ones are dropped).

    mean, std (ddof 1), median, q25 and q75 (linear interpolation), iqm (see `iqm`), and an
    interval of the mean:
      "t": mean +- t_{(1+level)/2, n-1} * std / sqrt(n) (Student), exact for normal values;
      "bootstrap": percentile bootstrap of the mean (`bootstrap_interval`, fixed seed);
      "bca": BCa bootstrap of the mean.
    The default is "bootstrap" (see the module docstring).

    With fewer than 2 values the interval (and std) is nan: one seed says nothing about the
    spread of seeds.

    Args:
      values: numbers (flattened); nan and inf are dropped.
      level: confidence level in (0, 1).
      interval: "bootstrap", "bca" or "t".
      resamples, seed: of the bootstrap intervals.
      bounds: (lo, hi), the metric's known range. Values outside it raise ConfigError; the
        interval is clipped to it (only the t interval can leave it).

    Returns:
      A Summary; `interval` records the method.
    """
    _check_level(level)
    if interval not in _INTERVALS:
        raise field_error("interval", interval, f"must be one of {', '.join(_INTERVALS)}")
    x = np.ravel(np.asarray(values, dtype=float))
    x = x[np.isfinite(x)]
    if bounds is not None:
        lo_b, hi_b = (float(b) for b in bounds)
        if not lo_b <= hi_b:
            raise field_error("bounds", bounds, "must be (lo, hi) with lo <= hi")
        outside = int(np.sum((x < lo_b) | (x > hi_b)))
        if outside:
            raise ConfigError(f"values: got {outside} value(s) outside bounds {bounds}")
    n = x.size
    nan = float("nan")
    if n == 0:
        return Summary(0, nan, nan, nan, nan, nan, nan, nan, nan, interval)
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if n > 1 else nan
    if n < 2:
        ci_low = ci_high = nan
    elif interval == "t":
        half = t_quantile(0.5 + level / 2, n - 1) * std / math.sqrt(n)
        ci_low, ci_high = mean - half, mean + half
    else:
        ci_low, ci_high = bootstrap_interval(
            x, "mean", level=level, resamples=resamples, seed=seed,
            method="percentile" if interval == "bootstrap" else "bca")
    if bounds is not None and n > 1:
        ci_low, ci_high = min(max(ci_low, lo_b), hi_b), min(max(ci_high, lo_b), hi_b)
    q25, median, q75 = (float(q) for q in np.percentile(x, [25, 50, 75]))
    return Summary(n, mean, std, median, q25, q75, ci_low, ci_high, iqm(x), interval)


# --------------------------------------------------------------------------------------------
# Success rates
# --------------------------------------------------------------------------------------------

def success_rate(successes, *, level: float = 0.95, method: str = "wilson",
                 resamples: int = RESAMPLES, seed: int = 0) -> Interval:
    """Fraction of successes with a confidence interval.

    wilson (default): the Wilson (1927) score interval, with p = k / n and z = z_{(1+level)/2},
        center = (p + z^2 / (2n)) / (1 + z^2 / n),
        half   = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / (4 n^2)).
    percentile: percentile bootstrap of the mean of the 0/1 outcomes (resampling runs).

    Why Wilson is the default: with the few seeds of a sweep the percentile bootstrap (like the
    Wald interval p +- z sqrt(p(1-p)/n)) collapses to zero width when all runs succeed or all
    fail -- 4 successes of 4 give [1, 1] -- and undercovers near 0 and 1; the Wilson interval
    gives [0.51, 1] there, stays in [0, 1], has close to nominal coverage for small n (Brown,
    Cai & DasGupta 2001 recommend it for n < 40), and is closed form (no resampling noise).

    Args:
      successes: booleans or 0/1 values (flattened); the caller counts diverged runs as False.
      level: confidence level in (0, 1).
      method: "wilson" or "percentile".
      resamples, seed: of the bootstrap (percentile only).

    Returns:
      Interval(fraction, ci_low, ci_high, n, method); nan for no runs.
    """
    _check_level(level)
    if method not in ("wilson", "percentile"):
        raise field_error("method", method, "must be 'wilson' or 'percentile'")
    s = np.ravel(np.asarray(successes))
    x = s.astype(float)
    if not np.all((x == 0) | (x == 1)):
        raise ConfigError("successes: got values other than 0/1; must be booleans or 0/1")
    n = x.size
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0, method)
    p = float(x.mean())
    if method == "percentile":
        lo, hi = bootstrap_interval(x, "mean", level=level, resamples=resamples, seed=seed)
        return Interval(p, lo, hi, n, method)
    lo, hi = _wilson(p, n, level)
    return Interval(p, lo, hi, n, method)


def _wilson(p: float, n: int, level: float) -> tuple[float, float]:
    """The Wilson (1927) score interval of a proportion p from n trials (see `success_rate`)."""
    z = _norm_ppf(0.5 + level / 2)
    z2n = z * z / n
    center = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(p * (1 - p) / n + z2n / (4 * n))
    # At p = 0 (p = 1) the lower (upper) end is exactly 0 (1); say so rather than round.
    lo = 0.0 if p == 0.0 else max(0.0, center - half)
    hi = 1.0 if p == 1.0 else min(1.0, center + half)
    return lo, hi


# --------------------------------------------------------------------------------------------
# Comparisons of two configurations
# --------------------------------------------------------------------------------------------

def _cluster_index(clusters, n: int) -> tuple[np.ndarray, int] | None:
    """(index of each value's cluster in 0..C-1, C), or None when every value is its own
    cluster (no clusters given, or all labels distinct): then the plain methods apply, bit for
    bit as without clusters."""
    if clusters is None:
        return None
    labels = list(np.ravel(np.asarray(clusters, dtype=object)))
    if len(labels) != n:
        raise ConfigError(f"clusters: got {len(labels)} labels for {n} values; give one label "
                          "(e.g. the seed) per value")
    first: dict = {}
    index = np.array([first.setdefault(c, len(first)) for c in labels], dtype=int)
    return None if len(first) == n else (index, len(first))


def cluster_count(clusters, n: int | None = None) -> int:
    """The number of distinct clusters (seeds) among the labels: the n a clustered interval or
    test has."""
    labels = list(np.ravel(np.asarray(clusters, dtype=object)))
    return len(set(labels)) if n is None or len(labels) == n else n


def cluster_bootstrap_replicates(values, clusters, statistic: Statistic = "mean", *,
                                 resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """Bootstrap replicates resampling whole clusters (seeds), not values.

    Values that share a cluster share a source of randomness (runs with one seed drew the same
    real data), so they are not independent; resampling them one by one treats C clusters of k
    values as C k independent values and makes intervals too narrow (pseudo-replication). Here
    each replicate draws C clusters with replacement and keeps every value of each (Davison &
    Hinkley 1997, sec. 3.8, "resampling clusters"). For "mean", with counts w (B, C), cluster
    sums S and sizes m, a replicate is (w S) / (w m): clusters of any sizes. Other statistics
    need clusters of equal size (the values of a replicate are the chosen clusters' values).

    Args:
      values: finite numbers (flattened).
      clusters: one label per value (e.g. its seed).
      statistic: "mean", or with equal-size clusters "median", "iqm" or a callable.
      resamples, seed: as `bootstrap_replicates`.

    Returns:
      Array (B,) of replicates.
    """
    x = _bootstrap_values(values, resamples)
    got = _cluster_index(clusters, x.size)
    index, c = got if got is not None else (np.arange(x.size), x.size)
    sizes = np.bincount(index, minlength=c).astype(float)
    sums = np.bincount(index, weights=x, minlength=c)
    rng = np.random.default_rng(seed)
    out = np.empty(int(resamples))
    if isinstance(statistic, str) and statistic == "mean":
        for start, idx in _index_blocks(rng, c, int(resamples)):
            w = _counts(idx, c)
            out[start:start + idx.shape[0]] = (w @ sums) / (w @ sizes)
        return out
    if np.any(sizes != sizes[0]):
        raise ConfigError(f"clusters: got sizes {sorted(set(sizes.astype(int).tolist()))}; a "
                          "statistic other than the mean needs clusters of equal size")
    fn = _statistic(statistic)
    grid = x[np.argsort(index, kind="stable")].reshape(c, int(sizes[0]))
    for start, idx in _index_blocks(rng, c, int(resamples), width=x.size):
        out[start:start + idx.shape[0]] = fn(grid[idx].reshape(idx.shape[0], -1))
    return out


def sign_flip_floor(n: int, resamples: int = PERMUTATIONS) -> float:
    """The smallest two-sided p-value `sign_flip_pvalue` can give with n clusters (seeds).

    Exactly (n <= 16) the observed sign pattern and its mirror image are always as extreme, so
    p >= 2 / 2^n: 0.25 at n = 3, 0.125 at 4, 0.0625 at 5, 0.03125 at 6. With 5 seeds or fewer
    no sign-flip test, and no test of the signs at all, can reject at 0.05; an interval that
    excludes 0 there is not evidence a test would back. Monte Carlo (n > 16): 1 / (resamples + 1).
    """
    if n < 1:
        return 1.0
    return 2.0 ** (1 - n) if n <= EXACT_MAX else max(2.0 ** (1 - n), 1.0 / (resamples + 1))


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    x, y = _finite_1d(a, "a"), _finite_1d(b, "b")
    if x.shape != y.shape:
        raise ConfigError(f"a, b: got {x.size} and {y.size} values; paired values need one per "
                          "seed in each")
    return x, y


def paired_difference(a, b, *, statistic: Statistic = "mean", level: float = 0.95,
                      resamples: int = RESAMPLES, seed: int = 0,
                      method: str = "percentile", clusters=None) -> Interval:
    """Statistic of the per-seed differences a[i] - b[i], with a bootstrap interval over seeds.

    d_i = a_i - b_i for the same seed i; the estimate is statistic(d) and the interval is
    `bootstrap_interval(d, statistic)`: resampling seeds keeps each pair together, so the
    per-seed component the two runs share (common random numbers) cancels. For "median" this is
    the median of the differences, not the difference of the medians.

    clusters: when several pairs share a seed (runs that differ in a key other than the one
    compared, e.g. two learning rates, drew the same real data), one label per pair; the
    interval then resamples seeds (`cluster_bootstrap_replicates`, percentile only) and n is the
    number of seeds. Pairs with distinct labels are the unclustered case, bit for bit.

    Args:
      a, b: finite values of the two configurations, a[i] and b[i] from seed i.
      statistic: "mean", "median", "iqm" or a callable (see `bootstrap_interval`).
      level, resamples, seed, method: of the bootstrap interval ("percentile" or "bca").
      clusters: optional labels (seeds) of the pairs.

    Returns:
      Interval(statistic(d), ci_low, ci_high, n pairs (or seeds), method).
    """
    x, y = _pair(a, b)
    d = x - y
    fn = _statistic(statistic)
    value = _point(fn, d) if d.size else float("nan")
    got = _cluster_index(clusters, d.size)
    if got is None:
        lo, hi = bootstrap_interval(d, statistic, level=level, resamples=resamples, seed=seed,
                                    method=method)
        return Interval(value, lo, hi, int(d.size), method)
    _check_level(level)
    if method != "percentile":
        raise field_error("method", method, "must be 'percentile' with clusters")
    if got[1] == 1 or np.all(d == d[0]):
        return Interval(value, value, value, got[1], "cluster percentile")
    reps = cluster_bootstrap_replicates(d, clusters, statistic, resamples=resamples, seed=seed)
    lo, hi = (float(min(max(v, d.min()), d.max())) for v in _percentile(reps, level))
    return Interval(value, lo, hi, got[1], "cluster percentile")


def unpaired_difference(a, b, *, statistic: Statistic = "mean", level: float = 0.95,
                        resamples: int = RESAMPLES, seed: int = 0) -> Interval:
    """statistic(a) - statistic(b) with a percentile bootstrap resampling each group on its own.

    theta*_b = statistic(a*_b) - statistic(b*_b), a*_b and b*_b drawn independently with
    replacement (Efron & Tibshirani 1993, ch. 8, two-sample problem). Right for independent
    groups; for runs paired by seed it ignores the pairing, and the width it reports next to
    `paired_difference` shows what pairing buys.

    Args:
      a, b: finite values of the two groups (any sizes, at least one each).
      statistic: "mean", "median", "iqm" or a callable (see `bootstrap_interval`).
      level, resamples, seed: of the percentile bootstrap.

    Returns:
      Interval(statistic(a) - statistic(b), ci_low, ci_high, (n_a, n_b), "percentile").
    """
    _check_level(level)
    _check_resamples(resamples)
    x, y = _finite_1d(a, "a"), _finite_1d(b, "b")
    fn = _statistic(statistic)
    sizes = (int(x.size), int(y.size))
    if x.size == 0 or y.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"), sizes, "percentile")
    value = _point(fn, x) - _point(fn, y)
    rng = np.random.default_rng(seed)
    reps = np.empty(int(resamples))
    rows = _rows_per_block(max(x.size, y.size))
    for start in range(0, int(resamples), rows):
        m = min(rows, int(resamples) - start)
        ia = rng.integers(0, x.size, size=(m, x.size))
        ib = rng.integers(0, y.size, size=(m, y.size))
        reps[start:start + m] = fn(x[ia]) - fn(y[ib])
    lo, hi = _percentile(reps, level)
    return Interval(value, lo, hi, sizes, "percentile")


def _better(x: np.ndarray, y: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """1 where x beats y, 1/2 for a tie, 0 otherwise (elementwise, broadcasting)."""
    win = (x > y) if higher_is_better else (x < y)
    return win + 0.5 * (x == y)


def _no_nan(x: np.ndarray, name: str) -> np.ndarray:
    if np.any(np.isnan(x)):
        raise ConfigError(f"{name}: got nan values; pass failed runs as -inf or +inf (the worst "
                          "value)")
    return x


def probability_of_improvement(a, b, *, higher_is_better: bool, paired: bool,
                               level: float = 0.95, resamples: int = RESAMPLES,
                               seed: int = 0, method: str | None = None,
                               clusters=None) -> Interval:
    """Probability that configuration a beats configuration b, with an interval.

    paired (a[i], b[i] from seed i): P = (1/n) sum_i [1(a_i better than b_i) + 1(a_i = b_i)/2],
      the fraction of seeds on which a wins, ties counting one half. Interval (method):
        "wilson" (the default): the Wilson score interval of P with n = the number of seeds
          (clusters; pairs without `clusters`). It is the interval `success_rate` uses, for the
          same reason: a percentile bootstrap of 0/1/2-valued scores collapses to [1, 1] when a
          wins on every seed (and to [0, 0] when it loses on every one), claiming certainty
          from 4 seeds. Wilson gives [0.51, 1] at 4 of 4. Scores with ties (1/2), or a seed's
          mean score over several pairs, have a variance at most P (1 - P), the Bernoulli
          variance Wilson assumes, so the interval is if anything conservative.
        "percentile": the percentile bootstrap of the scores over seeds (clusters resampled
          whole when given); kept for comparison.
    unpaired: P(X > Y) + P(X = Y) / 2 over all n_a * n_b pairs (X from a, Y from b; "better" in
      place of ">"), the Mann-Whitney U statistic divided by n_a n_b, as rliable (Agarwal et al.
      2021) defines it; the interval resamples a and b independently. With counts w_a, w_b of a
      resample and C_ij = 1(a_i better than b_j) + 1(a_i = b_j)/2, a replicate is
      w_a^T C w_b / (n_a n_b), computed by a matrix product.

    0.5 means no difference. Values may be +-inf (e.g. diverged runs as the worst value), not
    nan.

    Args:
      a, b: values of the two configurations.
      higher_is_better: the metric's direction (required: W1 is lower-is-better).
      paired: whether a[i] and b[i] come from the same seed.
      level, resamples, seed: of the interval (resamples and seed: bootstrap only).
      method: paired only, "wilson" (default) or "percentile"; unpaired is "percentile".
      clusters: paired only, one label (seed) per pair when several pairs share a seed.

    Returns:
      Interval(P, ci_low, ci_high, n seeds (pairs) or (n_a, n_b), method).
    """
    _check_level(level)
    _check_resamples(resamples)
    x = _no_nan(np.ravel(np.asarray(a, dtype=float)), "a")
    y = _no_nan(np.ravel(np.asarray(b, dtype=float)), "b")
    if paired:
        method = "wilson" if method is None else method
        if method not in ("wilson", "percentile"):
            raise field_error("method", method, "must be 'wilson' or 'percentile'")
        if x.shape != y.shape:
            raise ConfigError(f"a, b: got {x.size} and {y.size} values; paired values need one "
                              "per seed in each")
        scores = _better(x, y, higher_is_better)
        if scores.size == 0:
            return Interval(float("nan"), float("nan"), float("nan"), 0, method)
        got = _cluster_index(clusters, scores.size)
        n = int(scores.size) if got is None else got[1]
        p = float(scores.mean())
        if method == "wilson":
            lo, hi = _wilson(p, n, level)
        elif got is None:
            lo, hi = bootstrap_interval(scores, "mean", level=level, resamples=resamples,
                                        seed=seed)
        else:
            lo, hi = _percentile(cluster_bootstrap_replicates(
                scores, clusters, "mean", resamples=resamples, seed=seed), level)
        return Interval(p, lo, hi, n, method)
    elif method not in (None, "percentile"):
        raise field_error("method", method, "must be 'percentile' for unpaired values")
    sizes = (int(x.size), int(y.size))
    if x.size == 0 or y.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"), sizes, "percentile")
    c = _better(x[:, None], y[None, :], higher_is_better)
    value = float(c.mean())
    rng = np.random.default_rng(seed)
    reps = np.empty(int(resamples))
    rows = _rows_per_block(max(x.size, y.size))
    for start in range(0, int(resamples), rows):
        m = min(rows, int(resamples) - start)
        wa = _counts(rng.integers(0, x.size, size=(m, x.size)), x.size)
        wb = _counts(rng.integers(0, y.size, size=(m, y.size)), y.size)
        reps[start:start + m] = np.sum((wa @ c) * wb, axis=1) / (x.size * y.size)
    lo, hi = _percentile(reps, level)
    return Interval(value, lo, hi, sizes, "percentile")


# --------------------------------------------------------------------------------------------
# Tests of significance and multiple comparisons
# --------------------------------------------------------------------------------------------

def sign_flip_pvalue(differences, *, statistic: Statistic = "mean",
                     alternative: str = "two-sided", resamples: int = PERMUTATIONS,
                     seed: int = 0, clusters=None) -> float:
    """Paired permutation (sign-flip) test of "the differences are centred on 0".

    Under H0 each paired difference d_i = a_i - b_i is symmetric about 0, so every sign pattern
    s in {-1, +1}^n is equally likely: T(s * d) has the null distribution of T(d), with
    T = statistic (the mean by default). p-value, two-sided: the fraction of patterns with
    |T(s * d)| >= |T(d)|; "greater": T(s * d) >= T(d); "less": T(s * d) <= T(d).
    n <= 16: exact, over all 2^n patterns (the observed one included). n > 16: Monte Carlo over
    `resamples` random patterns, p = (1 + #{as extreme}) / (1 + resamples) (Phipson & Smyth
    2010), never 0 and valid at any resample count. Ties with the observed value (within 100
    machine epsilons, relative) count as "as extreme", as scipy.stats.permutation_test does.

    clusters: when several differences share a seed, one label per difference; a sign pattern
    then flips every difference of a seed together (C seeds: 2^C patterns, n replaced by C
    above). Under H0 it is a seed's set of differences, not each difference, that is
    symmetric about 0: runs with one seed drew the same real data. Flipping them one by one
    treats 4 seeds x 2 learning rates as 8 independent pairs (smallest p 2/256) where 4 seeds
    can show no less than 2/16 = 0.125 (`sign_flip_floor`).

    Args:
      differences: finite per-seed differences a - b.
      statistic: "mean", "median", "iqm" or a callable (..., n) -> (...).
      alternative: "two-sided", "greater" (mean difference > 0) or "less".
      resamples, seed: of the Monte Carlo test (n > 16 only).
      clusters: optional labels (seeds) of the differences.

    Returns:
      The p-value; nan for no differences.
    """
    if alternative not in ("two-sided", "greater", "less"):
        raise field_error("alternative", alternative, "must be 'two-sided', 'greater' or 'less'")
    _check_resamples(resamples)
    d = _finite_1d(differences, "differences")
    n = d.size
    if n == 0:
        return float("nan")
    fn = _statistic(statistic)
    observed = _point(fn, d)
    tol = 100 * np.finfo(float).eps * max(abs(observed), 1.0)

    def extreme(t: np.ndarray) -> np.ndarray:
        if alternative == "two-sided":
            return np.abs(t) >= abs(observed) - tol
        if alternative == "greater":
            return t >= observed - tol
        return t <= observed + tol

    got = _cluster_index(clusters, n)
    index, n = (slice(None), n) if got is None else got      # n: the units whose signs flip
    if n <= EXACT_MAX:
        patterns = np.arange(2 ** n)[:, None] >> np.arange(n)[None, :] & 1
        signs = 1.0 - 2.0 * patterns                       # row 0: all +1 (the observed)
        return float(np.mean(extreme(fn(signs[:, index] * d))))
    rng = np.random.default_rng(seed)
    count = 0
    rows = _rows_per_block(d.size)
    for start in range(0, int(resamples), rows):
        m = min(rows, int(resamples) - start)
        signs = 1.0 - 2.0 * rng.integers(0, 2, size=(m, n))
        count += int(np.sum(extreme(fn(signs[:, index] * d))))
    return (1 + count) / (1 + int(resamples))


def _pvalues(pvalues) -> np.ndarray:
    p = np.ravel(np.asarray(pvalues, dtype=float))
    if np.any(np.isnan(p)) or np.any((p < 0) | (p > 1)):
        raise ConfigError("pvalues: got nan or values outside [0, 1]; must be in [0, 1]")
    return p


def _adjusted(pvalues, adjust) -> np.ndarray:
    """`adjust(p sorted ascending, m)` -> adjusted p-values in that order, put back in the input
    order (ties keep their input order)."""
    p = _pvalues(pvalues)
    order = np.argsort(p, kind="stable")
    out = np.empty(p.size)
    out[order] = adjust(p[order], p.size)
    return out


def holm(pvalues) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values: control of the family-wise error rate.

    With p_(1) <= ... <= p_(m) sorted, adjusted p_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)).
    Reject H_(i) at level alpha iff its adjusted p-value <= alpha. Valid under any dependence.

    Args:
      pvalues: m p-values in [0, 1].

    Returns:
      Array (m,) of adjusted p-values, in input order; monotone in the p-values, capped at 1.
    """
    return _adjusted(pvalues, lambda sorted_p, m: np.minimum(
        1.0, np.maximum.accumulate((m - np.arange(m)) * sorted_p)))


def benjamini_hochberg(pvalues) -> np.ndarray:
    """Benjamini-Hochberg (1995) adjusted p-values: control of the false discovery rate.

    With p_(1) <= ... <= p_(m) sorted, adjusted p_(i) = min_{j >= i} min(1, m p_(j) / j).
    Rejecting every hypothesis with adjusted p-value <= q keeps the expected fraction of false
    discoveries <= q for independent (or positively dependent) tests.

    Args:
      pvalues: m p-values in [0, 1].

    Returns:
      Array (m,) of adjusted p-values, in input order; monotone in the p-values, capped at 1.
    """
    def step_up(sorted_p, m):
        scaled = m * sorted_p / np.arange(1, m + 1)
        return np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])

    return _adjusted(pvalues, step_up)


# --------------------------------------------------------------------------------------------
# Rank correlation
# --------------------------------------------------------------------------------------------

class Correlation(NamedTuple):
    """A rank correlation: rho, its two-sided p-value and the number of pairs."""

    rho: float
    p: float
    n: int


def rank(values) -> np.ndarray:
    """Ranks 1..n of a 1-D array, ties given their average rank (scipy.stats.rankdata's
    "average"); +-inf rank like any other value."""
    x = np.ravel(np.asarray(values, dtype=float))
    order = np.argsort(x, kind="stable")
    ranks = np.empty(x.size)
    sorted_x = x[order]
    start = 0
    for end in range(1, x.size + 1):
        if end == x.size or sorted_x[end] != sorted_x[start]:
            ranks[order[start:end]] = 0.5 * (start + 1 + end)    # mean of ranks start+1..end
            start = end
    return ranks


def spearman(x, y) -> Correlation:
    """Spearman's rank correlation of paired values: Pearson's r of their average ranks, and
    the two-sided p-value of Student's t approximation, t = rho sqrt((n - 2) / (1 - rho^2))
    with n - 2 degrees of freedom (scipy.stats.spearmanr's). The p-value treats the pairs as
    independent draws. Pairs with a NaN are left out; +-inf counts as the extreme rank (a
    diverged run scored as the worst). rho is NaN below 3 pairs or when either side is
    constant.
    """
    a = np.ravel(np.asarray(x, dtype=float))
    b = np.ravel(np.asarray(y, dtype=float))
    if a.shape != b.shape:
        raise ConfigError(f"spearman: got {a.size} and {b.size} values; must be pairs")
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    n = int(a.size)
    if n < 3:
        return Correlation(math.nan, math.nan, n)
    ra, rb = rank(a) - (n + 1) / 2, rank(b) - (n + 1) / 2
    denom = math.sqrt(float(ra @ ra) * float(rb @ rb))
    if denom == 0:
        return Correlation(math.nan, math.nan, n)
    rho = max(-1.0, min(1.0, float(ra @ rb) / denom))
    if abs(rho) == 1.0:
        return Correlation(rho, 0.0, n)
    t = rho * math.sqrt((n - 2) / (1.0 - rho * rho))
    return Correlation(rho, min(1.0, 2.0 * t_cdf(-abs(t), n - 2)), n)


# --------------------------------------------------------------------------------------------
# Performance profiles
# --------------------------------------------------------------------------------------------

def performance_profile(values_by_config: Mapping[str, Sequence[float]], taus, *,
                        higher_is_better: bool, level: float = 0.95,
                        resamples: int = RESAMPLES, seed: int = 0) -> dict[str, Profile]:
    """Performance profiles (rliable's score distributions, Agarwal et al. 2021), with bands.

    For configuration c with runs x_1..x_n and threshold tau,
        F_c(tau) = (1/n) sum_i 1(x_i > tau)      (higher_is_better; 1(x_i < tau) otherwise),
    the fraction of runs better than tau. The band is a pointwise percentile bootstrap over
    runs: with resample counts w (B, n) and the indicator matrix I_ik = 1(x_i better than
    tau_k), the replicates are w I / n (B, len(taus)). Each configuration is resampled with
    `seed` itself, so its band does not depend on which other configurations are passed.

    Args:
      values_by_config: configuration name -> its runs' values (+-inf allowed, e.g. diverged
        runs as the worst value; nan not).
      taus: thresholds (1-D).
      higher_is_better: the metric's direction.
      level, resamples, seed: of the bootstrap band.

    Returns:
      name -> Profile(taus, fraction, ci_low, ci_high, n), in input order; all nan for a
      configuration with no runs.
    """
    _check_level(level)
    _check_resamples(resamples)
    t = np.ravel(np.asarray(taus, dtype=float))
    alpha = 1.0 - level
    out = {}
    for name, values in values_by_config.items():
        x = _no_nan(np.ravel(np.asarray(values, dtype=float)), str(name))
        n = x.size
        if n == 0:
            nans = np.full(t.shape, np.nan)
            out[name] = Profile(t, nans, nans.copy(), nans.copy(), 0)
            continue
        better = ((x[:, None] > t[None, :]) if higher_is_better
                  else (x[:, None] < t[None, :])).astype(float)
        fraction = better.mean(axis=0)
        reps = np.empty((int(resamples), t.size))
        for start, idx in _index_blocks(np.random.default_rng(seed), n, int(resamples),
                                        width=max(n, t.size)):
            reps[start:start + idx.shape[0]] = _counts(idx, n) @ better / n
        lo, hi = np.quantile(reps, [alpha / 2, 1.0 - alpha / 2], axis=0)
        out[name] = Profile(t, fraction, lo, hi, n)
    return out


def fmt(x: float, digits: int = 4) -> str:
    """A number for a table: `digits` significant figures, 'nan' for missing."""
    if x is None or not math.isfinite(x):
        return "nan"
    return f"{x:.{digits}g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"
