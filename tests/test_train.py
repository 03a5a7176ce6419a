"""The training loop: batching, compilation, determinism, explicit initial values, divergence."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import config
from gan_jax.engine import programs as engine
from gan_jax.components import losses, optim
from gan_jax.records import results
from gan_jax.training import train

SMALL = dict(steps=8, log_every=4, batch_size=32, eval_batch=64, history_samples=64,
             eval_samples=64, g_init=[0.15, 0.0], d_init=[0.25, 0.0])


def small_config(**changes):
    return config.make_config({**SMALL, **changes})


def _tree_close(a, b, rtol=1e-5, atol=1e-6):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def test_history_rows_at_the_seeds_log_steps():
    out = engine.run_batch([small_config()], [0])
    np.testing.assert_array_equal(out.history["step"][0], [0, 4, 8])
    assert int(out.state.step[0]) == 9          # steps + 1 iterations, as in the seed
    assert out.history["g_params"].shape == (1, 3, 2)
    for key in ("loss_d", "loss_g", "w1", "left", "right"):
        assert out.history[key].shape == (1, 3)


@pytest.mark.slow   # compiles the one-function program too
def test_two_programs_equal_one_bit_for_bit():
    """The engine runs training and evaluation as two programs; the one-function composition
    (train.make_run) gives the same numbers bit for bit: the evaluation is the same function
    of the same generator values on the same keys."""
    cfg = small_config()
    hps = config.stack_hparams([config.traced_part(cfg)] * 4)
    keys = engine.seed_keys([5, 6, 5, 7])                 # test_same_seed's programs
    static = config.static_part(cfg)
    two = engine.compiled_run(static)(hps, keys)
    one = jax.jit(engine.batched_run(static))(hps, keys)
    assert set(two.history) == set(one.history) and "w1" in two.history
    for a, b in zip(jax.tree.leaves(two), jax.tree.leaves(one)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow   # compiles the unbatched program too
def test_vmapped_equals_single_runs():
    cfg = small_config()
    seeds = [0, 1, 2, 3]
    batched = engine.run_batch([cfg] * 4, seeds)
    single = jax.jit(train.make_run(config.static_part(cfg)))
    hp = config.traced_part(cfg)
    for i, seed in enumerate(seeds):
        one = single(hp, jax.random.key(seed))
        _tree_close(jax.tree.map(lambda x: x[i], batched), one)


@pytest.mark.slow
def test_large_calls_sort_with_the_network_and_get_the_same_numbers():
    # A small call sorts with XLA's sort; from engine.NETWORK_MIN_RUNS runs the history rows'
    # sort is a network, and from engine.NETWORK_RUNS also the final evaluation's (3000 values
    # > rand.MAX_NETWORK). The runs of the largest call equal those of the smallest.
    cfg = small_config(steps=1, log_every=1, eval_samples=3000)
    n = engine.NETWORK_RUNS

    def xla_sorts(runs):
        hps = config.stack_hparams([config.traced_part(cfg)] * runs)
        return jax.jit(engine.batched_run(config.static_part(cfg))).lower(
            hps, engine.seed_keys(np.arange(runs))).as_text().count("stablehlo.sort")

    # 1-D: each evaluation sorts the real and generated samples in one sort; other sorts of
    # the program (d_gap's quadrature edges) are the same in every call
    others = xla_sorts(n)
    assert [xla_sorts(r) - others for r in (2, engine.NETWORK_MIN_RUNS)] == [2, 1]
    large = engine.run_batch([cfg] * n, list(range(n)))
    small = engine.run_batch([cfg] * 2, [0, n - 1])
    for i, j in ((0, 0), (1, n - 1)):
        _tree_close(jax.tree.map(lambda x: x[i], small), jax.tree.map(lambda x: x[j], large))


def test_same_seed_same_numbers_and_different_seeds_differ():
    cfg = small_config()
    a = engine.run_batch([cfg] * 4, [5, 6, 5, 7])   # 4 runs: test_vmapped's program
    _tree_close(jax.tree.map(lambda x: x[0], a), jax.tree.map(lambda x: x[2], a), rtol=0, atol=0)
    assert not np.allclose(a.history["w1"][0], a.history["w1"][1])


def test_a_run_among_other_losses_equals_the_run_alone():
    # One program serves three losses (the loss traced); a run's numbers are those it gets in
    # a call of the same shape of its own program, and clipping follows each run's own loss:
    # only the WGAN run's discriminator stays within [-clip, clip]. Not bit for bit: XLA fuses
    # the losses' branches into other reductions, which changes float32 rounding in the last
    # place or two (measured: at most 1.2e-7 here), as a different chunk size does; the
    # tolerance is the one records are compared with across chunk sizes (sweep_testing).
    cfg = small_config()
    others = [cfg.replace(loss="wgan"), cfg.replace(loss="hinge")]
    mixed = engine.run_batch([cfg, *others, cfg], [5, 6, 7, 8])
    alone = engine.run_batch([cfg] * 4, [5, 9, 9, 8])          # test_vmapped's program
    for i in (0, 3):
        _tree_close(jax.tree.map(lambda x: x[i], mixed), jax.tree.map(lambda x: x[i], alone),
                    rtol=1e-5, atol=1e-6)
    clip = cfg.clip
    assert np.all(np.abs(mixed.history["d_params"][1]) <= clip)
    assert np.any(np.abs(mixed.history["d_params"][2]) > clip)
    assert np.any(np.abs(mixed.history["d_params"][0]) > clip)


def test_new_hyperparameters_do_not_recompile():
    base = small_config()
    fn = engine.compiled_run(config.static_part(base))
    engine.run_batch([base] * 2, [0, 1])
    compiled = fn.cache_size()
    engine.run_batch([base.replace(lr_g=0.01, lr_d=0.2, g_init=(1.0, 2.0))] * 2, [3, 4])
    assert fn.cache_size() == compiled
    # a different static part is a different program
    assert config.static_part(base.replace(d_updates=1)) != config.static_part(base)
    assert config.static_part(base.replace(lr_d=0.2)) == config.static_part(base)


def test_explicit_initial_values_are_used_as_given():
    cfg = small_config(g_init=[0.7, -1.25], d_init=[0.3, 0.4], lr_g=1e-30, lr_d=1e-30)
    out = engine.run_batch([cfg], [11])
    np.testing.assert_allclose(out.state.g_params[0], [0.7, -1.25], rtol=1e-7)
    np.testing.assert_allclose(out.state.d_params[0], [0.3, 0.4], rtol=1e-7)
    np.testing.assert_allclose(out.history["g_params"][0, 0], [0.7, -1.25], rtol=1e-7)


@pytest.mark.slow   # a program of its own
def test_random_initial_values_come_from_the_key():
    cfg = config.make_config({**SMALL, "g_init": None, "d_init": None, "generator": "piecewise"})
    out = engine.run_batch([cfg] * 4, [1, 2, 1, 3])
    np.testing.assert_array_equal(out.history["g_params"][0, 0], out.history["g_params"][2, 0])
    assert not np.allclose(out.history["g_params"][0, 0], out.history["g_params"][1, 0])


def test_divergence_is_recorded_and_isolated():
    ok, bad = small_config(), small_config(lr_g=1e30, lr_d=1e30)
    out = engine.run_batch([ok, bad, ok, ok], [0, 1, 2, 3])
    div = out.state.diverged_at
    assert div[0] == -1 and div[2] == -1
    assert 0 <= div[1] <= 8
    alone = engine.run_batch([ok, ok], [0, 2])
    _tree_close(jax.tree.map(lambda x: x[np.array([0, 2])], out), alone)
    recs = results.make_records("t", [ok, bad, ok, ok], [0, 1, 2, 3], out)
    assert [r["status"] for r in recs] == ["ok", "diverged", "ok", "ok"]
    assert recs[1]["diverged_at"] == int(div[1]) and recs[0]["diverged_at"] is None
    assert recs[1]["final"]["w1"] is None                    # non-finite written as null
    assert recs[0]["run_id"] != recs[2]["run_id"]


def _one_step(cfg, key):
    """One run-step of cfg from its explicit initial values: (state before, draws, after)."""
    static, hp = config.static_part(cfg), config.traced_part(cfg)
    parts = train.make_parts(static)
    tx_g, tx_d = optim.player_optimizers(static, hp)
    draw, step = train.make_step(static, parts, hp, tx_g, tx_d)
    g0 = jnp.asarray(cfg.g_init, jnp.float32)
    d0 = jnp.asarray(cfg.d_init, jnp.float32)
    state = train.init_state(static, parts, hp, tx_g, tx_d, g0, d0, jax.random.key(0))
    draws = draw(key)
    return parts, state, draws, jax.jit(step)(state, draws)


@pytest.mark.parametrize("loss", ["hinge"])
def test_simultaneous_step_takes_both_gradients_at_the_same_point(loss):
    # Plain SGD: theta' = theta - lr_g dL_G/dtheta(theta, phi), phi' = phi - lr_d
    # dL_D/dphi(theta, phi), both at the old (theta, phi) and on the step's one batch.
    cfg = small_config(update="simultaneous", d_updates=1, loss=loss, lr_g=0.1, lr_d=0.2)
    parts, state, draws, new = _one_step(cfg, jax.random.key(3))
    (b,) = draws
    loss_fns = losses.get_loss(loss)
    g_apply, d_apply = parts.generator.apply, parts.discriminator.apply

    def loss_g(theta, phi):
        return loss_fns.g_loss(d_apply(phi, g_apply(theta, b.z_NL)))

    def loss_d(theta, phi):
        return loss_fns.d_loss(d_apply(phi, b.real_ND), d_apply(phi, g_apply(theta, b.z_NL)))

    theta, phi = state.g_params, state.d_params
    want_theta = theta - 0.1 * jax.grad(loss_g)(theta, phi)
    want_phi = phi - 0.2 * jax.grad(loss_d, 1)(theta, phi)
    np.testing.assert_allclose(new.g_params, want_theta, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(new.d_params, want_phi, rtol=1e-6, atol=1e-7)
    # Alternating steps instead take the generator's gradient at the updated phi.
    alt = small_config(d_updates=1, loss=loss, lr_g=0.1, lr_d=0.2)
    _, state, draws, new = _one_step(alt, jax.random.key(3))
    b, b_g = draws
    phi1 = state.d_params - 0.2 * jax.grad(loss_d, 1)(state.g_params, state.d_params)
    np.testing.assert_allclose(new.d_params, phi1, rtol=1e-6, atol=1e-7)

    def loss_g_alt(theta):
        return loss_fns.g_loss(d_apply(phi1, g_apply(theta, b_g.z_NL)))

    np.testing.assert_allclose(new.g_params, state.g_params - 0.1 * jax.grad(loss_g_alt)(
        state.g_params), rtol=1e-6, atol=1e-7)
