"""PacGAN's model and data options: batch normalization in the generator (g_norm), maxout in the
discriminator (d_pieces), N(0, 0.02^2) initialization (weight_init) and a finite training set
read in epochs (dataset_size). Each against a hand-written reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from gan_jax import config
from gan_jax.components import data, methods, models, optim
from gan_jax.engine import programs as engine
from gan_jax.core import rand
from gan_jax.records import results
from gan_jax.training import train

RING = dict(data="ring_2d", generator="mlp", discriminator="mlp", g_width=6, g_depth=2,
            d_width=5, d_depth=2, batch_size=8, steps=4, log_every=2, eval_batch=16,
            history_samples=32, eval_samples=32)


def _np_batch_norm(a, scale, shift, groups=1, eps=models.BN_EPSILON):
    """Training-mode batch normalization in NumPy (float64): sample i in sub-batch i mod
    groups; returns the normalized values and the sub-batches' mean and divisor, averaged."""
    a = np.asarray(a, np.float64)
    out = np.empty_like(a)
    means, stds = [], []
    for g in range(groups):
        sub = a[g::groups]
        mean = sub.mean(axis=0)
        std = np.sqrt(((sub - mean) ** 2).mean(axis=0) + eps)   # biased variance
        out[g::groups] = (sub - mean) / std * scale + shift
        means.append(mean)
        stds.append(std)
    return out, np.mean(means, axis=0), np.mean(stds, axis=0)


def _np_bn_mlp(layers, x, groups=1, stats=None):
    """The batch-normalized MLP (ReLU) by hand: training mode, or inference with `stats`."""
    h, seen = np.asarray(x, np.float64), []
    for i, layer in enumerate(layers[:-1]):
        w, scale, shift = (np.asarray(v, np.float64) for v in layer)
        a = h @ w
        if stats is None:
            a, mean, std = _np_batch_norm(a, scale, shift, groups)
            seen.append((mean, std))
        else:
            a = (a - np.asarray(stats[i].mean)) / np.asarray(stats[i].std) * scale + shift
        h = np.maximum(a, 0.0)
    out = h @ np.asarray(layers[-1].w, np.float64) + np.asarray(layers[-1].b, np.float64)
    return out, seen


def _bn_net():
    net = models.mlp(3, 2, 5, 2, "relu", norm="batch")
    layers = net.init(jax.random.key(0))
    # Move scale and shift off their initial 1 and 0, so that both are exercised.
    k1, k2 = jax.random.split(jax.random.key(1))
    layers = tuple(
        layer._replace(scale=1 + 0.3 * jax.random.normal(jax.random.fold_in(k1, i), (5,)),
                       shift=0.2 * jax.random.normal(jax.random.fold_in(k2, i), (5,)))
        if isinstance(layer, models.NormDense) else layer for i, layer in enumerate(layers))
    return net, layers


def test_batch_norm_layers_have_no_hidden_bias_and_start_at_unit_scale():
    net = models.mlp(3, 2, 5, 2, "relu", norm="batch")
    layers = net.init(jax.random.key(0))
    assert [type(layer).__name__ for layer in layers] == ["NormDense", "NormDense", "Dense"]
    for layer in layers[:-1]:
        np.testing.assert_array_equal(layer.scale, 1.0)
        np.testing.assert_array_equal(layer.shift, 0.0)
    # The hidden weights are the plain MLP's: batch normalization only drops the biases.
    plain = models.mlp(3, 2, 5, 2, "relu").init(jax.random.key(0))
    for a, b in zip(layers, plain):
        np.testing.assert_array_equal(a.w, b.w)
    np.testing.assert_array_equal(layers[-1].b, plain[-1].b)


@pytest.mark.parametrize("groups", [1, 2])
def test_batch_norm_training_mode_equals_numpy(groups):
    net, layers = _bn_net()
    x = jax.random.normal(jax.random.key(2), (12, 3))
    out, stats = net.norm.forward(layers, x, None, groups)
    want, seen = _np_bn_mlp(layers, x, groups)
    np.testing.assert_allclose(out, want, rtol=2e-5, atol=2e-5)
    for got, (mean, std) in zip(stats, seen):
        np.testing.assert_allclose(got.mean, mean, rtol=2e-5, atol=2e-6)
        np.testing.assert_allclose(got.std, std, rtol=2e-5, atol=2e-6)
    if groups == 1:
        np.testing.assert_allclose(net.apply(layers, x), want, rtol=2e-5, atol=2e-5)
    # Training mode: a sample's output depends on the rest of its batch.
    assert not np.allclose(net.norm.forward(layers, x[:6], None, groups)[0], out[:6])


