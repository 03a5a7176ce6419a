"""Local stability: the Dirac-GAN's known eigenvalues, verdicts, update maps, bad inputs."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import dirac_gan
from gan_jax.analysis import stability
from gan_jax.components import methods
from gan_jax.config import ConfigError
from gan_jax.analysis.seed_repro import SEED_CONFIGS

H = 0.1
ORIGIN = (np.zeros(1, np.float32), np.zeros(1, np.float32))   # (theta, psi)


def analyze_arm(arm, **kwargs):
    return stability.analyze(dirac_gan.dirac_game(arm), ORIGIN, lr_g=H, lr_d=H, **kwargs)


@pytest.mark.parametrize("loss", [pytest.param("minimax", marks=pytest.mark.slow),
                                  "nonsaturating"])      # the same J: one game by default
def test_unregularised_dirac_gan_circles(loss):
    """J = [[0, 1/2], [-1/2, 0]]: eigenvalues +-i/2; simultaneous |1 + i h/2| > 1."""
    a = analyze_arm(dirac_gan.Arm(loss, loss))
    np.testing.assert_allclose(np.sort_complex(a.eigenvalues), [-0.5j, 0.5j], atol=1e-6)
    assert a.flow == "cycles"
    assert a.rho_simultaneous == pytest.approx(math.sqrt(1 + H**2 / 4), abs=1e-6)
    assert a.simultaneous == "diverges"
    assert a.rho_alternating == pytest.approx(1.0, abs=1e-6) and a.alternating == "cycles"


@pytest.mark.parametrize("loss,omega", [("rpgan", 0.5), ("rsgan", 0.5), ("ragan", 1.0)])
def test_relativistic_dirac_gan_circles(loss, omega):
    # One real point at 0: rpgan's D term softplus(psi theta), G term softplus(-psi theta),
    # J = [[0, 1/2], [-1/2, 0]]; ragan's one-sample means double both terms.
    a = analyze_arm(dirac_gan.Arm(loss, loss))
    np.testing.assert_allclose(np.sort(a.eigenvalues.imag), [-omega, omega], atol=1e-6)
    np.testing.assert_allclose(a.eigenvalues.real, 0.0, atol=1e-6)


def test_r3gan_objective_converges_on_the_dirac_gan():
    # RpGAN + R1 + R2 (weight gamma each) adds -2 gamma to J's discriminator diagonal:
    # eigenvalues -gamma +- sqrt(gamma^2 - 1/4), real and negative (Huang et al. 2024's claim
    # of local convergence, on this game).
    gamma = 1.0
    a = analyze_arm(dirac_gan.Arm("r3gan", "rpgan", r1_weight=gamma, r2_weight=gamma))
    root = np.sqrt(gamma**2 - 0.25)
    np.testing.assert_allclose(np.sort(a.eigenvalues.real), [-gamma - root, -gamma + root],
                               atol=1e-5)
    assert a.flow == "converges" and a.simultaneous == "converges"


def test_r1_makes_the_dirac_gan_converge():
    """J = [[0, 1/2], [-1/2, -gamma]]: eigenvalues (-gamma +- sqrt(gamma^2 - 1)) / 2."""
    gamma = 2.0
    a = analyze_arm(dirac_gan.Arm("r1", "nonsaturating", r1_weight=gamma))
    root = math.sqrt(gamma**2 - 1)
    np.testing.assert_allclose(np.sort(a.eigenvalues.real), [(-gamma - root) / 2,
                                                             (-gamma + root) / 2], atol=1e-5)
    assert (a.flow, a.simultaneous, a.alternating) == ("converges",) * 3
    assert a.rho_simultaneous == pytest.approx(1 + H * (-gamma + root) / 2, abs=1e-5)


def test_wgan_circles_and_wgan_gp_is_not_linearisable():
    clip = analyze_arm(dirac_gan.Arm("wgan", "wgan", clip=1.0))
    np.testing.assert_allclose(np.sort_complex(clip.eigenvalues), [-1j, 1j], atol=1e-6)
    assert (clip.flow, clip.alternating) == ("cycles", "cycles")
    gp = analyze_arm(dirac_gan.Arm("wgan-gp", "wgan", gp_weight=1.0))
    assert gp.converged and not gp.differentiable and gp.eigenvalues is None
    assert "not differentiable" in gp.flow and gp.rho_simultaneous is None


def test_trajectories_circle_spiral_out_and_converge():
    x0 = jnp.array([1.0, 1.0])

    def norms(arm, update, steps=300):
        step = stability.update_map(dirac_gan.dirac_game(arm), ORIGIN, H, H, update)
        return np.linalg.norm(stability.trajectory(step, x0, steps), axis=1)

    minimax = dirac_gan.Arm("gan", "minimax")
    alternating = norms(minimax, "alternating")      # an ellipse: bounded, no trend
    assert alternating.max() / alternating.min() < 1.1
    assert norms(minimax, "simultaneous")[-1] > 1.2 * math.sqrt(2)
    assert norms(dirac_gan.Arm("r1", "nonsaturating", r1_weight=1.0), "alternating")[-1] < 1e-3


def test_alternating_map_steps_d_then_g_with_the_new_d():
    game = dirac_gan.dirac_game(dirac_gan.Arm("gan", "minimax"))
    theta, psi = 0.7, -0.4
    step = stability.update_map(game, ORIGIN, 0.3, 0.2, "alternating", d_updates=2)
    sig = lambda t: 1 / (1 + math.exp(-t))                                  # noqa: E731
    for _ in range(2):   # minimax Dirac field: v = (psi s(psi theta), -theta s(psi theta))
        psi = psi - 0.2 * theta * sig(psi * theta)
    theta = theta + 0.3 * psi * sig(psi * theta)
    # The step as one program (float32), against the recursion in float64.
    np.testing.assert_allclose(jax.jit(step)(jnp.array([0.7, -0.4])), [theta, psi], rtol=1e-6)
    with pytest.raises(ConfigError, match="d_updates"):
        stability.update_map(game, ORIGIN, 0.1, 0.1, "simultaneous", d_updates=2)
    with pytest.raises(ConfigError, match="update"):
        stability.update_map(game, ORIGIN, 0.1, 0.1, "leapfrog")


def test_no_stationary_point_is_reported_with_its_residual():
    game = methods.Game(lambda g, d, _: g[0], lambda g, d, _: d[0] ** 2)  # v_theta = -1
    a = stability.analyze(game, (np.array([0.5], np.float32), np.array([0.5], np.float32)),
                          lr_g=H, lr_d=H)
    assert not a.converged and a.eigenvalues is None and a.rho_alternating is None
    assert a.residual == pytest.approx(1.0, abs=1e-4)
    assert a.flow.startswith("no stationary point") and "|v| = 1" in a.flow


def test_saturation_matches_the_closed_forms():
    p = np.array([0.001, 0.1, 0.5, 0.9])
    sat = stability.saturation(p)
    closed = {  # (|d g_loss / ds|, |d d_loss / ds_fake|) with D(fake) = p
        "minimax": (p, p), "nonsaturating": (1 - p, p),
        "lsgan": ((1 - p) ** 2 * p, p**2 * (1 - p)),
        "wgan": (np.ones_like(p), np.ones_like(p)), "wgan_gp": (np.ones_like(p), np.ones_like(p)),
        "hinge": (np.ones_like(p), (np.log(p / (1 - p)) > -1).astype(float)),
        # relativistic, against a real logit of 0: rsgan's terms are softplus(-(s - 0)) and
        # softplus(-(0 - s)); ragan's pair of one sample each counts each term twice
        "rsgan": (1 - p, p), "rpgan": (1 - p, p), "ragan": (2 * (1 - p), 2 * p),
    }
    assert set(sat) == set(closed)
    for name, (g, d) in closed.items():
        np.testing.assert_allclose(sat[name]["g"], g, rtol=1e-5, atol=1e-7, err_msg=name)
        np.testing.assert_allclose(sat[name]["d"], d, rtol=1e-5, atol=1e-7, err_msg=name)
    with pytest.raises(ConfigError, match="probs"):
        stability.saturation([0.0, 0.5])


@functools.lru_cache(maxsize=None)
def seed_linear_analysis():
    return stability.analyze_config(SEED_CONFIGS["linear"], nodes=64)


def test_seed_linear_configuration_has_a_neutral_spread_direction():
    """The logistic D sees only the mean: at the stationary point the spread a is a flat
    direction (one zero eigenvalue); the other directions contract."""
    a = seed_linear_analysis()
    assert a.converged and a.differentiable
    assert np.sum(np.abs(a.eigenvalues) < 1e-4) == 1
    assert np.all(a.eigenvalues.real < 1e-4)
    assert a.flow == "neutral" and a.alternating == "neutral"
    with pytest.raises(ConfigError, match="sgd"):
        stability.analyze_config(SEED_CONFIGS["linear"].replace(optimizer="adam"))


@pytest.mark.parametrize("changes", [
    dict(nk_eta=0.5),
    dict(noise_std=1.0),
    dict(pack=2, discriminator="mlp", d_width=4, d_depth=1, d_init=None),
    # the penalty pairs real and generated rows: their noise must be drawn apart
    dict(loss="wgan_gp", noise_std=1.0, discriminator="mlp", d_width=4, d_depth=1,
         d_init=None),
    pytest.param(dict(nk_eta=0.2, noise_std=0.2, pack=2, loss="wgan_gp", discriminator="mlp",
                      d_width=4, d_depth=1, d_init=None),
                 marks=pytest.mark.slow),
], ids=["nk", "noise", "pack", "gp_noise", "all"])
def test_population_game_is_the_training_game_in_expectation(changes):
    """The population game (training's make_game on quantile nodes) against training's game
    on random batches: equal within the batches' own Monte Carlo error."""
    from gan_jax import config
    from gan_jax.training import train

    cfg = SEED_CONFIGS["linear"].replace(**changes)
    built = stability.population_game(cfg, nodes=512)
    g, d = built.point
    d = jax.tree.map(lambda x: x + 0.3, d)   # away from the start (the seed's bias is 0)
    static, hp = config.static_part(cfg), config.traced_part(cfg)
    parts = train.make_parts(static)
    game = train.make_game(static, parts, hp, states=((),) * len(train.stabilisers_on(static)))
    n, reps = 8192, 8

    @jax.jit
    def sampled(key):
        k_draw, k_extra = jax.random.split(key)
        batch = train.history_batch(static, parts, train.eval_draws(parts, k_draw, n * cfg.pack),
                                    k_extra)
        return jnp.stack([game.g_loss(g, d, batch), game.d_loss(g, d, batch)])

    mc = np.stack([np.asarray(sampled(jax.random.key(i))) for i in range(reps)])
    pop = np.asarray([built.game.g_loss(g, d, None), built.game.d_loss(g, d, None)])
    err = mc.std(axis=0, ddof=1) / np.sqrt(reps)
    # 4 standard errors of the 8 batches' mean (switching the stabiliser off moves the
    # population values by 10 or more of them); 2e-4 for the nodes' quadrature error.
    assert np.all(np.abs(pop - mc.mean(axis=0)) < 4 * err + 2e-4), (pop, mc.mean(0), err)


def test_population_game_refusals_and_nk_in_the_analysis():
    """NK reaches the analysis (a different Jacobian); what has no population form, and what
    the analysis does not model, is refused with its field and value."""
    base = SEED_CONFIGS["linear"]
    plain = seed_linear_analysis()
    nk = stability.analyze_config(base.replace(nk_eta=1.0), nodes=64)
    assert nk.converged and nk.differentiable
    assert not np.allclose(np.sort(nk.eigenvalues.real), np.sort(plain.eigenvalues.real))
    with pytest.raises(ConfigError, match="noise_std: got 0.1; the population game of a "
                                          "relativistic loss"):
        stability.population_game(base.replace(loss="rpgan", noise_std=0.1), nodes=16)
    mlp = base.replace(discriminator="mlp", d_width=4, d_depth=1, d_init=None)
    with pytest.raises(ConfigError, match="spectral_norm: got True; the population game has "
                                          "no form of the stabiliser 'spectral_norm'"):
        stability.population_game(mlp.replace(spectral_norm=True), nodes=16)
    with pytest.raises(ConfigError, match="update: got 'extragradient'; the local analysis"):
        stability.analyze_config(base.replace(update="extragradient", d_updates=1), nodes=16)
    with pytest.raises(ConfigError, match="lookahead_k: got 3; the local analysis models the "
                                          "plain step"):
        stability.analyze_config(base.replace(lookahead_k=3), nodes=16)
    with pytest.raises(ConfigError, match="point: got a ndarray; must be a pair"):
        stability.analyze_config(base, np.zeros(4, np.float32), nodes=16)
