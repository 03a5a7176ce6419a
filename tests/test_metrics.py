"""Metrics: mode coverage, quality and histogram divergences, sliced W1, MMD, in-graph."""

import functools
import math

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gan_jax import config
from gan_jax.components import data, metrics
from gan_jax.engine import programs as engine
from gan_jax.config import ConfigError

# A tiny 2-D run: one compiled program, shared with tests/test_plots.py (same static part).
# 64 samples per evaluation: short sorting networks, a faster compilation; nothing checked on
# these runs depends on the sample sizes.
TINY_2D = dict(data="ring_2d", generator="mlp", discriminator="mlp", g_width=16, d_width=16,
               g_depth=1, d_depth=1, latent_dim=2, optimizer="adam", lr_g=1e-3, lr_d=1e-3,
               d_updates=1, batch_size=32, steps=20, log_every=10, eval_batch=64,
               history_samples=64, eval_samples=64)
# Runs of TINY_2D keep this many final samples, in every test that runs it, so that the
# metrics tests, the plot fixture and plot's re-run share one compiled program.
TINY_2D_SAMPLES = 50

NEW_KEYS = {"modes_captured", "hq_fraction", "reverse_kl", "mode_js", "sliced_w1", "mmd2"}
SEED_KEYS = {"w1", "left", "right", "mode_balance", "real_mean", "real_std", "fake_mean",
             "fake_std"}


def reference_mode_metrics(means, stds, weights, x, threshold=3.0, min_count=1):
    """Loops in float64, as PacGAN's MetricLogger maps points to modes."""
    k = len(means)
    hq_counts, hist = np.zeros(k), np.zeros(k)
    for point in x:
        dist = [math.sqrt(np.sum((point - means[j]) ** 2) / stds[j] ** 2) for j in range(k)]
        j = int(np.argmin(dist))
        hist[j] += 1
        if dist[j] < threshold:
            hq_counts[j] += 1
    p = hist / len(x)
    kl = sum(pk * math.log(pk / wk) for pk, wk in zip(p, weights) if pk > 0)
    m = (p + weights) / 2
    js = 0.5 * sum(pk * math.log(pk / mk) for pk, mk in zip(p, m) if pk > 0) \
        + 0.5 * sum(wk * math.log(wk / mk) for wk, mk in zip(weights, m))
    return dict(modes_captured=int(np.sum(hq_counts >= min_count)),
                hq_fraction=hq_counts.sum() / len(x), reverse_kl=kl, mode_js=js)


# Targets are hashable by identity: one compiled program per (target, options, shape), not an
# eager dispatch (and compilation) per operation.
RING = data.ring_2d()


@functools.partial(jax.jit, static_argnums=0, static_argnames=("hq_threshold", "min_count"))
def mode_metrics(target, x, **options):
    return metrics.mode_metrics(target, x, **options)


# ----------------------------------------------------------------------------- mode metrics

def test_points_at_chosen_standardised_distances():
    ring = RING                                 # std 0.01
    mu = ring.means
    x = np.stack([mu[0],                                    # at a mode: high-quality
                  mu[1] + [0.029, 0.0],                     # 2.9 stds: high-quality
                  mu[2] + [0.0, 0.031],                     # 3.1 stds: low quality
                  mu[2] + [0.0, -0.02],                     # mode 2 again, 2 stds
                  [0.0, 0.0]])                              # the centre: low quality
    out = mode_metrics(ring, jnp.asarray(x, jnp.float32))
    assert int(out["modes_captured"]) == 3
    np.testing.assert_allclose(out["hq_fraction"], 3 / 5)
    nearest, hq = jax.jit(lambda x: metrics.mode_assignment(ring, x))(
        jnp.asarray(x[:4], jnp.float32))
    np.testing.assert_array_equal(nearest, [0, 1, 2, 2])
    np.testing.assert_array_equal(hq, [True, True, False, True])
    # Thresholds are options: at 3.5 stds the 3.1-std point counts; min_count=2 keeps mode 2 only.
    wide = mode_metrics(ring, jnp.asarray(x, jnp.float32), hq_threshold=3.5)
    np.testing.assert_allclose(wide["hq_fraction"], 4 / 5)
    assert int(mode_metrics(ring, jnp.asarray(x, jnp.float32), hq_threshold=3.5,
                            min_count=2)["modes_captured"]) == 1