def test_batch_norm_inference_mode_uses_the_given_statistics():
    net, layers = _bn_net()
    x = jax.random.normal(jax.random.key(2), (12, 3))
    stats = tuple(models.BatchStats(0.1 * jnp.arange(5.0), 0.5 + 0.1 * jnp.arange(5.0))
                  for _ in range(2))
    out, same = net.norm.forward(layers, x, stats)
    want, _ = _np_bn_mlp(layers, x, stats=stats)
    np.testing.assert_allclose(out, want, rtol=2e-5, atol=2e-5)
    assert same is stats
    # Inference mode: each sample on its own.
    np.testing.assert_allclose(net.norm.forward(layers, x[:5], stats)[0], out[:5], rtol=1e-5,
                               atol=1e-6)
    init = net.norm.init()
    assert len(init) == 2
    np.testing.assert_array_equal(init[0].mean, 0.0)
    np.testing.assert_array_equal(init[0].std, 1.0)


def test_maxout_is_the_max_over_pieces_without_activation():
    net = models.mlp(3, 1, 4, 2, "tanh", pieces=3)
    layers = net.init(jax.random.key(0))
    assert [layer.w.shape for layer in layers] == [(3, 12), (4, 12), (4, 1)]
    x = 3.0 * jax.random.normal(jax.random.key(1), (10, 3))
    h = np.asarray(x, np.float64)
    for layer in layers[:-1]:
        a = h @ np.asarray(layer.w, np.float64) + np.asarray(layer.b, np.float64)
        h = np.stack([a[:, 3 * j:3 * j + 3].max(axis=1) for j in range(4)], axis=1)
    want = h @ np.asarray(layers[-1].w, np.float64) + np.asarray(layers[-1].b, np.float64)
    np.testing.assert_allclose(net.apply(layers, x), want, rtol=1e-5, atol=1e-5)
    # Uniform initialization bounds by the layer's input width, not width x pieces.
    assert np.max(np.abs(layers[1].w)) <= 1 / np.sqrt(4)
    assert np.max(np.abs(layers[1].w)) > 1 / np.sqrt(12)


def test_spectral_norm_normalizes_maxout_weight_matrices():
    cfg = config.make_config({**RING, "d_pieces": 3, "spectral_norm": True})
    net = models.make_discriminator(cfg)
    layers = net.init(jax.random.key(0))
    assert layers[0].w.shape == (2, 15)
    us = models.sn_init(layers, jax.random.key(1))
    power = jax.jit(models.sn_power_iteration)
    for _ in range(100):
        us = power(layers, us)
    for layer in models.sn_normalize(layers, us):
        np.testing.assert_allclose(np.linalg.svd(np.asarray(layer.w), compute_uv=False)[0],
                                   1.0, rtol=1e-4)


def test_normal_initialization_draws_small_weights_and_zero_biases():
    net = models.mlp(2, 2, 400, 2, "relu", norm="batch", weight_init="normal_0.02")
    layers = net.init(jax.random.key(0))
    assert abs(float(jnp.std(layers[1].w)) - 0.02) < 0.001
    np.testing.assert_array_equal(layers[-1].b, 0.0)
    np.testing.assert_array_equal(layers[0].scale, 1.0)
    d = models.mlp(4, 1, 200, 3, "relu", pieces=5, weight_init="normal_0.02").init(
        jax.random.key(1))
    assert abs(float(jnp.std(d[1].w)) - 0.02) < 0.001
    for layer in d:
        np.testing.assert_array_equal(layer.b, 0.0)


def test_he_initialization_is_tflibs_he_uniform():
    # tflib's Linear(initialization='he'): U(+-sqrt(3) * sqrt(2 / fan_in)), zero biases.
    layers = models.mlp(2, 2, 512, 3, "relu", weight_init="he_uniform").init(jax.random.key(2))
    for layer, fan_in in zip(layers, (2, 512, 512, 512)):
        w = np.asarray(layer.w)
        bound = np.sqrt(6.0 / fan_in)
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
        if w.size > 1000:   # std within 3 % of sqrt(2 / fan_in) (its se is about 0.2 %)
            assert abs(w.std() / np.sqrt(2.0 / fan_in) - 1) < 0.03
        np.testing.assert_array_equal(layer.b, 0.0)


