"""Targets (Gaussian mixtures in d dimensions, the 2-D presets) and the MLP families in 2-D."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gan_jax import config
from gan_jax.components import data, models
from gan_jax.config import ConfigError


# ----------------------------------------------------------------------------- presets

def test_ring_2d_is_pacgans_ring_with_8_distinct_modes():
    ring = data.ring_2d()
    # PacGAN's released config: means (cos(2 pi i / 8), sin(2 pi i / 8)), i = 0..7, std 0.01.
    expected = np.array([[math.cos(i * 2 * math.pi / 8), math.sin(i * 2 * math.pi / 8)]
                         for i in range(8)])
    np.testing.assert_allclose(ring.means, expected, atol=1e-15)
    np.testing.assert_array_equal(ring.stds, np.full(8, 0.01))
    np.testing.assert_allclose(ring.weights, np.full(8, 1 / 8))
    np.testing.assert_allclose(np.linalg.norm(ring.means, axis=1), 1.0)
    # 8 distinct modes: the closest two are neighbours on the circle, 2 sin(pi / 8) apart.
    dist = np.linalg.norm(ring.means[:, None] - ring.means[None], axis=-1)
    np.fill_diagonal(dist, np.inf)
    np.testing.assert_allclose(dist.min(), 2 * math.sin(math.pi / 8))
    assert len({tuple(np.round(m, 9)) for m in ring.means}) == 8


def test_the_linspace_ring_with_a_doubled_mode_is_refused():
    # The unrolled GAN's common copy: angles linspace(0, 2 pi, 8) put modes 0 and 7 together.
    thetas = np.linspace(0, 2 * np.pi, 8)
    means = np.stack([np.sin(thetas), np.cos(thetas)], axis=1)
    with pytest.raises(ConfigError, match="modes 0 and 7 coincide"):
        data.GaussianMixture(means, np.full(8, 0.01), np.full(8, 1 / 8))


def test_grid_2d_is_pacgans_grid():
    grid = data.grid_2d()
    expected = np.array(list(itertools.product(range(-4, 5, 2), range(-4, 5, 2))), float)
    np.testing.assert_array_equal(grid.means, expected)
    np.testing.assert_array_equal(grid.stds, np.full(25, 0.05))
    np.testing.assert_allclose(grid.weights, np.full(25, 1 / 25))
    assert grid.num_modes == 25 and grid.dim == 2


def test_presets_follow_the_config():
    ring = data.make_target(config.make_config(dict(
        data="ring_2d", generator="mlp", discriminator="mlp", data_radius=2.0, data_std=0.02)))
    np.testing.assert_allclose(np.linalg.norm(ring.means, axis=1), 2.0)
    np.testing.assert_array_equal(ring.stds, np.full(8, 0.02))
    grid = data.make_target(config.make_config(dict(
        data="grid_2d", generator="mlp", discriminator="mlp", data_std=0.1)))
    np.testing.assert_array_equal(grid.stds, np.full(25, 0.1))
    np.testing.assert_array_equal(grid.means, data.grid_2d().means)


def test_analytic_moments_of_the_presets():
    ring = data.ring_2d()
    np.testing.assert_allclose(ring.mean, [0, 0], atol=1e-15)
    np.testing.assert_allclose(ring.std, np.sqrt(0.5 + 0.01**2) * np.ones(2))
    grid = data.grid_2d()
    np.testing.assert_allclose(grid.std, np.sqrt(8 + 0.05**2) * np.ones(2))


@pytest.mark.parametrize("target", [data.ring_2d(), data.grid_2d()], ids=["ring", "grid"])
def test_samples_match_the_mixture(target):
    n = 20_000
    x = np.asarray(jax.jit(target.sample, static_argnums=1)(jax.random.key(0), n), np.float64)
    assert x.shape == (n, 2) and x.dtype == np.float64
    # Nearest mode by distance: every mode, each with frequency 1/K (binomial sd, 5 sigma).
    sq = np.sum((x[:, None] - target.means[None]) ** 2, axis=-1)
    nearest = sq.argmin(1)
    freq = np.bincount(nearest, minlength=target.num_modes) / n
    k = target.num_modes
    assert np.all(np.abs(freq - 1 / k) < 5 * math.sqrt((1 / k) * (1 - 1 / k) / n))
    # Offsets from the nearest mean are N(0, std^2 I): per-coordinate sd within 2%.
    offsets = x - target.means[nearest]
    np.testing.assert_allclose(offsets.std(0), target.stds[0], rtol=0.02)
    np.testing.assert_allclose(x.mean(0), target.mean, atol=5 * target.std.max() / math.sqrt(n))


# ----------------------------------------------------------------------------- d dimensions

def test_log_prob_in_three_dimensions_against_numpy():
    rng = np.random.default_rng(1)
    means = rng.normal(size=(4, 3))
    stds = np.array([0.3, 0.5, 1.0, 2.0])
    weights = np.array([0.1, 0.2, 0.3, 0.4])
    target = data.GaussianMixture(means, stds, weights)
    assert (target.dim, target.num_modes) == (3, 4)
    x = rng.normal(size=(50, 3))
    sq = np.sum((x[:, None] - means[None]) ** 2, axis=-1)
    dens = np.sum(weights * np.exp(-0.5 * sq / stds**2) / (2 * np.pi * stds**2) ** 1.5, axis=1)
    # One program each (not an eager compilation per operation).
    np.testing.assert_allclose(np.asarray(jax.jit(target.log_prob)(jnp.asarray(x, jnp.float32))),
                               np.log(dens), rtol=1e-5, atol=1e-5)
    assert jax.eval_shape(lambda key: target.sample(key, 7), jax.random.key(0)).shape == (7, 3)


@settings(max_examples=40, deadline=None)
@given(k=st.integers(1, 6), d=st.integers(1, 4), seed=st.integers(0, 2**31 - 1),
       break_what=st.sampled_from([None, "std", "weight_sum", "weight_sign", "stds_shape"]))
def test_validation_accepts_exactly_the_valid_mixtures(k, d, seed, break_what):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(k, d)) * 3
    stds = rng.uniform(0.05, 2.0, size=k)
    weights = rng.dirichlet(np.ones(k)) * 0.98 + 0.02 / k   # every weight positive
    field = {"std": "stds", "stds_shape": "stds"}.get(break_what, "weights")
    if break_what == "std":
        stds[rng.integers(k)] *= -1
    elif break_what == "stds_shape":
        stds = np.append(stds, 1.0)
    elif break_what == "weight_sum":
        weights = weights * 1.01
    elif break_what == "weight_sign":
        weights[rng.integers(k)] = 0.0
    if break_what is None:
        target = data.GaussianMixture(means, stds, weights)
        assert (target.num_modes, target.dim) == (k, d)
        np.testing.assert_allclose(target.weights.sum(), 1.0)
    else:
        with pytest.raises(ConfigError, match=f"^{field}: "):
            data.GaussianMixture(means, stds, weights)


# ----------------------------------------------------------------------------- bad input

BAD_MIXTURES = [
    (dict(means=[[0, 0], [1, 1]], stds=[0.1], weights=[0.5, 0.5]), "stds", "one value per mode"),
    (dict(means=[[0, 0], [1, 1]], stds=[0.1, 0.1], weights=[1.0]), "weights", "one value per mode"),
    (dict(means=[[0, 0], [1, 1]], stds=[[0.1, 0.1]], weights=[0.5, 0.5]), "stds", "one value"),
    (dict(means=[[0, 0], [1, 1]], stds=[0.1, 0.0], weights=[0.5, 0.5]), "stds", "positive"),
    (dict(means=[[0, 0], [1, 1]], stds=[0.1, -1.0], weights=[0.5, 0.5]), "stds", "positive"),
    (dict(means=[[0, 0], [1, 1]], stds=[0.1, np.nan], weights=[0.5, 0.5]), "stds", "positive"),
    (dict(means=[[0, 0], [1, 1]], stds=[0.1, 0.1], weights=[0.5, 0.6]), "weights", "sum to 1"),
    (dict(means=[[0, 0], [1, 1]], stds=[0.1, 0.1], weights=[1.0, 0.0]), "weights", "positive"),
    (dict(means=[[0, 0], [1, 1]], stds=[0.1, 0.1], weights=[1.5, -0.5]), "weights", "positive"),
    (dict(means=[[0, 0], [0, 0]], stds=[0.1, 0.1], weights=[0.5, 0.5]), "means", "coincide"),
    (dict(means=[[0, np.inf]], stds=[0.1], weights=[1.0]), "means", "finite"),
    (dict(means=np.zeros((0, 2)), stds=[], weights=[]), "means", "non-empty"),
]


@pytest.mark.parametrize("kwargs,field,rule", BAD_MIXTURES)
def test_bad_mixtures_fail_with_a_message_naming_the_field(kwargs, field, rule):
    with pytest.raises(ConfigError, match=rf"^{field}: got .*{rule}"):
        data.GaussianMixture(**kwargs)


@pytest.mark.parametrize("make,field", [
    (lambda: data.ring_2d(radius=0.0), "data_radius"),
    (lambda: data.ring_2d(num_modes=1), "num_modes"),
    (lambda: data.ring_2d(std=-0.01), "stds"),
    (lambda: data.grid_2d(side=0), "side"),
    (lambda: data.grid_2d(spacing=-2.0), "spacing"),
])
def test_bad_preset_arguments(make, field):
    with pytest.raises(ConfigError, match=f"^{field}: "):
        make()


def test_samples_of_the_wrong_dimension_are_refused():
    ring = data.ring_2d()
    ring.check_samples(jnp.zeros((5, 2)))
    with pytest.raises(ConfigError, match=r"generator output: got shape \(5, 3\); a 2-D target"):
        ring.check_samples(jnp.zeros((5, 3)), "generator output")
    with pytest.raises(ConfigError, match="shape"):
        ring.check_samples(jnp.zeros((5,)))


# ----------------------------------------------------------------------------- 2-D families

# The same check for every activation: relu and tanh by default, all of them with -m slow.
@pytest.mark.parametrize("activation", [
    a if a in ("relu", "tanh") else pytest.param(a, marks=pytest.mark.slow)
    for a in sorted(models.ACTIVATIONS)])
def test_mlp_families_in_2d(activation):
    cfg = config.make_config(dict(data="grid_2d", generator="mlp", discriminator="mlp",
                                  latent_dim=5, g_width=12, g_depth=3, d_width=7, d_depth=1,
                                  activation=activation))
    gen, disc = models.make_generator(cfg), models.make_discriminator(cfg)
    g_params, d_params = gen.init(jax.random.key(0)), disc.init(jax.random.key(1))
    z = jax.random.normal(jax.random.key(2), (9, 5))
    x = jax.jit(gen.apply)(g_params, z)
    assert x.shape == (9, 2) and bool(jnp.all(jnp.isfinite(x)))
    data.make_target(cfg).check_samples(x)
    logits = jax.jit(disc.apply)(d_params, x)
    assert logits.shape == (9,)
    # depth hidden layers of width, then a linear layer: 5->12->12->12->2 and 2->7->1.
    assert models.num_params(cfg, "generator") == (5 * 12 + 12) + 2 * (12 * 12 + 12) + (12 * 2 + 2)
    assert models.num_params(cfg, "discriminator") == (2 * 7 + 7) + (7 + 1)
    # The generator maps different z to different points (it is not constant at init).
    assert float(jnp.std(x)) > 1e-3


def test_latent_dim_defaults_to_the_data_dimension():
    cfg = config.make_config(dict(data="ring_2d", generator="mlp", discriminator="mlp"))
    assert models.latent_dim(cfg) == 2


@pytest.mark.parametrize("values,field", [
    (dict(data="ring_2d", generator="linear", discriminator="mlp"), "generator"),
    (dict(data="ring_2d", generator="mlp", discriminator="logistic"), "discriminator"),
    (dict(data="grid_2d", generator="mlp", discriminator="mlp", data_radius=1.0), "data_radius"),
    (dict(data="ring_2d", generator="mlp", discriminator="mlp", data_std=0.0), "data_std"),
])
def test_configs_that_cannot_fit_a_2d_target_fail_at_load(values, field):
    with pytest.raises(ConfigError, match=f"^{field}: "):
        config.make_config(values)
