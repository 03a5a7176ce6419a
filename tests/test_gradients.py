"""Autodiff gradients against the seed's finite differences, for every loss and family."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import config
from gan_jax.training import gradcheck, train
from gan_jax.components import losses
import seed_reference as seed

FAMILIES = [("linear", "logistic"), ("piecewise", "logistic"), ("mlp", "mlp"),
            ("linear", "mlp"), ("mlp", "logistic")]


def _objectives(generator, discriminator, loss_name):
    """The D objective (loss + its penalties) and the G objective at fixed batches, float64."""
    cfg = config.make_config(dict(generator=generator, discriminator=discriminator,
                                  loss=loss_name, activation="tanh", g_width=8, d_width=8,
                                  r1_weight=0.5 if loss_name == "hinge" else 0.0,
                                  r2_weight=0.25 if loss_name == "lsgan" else 0.0))
    static = config.static_part(cfg)
    hp = config.traced_part(cfg)
    parts = train.make_parts(static)
    key = jax.random.key(1)
    k = jax.random.split(key, 5)
    real = parts.target.sample(k[0], static.batch_size).astype(jnp.float64)
    z = jax.random.normal(k[1], (static.batch_size, 1), jnp.float64)
    g_params = jax.tree.map(lambda p: p.astype(jnp.float64), parts.generator.init(k[2]))
    d_params = jax.tree.map(lambda p: p.astype(jnp.float64), parts.discriminator.init(k[3]))
    hp = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), hp)
    d_obj = train.make_d_objective(static, parts, hp)
    fake = parts.generator.apply(g_params, z)
    u = jax.random.uniform(k[4], (static.batch_size,), jnp.float64)
    d_fn = lambda dp: d_obj(dp, real, fake, u)
    real_logits = parts.discriminator.apply(d_params, real)     # read by relativistic losses
    g_fn = lambda gp: parts.loss(hp).generator(
        parts.discriminator.apply(d_params, parts.generator.apply(gp, z)), real_logits)
    return d_fn, d_params, g_fn, g_params


def _grid():
    """Every loss x family pair; the default run checks each loss once and each family pair
    at least once (a Latin diagonal), the slow run the whole grid."""
    cases = []
    for i, (loss_name, families) in enumerate(itertools.product(sorted(losses.LOSSES),
                                                                FAMILIES)):
        on_diagonal = FAMILIES.index(families) == (i // len(FAMILIES)) % len(FAMILIES)
        marks = () if on_diagonal else (pytest.mark.slow,)
        cases.append(pytest.param(loss_name, families, marks=marks))
    return cases


@pytest.mark.parametrize("loss_name,families", _grid())
def test_autodiff_matches_finite_differences(loss_name, families):
    with jax.enable_x64(True):
        d_fn, d_params, g_fn, g_params = _objectives(*families, loss_name)
        assert gradcheck.max_grad_error(d_fn, d_params, h=1e-5) < 1e-6
        assert gradcheck.max_grad_error(g_fn, g_params, h=1e-5) < 1e-6


def test_library_checker_matches_seed_checker():
    """gradcheck.finite_difference_grad is the seed's finite_diff_grad, on the seed's objective."""
    rng = np.random.default_rng(5)
    x_real, z = list(rng.normal(size=64) * 2), list(rng.normal(size=64))
    theta = [0.15, 0.0]

    def seed_ld(phi):
        return seed.losses_on_batch(theta, phi, x_real, z, seed.generator_linear)[0]

    phi0 = [0.25, 0.0]
    expected = seed.finite_diff_grad(seed_ld, phi0)
    with jax.enable_x64(True):
        xr, xf = jnp.asarray(x_real)[:, None], (0.15 * jnp.asarray(z))[:, None]
        ld = lambda phi: -losses.nonsaturating_d_loss(phi[0] * xr[:, 0] + phi[1], phi[0] * xf[:, 0] + phi[1])
        got = gradcheck.finite_difference_grad(ld, jnp.asarray(phi0))
        auto = jax.grad(ld)(jnp.asarray(phi0))
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-8)
    np.testing.assert_allclose(np.asarray(auto), expected, rtol=1e-7)
