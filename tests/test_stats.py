"""gan_jax.report.stats: bootstrap intervals, IQM, success rates, paired comparisons, tests, profiles.

Expected values are closed forms, exact counts or hand computations written out in the tests;
Monte Carlo checks state their tolerance in Monte Carlo standard errors.
"""

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gan_jax.report import stats
from gan_jax.core.errors import ConfigError

Z975 = 1.959963984540054


# ---------------------------------------------------------------- bootstrap intervals


def test_percentile_interval_of_mean_matches_normal_theory_for_large_n():
    x = np.random.default_rng(1).normal(3.0, 2.0, size=2000)
    se = x.std(ddof=1) / math.sqrt(x.size)
    lo, hi = stats.bootstrap_interval(x, "mean")
    # An endpoint's Monte Carlo error at B = 10_000 is about 0.03 se; the plug-in sd differs
    # from s by sqrt(1999/2000) and the skewness of x-bar is negligible: 0.1 se is generous.
    assert lo == pytest.approx(x.mean() - Z975 * se, abs=0.1 * se)
    assert hi == pytest.approx(x.mean() + Z975 * se, abs=0.1 * se)


def test_bootstrap_replicates_of_mean_have_the_plug_in_standard_error():
    # Ideal bootstrap: var*(x-bar*) = sum (x_i - x-bar)^2 / n^2 exactly.
    x = np.random.default_rng(2).gamma(2.0, size=30)
    reps = stats.bootstrap_replicates(x, "mean", resamples=20_000, seed=3)
    plug_in = x.std(ddof=0) / math.sqrt(x.size)
    # sd of a sample sd from B replicates is about sd / sqrt(2B) = 0.005 sd; allow 4 of those.
    assert reps.std() == pytest.approx(plug_in, rel=0.02)
    assert reps.mean() == pytest.approx(x.mean(), abs=4 * plug_in / math.sqrt(20_000))


def test_bca_shifts_a_right_skewed_mean_to_the_right_towards_the_exact_interval():
    # Exponential data: the mean's sampling distribution is right-skewed, the jackknife
    # acceleration is positive and BCa moves both endpoints right of the percentile ones. The
    # exact interval for an exponential mean is [2n x-bar / chi2_{.975, 2n}, 2n x-bar / chi2_{.025,
    # 2n}] (chi-square quantiles by Wilson-Hilferty, relative error ~1e-4 at 400 df).
    x = np.random.default_rng(4).exponential(size=200)
    n = x.size
    d = x - x.mean()
    accel = stats._acceleration(stats._jackknife(x, stats._statistic("mean"), "mean"))
    assert accel == pytest.approx(np.sum(d ** 3) / (6 * np.sum(d ** 2) ** 1.5), rel=1e-10)
    assert accel > 0
    perc = stats.bootstrap_interval(x, "mean", method="percentile")
    bca = stats.bootstrap_interval(x, "mean", method="bca")
    assert bca[0] > perc[0] and bca[1] > perc[1]

    def chi2(p, k):
        z = stats._norm_ppf(p)
        return k * (1 - 2 / (9 * k) + z * math.sqrt(2 / (9 * k))) ** 3

    exact = (2 * n * x.mean() / chi2(0.975, 2 * n), 2 * n * x.mean() / chi2(0.025, 2 * n))
    assert abs(bca[0] - exact[0]) < abs(perc[0] - exact[0])
    assert abs(bca[1] - exact[1]) < abs(perc[1] - exact[1])


def test_bca_acceleration_of_a_general_statistic_uses_leave_one_out_values():
    x = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0])
    jack = stats._jackknife(x, stats._statistic("median"), "median")
    assert jack.tolist() == [np.median(np.delete(x, i)) for i in range(x.size)]


def test_same_seed_same_interval_and_other_seed_differs():
    x = np.random.default_rng(5).normal(size=25)
    for method in ("percentile", "bca"):
        for statistic in ("mean", "median", "iqm"):
            first = stats.bootstrap_interval(x, statistic, seed=7, method=method)
            assert stats.bootstrap_interval(x, statistic, seed=7, method=method) == first
    assert stats.bootstrap_interval(x, seed=8) != stats.bootstrap_interval(x, seed=7)


