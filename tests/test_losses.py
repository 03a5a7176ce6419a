"""Losses against formulas written out in NumPy and against the seed notebook's own functions."""

import numpy as np
import jax
import jax.numpy as jnp
import pytest

from gan_jax.components import losses, models
import seed_reference as seed

RNG = np.random.default_rng(0)
REAL = RNG.normal(size=257) * 3.0
FAKE = RNG.normal(size=131) * 3.0 - 1.0


def np_sigmoid(s):
    return 1.0 / (1.0 + np.exp(-s))


# (d_loss, g_loss) written out from their definitions, minimise convention.
NUMPY_FORMULAS = {
    "nonsaturating": (lambda r, f: -np.mean(np.log(np_sigmoid(r))) - np.mean(np.log(1 - np_sigmoid(f))),
                      lambda f: -np.mean(np.log(np_sigmoid(f)))),
    "minimax": (lambda r, f: -np.mean(np.log(np_sigmoid(r))) - np.mean(np.log(1 - np_sigmoid(f))),
                lambda f: np.mean(np.log(1 - np_sigmoid(f)))),
    "lsgan": (lambda r, f: 0.5 * (np.mean((np_sigmoid(r) - 1) ** 2) + np.mean(np_sigmoid(f) ** 2)),
              lambda f: 0.5 * np.mean((np_sigmoid(f) - 1) ** 2)),
    "wgan": (lambda r, f: np.mean(f) - np.mean(r), lambda f: -np.mean(f)),
    "wgan_gp": (lambda r, f: np.mean(f) - np.mean(r), lambda f: -np.mean(f)),
    "hinge": (lambda r, f: np.mean(np.maximum(0, 1 - r)) + np.mean(np.maximum(0, 1 + f)),
              lambda f: -np.mean(f)),
}


# The relativistic losses (g_real): both terms read both samples' logits, paired by index,
# written from Jolicoeur-Martineau (2018)'s log-sigmoid definitions.
def _log_sig(s):
    return np.log(np_sigmoid(s))


RELATIVISTIC_FORMULAS = {
    "rsgan": (lambda r, f: -np.mean(_log_sig(r - f)), lambda f, r: -np.mean(_log_sig(f - r))),
    "ragan": (lambda r, f: -np.mean(_log_sig(r - f.mean())) - np.mean(np.log(1 - np_sigmoid(f - r.mean()))),
              lambda f, r: -np.mean(_log_sig(f - r.mean())) - np.mean(np.log(1 - np_sigmoid(r - f.mean())))),
    # R3GAN's released trainer: softplus(-(real - fake)) for D, softplus(-(fake - real)) for G.
    "rpgan": (lambda r, f: np.mean(np.log1p(np.exp(-(r - f)))),
              lambda f, r: np.mean(np.log1p(np.exp(-(f - r))))),
}


def test_registry_covers_every_loss():
    assert set(losses.LOSSES) == set(NUMPY_FORMULAS) | set(RELATIVISTIC_FORMULAS)
    assert {n for n, l in losses.LOSSES.items() if l.g_real} == set(RELATIVISTIC_FORMULAS)
    assert losses.LOSSES["wgan"].clip and not losses.LOSSES["wgan_gp"].clip


def test_a_loss_default_penalty_weight_switches_the_penalty_on():
    # WGAN-GP's weight 10 comes from its registry entry unless the configuration sets one.
    from gan_jax import config
    gp = config.make_config(dict(loss="wgan_gp"))
    assert gp.resolved_gp_weight == losses.LOSSES["wgan_gp"].gp_weight == 10.0
    assert config.static_part(gp).use_gp and config.traced_part(gp).gp_weight == 10.0
    assert not config.static_part(gp.replace(gp_weight=0.0)).use_gp
    assert not config.static_part(config.make_config(dict(loss="wgan"))).use_gp


@pytest.mark.parametrize("name", sorted(NUMPY_FORMULAS))
def test_loss_values_match_numpy(name):
    d_ref, g_ref = NUMPY_FORMULAS[name]
    loss = losses.get_loss(name)
    d = jax.jit(loss.d_loss)(jnp.asarray(REAL, jnp.float32), jnp.asarray(FAKE, jnp.float32))
    g = jax.jit(loss.g_loss)(jnp.asarray(FAKE, jnp.float32))
    np.testing.assert_allclose(float(d), d_ref(REAL, FAKE), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(g), g_ref(FAKE), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(RELATIVISTIC_FORMULAS))
def test_relativistic_loss_values_match_numpy(name):
    d_ref, g_ref = RELATIVISTIC_FORMULAS[name]
    real, fake = REAL[:131], FAKE
    loss = losses.get_loss(name)
    r32, f32 = jnp.asarray(real, jnp.float32), jnp.asarray(fake, jnp.float32)
    np.testing.assert_allclose(float(loss.d_loss(r32, f32)), d_ref(real, fake), rtol=1e-5)
    np.testing.assert_allclose(float(loss.generator(f32, r32)), g_ref(fake, real), rtol=1e-5)
    with pytest.raises(ValueError, match="needs the real logits"):
        loss.generator(f32)


def test_losses_that_read_real_logits_never_share_a_program_with_others():
    # A relativistic loss's generator step draws real samples, which would move every other
    # loss's draws: the static part says so, and picking across the two kinds is refused.
    from gan_jax import config
    ns, ra = (config.make_config(dict(loss=n)) for n in ("nonsaturating", "ragan"))
    assert config.static_part(ra).g_real and not config.static_part(ns).g_real
    assert config.shape_key(config.static_part(ra)) != config.shape_key(config.static_part(ns))
    with pytest.raises(ValueError, match="g_real"):
        losses.pick(("nonsaturating", "ragan"), 0)