def test_nearest_mode_is_by_standardised_distance():
    # x = 1 is 1 unit from a narrow mode at 0 (10 stds) and 2 units from a wide one at 3 (1 std).
    target = data.mixture_1d([0.0, 3.0], [0.1, 2.0], [0.5, 0.5])
    nearest, hq = metrics.mode_assignment(target, jnp.asarray([[1.0]]))
    assert int(nearest[0]) == 1 and bool(hq[0])


@pytest.mark.parametrize("m", [1, 2, 4, 8])
def test_collapse_onto_m_of_k_equal_modes(m):
    ring = RING
    x = np.repeat(ring.means[:m], 400 // m, axis=0)     # 400 samples for every m: one program
    out = mode_metrics(ring, jnp.asarray(x, jnp.float32))
    assert int(out["modes_captured"]) == m
    np.testing.assert_allclose(out["hq_fraction"], 1.0)
    # p uniform on m of 8 modes: KL(p || uniform) = log(8 / m); JS in closed form.
    np.testing.assert_allclose(out["reverse_kl"], math.log(8 / m), rtol=1e-6, atol=1e-7)
    # JS = (KL(p || mix) + KL(w || mix)) / 2, mix = (1/m + 1/8) / 2 on the m modes, 1/16 off.
    js = 0.5 * math.log(16 / (8 + m)) + 0.5 * ((m / 8) * math.log(2 * m / (8 + m))
                                               + (8 - m) / 8 * math.log(2))
    np.testing.assert_allclose(out["mode_js"], js, rtol=1e-5, atol=1e-7)
    assert float(out["mode_js"]) <= math.log(2)


def test_low_quality_samples_enter_the_histogram_by_nearest_mode():
    ring = RING
    # Half the samples on mode 0, half far out beyond mode 4 (nearest: 4, low quality).
    x = np.concatenate([np.repeat(ring.means[:1], 200, 0), np.repeat([[-3.0, 0.0]], 200, 0)])
    out = mode_metrics(ring, jnp.asarray(x, jnp.float32))
    assert int(out["modes_captured"]) == 1
    np.testing.assert_allclose(out["hq_fraction"], 0.5)
    np.testing.assert_allclose(out["reverse_kl"], math.log(4), rtol=1e-6)


UNEQUAL = data.GaussianMixture([[0, 0], [1, 0], [0, 2], [3, 3]], [0.02, 0.05, 0.1, 0.2],
                               [0.1, 0.2, 0.3, 0.4])
unequal_mode_metrics = jax.jit(lambda x: metrics.mode_metrics(UNEQUAL, x, min_count=2))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), spread=st.floats(0.005, 0.2))
def test_mode_metrics_match_a_reference_loop(seed, spread):
    target = UNEQUAL
    rng = np.random.default_rng(seed)
    # Samples around a random subset of modes, some near, some far.
    centres = target.means[rng.integers(0, 4, size=200) % rng.integers(1, 5)]
    x = (centres + rng.normal(size=(200, 2)) * spread * rng.uniform(0, 3, size=(200, 1)))
    x = x.astype(np.float32)
    got = unequal_mode_metrics(jnp.asarray(x))
    want = reference_mode_metrics(target.means, target.stds, target.weights,
                                  x.astype(np.float64), min_count=2)
    assert int(got["modes_captured"]) == want["modes_captured"]
    np.testing.assert_allclose(got["hq_fraction"], want["hq_fraction"], atol=1e-6)
    np.testing.assert_allclose(got["reverse_kl"], want["reverse_kl"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["mode_js"], want["mode_js"], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("target,hq", [
    pytest.param(data.ring_2d(), 1 - math.exp(-4.5), id="ring"),   # P(chi_2 < 3): 0.98889
    pytest.param(data.grid_2d(), 1 - math.exp(-4.5), id="grid",    # ring's check, 25 modes
                 marks=pytest.mark.slow),
    pytest.param(data.bimodal_1d(), math.erf(3 / math.sqrt(2)),    # P(|N(0,1)| < 3): 0.99730
                 id="bimodal")])
def test_the_target_itself_scores_as_the_chi_distribution_says(target, hq):
    n = 20_000
    out = jax.jit(lambda key: metrics.mode_metrics(target, target.sample(key, n)))(
        jax.random.key(0))
    assert int(out["modes_captured"]) == target.num_modes
    # Binomial sd of hq_fraction <= 0.0008 at n = 20000: 5 sds.
    assert abs(float(out["hq_fraction"]) - hq) < 5 * math.sqrt(hq * (1 - hq) / n)
    # Multinomial noise only: E KL ~ (K - 1) / (2 n).
    assert float(out["reverse_kl"]) < 5 * (target.num_modes - 1) / (2 * n)


def test_uniform_noise_fools_modes_but_not_quality():
    # The chance levels docs/mode_collapse.md quotes: a uniform spread over the grid's square
    # "captures" most modes with a near-uniform histogram, and almost no high-quality sample.
    grid = data.grid_2d()
    out = jax.jit(lambda key: metrics.mode_metrics(
        grid, jax.random.uniform(key, (2500, 2), minval=-5.0, maxval=5.0)))(jax.random.key(0))
    # Each mode: Poisson(2500 * pi 0.15^2 / 100 = 1.77) high-quality samples, P(>= 1) = 0.83.
    assert 16 <= int(out["modes_captured"]) <= 24
    assert float(out["hq_fraction"]) < 0.03
    assert float(out["reverse_kl"]) < 0.02


# ----------------------------------------------------------------------------- sliced W1

_sliced_w1 = jax.jit(metrics.sliced_w1)
_w1_1d = jax.jit(metrics.w1_1d)


@settings(max_examples=30, deadline=None)
@given(x=hnp.arrays(np.float32, 37, elements=st.floats(-1e3, 1e3, width=32)),
       y=hnp.arrays(np.float32, 37, elements=st.floats(-1e3, 1e3, width=32)),
       num=st.integers(1, 9))
def test_sliced_w1_in_1d_is_the_exact_sorted_w1(x, y, num):
    u = metrics.projection_directions(1, num)
    got = _sliced_w1(jnp.asarray(x)[:, None], jnp.asarray(y)[:, None], u)
    want = np.mean(np.abs(np.sort(x.astype(np.float64)) - np.sort(y.astype(np.float64))))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(got, _w1_1d(jnp.asarray(x), jnp.asarray(y)), rtol=1e-6,
                               atol=1e-6)


def test_sliced_w1_of_a_translated_sample_in_2d():
    # Projections of x + v are those of x shifted by <u, v>: W1 = |<u, v>| on every direction,
    # whatever the sample and its size (64 points: short sorts, fast compilation).
    x = jax.random.normal(jax.random.key(0), (64, 2))
    v = jnp.asarray([0.3, -1.2])
    sliced = jax.jit(metrics.sliced_w1)      # one program per number of directions
    for num in (1, 8):
        u = metrics.projection_directions(2, num)
        want = np.mean(np.abs(u.astype(np.float64) @ np.asarray(v, np.float64)))
        np.testing.assert_allclose(sliced(x, x + v, u), want, rtol=1e-5)
        np.testing.assert_allclose(sliced(x, x, u), 0.0)
    # With evenly spaced angles the mean over directions of |<u, v>| approaches the circle's
    # average, 2 |v| / pi.
    u = metrics.projection_directions(2, 64)
    np.testing.assert_allclose(sliced(x, x + v, u),
                               2 * float(jnp.linalg.norm(v)) / math.pi, rtol=1e-3)


@pytest.mark.parametrize("dim,num", [(1, 5), (2, 8), (3, 16), (5, 4)])
def test_projection_directions_are_fixed_unit_vectors(dim, num):
    u = metrics.projection_directions(dim, num)
    assert u.shape == ((1, 1) if dim == 1 else (num, dim)) and u.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(u, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(u, metrics.projection_directions.__wrapped__(dim, num))
    assert len({tuple(np.round(row, 6)) for row in u}) == len(u)


def test_sliced_w1_needs_equal_sizes():
    with pytest.raises(ValueError, match="equal-size"):
        metrics.sliced_w1(jnp.zeros((3, 2)), jnp.zeros((4, 2)), metrics.projection_directions(2))


# ----------------------------------------------------------------------------- MMD

def reference_mmd2(x, y, h):
    def k(a, b):
        return np.exp(-np.sum((a[:, None] - b[None]) ** 2, -1) / (2 * h * h))
    n, m = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    return ((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
            - 2 * k(x, y).mean())


@pytest.mark.parametrize("dim,m", [(1, 45), (2, 45), (3, 45), (2, 60)])
def test_mmd2_is_the_unbiased_estimate(dim, m):
    rng = np.random.default_rng(dim)
    x = rng.normal(size=(60, dim))
    y = rng.normal(size=(m, dim)) * 1.5 + 0.5
    got = jax.jit(metrics.mmd2, static_argnums=2)(jnp.asarray(x, jnp.float32),
                                                  jnp.asarray(y, jnp.float32), 0.8)
    np.testing.assert_allclose(got, reference_mmd2(x, y, 0.8), rtol=1e-4, atol=1e-6)


def test_mmd2_separates_collapse_from_the_target():
    ring = RING
    h = metrics.default_bandwidth(ring)
    np.testing.assert_allclose(h, math.sqrt(0.5 + 1e-4))
    collapsed = jnp.asarray(np.repeat(ring.means[:2], 500, 0), jnp.float32)

    @jax.jit
    def both(collapsed):
        real = ring.sample(jax.random.key(0), 1000)
        same = ring.sample(jax.random.key(1), 1000)
        return metrics.mmd2(real, same, h), metrics.mmd2(real, collapsed, h)

    near_zero, apart = both(collapsed)
    assert abs(float(near_zero)) < 0.005
    assert float(apart) > 0.1


# ----------------------------------------------------------------------------- sample_metrics

def test_sample_metrics_keeps_the_1d_keys_and_values():
    target = data.bimodal_1d()
    # 256 samples: each value below is checked against its definition on the same sample,
    # which holds at any size (and 128 samples per mode leave neither mode uncaptured).
    real, fake = jax.jit(lambda k0, k1: (target.sample(k0, 256),
                                         target.sample(k1, 256) * 0.7 + 0.1))(
        jax.random.key(0), jax.random.key(1))
    out = jax.jit(lambda r, f: metrics.sample_metrics(target, r, f))(real, fake)
    assert set(out) == SEED_KEYS | NEW_KEYS
    r, f = np.asarray(real[:, 0], np.float64), np.asarray(fake[:, 0], np.float64)
    np.testing.assert_allclose(out["w1"], np.mean(np.abs(np.sort(r) - np.sort(f))), rtol=1e-5)
    left = np.mean(f < 0)
    np.testing.assert_allclose(out["left"], left)
    np.testing.assert_allclose(out["right"], 1 - left)
    np.testing.assert_allclose(out["mode_balance"], min(left, 1 - left) / max(left, 1 - left),
                               rtol=1e-6)
    np.testing.assert_allclose(out["fake_std"], f.std(), rtol=1e-5)
    np.testing.assert_allclose(out["real_mean"], r.mean(), rtol=1e-4, atol=1e-6)
    assert float(out["sliced_w1"]) == float(out["w1"])
    assert int(out["modes_captured"]) == 2


def test_sample_metrics_in_2d_and_its_options():
    ring = RING
    real = np.asarray(jax.jit(lambda key: ring.sample(key, 200))(jax.random.key(0)))
    fake = np.repeat(ring.means[:2], 100, 0).astype(np.float32)
    out = jax.jit(lambda r, f: metrics.sample_metrics(ring, r, f))(real, fake)
    assert set(out) == NEW_KEYS
    assert int(out["modes_captured"]) == 2
    # mmd2 on min(N, mmd_samples) points (default 1000 > 200: all); with an explicit bandwidth.
    h = metrics.default_bandwidth(ring)
    mmd2 = jax.jit(metrics.mmd2, static_argnums=2)
    np.testing.assert_allclose(out["mmd2"], mmd2(real, fake, h), rtol=1e-6)
    small = jax.jit(lambda r, f: metrics.sample_metrics(
        ring, r, f, mmd_samples=100, mmd_bandwidth=0.3, num_projections=3))(real, fake)
    np.testing.assert_allclose(small["mmd2"], mmd2(real[:100], fake[:100], 0.3), rtol=1e-6)
    np.testing.assert_allclose(
        small["sliced_w1"],
        jax.jit(metrics.sliced_w1)(real, fake, metrics.projection_directions(2, 3)), rtol=1e-6)


def test_a_generator_of_the_wrong_dimension_fails_at_trace_time():
    ring = data.ring_2d()
    real = jnp.zeros((10, 2))
    traced = jax.jit(lambda f: metrics.sample_metrics(ring, real, f))
    with pytest.raises(ConfigError, match=r"generated samples: got shape \(10, 3\)"):
        traced.trace(jax.ShapeDtypeStruct((10, 3), jnp.float32))   # tracing only, no compile


@pytest.mark.parametrize("option,value", [("hq_threshold", 0.0), ("hq_threshold", float("nan")),
                                          ("min_count", 0), ("num_projections", 0),
                                          ("mmd_samples", 1), ("mmd_bandwidth", -1.0),
                                          ("min_count", 1.5)])
def test_bad_metric_options(option, value):
    ring = data.ring_2d()
    with pytest.raises(ConfigError, match=f"^{option}: got"):
        metrics.sample_metrics(ring, jnp.zeros((4, 2)), jnp.zeros((4, 2)), **{option: value})


def test_metrics_in_every_history_row_and_the_final_record():
    cfg = config.make_config(TINY_2D)
    out = engine.run_batch([cfg, cfg.replace(lr_g=3e-3)], [0, 1], keep_samples=TINY_2D_SAMPLES)
    num_logs = config.static_part(cfg).num_logs
    for key in NEW_KEYS:
        assert out.history[key].shape == (2, num_logs), key
        assert out.final[key].shape == (2,), key
        assert np.all(np.isfinite(out.final[key])), key
    assert np.all((0 <= out.history["modes_captured"]) & (out.history["modes_captured"] <= 8))
    assert np.all((0 <= out.final["hq_fraction"]) & (out.final["hq_fraction"] <= 1))
    assert np.all(out.final["reverse_kl"] >= -1e-6)


def test_the_experiment_file_expands_to_320_valid_runs_in_10_programs():
    import itertools
    import pathlib
    import tomllib

    path = pathlib.Path(__file__).parent.parent / "experiments" / "mode_collapse_2d.toml"
    spec = tomllib.loads(path.read_text())
    assert set(spec) == {"name", "seeds", "base", "grid"}
    keys = list(spec["grid"])
    cfgs = [config.make_config({**spec["base"], **{f: v for k, v in zip(keys, combo)
                                                   for f in k.split("+")}})
            for combo in itertools.product(*spec["grid"].values())]
    assert len(cfgs) * spec["seeds"] == 320
    assert len({config.static_part(c) for c in cfgs}) == 10
    assert {c.data for c in cfgs} == {"ring_2d", "grid_2d"}
    assert all(c.lr_g == c.lr_d for c in cfgs) and all(c.eval_samples == 2500 for c in cfgs)