def test_bounded_fraction_interval_stays_in_bounds_where_t_does_not():
    fraction = [0.0, 0.0, 0.05, 0.85]              # a fraction in [0, 1] over 4 seeds
    t = stats.summarize(fraction, interval="t")
    assert t.ci_low < 0                            # Student t leaves [0, 1]
    for method in ("percentile", "bca"):
        lo, hi = stats.bootstrap_interval(fraction, method=method)
        assert 0.0 <= lo <= np.mean(fraction) <= hi <= 1.0
    boot = stats.summarize(fraction, interval="bootstrap", bounds=(0, 1))
    assert 0.0 <= boot.ci_low <= boot.ci_high <= 1.0
    clipped = stats.summarize(fraction, interval="t", bounds=(0, 1))
    assert clipped.ci_low == 0.0 and clipped.ci_high == t.ci_high


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12),
       st.sampled_from(["mean", "median", "iqm"]), st.sampled_from(["percentile", "bca"]))
def test_interval_of_bounded_values_stays_within_their_range(values, statistic, method):
    lo, hi = stats.bootstrap_interval(values, statistic, method=method, resamples=500)
    assert min(values) <= lo <= hi <= max(values)


def test_degenerate_samples():
    nan_pair = stats.bootstrap_interval([])
    assert all(math.isnan(v) for v in nan_pair)
    assert stats.bootstrap_interval([2.5]) == (2.5, 2.5)
    assert stats.bootstrap_interval([0.7] * 6, "median", method="bca") == (0.7, 0.7)
    with pytest.raises(ConfigError, match="non-finite"):
        stats.bootstrap_interval([1.0, float("nan")])
    with pytest.raises(ConfigError, match="statistic"):
        stats.bootstrap_interval([1.0, 2.0], "mode")
    with pytest.raises(ConfigError, match="level"):
        stats.bootstrap_interval([1.0, 2.0], level=95)


def test_callable_statistic_and_blocked_resampling():
    x = np.random.default_rng(6).normal(size=50)
    def trimmed_max(m):
        return np.sort(m, axis=-1)[..., -2]
    lo, hi = stats.bootstrap_interval(x, trimmed_max, resamples=2000)
    assert x.min() <= lo <= hi <= x.max()
    # Blocks much smaller than the resample count give the same replicates as a fixed seed does
    # whatever the block size: check the block loop fills every replicate.
    big = np.random.default_rng(7).normal(size=300_000)
    reps = stats.bootstrap_replicates(big, "mean", resamples=20, seed=0)
    assert reps.shape == (20,) and np.all(np.isfinite(reps)) and np.unique(reps).size == 20


# ---------------------------------------------------------------- IQM


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 10, 13, 101])
def test_iqm_is_the_mean_after_trimming_floor_n_over_4_from_each_end(n):
    x = np.random.default_rng(n).normal(size=n)
    k = n // 4
    assert stats.iqm(x) == pytest.approx(np.sort(x)[k:n - k].mean(), rel=1e-12)


def test_iqm_known_values():
    assert stats.iqm(np.arange(1, 11)) == 5.5                # n=10: drop 1,2 and 9,10
    assert stats.iqm([100.0, 1.0, 2.0, 3.0, -50.0]) == 2.0   # n=5: drop one from each end
    assert stats.iqm([1.0, 2.0, 3.0, 4.0]) == 2.5            # n=4: mean of 2, 3
    assert math.isnan(stats.iqm([]))


def test_iqm_refuses_nan_and_trims_infinities_like_any_value():
    # NumPy sorts nan last, where trimming would drop it silently: [1, 2, nan, 4] gave 3.0.
    with pytest.raises(ConfigError, match="1 nan value"):
        stats.iqm([1.0, 2.0, math.nan, 4.0])
    # A failed run as the worst value (+inf) is trimmed when it is in the top quarter.
    assert stats.iqm([1.0, 2.0, 3.0, math.inf]) == 2.5


# ---------------------------------------------------------------- summaries


