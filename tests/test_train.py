"""The training loop: batching, compilation, determinism, explicit initial values, divergence."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import config, engine, results, train

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


def test_vmapped_equals_single_runs():
    cfg = small_config()
    seeds = [0, 1, 2, 3]
    batched = engine.run_batch([cfg] * 4, seeds)
    single = jax.jit(train.make_run(config.static_part(cfg)))
    hp = config.traced_part(cfg)
    for i, seed in enumerate(seeds):
        one = single(hp, jax.random.key(seed))
        _tree_close(jax.tree.map(lambda x: x[i], batched), one)


def test_large_calls_sort_with_the_network_and_get_the_same_numbers():
    # A call of engine.NETWORK_RUNS runs or more traces the final evaluation's sort as a
    # network (3000 values > rand.MAX_NETWORK); its runs equal those of a small call.
    cfg = small_config(steps=1, log_every=1, eval_samples=3000)
    n = engine.NETWORK_RUNS
    fn = engine.compiled_run(config.static_part(cfg))

    def xla_sorts(runs):
        hps = config.stack_hparams([config.traced_part(cfg)] * runs)
        return fn.lower(hps, engine.seed_keys(np.arange(runs))).as_text().count("stablehlo.sort")

    assert xla_sorts(n) == xla_sorts(2) - 1      # the final sort became the network
    large = engine.run_batch([cfg] * n, list(range(n)))
    small = engine.run_batch([cfg] * 2, [0, n - 1])
    for i, j in ((0, 0), (1, n - 1)):
        _tree_close(jax.tree.map(lambda x: x[i], small), jax.tree.map(lambda x: x[j], large))


def test_same_seed_same_numbers_and_different_seeds_differ():
    cfg = small_config()
    a = engine.run_batch([cfg] * 3, [5, 6, 5])
    _tree_close(jax.tree.map(lambda x: x[0], a), jax.tree.map(lambda x: x[2], a), rtol=0, atol=0)
    assert not np.allclose(a.history["w1"][0], a.history["w1"][1])


def test_new_hyperparameters_do_not_recompile():
    base = small_config()
    fn = engine.compiled_run(config.static_part(base))
    engine.run_batch([base] * 2, [0, 1])
    compiled = fn._cache_size()
    engine.run_batch([base.replace(lr_g=0.01, lr_d=0.2, g_init=(1.0, 2.0))] * 2, [3, 4])
    assert fn._cache_size() == compiled
    # a different static part is a different program
    assert config.static_part(base.replace(d_updates=1)) != config.static_part(base)
    assert config.static_part(base.replace(lr_d=0.2)) == config.static_part(base)


def test_explicit_initial_values_are_used_as_given():
    cfg = small_config(g_init=[0.7, -1.25], d_init=[0.3, 0.4], lr_g=1e-30, lr_d=1e-30)
    out = engine.run_batch([cfg], [11])
    np.testing.assert_allclose(out.state.g_params[0], [0.7, -1.25], rtol=1e-7)
    np.testing.assert_allclose(out.state.d_params[0], [0.3, 0.4], rtol=1e-7)
    np.testing.assert_allclose(out.history["g_params"][0, 0], [0.7, -1.25], rtol=1e-7)


def test_random_initial_values_come_from_the_key():
    cfg = config.make_config({**SMALL, "g_init": None, "d_init": None, "generator": "piecewise"})
    out = engine.run_batch([cfg] * 3, [1, 2, 1])
    np.testing.assert_array_equal(out.history["g_params"][0, 0], out.history["g_params"][2, 0])
    assert not np.allclose(out.history["g_params"][0, 0], out.history["g_params"][1, 0])


def test_divergence_is_recorded_and_isolated():
    ok, bad = small_config(), small_config(lr_g=1e30, lr_d=1e30)
    out = engine.run_batch([ok, bad, ok], [0, 1, 2])
    div = out.state.diverged_at
    assert div[0] == -1 and div[2] == -1
    assert 0 <= div[1] <= 8
    alone = engine.run_batch([ok, ok], [0, 2])
    _tree_close(jax.tree.map(lambda x: x[np.array([0, 2])], out), alone)
    recs = results.make_records("t", [ok, bad, ok], [0, 1, 2], out)
    assert [r["status"] for r in recs] == ["ok", "diverged", "ok"]
    assert recs[1]["diverged_at"] == int(div[1]) and recs[0]["diverged_at"] is None
    assert recs[1]["final"]["w1"] is None                    # non-finite written as null
    assert recs[0]["run_id"] != recs[2]["run_id"]


@pytest.mark.parametrize("update", ["simultaneous"])
def test_simultaneous_updates_run(update):
    cfg = small_config(update=update, d_updates=1, g_init=None, d_init=None,
                       generator="mlp", discriminator="mlp", g_width=8, d_width=8,
                       loss="wgan_gp", optimizer="adam", lr_g=1e-3, lr_d=1e-3, r1_weight=1.0)
    out = engine.run_batch([cfg] * 2, [0, 1])
    assert np.all(out.state.diverged_at == -1)
    assert np.all(np.isfinite(out.history["loss_d"]))