@pytest.mark.parametrize("generator", ["linear", "piecewise"])
def test_losses_match_seed_functions(generator):
    """The seed's L_D, L_G (maximised) and LSGAN losses on the same arrays."""
    theta = [0.35, -1.8, 0.4, 1.7] if generator == "piecewise" else [0.7, 0.3]
    phi = [0.8, -0.1]
    gen_fn = seed.generator_piecewise if generator == "piecewise" else seed.generator_linear
    x_real = list(RNG.normal(size=200) * 2)
    z = list(RNG.normal(size=150))
    ld, lg_ns, lg_mm, _ = seed.losses_on_batch(theta, phi, x_real, z, gen_fn)
    ls_d, ls_g = seed.lsgan_losses(theta, phi, x_real, z, gen_fn)

    g = models.piecewise_generator() if generator == "piecewise" else models.linear_generator()
    d = models.logistic_discriminator()
    with jax.enable_x64(True):
        th, ph = jnp.asarray(theta), jnp.asarray(phi)
        r = d.apply(ph, jnp.asarray(x_real)[:, None])
        f = d.apply(ph, g.apply(th, jnp.asarray(z)[:, None]))
        np.testing.assert_allclose(-losses.nonsaturating_d_loss(r, f), ld, rtol=1e-10)
        np.testing.assert_allclose(-losses.nonsaturating_g_loss(f), lg_ns, rtol=1e-10)
        np.testing.assert_allclose(losses.minimax_g_loss(f), lg_mm, rtol=1e-10)
        np.testing.assert_allclose(losses.lsgan_d_loss(r, f), ls_d, rtol=1e-10)
        np.testing.assert_allclose(losses.lsgan_g_loss(f), ls_g, rtol=1e-10)


@pytest.mark.parametrize("name", sorted(NUMPY_FORMULAS))
def test_losses_finite_for_extreme_logits(name):
    extreme = jnp.asarray([-1e30, -1e4, -80.0, 0.0, 80.0, 1e4, 1e30], jnp.float32)
    loss = losses.get_loss(name)
    values = [loss.d_loss(extreme, extreme), loss.g_loss(extreme)]
    grads = [jax.grad(loss.d_loss, argnums=(0, 1))(extreme, extreme), jax.grad(loss.g_loss)(extreme)]
    for leaf in jax.tree.leaves((values, grads)):
        assert np.all(np.isfinite(np.asarray(leaf))), (name, leaf)


def test_saturation_derivatives_are_the_seeds():
    """d/ds of the per-sample G losses: minimax -sigmoid(s) ... as in the seed's table (sign aside)."""
    for p in (0.001, 0.01, 0.05, 0.1, 0.5, 0.9):
        s = jnp.log(p) - jnp.log1p(-p)
        mm = jax.grad(lambda t: losses.minimax_g_loss(t[None]))(s)
        ns = jax.grad(lambda t: losses.nonsaturating_g_loss(t[None]))(s)
        np.testing.assert_allclose(float(mm), -p, rtol=1e-4)          # d/ds log(1 - sigmoid(s))
        np.testing.assert_allclose(float(ns), -(1 - p), rtol=1e-4)    # d/ds -log sigmoid(s)


def _critic_linear(params, x_ND):
    return x_ND @ params["w"] + params["b"]


def test_gradient_penalty_of_a_linear_critic():
    """For D(x) = w.x + b the input gradient is w everywhere: GP = (|w| - 1)^2, R1 = |w|^2 / 2."""
    params = {"w": jnp.asarray([3.0, 4.0]), "b": jnp.asarray(0.5)}
    real = jnp.asarray(RNG.normal(size=(64, 2)), jnp.float32)
    fake = jnp.asarray(RNG.normal(size=(64, 2)), jnp.float32)
    u = jax.random.uniform(jax.random.key(0), (64,))
    gp = losses.gradient_penalty(_critic_linear, params, real, fake, u)
    np.testing.assert_allclose(float(gp), (5.0 - 1.0) ** 2, rtol=1e-5)
    np.testing.assert_allclose(float(losses.r1_penalty(_critic_linear, params, real)), 12.5, rtol=1e-6)
    np.testing.assert_allclose(float(losses.r2_penalty(_critic_linear, params, fake)), 12.5, rtol=1e-6)


def test_gradient_penalty_is_per_sample():
    """With D(x) = sum(x^2), grad at xhat is 2 xhat; the penalty averages per-sample norms."""
    d_apply = lambda p, x: jnp.sum(x**2, axis=-1) * p
    real = jnp.asarray(RNG.normal(size=(32, 2)), jnp.float32)
    fake = jnp.asarray(RNG.normal(size=(32, 2)), jnp.float32)
    u = jax.random.uniform(jax.random.key(3), (32, 1))
    xhat = u * real + (1 - u) * fake
    expected = np.mean((np.linalg.norm(2 * np.asarray(xhat), axis=1) - 1) ** 2)
    got = losses.gradient_penalty(d_apply, 1.0, real, fake, u)
    np.testing.assert_allclose(float(got), expected, rtol=1e-4)


def test_weight_clipping():
    clipped = losses.clip_params({"a": jnp.asarray([1.7, -3.0, 0.05])}, 0.1)
    np.testing.assert_allclose(np.asarray(clipped["a"]), [0.1, -0.1, 0.05])