def test_summarize_t_interval_unchanged_and_new_fields():
    x = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    s = stats.summarize(x, interval="t")
    half = stats.t_quantile(0.975, 4) * x.std(ddof=1) / math.sqrt(5)
    assert (s.ci_low, s.ci_high) == pytest.approx((x.mean() - half, x.mean() + half), rel=1e-12)
    assert s.interval == "t" and s.iqm == pytest.approx(np.mean([2.0, 4.0, 8.0]))
    assert (s.n, s.median, s.q25, s.q75) == (5, 4.0, 2.0, 8.0)
    b = stats.summarize(x, interval="bootstrap")
    assert b.interval == "bootstrap" and b == stats.summarize(x)       # the default
    assert (b.ci_low, b.ci_high) == stats.bootstrap_interval(x, "mean", seed=0)
    assert b == stats.summarize(x, interval="bootstrap")                # reproducible
    bca = stats.summarize(x, interval="bca")
    assert (bca.ci_low, bca.ci_high) == stats.bootstrap_interval(x, method="bca")


def test_summarize_drops_non_finite_and_handles_small_n():
    s = stats.summarize([1.0, float("nan"), float("inf"), 3.0], interval="bootstrap")
    assert s.n == 2 and s.mean == 2.0
    one = stats.summarize([4.0], interval="bootstrap")
    assert one.n == 1 and one.mean == 4.0 and math.isnan(one.ci_low) and math.isnan(one.std)
    empty = stats.summarize([])
    assert empty.n == 0 and math.isnan(empty.mean) and math.isnan(empty.iqm)
    with pytest.raises(ConfigError, match="outside bounds"):
        stats.summarize([0.5, 1.5], bounds=(0, 1))
    with pytest.raises(ConfigError, match="interval"):
        stats.summarize([0.5, 1.5], interval="wald")


def test_t_distribution_functions_unchanged():
    assert stats.t_quantile(0.975, 4) == pytest.approx(2.7764451051977987, abs=1e-9)
    assert stats.t_cdf(0.0, 3) == pytest.approx(0.5)
    assert stats.t_cdf(stats.t_quantile(0.9, 7), 7) == pytest.approx(0.9, abs=1e-10)
    assert stats._norm_ppf(0.975) == pytest.approx(Z975, abs=1e-11)


# ---------------------------------------------------------------- success rates


def test_wilson_interval_against_the_formula_and_all_successes():
    k, n = 7, 10
    p, z = k / n, Z975
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    est = stats.success_rate([True] * k + [False] * (n - k))
    assert est.value == 0.7 and est.n == 10 and est.method == "wilson"
    assert (est.ci_low, est.ci_high) == pytest.approx((center - half, center + half), abs=1e-10)
    every = stats.success_rate([1, 1, 1, 1])
    assert every.ci_high == 1.0 and every.ci_low == pytest.approx(4 / (4 + z * z), abs=1e-10)
    boot = stats.success_rate([1, 1, 1, 1], method="percentile")
    assert (boot.ci_low, boot.ci_high) == (1.0, 1.0)       # why Wilson is the default
    assert stats.success_rate([0, 0, 0]).ci_low == 0.0
    with pytest.raises(ConfigError, match="0/1"):
        stats.success_rate([0.5, 1.0])


# ---------------------------------------------------------------- comparisons


def test_paired_interval_much_narrower_than_unpaired_under_common_random_numbers():
    rng = np.random.default_rng(8)
    n, shift = 20, 0.5
    shared = rng.normal(0.0, 10.0, size=n)                 # per-seed component (CRN)
    a = shared + rng.normal(size=n)
    b = shared + shift + rng.normal(size=n)
    paired = stats.paired_difference(a, b)
    unpaired = stats.unpaired_difference(a, b)
    assert paired.value == pytest.approx(unpaired.value, rel=1e-12)      # same mean difference
    assert paired.n == 20 and unpaired.n == (20, 20)
    width_p = paired.ci_high - paired.ci_low
    width_u = unpaired.ci_high - unpaired.ci_low
    assert width_u > 3 * width_p
    assert paired.ci_high < 0 < unpaired.ci_high          # only pairing resolves b > a


def test_paired_difference_median_is_median_of_differences():
    a, b = [5.0, 1.0, 7.0, 3.0], [4.0, 4.0, 4.0, 4.0]
    est = stats.paired_difference(a, b, statistic="median")
    assert est.value == np.median([1.0, -3.0, 3.0, -1.0])
    with pytest.raises(ConfigError, match="one per seed"):
        stats.paired_difference([1.0, 2.0], [1.0])