def test_default_mlp_initialization_is_unchanged():
    # The initialization every earlier run used, written out: its draws must not move.
    sizes = [2, 7, 7, 1]
    key = jax.random.key(5)
    want = []
    for k, (n_in, n_out) in zip(jax.random.split(key, 3), zip(sizes, sizes[1:])):
        kw, kb = jax.random.split(k)
        bound = 1.0 / np.sqrt(n_in)
        want.append((jax.random.uniform(kw, (n_in, n_out), minval=-bound, maxval=bound),
                     jax.random.uniform(kb, (n_out,), minval=-bound, maxval=bound)))
    got = models.mlp(2, 1, 7, 2, "relu").init(key)
    for layer, (w, b) in zip(got, want):
        np.testing.assert_array_equal(layer.w, w)
        np.testing.assert_array_equal(layer.b, b)


@pytest.mark.parametrize("changes", [
    dict(g_norm="batch"), dict(d_pieces=5), dict(g_norm="batch", d_pieces=3, pack=3),
    dict(weight_init="normal_0.02", g_norm="batch", g_depth=4, d_pieces=2, latent_dim=3),
    dict(generator="linear", data="bimodal_1d", d_pieces=4, weight_init="normal_0.02"),
])
def test_parameter_counts_are_the_families_own(changes):
    cfg = config.make_config({**RING, **changes})
    for role in ("generator", "discriminator"):
        params = jax.eval_shape(models.make_model(cfg, role).init, jax.random.key(0))
        flat = jax.eval_shape(lambda p: ravel_pytree(p)[0], params)
        assert models.num_params(cfg, role) == flat.size
    # g_init in ravel order round-trips through the parameters.
    n = models.num_params(cfg, "generator")
    generator = models.make_generator(cfg)      # one program, not an eager one per operation
    g = jax.jit(lambda key, flat: models.init_params(generator, key, flat))(
        jax.random.key(0), np.arange(n) / n)
    np.testing.assert_allclose(ravel_pytree(g)[0], np.arange(n) / n, rtol=1e-6)


def test_configuration_refuses_the_options_outside_their_families():
    cases = [
        (dict(g_norm="batch"), "g_norm", "generator = 'linear'"),
        (dict(g_norm="layer", generator="mlp"), "g_norm", "none, batch"),
        (dict(RING, g_norm="batch", batch_size=1), "g_norm", "batch_size >= 2"),
        (dict(d_pieces=3), "d_pieces", "discriminator = 'logistic'"),
        (dict(RING, d_pieces=0), "d_pieces", "positive integer"),
        (dict(weight_init="normal_0.02"), "weight_init", "discriminator = 'logistic'"),
        (dict(weight_init="normal"), "weight_init", "uniform, normal_0.02, he_uniform"),
        (dict(dataset_size=-1), "dataset_size", "integer >= 0"),
        (dict(RING, dataset_size=10), "dataset_size", "8 x 1 x 2 = 16 (batch_size = 8"),
        (dict(RING, dataset_size=20, pack=3, update="simultaneous", d_updates=1),
         "dataset_size", "8 x 3 x 1 = 24"),
        (dict(RING, dataset_size=100, steps=2**28, log_every=2**28, d_updates=1),
         "dataset_size", "below 2**31"),
    ]
    for values, field, rule in cases:
        with pytest.raises(config.ConfigError) as e:
            config.make_config(values)
        msg = str(e.value)
        assert msg.startswith(field + ":") and rule in msg, msg
    assert "batch_size" in str(pytest.raises(config.ConfigError, config.make_config,
                                             dict(RING, dataset_size=10)).value)
    config.make_config(dict(RING, dataset_size=16))
    config.make_config(dict(RING, generator="linear", data="bimodal_1d",
                            weight_init="normal_0.02"))     # the MLP discriminator's


def test_added_fields_leave_earlier_run_ids_alone():
    cfg = config.make_config(RING)
    for name in ("g_norm", "d_pieces", "weight_init", "dataset_size"):
        assert name in config.ADDED_FIELDS and name not in cfg.identity_dict()
    base = results.run_id(cfg, 0)
    changed = {results.run_id(cfg.replace(**c), 0) for c in (
        dict(g_norm="batch"), dict(d_pieces=2), dict(weight_init="normal_0.02"),
        dict(dataset_size=64))}
    assert base not in changed and len(changed) == 4


