"""Training methods and stabilisers: each against its defining equations, written out by hand
here, on small games; and the configuration's rules for combining them."""


import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_jax import config
from gan_jax.engine import programs as engine
from gan_jax.components import methods, models, optim
from gan_jax.core import registry
from gan_jax.records import results
from gan_jax.training import train
from gan_jax.config import ConfigError
from gan_jax.components.methods import Game


# A smooth, non-quadratic two-player game on vectors, with a batch (a scalar weight) that the
# objectives depend on, so that tests see which batch each evaluation used.
def _g_loss(g, d, b):
    return jnp.sum(jnp.tanh(d) * g) * b + 0.1 * jnp.sum(g ** 4)


def _d_loss(g, d, b):
    return -jnp.sum(jnp.tanh(d) * g) * b + 0.05 * jnp.sum(d ** 2) + 0.2 * jnp.sum(d ** 3) * b


GAME = Game(_g_loss, _d_loss)
G0 = jnp.array([0.3, -0.7])
D0 = jnp.array([0.5, 0.2])
B1, B2 = jnp.float32(1.0), jnp.float32(1.7)
H_G, H_D = 0.05, 0.08


def xi(g, d, b):
    return jax.grad(_g_loss, 0)(g, d, b), jax.grad(_d_loss, 1)(g, d, b)


OPTIONS = {"consensus": {"gamma": 0.7}}      # the methods' own options in these tests


def run(name, batches_per_step, steps=3, tx_g=None, tx_d=None, options=None, **kw):
    tx_g, tx_d = tx_g or optax.sgd(H_G), tx_d or optax.sgd(H_D)
    m = methods.make_method(name, GAME, tx_g, tx_d, methods.Coefs(0.5),
                            options=options or OPTIONS.get(name), **kw)
    play = m.init(G0, D0)
    for batches in batches_per_step[:steps]:
        play = m.step(play, batches)
    return play


def test_extragradient_steps_from_the_point_with_the_lookahead_gradient():
    play = run("extragradient", [(B1, B2)], steps=1)
    gg, gd = xi(G0, D0, B1)
    g_half, d_half = G0 - H_G * gg, D0 - H_D * gd
    gg, gd = xi(g_half, d_half, B2)                       # fresh batch at the look-ahead point
    np.testing.assert_allclose(play.g, G0 - H_G * gg, rtol=1e-6)
    np.testing.assert_allclose(play.d, D0 - H_D * gd, rtol=1e-6)


def _np_xi(g, d, b):
    """xi of the game above, by hand, in float64."""
    g, d = np.asarray(g, np.float64), np.asarray(d, np.float64)
    return (np.tanh(d) * b + 0.4 * g ** 3,
            -(1 - np.tanh(d) ** 2) * g * b + 0.1 * d + 0.6 * d ** 2 * b)


class _NpAdam:
    """Adam (Kingma & Ba 2015, Algorithm 1) in float64 for one player: each call is one step,
    t <- t + 1, and returns the update -lr m_hat / (sqrt(v_hat) + eps)."""

    def __init__(self, lr, b1=0.9, b2=0.999, eps=1e-8):
        self.lr, self.b1, self.b2, self.eps = lr, b1, b2, eps
        self.m = self.v = 0.0
        self.t = 0

    def __call__(self, grad):
        self.t += 1
        self.m = self.b1 * self.m + (1 - self.b1) * grad
        self.v = self.b2 * self.v + (1 - self.b2) * grad ** 2
        m_hat, v_hat = self.m / (1 - self.b1 ** self.t), self.v / (1 - self.b2 ** self.t)
        return -self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


