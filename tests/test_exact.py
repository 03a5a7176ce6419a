"""Exact 1-D quantities: hand-derived values, float64 references and large samples.

Tolerances: identities and hand-derived values to 2e-5 (the float32 quadrature's accuracy,
measured against float64 references); comparisons with samples to a few standard errors.
"""

import functools
import math
import statistics

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st

from gan_jax.components import data, metrics, models
from gan_jax.analysis import exact
from gan_jax.config import ConfigError, make_config, static_part
from gan_jax.presets import SEED_CONFIGS
from shared_runs import SEED_SEEDS, seed_run

BIMODAL = data.bimodal_1d()
STD_NORMAL = data.mixture_1d([0.0], [1.0], [1.0])
TOL = 2e-5
SEED_LINEAR = (0.15, 0.0)
SEED_PIECEWISE = (0.35, -1.8, 0.35, 1.8)

def phi64(x):
    """The standard normal CDF in float64 (scipy's ndtr: 0.5 erfc(-x / sqrt 2), vectorised)."""
    return scipy.special.ndtr(np.asarray(x, np.float64))


def mixture_cdf64(target, x):
    return sum(w * phi64((x - m) / s)
               for m, s, w in zip(target.means[:, 0], target.stds, target.weights))


def linear_cdf64(theta, x):
    a, b = theta
    return phi64((x - b) / abs(a))


def w1_reference(cdf_g, target, lo=-14.0, hi=14.0, n=400_001):
    """int |F_g - F_data| by the trapezoid rule on a uniform float64 grid (error ~1e-9)."""
    x = np.linspace(lo, hi, n)
    return np.trapezoid(np.abs(cdf_g(x) - mixture_cdf64(target, x)), x)


def folded_normal_w1(dm, ds):
    """W1(N(m1, s1^2), N(m2, s2^2)) = E|dm + ds Z|, dm = m1 - m2, ds = s1 - s2."""
    ds = abs(ds)
    if ds == 0:
        return abs(dm)
    return (ds * math.sqrt(2 / math.pi) * math.exp(-dm**2 / (2 * ds**2))
            + dm * (1 - 2 * statistics.NormalDist().cdf(-dm / ds)))


# One compiled program per (family, target), computing every measure at once.
@functools.cache
def _quantities(family, target):
    def all_of(theta):
        pf = exact.pushforward(family, theta)
        return dict(w1=exact.w1(pf, target), js=exact.js(pf, target), kl=exact.kl(pf, target),
                    kl_data=exact.kl(pf, target, "data||g"),
                    v_star=exact.optimal_value(pf, target))
    return jax.jit(all_of)


def quantities(family, theta, target=BIMODAL):
    return {k: float(v) for k, v in _quantities(family, target)(jnp.asarray(theta, jnp.float32)).items()}


@functools.cache
def law(family):
    return jax.jit(lambda theta, x: (exact.cdf(exact.pushforward(family, theta), x),
                                     exact.quantile(exact.pushforward(family, theta), x)))


@functools.cache
def _gaps(family, target):
    """(theta, phi) -> (gap, V(D*), V(D), V(at the optimal logit)) for a logistic D."""
    def gaps(theta, phi):
        pf = exact.pushforward(family, theta)
        logit = lambda x_N: models.logistic_discriminator().apply(phi, x_N[:, None])  # noqa: E731
        return (exact.discriminator_gap(pf, target, logit), exact.optimal_value(pf, target),
                exact.gan_value(pf, target, logit),
                exact.gan_value(pf, target, lambda x: exact.optimal_logit(pf, target, x)))
    return jax.jit(gaps)


def gaps(family, theta, phi, target=BIMODAL):
    out = _gaps(family, target)(jnp.asarray(theta, jnp.float32), jnp.asarray(phi, jnp.float32))
    return tuple(float(v) for v in out)


slopes = st.floats(0.05, 3.0).flatmap(lambda a: st.sampled_from([a, -a]))
shifts = st.floats(-3.0, 3.0)


# ----------------------------------------------------------------------------- W1