@pytest.mark.parametrize("update", methods.METHODS)
@pytest.mark.parametrize("nk", [False, True])
def test_real_batches_per_step_are_the_methods_slots(update, nk):
    values = dict(RING, update=update, d_updates=2 if update in ("alternating", "unrolled")
                  else 1, nk_eta=0.1 if nk else 0.0)
    cfg = config.make_config(values)
    static, hp = config.static_part(cfg), config.traced_part(cfg)
    parts = train.make_parts(static)
    tx_g, tx_d = optim.player_optimizers(static, hp)
    slots = train.make_method(static, parts, hp, train.make_game(static, parts, hp),
                              tx_g, tx_d).slots
    want = slots.d + (slots.g if nk else 0)
    assert config.real_batches_per_step(update, cfg.d_updates, nk) == want
    assert config.real_samples_per_step(static) == want * cfg.batch_size


# ----------------------------------------------------------------------------- training sets


def test_every_epoch_visits_every_sample_once_in_its_own_order():
    n = 1000
    ts = data.TrainingSet(jnp.zeros((n, 1)), jax.random.key(7))
    stream = jax.jit(data.stream_indices, static_argnums=2)
    epochs = [np.asarray(stream(ts, e * n, n)) for e in range(3)]
    for order in epochs:
        np.testing.assert_array_equal(np.sort(order), np.arange(n))
    assert np.mean(epochs[0] != epochs[1]) > 0.9 and np.mean(epochs[1] != epochs[2]) > 0.9
    # A stretch that crosses an epoch's end: the rest of one epoch, then the next one's start.
    np.testing.assert_array_equal(stream(ts, 2 * n - 30, 100),
                                  np.concatenate([epochs[1][-30:], epochs[2][:70]]))
    # Small sets too, down to one sample.
    for m in (1, 3):
        small = data.TrainingSet(jnp.zeros((m, 1)), jax.random.key(m))
        np.testing.assert_array_equal(np.sort(stream(small, 5 * m, m)), np.arange(m))


def test_permutation_is_unbiased_in_position():
    keys = jax.random.split(jax.random.key(0), 4000)
    first = np.asarray(jax.jit(jax.vmap(lambda k: rand.permute(k, jnp.zeros((), jnp.int32),
                                                               5)))(keys))
    counts = np.bincount(first, minlength=5)
    assert np.all(np.abs(counts - 800) < 4 * np.sqrt(800 * 0.8)), counts


def test_real_batches_read_the_training_set_in_order():
    cfg = config.make_config(dict(RING, pack=2, dataset_size=96))
    static, hp = config.static_part(cfg), config.traced_part(cfg)
    parts = train.make_parts(static)
    tx_g, tx_d = optim.player_optimizers(static, hp)
    ts = jax.jit(lambda key: data.training_set(parts.target, key, cfg.dataset_size))(
        jax.random.key(3))
    draw, _ = train.make_step(static, parts, hp, tx_g, tx_d, ts)
    draw = jax.jit(draw)
    per_step = config.real_samples_per_step(cfg)
    assert per_step == 2 * 8 * 2 and cfg.dataset_size % per_step == 0
    stream = jax.jit(data.stream_batch, static_argnums=2)
    seen = []
    for i in range(6):                          # two epochs of three steps
        batches = draw(jax.random.key(10 + i), i)
        assert batches[-1].real_ND is None      # the generator's batch reads nothing
        reals = np.concatenate([b.real_ND for b in batches[:2]])
        np.testing.assert_array_equal(reals, stream(ts, i * per_step, per_step))
        rows = {tuple(r) for r in np.asarray(ts.samples_ND)}
        assert all(tuple(r) in rows for r in reals)
        seen.append(reals)
    for epoch in (seen[:3], seen[3:]):          # every sample once per epoch
        got = np.concatenate(epoch)
        assert len({tuple(r) for r in got}) == cfg.dataset_size
    assert not np.array_equal(np.concatenate(seen[:3]), np.concatenate(seen[3:]))
    # The fresh-sample draw of the same step has the real words; the set's has none.
    fresh_draw, _ = train.make_step(config.static_part(cfg.replace(dataset_size=0)), parts,
                                    hp, tx_g, tx_d)
    fresh = jax.eval_shape(fresh_draw, jax.random.key(10))    # shapes only: nothing to run
    assert fresh[0].real_ND.shape == seen[0][:16].shape


def _bn_config(**changes):
    return config.make_config(dict(RING, g_norm="batch", pack=2, **changes))