def _np_past_extragradient(step_g, step_d, batches):
    """Extrapolation from the past (Gidel et al. 2019, Algorithm 3, as their released code
    runs it: the extrapolation comes before each gradient, from the previous one, and the
    first has none, so it is skipped): x_half = x + step(prev); x <- x + step(F(x_half)),
    F on the step's batch; step_g, step_d one optimiser step of each player."""
    g, d = np.asarray(G0, np.float64), np.asarray(D0, np.float64)
    prev = None
    for b in batches:
        g_half, d_half = (g, d) if prev is None else (g + step_g(prev[0]), d + step_d(prev[1]))
        prev = _np_xi(g_half, d_half, b)
        g, d = g + step_g(prev[0]), d + step_d(prev[1])
    return g, d


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_extragradient_from_the_past_is_gidel_et_al_algorithm_3(opt):
    batches = (B1, B2, B1, B2)
    if opt == "sgd":
        tx_g, tx_d = optax.sgd(H_G), optax.sgd(H_D)
        step_g, step_d = (lambda x: -H_G * x), (lambda x: -H_D * x)
    else:     # beta1 0.5 as GAN training runs it, and a second learning rate
        tx_g, tx_d = optax.adam(0.01, b1=0.5), optax.adam(0.02, b1=0.5)
        step_g, step_d = _NpAdam(0.01, b1=0.5), _NpAdam(0.02, b1=0.5)
    play = run("extragradient_past", [(b,) for b in batches], steps=len(batches),
               tx_g=tx_g, tx_d=tx_d)
    g, d = _np_past_extragradient(step_g, step_d, batches)
    np.testing.assert_allclose(play.g, g, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(play.d, d, rtol=1e-5, atol=1e-7)
    if opt == "adam":     # Adam's step counter: 2t - 1 updates in t steps, as theirs
        count = int(play.g_opt[0].count)
        assert count == step_g.t == 2 * len(batches) - 1


def test_optimistic_sgd_is_optax_ogda_and_two_u_minus_the_last():
    play = run("optimistic", [(B1,), (B2,), (B1,)])
    # optax's own optimistic gradient descent on the simultaneous gradient
    ogd_g, ogd_d = optax.optimistic_gradient_descent(H_G), optax.optimistic_gradient_descent(H_D)
    g, d = G0, D0
    sg, sd = ogd_g.init(g), ogd_d.init(d)
    for b in (B1, B2, B1):
        gg, gd = xi(g, d, b)
        ug, sg = ogd_g.update(gg, sg)
        ud, sd = ogd_d.update(gd, sd)
        g, d = g + ug, d + ud
    np.testing.assert_allclose(play.g, g, rtol=1e-6)
    np.testing.assert_allclose(play.d, d, rtol=1e-6)
    # and by hand, after optax's plain first step: x_{t+1} = x_t - 2 h xi_t + h xi_{t-1}
    g, d = G0, D0
    prev = None
    for b in (B1, B2, B1):
        cur = xi(g, d, b)
        last = cur if prev is None else prev
        g, d = g - H_G * (2 * cur[0] - last[0]), d - H_D * (2 * cur[1] - last[1])
        prev = cur
    np.testing.assert_allclose(play.g, g, rtol=1e-5)


def test_optimistic_adam_applies_two_adam_updates_minus_the_last():
    adam = optax.adam(0.01)
    play = run("optimistic", [(B1,), (B2,)], steps=2, tx_g=adam, tx_d=adam)
    g, d = G0, D0
    sg, sd = adam.init(g), adam.init(d)
    prev = None
    for b in (B1, B2):
        gg, gd = xi(g, d, b)
        ug, sg = adam.update(gg, sg)
        ud, sd = adam.update(gd, sd)
        last = (ug, ud) if prev is None else prev
        g, d = g + 2 * ug - last[0], d + 2 * ud - last[1]
        prev = (ug, ud)
    np.testing.assert_allclose(play.g, g, rtol=1e-5)
    np.testing.assert_allclose(play.d, d, rtol=1e-5)


def _joint_hessian(g, d, b):
    def flat_xi(x):
        return jnp.concatenate(xi(x[:2], x[2:], b))
    x = jnp.concatenate([g, d])
    return flat_xi(x), jax.jacfwd(flat_xi)(x)


def test_consensus_descends_xi_plus_gamma_h_transpose_xi():
    play = run("consensus", [(B1,)], steps=1)
    v, h = _joint_hessian(G0, D0, B1)
    step = v + 0.7 * h.T @ v                 # grad (|xi|^2 / 2) = H^T xi
    np.testing.assert_allclose(play.g, G0 - H_G * step[:2], rtol=1e-5)
    np.testing.assert_allclose(play.d, D0 - H_D * step[2:], rtol=1e-5)


def _np_hessian(g, d, b):
    """H = d xi / d(g, d) of the game above, by hand, in float64 (each coordinate pair
    (g_i, d_i) is a 2 x 2 block)."""
    g, d = np.asarray(g, np.float64), np.asarray(d, np.float64)
    t, s, n = np.tanh(d), 1 - np.tanh(d) ** 2, len(g)
    i, h = np.arange(n), np.zeros((2 * n, 2 * n))
    h[i, i] = 1.2 * g ** 2
    h[i, n + i] = s * b
    h[n + i, i] = -s * b
    h[n + i, n + i] = 2 * g * b * t * s + 0.1 + 1.2 * d * b
    return h


def _np_sga(g, d, b):
    """Balduzzi et al. (2018), Algorithm 1, with Align, in float64: A^T xi from H, grad H =
    H^T xi, lambda = sign(<xi, grad H> <A^T xi, grad H> / dim + 0.1); returns
    (xi + lambda A^T xi, lambda, A^T xi)."""
    v = np.concatenate(_np_xi(g, d, b))
    h = _np_hessian(g, d, b)
    at_v = 0.5 * (h.T - h) @ v
    grad_h = h.T @ v
    lam = np.sign(np.dot(v, grad_h) * np.dot(at_v, grad_h) / v.size + 0.1)
    return v + lam * at_v, lam, at_v


@pytest.mark.parametrize("g0, d0, sign", [
    ((0.3, -0.7), (0.5, 0.2), 1.0), ((1.0, 1.5), (-2.0, 0.3), -1.0)])
def test_sga_is_balduzzi_et_al_algorithm_1(g0, d0, sign):
    g0, d0 = jnp.array(g0), jnp.array(d0)
    want, lam, at_v = _np_sga(g0, d0, 1.7)
    assert lam == sign                        # both signs of the alignment are met
    def one_step(scaled):
        m = methods.make_method("sga", GAME, optax.sgd(H_G), optax.sgd(H_D),
                                options={"scaled": scaled, "lambda": 0.9})
        return m.step(m.init(g0, d0), (B2,))

    play = one_step(False)  # their rule: lambda is the sign, sga.lambda (0.9) is not used
    np.testing.assert_allclose(play.g, g0 - H_G * want[:2], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(play.d, d0 - H_D * want[2:], rtol=1e-5, atol=1e-7)
    # The generalisation, on request: lambda = 0.9 times the sign.
    scaled = want + (0.9 - 1) * lam * at_v
    play = one_step(True)
    np.testing.assert_allclose(play.g, g0 - H_G * scaled[:2], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(play.d, d0 - H_D * scaled[2:], rtol=1e-5, atol=1e-7)


def test_unrolled_gradient_matches_finite_differences_of_the_unrolled_objective():
    # Through every unrolled step, Adam's state included. A gradient stopped at the unroll,
    # dg_loss/dg at d_k held fixed (what many implementations compute), fails the same check.
    adam = optax.adam(0.1)
    k = 4

    def unrolled(g):
        return methods.unrolled_discriminator(GAME, adam, g, D0, adam.init(D0), B1, k)

    def objective(g):
        return _g_loss(g, unrolled(g), B1)

    auto = jax.grad(objective)(G0.astype(jnp.float64) if jax.config.x64_enabled else G0)
    eps = 1e-2
    fd = np.array([(objective(G0 + eps * e) - objective(G0 - eps * e)) / (2 * eps)
                   for e in np.eye(2, dtype=np.float32)])
    stopped = jax.grad(_g_loss, 0)(G0, unrolled(G0), B1)
    np.testing.assert_allclose(auto, fd, rtol=2e-2, atol=2e-3)
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(stopped, fd, rtol=2e-2, atol=2e-3)
    assert np.max(np.abs(np.asarray(fd) - np.asarray(stopped))) > 0.1
    # The method: the generator descends that gradient; the discriminator's step is the first
    # unrolled step.
    play = run("unrolled", [(B1,)], steps=1, tx_g=optax.sgd(H_G), tx_d=adam, options={"k": k})
    np.testing.assert_allclose(play.g, G0 - H_G * auto, rtol=1e-5)
    d1 = methods.unrolled_discriminator(GAME, adam, G0, D0, adam.init(D0), B1, 1)
    np.testing.assert_allclose(play.d, d1, rtol=1e-6)


def test_lookahead_pulls_both_players_every_k_steps_and_keeps_optimizer_state():
    k, alpha = 3, 0.5
    batches = [(B1,), (B2,), (B1,), (B2,)]
    inner = run("simultaneous", batches, steps=k, tx_g=optax.sgd(H_G, momentum=0.9))
    la = run("simultaneous", batches, steps=k, tx_g=optax.sgd(H_G, momentum=0.9),
             lookahead_k=k)
    np.testing.assert_allclose(la.g, G0 + alpha * (inner.g - G0), rtol=1e-6)
    np.testing.assert_allclose(la.d, D0 + alpha * (inner.d - D0), rtol=1e-6)
    for x, y in zip(jax.tree.leaves(la.g_opt), jax.tree.leaves(inner.g_opt)):
        np.testing.assert_allclose(x, y, rtol=1e-6)     # momentum untouched by the pull
    assert int(la.extra.count) == 0
    np.testing.assert_allclose(la.extra.slow_g, la.g)


def test_ema_averages_the_generator_around_any_method_and_leaves_the_players_alone():
    # ema around lookahead around extrapolation from the past: three layers of state.
    beta, k = 0.8, 2
    batches = [(B1,), (B2,), (B1,), (B2,)]
    seen = []                                  # (stats, g) the tracker was given, per step

    def update(stats, g, step_batches):
        seen.append((stats, g))
        return stats + step_batches[-1]

    inner = methods.make_method("extragradient_past", GAME, optax.sgd(H_G), optax.sgd(H_D),
                                methods.Coefs(lookahead_alpha=0.5), lookahead_k=k)
    m = methods.ema(inner, beta, methods.Tracker(lambda g: jnp.float32(0.0), update))
    play, plain = m.init(G0, D0), inner.init(G0, D0)
    avg = G0
    for b in batches:
        before = methods.averaged(play.extra).g
        play, plain = m.step(play, b), inner.step(plain, b)
        avg = beta * avg + (1 - beta) * plain.g
        np.testing.assert_array_equal(seen[-1][1], before)   # the average the step began at
        for x, y in zip(jax.tree.leaves(play._replace(extra=play.extra.inner)),
                        jax.tree.leaves(plain)):
            np.testing.assert_array_equal(x, y)                 # players and inner state
    np.testing.assert_allclose(methods.averaged(play.extra).g, avg, rtol=1e-6)
    assert not np.allclose(avg, play.g)
    np.testing.assert_allclose(methods.averaged(play.extra).stats, 2 * B1 + 2 * B2)
    assert methods.averaged(plain.extra) is None
    assert isinstance(methods.wrapper_state(play.extra, methods.LookaheadState),
                      methods.LookaheadState)
    assert isinstance(methods.wrapper_state(play.extra, methods.Past), methods.Past)


def test_simultaneous_methods_refuse_several_d_updates():
    with pytest.raises(ValueError, match="d_updates"):
        methods.make_method("consensus", GAME, optax.sgd(0.1), optax.sgd(0.1), d_updates=2)


# ----------------------------------------------------------------------------- in training

SMALL = dict(steps=4, log_every=2, batch_size=16, eval_batch=32, history_samples=32,
             eval_samples=32, d_updates=1)
MLP = dict(SMALL, generator="mlp", discriminator="mlp", g_width=4, g_depth=1, d_width=4,
           d_depth=1, jacobian_max_params=0)


def _parts(cfg):
    static, hp = config.static_part(cfg), config.traced_part(cfg)
    return static, hp, train.make_parts(static)


def test_nk_regulariser_adds_eta_times_the_discriminator_gradient_norm():
    cfg = config.make_config({**MLP, "nk_eta": 0.3})
    static, hp, parts = _parts(cfg)
    g = parts.generator.init(jax.random.key(1))
    d = parts.discriminator.init(jax.random.key(2))
    tx_g, tx_d = optim.player_optimizers(static, hp)
    draw, _ = train.make_step(static, parts, hp, tx_g, tx_d)
    d_batch, g_batch = jax.jit(draw)(jax.random.key(3))
    assert g_batch.real_ND is not None           # the regulariser needs real samples
    game = train.make_game(static, parts, hp)
    plain = train.make_game(static, parts, hp._replace(nk_eta=np.float32(0)))
    from gan_jax.components import losses
    loss = losses.get_loss(cfg.loss)

    @jax.jit      # one program, not an eager compilation per operation
    def g_losses(g, d, g_batch):
        def value(d):
            real, fake = g_batch.real_ND, parts.generator.apply(g, g_batch.z_NL)
            return loss.d_loss(parts.discriminator.apply(d, real),
                               parts.discriminator.apply(d, fake))

        grad_sq = sum(jnp.sum(x ** 2) for x in jax.tree.leaves(jax.grad(value)(d)))
        return game.g_loss(g, d, g_batch), plain.g_loss(g, d, g_batch), grad_sq

    with_nk, without, grad_sq = g_losses(g, d, g_batch)
    np.testing.assert_allclose(with_nk, without + 0.3 * grad_sq, rtol=1e-5)


def test_packing_feeds_consecutive_samples_as_one_input():
    cfg = config.make_config({**MLP, "pack": 3})
    static, hp, parts = _parts(cfg)
    assert models.mlp_sizes(cfg, "discriminator")[0] == 3 * 1
    tx_g, tx_d = optim.player_optimizers(static, hp)
    draw, _ = train.make_step(static, parts, hp, tx_g, tx_d)
    b, _ = jax.eval_shape(draw, jax.random.key(0))          # shapes only: nothing to run
    assert b.real_ND.shape == (3 * 16, 1) and b.z_NL.shape == (3 * 16, 1)
    x = jnp.arange(12.0).reshape(6, 2)
    np.testing.assert_array_equal(train.pack_samples(x, 3),
                                  [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])


def test_instance_noise_scales_and_anneals_linearly():
    cfg = config.make_config({**MLP, "noise_std": 0.5, "noise_anneal": True})
    static, hp, parts = _parts(cfg)
    g = parts.generator.init(jax.random.key(1))
    d = parts.discriminator.init(jax.random.key(2))
    b = train.Batch(jnp.zeros((4, 1)), jnp.zeros((4, 1)), jnp.zeros((4, 0)),
                    ((jnp.ones((4, 1)), jnp.ones((4, 1))),))
    seen = []
    probe = parts._replace(discriminator=models.Model(
        parts.discriminator.init, lambda p, x: (seen.append(x), x[:, 0])[1]))
    for step, want in ((0, 0.5), (static.run_steps // 2, 0.5 * (1 - (static.run_steps // 2)
                                                                 / static.run_steps))):
        seen.clear()
        train.make_game(static, probe, hp, step=jnp.int32(step)).d_loss(g, d, b)
        real = seen[0]
        np.testing.assert_allclose(real, want * np.ones((4, 1)), rtol=1e-6)


def test_spectral_norm_divides_by_the_top_singular_value():
    net = models.mlp(3, 1, 5, 2, "relu")

    @jax.jit      # one program: 50 power iterations in a loop, not 50 eager dispatches
    def normalized():
        layers = net.init(jax.random.key(0))
        us = jax.lax.fori_loop(0, 50, lambda _, us: models.sn_power_iteration(layers, us),
                               models.sn_init(layers, jax.random.key(1)))
        return layers, models.sn_normalize(layers, us)

    layers, normalized_layers = normalized()
    for layer, normed in zip(layers, normalized_layers):
        top = np.linalg.svd(np.asarray(layer.w), compute_uv=False)[0]
        np.testing.assert_allclose(np.linalg.svd(np.asarray(normed.w), compute_uv=False)[0],
                                   1.0, rtol=1e-4)
        np.testing.assert_allclose(np.asarray(layer.w) / np.asarray(normed.w), top, rtol=1e-4)


def _np_sn_algorithm1(w_paper, u, steps):
    """Miyato et al. (2018), Algorithm 1, in float64 NumPy, W in the paper's orientation
    (output x input): per step v = W^T u / |W^T u|, u = W v / |W v|, sigma = u^T W v; the
    sigmas of each step and the last (u, v)."""
    sigmas = []
    for _ in range(steps):
        v = w_paper.T @ u
        v = v / np.linalg.norm(v)
        u = w_paper @ v
        u = u / np.linalg.norm(u)
        sigmas.append(u @ w_paper @ v)
    return np.array(sigmas), u, v


def test_spectral_norm_is_algorithm_1_of_miyato_et_al():
    # From a random u, several iterations: sigma of each from the same iteration's u and v
    # (not from a v recomputed after u is updated, which converges to the same value but
    # differs until u has), and the gradient of W / sigma with u, v held fixed.
    net = models.mlp(3, 1, 8, 2, "relu")
    layers = net.init(jax.random.key(0))
    vectors = models.sn_init(layers, jax.random.key(1))
    steps = 4
    coef = np.asarray(jax.random.normal(jax.random.key(2), layers[0].w.shape), np.float64)

    @jax.jit
    def library(layers, vectors):
        def one(vectors, _):
            vectors = models.sn_power_iteration(layers, vectors)
            sigmas = [layer.w[0, 0] / normed.w[0, 0]
                      for layer, normed in zip(layers, models.sn_normalize(layers, vectors))]
            return vectors, jnp.stack(sigmas)

        vectors, sigmas = jax.lax.scan(one, vectors, None, length=steps)
        grad = jax.grad(lambda w: jnp.sum(coef * models.sn_normalize(
            (layers[0]._replace(w=w),), vectors[:1])[0].w))(layers[0].w)
        return sigmas, vectors, grad

    sigmas, last, grad = library(layers, vectors)
    for i, layer in enumerate(layers):
        w = np.asarray(layer.w, np.float64).T                  # the paper's W: out x in
        want, u, v = _np_sn_algorithm1(w, np.asarray(vectors[i].u, np.float64), steps)
        np.testing.assert_allclose(sigmas[:, i], want, rtol=1e-5)
        np.testing.assert_allclose(last[i].u, u, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(last[i].v, v, rtol=1e-5, atol=1e-6)
        if i == 0:
            # d/dW sum(C * W / sigma), sigma = u^T W v with u, v fixed: C / sigma -
            # <C, W> / sigma^2 u v^T (in the library's [in, out] layout, the transpose).
            sigma = want[-1]
            want_grad = coef / sigma - (np.sum(coef * w.T) / sigma**2) * np.outer(v, u)
            np.testing.assert_allclose(grad, want_grad, rtol=1e-4, atol=1e-6)
        # The first steps are far from converged: sigma with a v recomputed from the updated
        # u would fail the check above.
        v_after = w.T @ u
        v_after /= np.linalg.norm(v_after)
        if i < 2:
            assert abs(u @ w @ v_after - want[-1]) > 1e-5 * want[-1]
        first, u1, _ = _np_sn_algorithm1(w, np.asarray(vectors[i].u, np.float64), 1)
        v1 = w.T @ u1 / np.linalg.norm(w.T @ u1)
        if i < 2:
            assert abs(u1 @ w @ v1 - first[0]) > 100 * 1e-5 * first[0]


def test_game_stabilisers_keep_their_states_in_one_field():
    # Spectral normalization and instance noise wrap the game (gan_jax.Stabiliser): their states
    # sit in TrainState.stabilisers, one per stabiliser on, whatever is on; no field of their own.
    cfg = config.make_config({**MLP, "spectral_norm": True, "noise_std": 0.1})
    static, hp, parts = _parts(cfg)
    assert [n for n, _ in train.stabilisers_on(static)] == ["spectral_norm", "instance_noise"]
    tx_g, tx_d = optim.player_optimizers(static, hp)
    d0 = parts.discriminator.init(jax.random.key(2))
    state = train.init_state(static, parts, hp, tx_g, tx_d,
                             parts.generator.init(jax.random.key(1)), d0, jax.random.key(3))
    vectors = train.stabiliser_state(static, state, "spectral_norm")
    assert jax.tree.structure(vectors) == jax.tree.structure(
        models.sn_init(d0, jax.random.key(3)))
    assert train.stabiliser_state(static, state, "instance_noise") == ()
    plain_static = config.static_part(config.make_config(MLP))
    assert train.stabiliser_state(plain_static, state._replace(stabilisers=()),
                                  "spectral_norm") is None
    assert set(train.TrainState._fields) == {"g_params", "d_params", "g_opt", "d_opt", "step",
                                             "diverged_at", "method", "stabilisers", "g_bn"}


def test_ema_follows_its_recursion_in_training():
    cfg = config.make_config({**MLP, "ema_beta": 0.8, "update": "simultaneous"})
    static, hp, parts = _parts(cfg)
    tx_g, tx_d = optim.player_optimizers(static, hp)
    draw, step = train.make_step(static, parts, hp, tx_g, tx_d)
    g0 = parts.generator.init(jax.random.key(1))
    state = train.init_state(static, parts, hp, tx_g, tx_d, g0,
                             parts.discriminator.init(jax.random.key(2)), jax.random.key(3))
    step, draw = jax.jit(step), jax.jit(draw)
    ema = g0
    for i in range(3):
        state = step(state, draw(jax.random.key(10 + i)))
        ema = jax.tree.map(lambda e, p: 0.8 * e + 0.2 * p, ema, state.g_params)
    for x, y in zip(jax.tree.leaves(train.averaged_generator(state)[0]), jax.tree.leaves(ema)):
        np.testing.assert_allclose(x, y, rtol=1e-6)


@pytest.mark.parametrize("changes, names", [
    (dict(update="alternating", consensus_gamma=1.0), ("consensus.gamma", "'consensus'")),
    (dict(update="consensus", unroll_k=3), ("unrolled.k", "'unrolled'")),
    ({"update": "unrolled", "unrolled.k": 0}, ("unrolled.k", "[1, 256]")),
    (dict(lookahead_alpha=0.3), ("lookahead_alpha", "lookahead_k")),
    (dict(update="sga", sga_lambda=0.5), ("sga.lambda", "sga.scaled", "Algorithm 1")),
    (dict(update="alternating", sga_scaled=True), ("sga.scaled", "update", "'sga'")),
    ({"update": "alternating", "sga.scaled": True}, ("sga.scaled", "update", "'sga'")),
    ({"update": "sga", "sga.scaled": "yes"}, ("sga.scaled", "true or false")),
    (dict(noise_anneal=True), ("noise_anneal", "noise_std")),
    (dict(pack=2), ("pack", "discriminator")),
    (dict(spectral_norm=True), ("spectral_norm", "discriminator")),
    (dict(update="extragradient", d_updates=2), ("d_updates", "extragradient")),
    (dict(update="leapfrog"), ("update", "unrolled")),
    (dict(pack=0), ("pack", "positive")),
    (dict(spectral_norm="yes"), ("spectral_norm", "true or false")),
])
def test_combinations_that_make_no_sense_name_both_fields(changes, names):
    with pytest.raises(ConfigError) as e:
        config.make_config({"d_updates": 1, **changes})
    for name in names:
        assert name in str(e.value)


def test_sga_lambda_is_a_weight_only_with_sga_scaled():
    # `scaled` is sga's own option ("sga.scaled"); the field it was before, sga_scaled, still
    # names it (sweep files, records) and its runs keep their ids (tests/test_stabilisers.py
    # holds one recorded before the move).
    cfg = config.make_config({"update": "sga", "d_updates": 1, "sga.scaled": True,
                              "sga_lambda": 0.5})
    assert cfg == config.make_config(dict(update="sga", d_updates=1, sga_scaled=True,
                                          sga_lambda=0.5))
    static = config.static_part(cfg)
    assert registry.option(static, "sga.scaled") is True
    assert config.option_values(static, "method", "sga") == {"scaled": True, "lambda": 1.0}
    assert float(config.option_values(static, "method", "sga",
                                      config.traced_part(cfg))["lambda"]) == 0.5
    # Run ids hash both under the fields they were (sga_lambda moved like sga_scaled).
    assert cfg.identity_dict()["sga_scaled"] is True and "options" not in cfg.identity_dict()
    assert cfg.identity_dict()["sga_lambda"] == 0.5
    plain = config.make_config(dict(update="sga", d_updates=1))
    assert plain.options == () and registry.option(plain, "sga.scaled") is False
    assert results.run_id(plain, 0) != results.run_id(cfg, 0)
    # Its default given explicitly is the same run.
    assert config.make_config({"update": "sga", "d_updates": 1, "sga.scaled": False}) == plain


def test_added_fields_keep_earlier_run_ids_and_fill_old_records():
    cfg = config.RunConfig()
    old_text = {k: v for k, v in cfg.to_dict().items() if k not in config.ADDED_FIELDS}
    assert cfg.identity_dict() == old_text
    assert results.run_id(cfg.replace(pack=1), 0) == results.run_id(cfg, 0)
    assert results.run_id(cfg.replace(ema_beta=0.9), 0) != results.run_id(cfg, 0)


@pytest.mark.slow   # one program per method: about a minute on 2 cores
@pytest.mark.parametrize("changes", [
    dict(update=name) for name in methods.METHODS if name != "alternating"] + [
    dict(lookahead_k=2), dict(update="unrolled", unroll_k=2, d_updates=2),
    dict(pack=2, ema_beta=0.9, spectral_norm=True, noise_std=0.1, noise_anneal=True,
         nk_eta=0.1, loss="wgan_gp", d_updates=2)])
def test_every_method_and_stabiliser_trains(changes):
    cfg = config.make_config({**MLP, "jacobian_max_params": 32, **changes})
    out = engine.run_batch([cfg, cfg], [0, 1])
    recs = results.make_records("t", [cfg, cfg], [0, 1], out)
    for r in recs:
        assert r["status"] == "ok"
        h = r["history"]
        assert len(h["grad_norm_g"]) == 3 and all(v > 0 for v in h["grad_norm_d"])
        n = train.num_joint_params(config.static_part(cfg))
        assert len(h["update_radius"]) == 3 and len(h["update_eigs"][0]) == n
        if cfg.ema_beta:
            assert "ema_w1" in r["final"] and len(h["ema_w1"]) == 3
    assert recs[0]["final"] != recs[1]["final"]


def test_unrolled_adam_gradient_stays_finite_where_a_parameter_has_no_gradient():
    # d[1] sits behind a dead ReLU (d[1] g < 0), so its gradient is exactly 0 and Adam's second
    # moment stays 0 there; the derivative of its square root is then infinite, and the
    # generator's gradient NaN, unless eps_root keeps it finite (optim.UNROLL_EPS_ROOT).
    relu = jax.nn.relu
    game = Game(lambda g, d, b: jnp.sum(jnp.tanh(d[0]) * g) + jnp.sum(relu(d[1] * g)),
                lambda g, d, b: (-jnp.sum(jnp.tanh(d[0]) * g) - jnp.sum(relu(d[1] * g))
                                 + 0.1 * d[0] ** 2))
    d0 = jnp.array([0.5, -0.3])

    def grad_with(tx):
        def objective(g):
            return game.g_loss(g, methods.unrolled_discriminator(game, tx, g, d0, tx.init(d0),
                                                                 None, 3), None)
        return jax.grad(objective)(jnp.array([0.3, 0.7]))

    assert not np.all(np.isfinite(grad_with(optax.adam(0.1))))
    cfg = config.make_config(dict(update="unrolled", optimizer="adam", lr_d=0.1, d_updates=1))
    _, tx_d = optim.player_optimizers(config.static_part(cfg), config.traced_part(cfg))
    assert np.all(np.isfinite(grad_with(tx_d)))


def test_a_record_written_before_the_added_fields_reads_back_with_their_defaults(tmp_path):
    cfg = config.make_config(dict(SMALL))
    record = {"run_id": results.run_id(cfg, 0), "sweep": "old", "seed": 0,
              "config": cfg.identity_dict(), "status": "ok", "diverged_at": None,
              "final": {"w1": 1.0}, "history": {"step": [0]}, "versions": {}}
    results.append_records(tmp_path / results.RESULTS_FILE, [record])
    (back,), _ = results.load_results(tmp_path)
    assert back["config"] == cfg.to_dict()
    assert list(back["config"])[:3] == list(cfg.identity_dict())[:3]
    assert results.run_id(config.make_config(back["config"]), 0) == record["run_id"]


def test_the_methods_moved_fields_read_by_either_name_in_old_and_new_records():
    # unroll_k, consensus_gamma and sga_lambda became the methods' own options (unrolled.k,
    # consensus.gamma, sga.lambda): a record written before holds them as fields, at their
    # defaults for every other method, and reads as the same run.
    cfg = config.make_config({"update": "unrolled", "d_updates": 1, "unrolled.k": 3})
    new = {"config": cfg.to_dict()}
    old = {"config": {**{k: v for k, v in new["config"].items() if k != "options"},
                      "unroll_k": 3, "consensus_gamma": 10.0, "sga_lambda": 1.0}}
    assert config.make_config(old["config"]) == cfg
    assert cfg.identity_dict()["unroll_k"] == 3
    for record in (new, old):
        assert results.config_value(record, "unroll_k") == 3
        assert results.config_value(record, "unrolled.k") == 3
    plain = {"config": config.make_config({}).to_dict()}
    assert results.config_value(plain, "unrolled.k") is None