@settings(max_examples=25, deadline=None)
@given(a=slopes, b=shifts)
def test_w1_of_two_gaussians_is_the_folded_normal_mean(a, b):
    # Where the two CDFs cross, |F_g - F_data| has a kink that falls between quadrature
    # nodes: the error grows with W1 (a = 2.80078125, b = 2: 2.5e-5 on 2.24), so the bound is
    # TOL absolute or TOL relative, whichever is larger.
    got = quantities("linear", [a, b], STD_NORMAL)["w1"]
    assert got == pytest.approx(folded_normal_w1(b, abs(a) - 1.0), abs=TOL, rel=TOL)


def test_w1_of_a_shift_is_the_shift_and_of_itself_zero():
    for b in (0.7, -2.5):
        assert quantities("linear", [1.0, b], STD_NORMAL)["w1"] == pytest.approx(abs(b), abs=TOL)
    for a in (1.0, -1.0):  # a negative slope gives the same law
        assert abs(quantities("linear", [a, 0.0], STD_NORMAL)["w1"]) < 1e-6


@pytest.mark.parametrize("family,theta", [
    ("linear", SEED_LINEAR), ("linear", (-0.7, 0.4)), ("piecewise", SEED_PIECEWISE),
    ("piecewise", (-0.3, 0.5, 1.2, -0.4)), ("piecewise", (0.5, 2.4, -0.5, -1.6))])
def test_w1_matches_a_float64_reference(family, theta):
    if family == "linear":
        cdf_g = functools.partial(linear_cdf64, theta)
    else:  # a rising piece holds P(lo <= z <= u), a falling one P(u <= z < hi)
        a_l, b_l, a_r, b_r = theta

        def cdf_g(x):
            left = phi64(np.minimum((x - b_l) / a_l, 0.0))
            left = left if a_l > 0 else 0.5 - left
            right = np.maximum(phi64((x - b_r) / a_r), 0.5) - 0.5
            right = right if a_r > 0 else 0.5 - right
            return left + right

    got = quantities(family, theta)["w1"]
    assert got == pytest.approx(w1_reference(cdf_g, BIMODAL), abs=TOL)


def test_piecewise_with_equal_pieces_is_the_linear_gaussian():
    x = jnp.linspace(-4.0, 4.0, 33)
    lin_cdf, _ = law("linear")(jnp.array([0.8, 0.3]), x)
    for theta in ((0.8, 0.3, 0.8, 0.3), (-0.8, 0.3, -0.8, 0.3)):
        pw_cdf, _ = law("piecewise")(jnp.array(theta), x)
        np.testing.assert_allclose(pw_cdf, lin_cdf, atol=1e-6)
        assert quantities("piecewise", theta)["w1"] == pytest.approx(
            quantities("linear", [0.8, 0.3])["w1"], abs=TOL)


