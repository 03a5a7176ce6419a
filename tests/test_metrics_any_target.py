"""Metrics for any target (precision, recall, density, coverage, energy distance) against
independent references: a float64 SciPy transcription of the `prdc` package's definitions
(and the package itself where it is installed: the `dev` extra), closed forms, and samples
whose answer is known (identical laws, disjoint ones, a dropped mode)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import spatial, stats
from scipy.special import erf

import gan_jax as gj
from gan_jax.components import metrics, toy_targets

N = 1000


def reference_prdc(real, fake, k):
    """Kynkaanniemi et al. and Naeem et al. in float64, as prdc.compute_prdc computes them."""
    rr = spatial.distance.cdist(real, real)
    ff = spatial.distance.cdist(fake, fake)
    rf = spatial.distance.cdist(real, fake)
    r_real = np.sort(rr, 1)[:, k]          # k-th nearest other point (the point itself first)
    r_fake = np.sort(ff, 1)[:, k]
    inside = rf < r_real[:, None]
    return dict(precision=inside.any(0).mean(), recall=(rf < r_fake[None]).any(1).mean(),
                density=inside.sum(0).mean() / k, coverage=(rf.min(1) < r_real).mean())


@functools.cache
def ours():
    """Every metric at k = 3 and 5 in one compiled program, vmapped over pairs of samples."""
    fns = {f"{name}_k{k}": functools.partial(getattr(metrics, name), k=k)
           for name in ("precision", "recall", "density", "coverage") for k in (3, 5)}
    fns["energy_distance"] = metrics.energy_distance
    return jax.jit(jax.vmap(lambda r, f: {n: fn(r, f) for n, fn in fns.items()}))


def cases():
    """Named (real, fake) pairs of N points each, float32."""
    rng = np.random.default_rng(0)
    g = lambda *shape: rng.standard_normal(shape)
    eight = toy_targets.TOYS["ffjord_8gaussians"][0]
    real8 = np.asarray(eight.sample(jax.random.key(1), N))
    fake8 = np.asarray(eight.sample(jax.random.key(2), 2 * N))
    dropped = fake8[np.argmin(((fake8[:, None] - eight.means[None]) ** 2).sum(-1), 1) != 0][:N]
    out = {"same law": (g(N, 2), g(N, 2)),
           "disjoint": (g(N, 2), g(N, 2) + 20.0),
           "shifted": (g(N, 2), g(N, 2) + 1.0),
           "a mode dropped": (real8, dropped),
           "collapsed": (g(N, 2), np.zeros((N, 2)) + 0.3)}
    return {k: (np.float32(a), np.float32(b)) for k, (a, b) in out.items()}


@pytest.fixture(scope="module")
def computed():
    c = cases()
    real = np.stack([a for a, _ in c.values()])
    fake = np.stack([b for _, b in c.values()])
    got = jax.tree.map(np.asarray, ours()(real, fake))
    return c, {name: {m: float(v[i]) for m, v in got.items()} for i, name in enumerate(c)}


def test_prdc_agree_with_a_float64_reference_everywhere(computed):
    c, got = computed
    for name, (real, fake) in c.items():
        for k in (3, 5):
            ref = reference_prdc(np.float64(real), np.float64(fake), k)
            for m, v in ref.items():
                # float32 distances may move a point across a ball's boundary: a few in N.
                tol = 3 / N * (1 if m != "density" else 3)
                assert abs(got[name][f"{m}_k{k}"] - v) <= tol, (name, m, k, got[name], v)


def test_prdc_known_answers(computed):
    _, got = computed
    same, apart, dropped = got["same law"], got["disjoint"], got["a mode dropped"]
    for m in ("precision_k3", "recall_k3", "coverage_k5"):
        assert 0.9 < same[m] <= 1.0, (m, same[m])
    assert 0.9 < same["density_k5"] < 1.1
    for m in ("precision", "recall", "density", "coverage"):
        assert apart[f"{m}_k3"] == 0.0 and apart[f"{m}_k5"] == 0.0
    # One of 8 equal modes dropped: every generated sample is real-looking, but the real
    # sample's eighth in the dropped mode is neither recalled nor covered (binomial sd of the
    # real mode's share at N = 1000: 0.0105).
    assert dropped["precision_k3"] > 0.95
    for m in ("recall_k3", "coverage_k5"):
        assert abs(dropped[m] - 7 / 8) < 0.05, (m, dropped[m])
    collapsed = got["collapsed"]    # a point mass: its k-NN radii are 0, so it recalls nothing
    assert collapsed["recall_k3"] == 0.0 and collapsed["precision_k3"] == 1.0
    assert collapsed["coverage_k5"] < 0.02     # the few real balls around the one point


def test_prdc_agree_with_the_prdc_package(computed):
    prdc = pytest.importorskip("prdc")
    c, got = computed
    for name, (real, fake) in c.items():
        ref = prdc.compute_prdc(real, fake, nearest_k=5)
        for m, v in ref.items():
            assert abs(got[name][f"{m}_k5"] - v) <= 9 / N, (name, m, got[name], v)


def test_energy_distance_against_a_float64_reference_and_scipy(computed):
    c, got = computed
    for name, (real, fake) in c.items():
        x, y = np.float64(real), np.float64(fake)
        n, m = len(x), len(y)
        sxy = spatial.distance.cdist(x, y).sum()
        sxx, syy = spatial.distance.cdist(x, x).sum(), spatial.distance.cdist(y, y).sum()
        u = 2 * sxy / (n * m) - sxx / (n * (n - 1)) - syy / (m * (m - 1))
        np.testing.assert_allclose(got[name]["energy_distance"], u, rtol=2e-4, atol=2e-5)
        # In 1-D SciPy's energy_distance is the square root of the V-statistic, 2 E|X - Y|
        # - E|X - X'| - E|Y - Y'| with the diagonal terms in: the reference above, checked.
        v1 = (2 * np.abs(x[:, :1] - y[:, 0]).mean() - np.abs(x[:, :1] - x[:, 0]).mean()
              - np.abs(y[:, :1] - y[:, 0]).mean())
        np.testing.assert_allclose(stats.energy_distance(x[:, 0], y[:, 0]) ** 2, v1, rtol=1e-9)
    assert got["disjoint"]["energy_distance"] > 30.0


def test_energy_distance_is_unbiased_for_two_gaussians():
    """1-D N(0, 1) against N(mu, 1): 2 E|N(mu, 2)| - 2 E|N(0, 2)|, a closed form; the mean
    over 16 pairs of 200-point samples is within 4 standard errors of it, and for mu = 0 (the
    law equal) likewise within 4 standard errors of 0."""
    def folded_mean(mu, var):
        s = np.sqrt(var)
        return s * np.sqrt(2 / np.pi) * np.exp(-mu**2 / (2 * var)) + mu * erf(mu / np.sqrt(2 * var))

    f = jax.jit(jax.vmap(metrics.energy_distance))
    for mu in (0.0, 0.5):
        exact = 2 * folded_mean(mu, 2.0) - 2 * folded_mean(0.0, 2.0)
        kx, ky = jax.random.split(jax.random.key(int(mu * 10)))
        x = jax.random.normal(kx, (16, 200, 1))
        y = jax.random.normal(ky, (16, 200, 1)) + mu
        d = np.asarray(f(x, y), np.float64)
        assert abs(d.mean() - exact) < 4 * d.std(ddof=1) / 4, (mu, d.mean(), exact)


def test_registered_for_any_target_and_recorded_by_training():
    """Built in as extra metrics: a run on a target without modes records them (and no mode
    metric); k beyond the sample is refused."""
    names = ["precision_k3", "recall_k3", "density_k5", "coverage_k5", "energy_distance"]
    cfg = gj.make_config(dict(data="ffjord_moons", generator="mlp", discriminator="mlp",
                              g_width=8, g_depth=1, d_width=8, d_depth=1, steps=20,
                              log_every=10, batch_size=16, eval_batch=32, history_samples=32,
                              eval_samples=64, mmd_samples=0, extra_metrics=names))
    out = gj.run_batch([cfg] * 2, [0, 1])
    for name in names:
        v = out.final[name]
        assert v.shape == (2,) and np.all(np.isfinite(v)) and np.all(v >= 0), (name, v)
    assert "modes_captured" not in out.final and "hq_fraction" not in out.final
    with pytest.raises(gj.ConfigError, match="k: got 10; needs 1 <= k < the sample size 8"):
        metrics.precision(jnp.zeros((8, 2)), jnp.zeros((8, 2)), k=10)
    with pytest.raises(gj.ConfigError, match="history_samples: got 8; must be at least 11 for "
                                             "the extra metric 'coverage_k10'"):
        gj.make_config(dict(data="ffjord_moons", generator="mlp", discriminator="mlp",
                            history_samples=8, extra_metrics=["coverage_k10"]))