def test_probability_of_improvement_paired_exact_count_with_ties():
    a = [1.0, 2.0, 3.0, 4.0, 5.0]
    b = [1.0, 3.0, 2.0, 5.0, 0.0]
    # higher better: tie, loss, win, loss, win -> (0.5 + 1 + 1) / 5
    up = stats.probability_of_improvement(a, b, higher_is_better=True, paired=True)
    assert up.value == pytest.approx(2.5 / 5) and up.n == 5
    down = stats.probability_of_improvement(a, b, higher_is_better=False, paired=True)
    assert down.value == pytest.approx(2.5 / 5)
    assert 0.0 <= up.ci_low <= up.value <= up.ci_high <= 1.0


def test_probability_of_improvement_unpaired_is_mann_whitney_with_ties():
    a = [1.0, 2.0, 2.0]
    b = [2.0, 0.0]
    # pairs (a, b): (1,2) loss, (1,0) win, (2,2) tie, (2,0) win, (2,2) tie, (2,0) win
    est = stats.probability_of_improvement(a, b, higher_is_better=True, paired=False)
    assert est.value == pytest.approx((3 + 2 * 0.5) / 6) and est.n == (3, 2)
    rev = stats.probability_of_improvement(a, b, higher_is_better=False, paired=False)
    assert rev.value == pytest.approx((1 + 2 * 0.5) / 6)
    # Brute force on random data, and the count-weighted bootstrap against explicit resamples.
    rng = np.random.default_rng(9)
    x, y = rng.integers(0, 5, size=7).astype(float), rng.integers(0, 5, size=6).astype(float)
    brute = np.mean([(xi > yj) + 0.5 * (xi == yj) for xi, yj in itertools.product(x, y)])
    est = stats.probability_of_improvement(x, y, higher_is_better=True, paired=False)
    assert est.value == pytest.approx(brute, rel=1e-12)
    assert est.ci_low <= est.value <= est.ci_high


def test_unpaired_bootstrap_of_poi_weights_each_resampled_pair():
    x, y = np.array([0.0, 1.0, 3.0]), np.array([2.0, 0.5])
    idx_x = np.array([[0, 0, 2], [1, 2, 2]])
    idx_y = np.array([[1, 1], [0, 1]])
    c = stats._better(x[:, None], y[None, :], True)
    via_counts = np.sum((stats._counts(idx_x, 3) @ c) * stats._counts(idx_y, 2), 1) / 6
    direct = [np.mean(stats._better(x[i][:, None], y[j][None, :], True))
              for i, j in zip(idx_x, idx_y)]
    np.testing.assert_allclose(via_counts, direct)


# ---------------------------------------------------------------- significance


def test_sign_flip_exact_by_hand():
    # d = (1, 2, 3): the 8 sign patterns give sums +-6, +-4, +-2, 0, 0; only +6 and -6 reach
    # |mean| >= 2: p = 2/8; one-sided "greater": 1/8; "less": 8/8.
    assert stats.sign_flip_pvalue([1.0, 2.0, 3.0]) == 0.25
    assert stats.sign_flip_pvalue([1.0, 2.0, 3.0], alternative="greater") == 0.125
    assert stats.sign_flip_pvalue([1.0, 2.0, 3.0], alternative="less") == 1.0
    # d = (1, 2, -0.5): sums +-3.5, +-2.5, +-1.5, +-0.5; |sum| >= 2.5 in 4 of 8 (2.5 itself tied).
    assert stats.sign_flip_pvalue([1.0, 2.0, -0.5]) == 0.5
    # Floating-point ties: with d = (0.1, 0.2, -0.3, 0.6) several patterns reach |sum| = 0.6
    # exactly in rational arithmetic (10 of 16) but not all do in floats (a naive >= finds 8).
    d = ["0.1", "0.2", "-0.3", "0.6"]
    fr = [Fraction(v) for v in d]
    exact = sum(abs(sum(s * f for s, f in zip(signs, fr))) >= abs(sum(fr))
                for signs in itertools.product([1, -1], repeat=4)) / 16
    assert exact == 0.625
    assert stats.sign_flip_pvalue([float(v) for v in d]) == exact
    assert math.isnan(stats.sign_flip_pvalue([]))