@settings(max_examples=6, deadline=None)
@given(theta=st.tuples(slopes, shifts, slopes, shifts))
def test_piecewise_cdf_and_quantile_match_samples(theta):
    """Any signs and overlaps of the two pieces: the exact CDF against 2^16 samples."""
    theta = jnp.array(theta, jnp.float32)
    n = 2**16
    z = jax.random.normal(jax.random.key(0), (n, 1))
    x_sorted = np.sort(np.asarray(models.piecewise_generator().apply(theta, z))[:, 0])
    probe = jnp.asarray(x_sorted[[n // 10, n // 3, n // 2, 2 * n // 3, 9 * n // 10]])
    f, _ = law("piecewise")(theta, probe)
    empirical = np.searchsorted(x_sorted, np.asarray(probe), side="right") / n
    assert np.all(np.abs(np.asarray(f) - empirical) < 5 * np.sqrt(0.25 / n) + 1e-6)
    p = jnp.array([0.05, 0.3, 0.6, 0.95])
    _, q = law("piecewise")(theta, p)
    f_at_q, _ = law("piecewise")(theta, q)
    np.testing.assert_allclose(f_at_q, p, atol=1e-5)


def test_linear_quantile_is_closed_form():
    p = jnp.array([0.01, 0.2, 0.5, 0.9])
    _, q = law("linear")(jnp.array([-1.5, 0.5]), p)
    want = [0.5 + 1.5 * statistics.NormalDist().inv_cdf(float(v)) for v in p]
    np.testing.assert_allclose(q, want, atol=1e-5)


@pytest.mark.parametrize("family,theta", [("piecewise", (-0.3, 0.5, 1.2, -0.4))])
def test_w1_agrees_with_large_samples(family, theta):
    n = 2**19
    generator = models.make_generator(make_config({"generator": family}))

    @jax.jit    # one program rather than an eager dispatch (and compilation) per operation
    def two_sample_w1(theta, key):
        k_real, k_z = jax.random.split(key)
        fake = generator.apply(theta, jax.random.normal(k_z, (n, 1)))
        return metrics.w1_1d(BIMODAL.sample(k_real, n)[:, 0], fake[:, 0])

    empirical = float(two_sample_w1(jnp.array(theta), jax.random.key(1)))
    assert quantities(family, theta)["w1"] == pytest.approx(empirical, abs=5e-3)


# ----------------------------------------------------------------------------- JS and KL

def test_kl_of_gaussians_is_closed_form():
    a, b = 0.6, 0.8   # p_g = N(0.8, 0.36) against N(0, 1)
    got = quantities("linear", [a, b], STD_NORMAL)
    assert got["kl"] == pytest.approx(math.log(1 / a) + (a**2 + b**2) / 2 - 0.5, abs=TOL)
    assert got["kl_data"] == pytest.approx(math.log(a) + (1 + b**2) / (2 * a**2) - 0.5, abs=TOL)
    with pytest.raises(ConfigError, match="direction"):
        exact.kl(exact.pushforward("linear", jnp.array([a, b])), STD_NORMAL, "g|data")


def test_kl_is_infinite_where_one_law_misses_the_other():
    assert quantities("linear", [0.0, 0.5], STD_NORMAL)["kl"] == np.inf      # an atom
    seed = quantities("piecewise", SEED_PIECEWISE)              # nothing in (-1.8, 1.8)
    assert seed["kl_data"] == np.inf and np.isfinite(seed["kl"])


def test_js_identities_and_reference():
    def js(theta):
        return quantities("linear", theta, STD_NORMAL)["js"]

    assert abs(js([1.0, 0.0])) < 1e-6
    assert js([1.0, 60.0]) == pytest.approx(math.log(2), abs=1e-6)
    assert js([0.0, 0.3]) == pytest.approx(math.log(2), abs=1e-6)  # an atom
    # N(0.5, 0.64) against N(0, 1): float64 trapezoid on a fine grid.
    x = np.linspace(-14, 14, 400_001)
    p = np.exp(-0.5 * ((x - 0.5) / 0.8) ** 2) / (0.8 * math.sqrt(2 * math.pi))
    q = np.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)
    m = (p + q) / 2
    ref = 0.5 * np.trapezoid(p * np.log(p / m) + q * np.log(q / m), x)
    assert js([0.8, 0.5]) == pytest.approx(ref, abs=TOL)


# ----------------------------------------------------------------------------- optimal D

def test_optimal_value_is_2js_minus_log4_and_the_gap_vanishes_at_d_star():
    # p_data = N(0, 1), p_g = N(b, 1): log p_data - log p_g = -b x + b^2 / 2 is logistic.
    b = 0.9
    gap, v_star, v_best, v_at_star = gaps("linear", [1.0, b], [-b, b**2 / 2], STD_NORMAL)
    got = quantities("linear", [1.0, b], STD_NORMAL)
    assert v_star == pytest.approx(2 * got["js"] - math.log(4), abs=1e-6)
    assert v_best == pytest.approx(v_star, abs=TOL) and v_at_star == pytest.approx(v_star, abs=TOL)
    assert abs(gap) < TOL
    assert quantities("linear", [1.0, 0.0], STD_NORMAL)["v_star"] == pytest.approx(
        -math.log(4), abs=1e-6)


@pytest.mark.parametrize("theta", [SEED_PIECEWISE, (0.0, -2.0, 0.6, 1.5)])
def test_gap_is_the_objective_difference_and_non_negative(theta):
    for phi in ([0.25, 0.0], [-1.3, 0.4], [3.0, -2.0]):   # the second theta has an atom at -2
        gap, v_star, v, v_at_star = gaps("piecewise", theta, phi)
        assert gap >= 0
        assert gap == pytest.approx(v_star - v, abs=5e-5)
        assert v_at_star == pytest.approx(v_star, abs=TOL)


def test_training_history_records_the_gap_for_closed_form_families():
    # The seed's linear runs (16 seeds; a whole program, shared with tests/test_seed_repro.py).
    cfg = SEED_CONFIGS["linear"]
    out = seed_run("linear")
    gap = np.asarray(out.history["d_gap"])
    assert gap.shape == (len(SEED_SEEDS), static_part(cfg).num_logs)
    assert np.all(np.isfinite(gap)) and np.all(gap >= 0)
    # The last row is logged at the final state: the gap there, recomputed on its own.
    for run in range(len(SEED_SEEDS)):
        want, *_ = gaps("linear", out.state.g_params[run], out.state.d_params[run])
        assert gap[run, -1] == pytest.approx(want, abs=1e-6), run
    for other in (dict(loss="wgan"), dict(loss="hinge"), dict(generator="mlp")):
        assert not exact.records_d_gap(static_part(cfg.replace(g_init=None, **other)))


# ----------------------------------------------------------------------------- floors, estimates

def test_linear_floor_matches_a_float64_line_search():
    """By symmetry the best Gaussian is centred (b = 0); golden-section search on |a|."""
    x = np.linspace(-10, 10, 40_001)
    f_data = mixture_cdf64(BIMODAL, x)

    def w1_of_a(a):
        return np.trapezoid(np.abs(phi64(x / a) - f_data), x)

    lo, hi, g = 1.0, 3.0, (math.sqrt(5) - 1) / 2
    for _ in range(30):
        c, d = hi - g * (hi - lo), lo + g * (hi - lo)
        lo, hi = (lo, d) if w1_of_a(c) < w1_of_a(d) else (c, hi)
    a_star = (lo + hi) / 2
    floor = jax.jit(lambda key: exact.family_floor("linear", BIMODAL, key, starts=3,
                                                   steps=400))(jax.random.key(0))
    assert float(floor.value) == pytest.approx(w1_of_a(a_star), abs=TOL)
    assert abs(float(floor.params[0])) == pytest.approx(a_star, abs=2e-2)
    assert abs(float(floor.params[1])) < 2e-2
    assert floor.values.shape == (3,) and float(floor.value) == float(np.min(floor.values))


def test_estimate_w1_brackets_the_exact_value():
    theta = jnp.array([0.9, 0.2])

    @jax.jit
    def estimate(theta, key):
        z = jax.random.normal(key, (4, 2**14, 1))
        samples = jax.vmap(lambda z_N1: models.linear_generator().apply(theta, z_N1)[:, 0])(z)
        return exact.estimate_w1(samples, BIMODAL)

    est = estimate(theta, jax.random.key(3))
    exact_value = quantities("linear", theta)["w1"]
    assert 0 < float(est.error) < 0.05
    assert abs(float(est.value) - exact_value) <= float(est.error)


def test_families_without_a_closed_form_name_the_alternative():
    with pytest.raises(ConfigError, match="estimate_w1"):
        exact.pushforward("mlp", jnp.zeros(3))
    with pytest.raises(ConfigError, match="estimate_w1"):
        exact.family_floor(make_config({"generator": "mlp"}), BIMODAL, jax.random.key(0))
    with pytest.raises(ConfigError, match="objective"):
        exact.objective_fn("linear", BIMODAL, "kl")
    with pytest.raises(ConfigError, match="1-D"):
        exact.w1(exact.pushforward("linear", jnp.array([1.0, 0.0])), data.ring_2d())


def test_estimated_floor_improves_on_its_starts():
    cfg = make_config(dict(generator="mlp", g_width=8, g_depth=1))
    floor = jax.jit(lambda key: exact.estimated_floor(cfg, key, nodes=256, starts=2, steps=300,
                                                      lr=3e-2))(jax.random.key(0))
    assert floor.values.shape == (2,) and float(floor.value) == float(np.min(floor.values))
    assert float(floor.value) < 0.3   # an untrained MLP's output is near 0: W1 near 2


def test_cli_prints_exact_values_and_rejects_other_families(capsys):
    from gan_jax.commands.cli import main

    assert main(["exact", "--generator", "linear", "--theta", "1", "0", "--data-std", "1"]) == 0
    assert "W1" in capsys.readouterr().out
    assert main(["exact", "--generator", "mlp", "--theta", "1"]) == 2
    assert "estimate_w1" in capsys.readouterr().err
    assert main(["exact", "--generator", "piecewise", "--theta", "1", "0"]) == 2