def test_population_statistics_move_by_a_twentieth_after_each_step():
    cfg = _bn_config(ema_beta=0.5)
    static, hp = config.static_part(cfg), config.traced_part(cfg)
    parts = train.make_parts(static)
    tx_g, tx_d = optim.player_optimizers(static, hp)
    draw, step = train.make_step(static, parts, hp, tx_g, tx_d)
    g = parts.generator.init(jax.random.key(1))
    g = jax.tree.map(lambda x: x + 0.1, g)         # scale 1.1, shift 0.1: not the identity
    d = parts.discriminator.init(jax.random.key(2))
    state = train.init_state(static, parts, hp, tx_g, tx_d, g, d, jax.random.key(0))
    ema = state.method                              # the averaged generator's wrapper
    state = state._replace(method=ema._replace(g=jax.tree.map(lambda x: 0.9 * x, g)))
    for s in state.g_bn:
        np.testing.assert_array_equal(s.mean, 0.0)
        np.testing.assert_array_equal(s.std, 1.0)
    batches = draw(jax.random.key(3))
    new = jax.jit(step)(state, batches)
    z = batches[-1].z_NL                            # the generator's batch
    for params, running in ((state.g_params, new.g_bn), (train.averaged_generator(state)[0],
                                                       train.averaged_generator(new)[1])):
        _, seen = _np_bn_mlp(params, z, groups=2)   # at the parameters the step started from
        for got, (mean, std) in zip(running, seen):
            np.testing.assert_allclose(got.mean, 0.05 * mean, rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(got.std, 0.95 + 0.05 * std, rtol=1e-5, atol=1e-6)
    assert not np.allclose(new.g_params[0].w, state.g_params[0].w)   # and the step trained


def test_training_normalizes_each_place_in_the_packs_on_its_own():
    cfg = _bn_config()
    static = config.static_part(cfg)
    parts = train.make_parts(static)
    g = parts.generator.init(jax.random.key(1))
    z = jax.random.normal(jax.random.key(2), (16, 2))
    want, _ = _np_bn_mlp(g, z, groups=2)
    np.testing.assert_allclose(train.generator_view(static, parts)(g, z), want, rtol=2e-5,
                               atol=2e-5)
    stats = parts.generator.norm.init()
    np.testing.assert_allclose(train.generate(parts, g, z, stats),
                               _np_bn_mlp(g, z, stats=stats)[0], rtol=2e-5, atol=2e-5)


@pytest.mark.slow   # one compilation of a whole run (~30 s on 2 loaded cores)
def test_a_pacgan_shaped_run_trains_and_evaluates_with_population_statistics():
    cfg = config.make_config(dict(
        data="ring_2d", generator="mlp", discriminator="mlp", g_width=16, g_depth=2,
        d_width=8, d_depth=2, g_norm="batch", d_pieces=3, weight_init="normal_0.02",
        dataset_size=400, pack=2, update="simultaneous", d_updates=1, optimizer="adam",
        lr_g=1e-3, lr_d=1e-3, beta1=0.8, batch_size=20, steps=20, log_every=10,
        eval_batch=40, history_samples=200, eval_samples=200, spectral_norm=True,
        ema_beta=0.9))
    out = engine.run_batch([cfg] * 2, [0, 1], keep_samples=8)
    for name in ("modes_captured", "hq_fraction", "reverse_kl", "sliced_w1",
                 "ema_sliced_w1"):
        assert np.all(np.isfinite(out.final[name])), name
        assert np.all(np.isfinite(out.history[name])), name
    for name in ("loss_d", "loss_g", "grad_norm_g", "grad_norm_d"):
        assert np.all(np.isfinite(out.history[name])), name
    assert np.all(out.state.diverged_at == -1)
    # 21 steps from std 1 at rate 0.05: the divisor has moved most of the way to the batches'.
    for s in out.state.g_bn:
        assert np.all(s.std < 0.95 ** 21 + 0.3) and np.all(np.isfinite(s.mean))
    assert len(train.averaged_generator(out.state)[1]) == 2
    # The kept samples are the generator under its population statistics, on the final
    # evaluation's z (train.make_run: the eval key's second half).
    parts = train.make_parts(config.static_part(cfg))
    for run in range(2):
        k_eval = jax.random.split(jax.random.key(run))[1]
        z = train.eval_draws(parts, k_eval, cfg.eval_samples).z_NL[:8]
        state = jax.tree.map(lambda x: x[run], out.state)
        np.testing.assert_allclose(out.samples[run],
                                   train.generate(parts, state.g_params, z, state.g_bn),
                                   rtol=1e-4, atol=1e-5)