def test_sign_flip_monte_carlo_agrees_with_enumeration_above_16():
    d = np.random.default_rng(10).normal(0.4, 1.0, size=17)
    signs = 1.0 - 2.0 * (np.arange(2 ** 17)[:, None] >> np.arange(17) & 1)
    exact = np.mean(np.abs((signs * d).mean(1)) >= abs(d.mean()) - 1e-12)
    mc = stats.sign_flip_pvalue(d, resamples=100_000, seed=1)
    assert mc == pytest.approx(exact, abs=5 * math.sqrt(exact * (1 - exact) / 100_000) + 1e-5)
    assert stats.sign_flip_pvalue(d, seed=1) == mc                      # reproducible
    assert stats.sign_flip_pvalue(np.full(30, 1.0), resamples=999) == 1 / 1000   # never 0


def test_holm_and_benjamini_hochberg_by_hand():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted 0.005, 0.01, 0.03, 0.04; Holm: 4*.005=.02, 3*.01=.03, 2*.03=.06, max(.06, 1*.04)=.06
    np.testing.assert_allclose(stats.holm(p), [0.03, 0.06, 0.06, 0.02])
    # BH: m p / rank = .02, .02, .04, .04; running min from the top keeps them.
    np.testing.assert_allclose(stats.benjamini_hochberg(p), [0.02, 0.04, 0.04, 0.02])
    # BH step-up: 0.04 * 3 / 2 = 0.06 exceeds 0.05 * 3 / 3, so the rank-2 value drops to 0.05.
    np.testing.assert_allclose(stats.benjamini_hochberg([0.05, 0.04, 0.01]), [0.05, 0.05, 0.03])
    np.testing.assert_allclose(stats.holm([0.5, 0.9]), [1.0, 1.0])           # capped at 1
    np.testing.assert_allclose(stats.benjamini_hochberg([0.5, 0.9]), [0.9, 0.9])
    assert stats.holm([]).size == 0
    with pytest.raises(ConfigError):
        stats.holm([0.5, 1.5])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=20))
def test_adjusted_pvalues_are_monotone_capped_and_not_below_raw(p):
    raw = np.array(p)
    order = np.argsort(raw, kind="stable")
    for adjusted in (stats.holm(raw), stats.benjamini_hochberg(raw)):
        assert np.all(adjusted >= raw - 1e-15) and np.all(adjusted <= 1.0)
        assert np.all(np.diff(adjusted[order]) >= -1e-15)
    assert np.all(stats.holm(raw) >= stats.benjamini_hochberg(raw) - 1e-15)


# ---------------------------------------------------------------- performance profiles


def test_performance_profile_fractions_and_band():
    taus = [0.0, 1.0, 2.5, 4.0]
    prof = stats.performance_profile({"a": [1.0, 2.0, 3.0, 4.0], "b": [2.0, 2.0]}, taus,
                                     higher_is_better=True)
    assert list(prof) == ["a", "b"]
    np.testing.assert_array_equal(prof["a"].fraction, [1.0, 0.75, 0.5, 0.0])     # x > tau
    np.testing.assert_array_equal(prof["b"].fraction, [1.0, 1.0, 0.0, 0.0])
    assert prof["a"].n == 4
    for p in prof.values():
        assert np.all(p.ci_low <= p.fraction) and np.all(p.fraction <= p.ci_high)
        assert np.all(p.ci_low >= 0) and np.all(p.ci_high <= 1)
    low = stats.performance_profile({"a": [1.0, 2.0, 3.0, 4.0]}, taus, higher_is_better=False)
    np.testing.assert_array_equal(low["a"].fraction, [0.0, 0.0, 0.5, 0.75])      # x < tau
    # A config's band does not depend on the other configs passed.
    alone = stats.performance_profile({"b": [2.0, 2.0]}, taus, higher_is_better=True)
    np.testing.assert_array_equal(alone["b"].ci_low, prof["b"].ci_low)


def test_performance_profile_band_matches_explicit_resamples():
    x = np.random.default_rng(11).normal(size=15)
    taus = np.linspace(-2, 2, 9)
    prof = stats.performance_profile({"c": x}, taus, higher_is_better=True, resamples=400)
    idx = np.random.default_rng(0).integers(0, 15, size=(400, 15))
    reps = (x[idx][:, :, None] > taus).mean(axis=1)
    np.testing.assert_allclose(prof["c"].ci_low, np.quantile(reps, 0.025, axis=0))
    np.testing.assert_allclose(prof["c"].ci_high, np.quantile(reps, 0.975, axis=0))


# ---------------------------------------------------------------- seeds as clusters


def _clustered(seeds=4, per_seed=2, shift=0.3, seed=11):
    """Differences of per_seed pairs on each of `seeds` seeds, sharing a per-seed component."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(0.0, 1.0, seeds)
    d = np.array([shared[s] + shift + rng.normal(0, 0.1) for s in range(seeds)
                  for _ in range(per_seed)])
    return d, np.repeat(np.arange(seeds), per_seed)


def test_clustered_sign_flip_has_the_floor_of_its_seeds_not_of_its_pairs():
    d = np.full(8, 0.5)                                   # 4 seeds x 2 pairs, all positive
    clusters = np.repeat(np.arange(4), 2)
    assert stats.sign_flip_pvalue(d) == 2 / 2 ** 8        # pairs as independent: 0.0078
    assert stats.sign_flip_pvalue(d, clusters=clusters) == 0.125 == stats.sign_flip_floor(4)
    # Reference: flipping seeds together is the one-sample sign-flip test of the seeds' sums
    # (the mean of all pairs is their total over 8), here against scipy's exact enumeration.
    scipy_stats = pytest.importorskip("scipy.stats")
    d, clusters = _clustered(seeds=6, per_seed=3, shift=0.1)
    sums = np.bincount(clusters, weights=d)
    ours = stats.sign_flip_pvalue(d, clusters=clusters)
    assert ours == stats.sign_flip_pvalue(sums)
    ref = scipy_stats.permutation_test((sums,), lambda x, axis: np.mean(x, axis=axis),
                                       permutation_type="samples", n_resamples=np.inf,
                                       alternative="two-sided")
    assert ours == pytest.approx(ref.pvalue, abs=1e-12)
    # Labels that are all distinct are the plain test, bit for bit.
    assert stats.sign_flip_pvalue(d, clusters=np.arange(d.size)) == stats.sign_flip_pvalue(d)
    assert [stats.sign_flip_floor(n) for n in (3, 4, 5, 6)] == [0.25, 0.125, 0.0625, 0.03125]
    with pytest.raises(ConfigError, match="one label"):
        stats.sign_flip_pvalue(d, clusters=[0, 1])


def test_cluster_bootstrap_resamples_whole_seeds():
    d, clusters = _clustered(seeds=5, per_seed=3)
    reps = stats.cluster_bootstrap_replicates(d, clusters, resamples=2000, seed=4)
    # Equal clusters: the mean of resampled clusters is the bootstrap of the cluster means,
    # drawing the same indices.
    means = d.reshape(5, 3).mean(axis=1)
    np.testing.assert_allclose(reps, stats.bootstrap_replicates(means, resamples=2000, seed=4),
                               rtol=1e-12)
    # Unequal clusters (a diverged pair dropped): by hand, a replicate is the mean of every
    # value of the drawn clusters.
    keep = np.ones(d.size, bool)
    keep[4] = False
    x, c = d[keep], clusters[keep]
    reps = stats.cluster_bootstrap_replicates(x, c, resamples=50, seed=2)
    idx = np.random.default_rng(2).integers(0, 5, size=(50, 5))
    by_hand = [np.concatenate([x[c == k] for k in row]).mean() for row in idx]
    np.testing.assert_allclose(reps, by_hand, rtol=1e-12)
    with pytest.raises(ConfigError, match="equal size"):
        stats.cluster_bootstrap_replicates(x, c, "median", resamples=10)
    # A median over equal clusters, by hand.
    med = stats.cluster_bootstrap_replicates(d, clusters, "median", resamples=20, seed=3)
    idx = np.random.default_rng(3).integers(0, 5, size=(20, 5))
    grid = d.reshape(5, 3)
    np.testing.assert_allclose(med, [np.median(grid[row]) for row in idx])


def test_clustered_paired_interval_is_wider_and_counts_seeds():
    d, clusters = _clustered(seeds=4, per_seed=4)
    a, b = d, np.zeros_like(d)
    plain = stats.paired_difference(a, b)
    clustered = stats.paired_difference(a, b, clusters=clusters)
    assert plain.n == 16 and clustered.n == 4 and clustered.method == "cluster percentile"
    assert clustered.value == plain.value
    # Pairs of one seed are nearly copies (within-seed std 0.1, between 1): 16 pairs hold about
    # 4 units' information, so the honest width is about sqrt(16/4) * sqrt((3/4) / (15/16)) =
    # 1.8 times the pseudo-replicated one (the bootstrap's (n-1)/n factor at n = 4 and 16).
    assert clustered.ci_high - clustered.ci_low > 1.5 * (plain.ci_high - plain.ci_low)
    same = stats.paired_difference(a, b, clusters=np.arange(16))
    assert same == plain                                       # one pair per seed: unchanged


def test_paired_probability_of_improvement_does_not_collapse_when_one_side_always_wins():
    a, b = [0.1, 0.2, 0.1, 0.3], [1.0, 1.1, 1.2, 1.3]
    boot = stats.probability_of_improvement(a, b, higher_is_better=False, paired=True,
                                            method="percentile")
    assert (boot.ci_low, boot.ci_high) == (1.0, 1.0)          # certainty from 4 seeds
    wil = stats.probability_of_improvement(a, b, higher_is_better=False, paired=True)
    assert wil.method == "wilson" and wil.value == 1.0 and wil.ci_high == 1.0
    assert wil.ci_low == pytest.approx(0.5101, abs=1e-4)       # [0.51, 1], as success_rate
    assert (wil.ci_low, wil.ci_high) == stats.success_rate([1, 1, 1, 1])[1:3]
    # Reference: scipy's Wilson interval of 3 of 5 (no continuity correction).
    scipy_stats = pytest.importorskip("scipy.stats")
    x, y = [1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 1.0, 2.0, 3.0, 6.0]
    est = stats.probability_of_improvement(x, y, higher_is_better=True, paired=True)
    ci = scipy_stats.binomtest(3, 5).proportion_ci(0.95, method="wilson")
    np.testing.assert_allclose([est.ci_low, est.ci_high], [ci.low, ci.high], rtol=1e-9)
    # Clustered: n is the number of seeds.
    clustered = stats.probability_of_improvement(a * 2, b * 2, higher_is_better=False,
                                                 paired=True, clusters=[0, 1, 2, 3] * 2)
    assert clustered.n == 4 and clustered.ci_low == wil.ci_low


def test_wilson_against_statsmodels_if_installed():
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    for k, n in ((0, 4), (3, 4), (7, 16), (16, 16)):
        lo, hi = proportion.proportion_confint(k, n, alpha=0.05, method="wilson")
        got = stats.success_rate([1] * k + [0] * (n - k))
        np.testing.assert_allclose([got.ci_low, got.ci_high], [lo, hi], atol=1e-9)


def test_quoted_percentile_coverage_is_reproduced():
    # The captions quote bootstrap_coverage at 4,000 samples; 600 fresh ones (another seed,
    # 2,000 resamples) agree within 4 standard errors.
    for n, key in ((4, "c4"), (10, "c10")):
        quoted = stats.PERCENTILE_COVERAGE[key]
        got = stats.bootstrap_coverage(n, samples=600, resamples=2000, seed=1)
        assert abs(got - quoted) < 4 * math.sqrt(quoted * (1 - quoted) / 600)
        assert got < 0.93                                      # below the nominal 95%


def test_spearman_matches_scipy_with_ties_and_infinities():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    for n in (3, 5, 12, 40):
        x = rng.integers(0, 6, n).astype(float)          # ties
        y = 0.3 * x + rng.normal(size=n)
        y[0] = np.inf                                    # a failed run scored as the worst
        got = stats.spearman(x, y)
        ref = scipy_stats.spearmanr(x, y)
        assert got.n == n
        assert (got.rho, got.p) == pytest.approx((ref.statistic, ref.pvalue), rel=1e-9)
        assert np.array_equal(stats.rank(y), scipy_stats.rankdata(y))
    assert stats.spearman([1, 2, 3, 4], [2, 4, 6, 9]) == (1.0, 0.0, 4)
    assert math.isnan(stats.spearman([1, 2], [3, 4]).rho)          # too few pairs
    assert math.isnan(stats.spearman([1, 2, 3], [5, 5, 5]).rho)    # constant
    assert stats.spearman([1, 2, np.nan, 4], [1, 3, 2, 2]).n == 3  # NaN pairs left out
    with pytest.raises(ConfigError, match="must be pairs"):
        stats.spearman([1, 2, 3], [1, 2])
