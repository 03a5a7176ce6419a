"""VEEGAN's 1200-D mixture (`veegan_1200d`): the published facts (10 modes of 700 dimensions
in 1200-D), sampling in-graph under vmap, and mode metrics that call the target's own samples
high quality and samples off its modes not."""

import hashlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import config as config_lib
from gan_jax.commands import cli
from gan_jax.components import data, metrics
from gan_jax.core.errors import ConfigError

HQ = data.VEEGAN_1200D_HQ
# sha256 of the preset's means and supports (NumPy default_rng(1200)), first 16 hex digits.
PINNED_DIGEST = "9f5e7536a98dbce6"


@pytest.fixture(scope="module")
def target():
    return data.preset("veegan_1200d").build()


@pytest.fixture(scope="module")
def real(target):
    return np.asarray(target.sample(jax.random.key(0), 2500))


def test_the_published_facts(target):
    assert (target.num_modes, target.dim) == (10, 1200)
    assert data.dim_of("veegan_1200d") == 1200
    np.testing.assert_array_equal(target.support_dims, np.full(10, 700))
    np.testing.assert_allclose(target.weights, np.full(10, 0.1))
    assert data.has_modes(target) and data.has_bits(target)
    # Each mode its own subset: no two supports alike.
    assert len({m.tobytes() for m in target.support}) == 10


def test_the_preset_is_fixed_by_its_seed(target):
    again = data.veegan_1200d()
    np.testing.assert_array_equal(again.means, target.means)
    np.testing.assert_array_equal(again.support, target.support)
    # Pinned: a change of NumPy's generator or of the construction shows here.
    digest = hashlib.sha256(target.means.tobytes() + target.support.tobytes()).hexdigest()
    assert set(np.unique(target.means)) == {-1.0, 1.0} and target.stds.tolist() == [0.05] * 10
    assert digest[:16] == PINNED_DIGEST
    assert data.veegan_1200d(seed=1).means.tobytes() != target.means.tobytes()


def test_one_mode_spans_700_coordinates(target):
    """A mode's samples vary with std 0.05 on its 700 coordinates, not at all off them; their
    covariance has rank 700."""
    k, n = 3, 760
    noise = jax.random.normal(jax.random.key(1), (n, 1200))
    x = np.asarray(target.place(jnp.full((n,), k, jnp.int32), noise), np.float64)
    on, off = target.support[k], ~target.support[k]
    np.testing.assert_array_equal(x[:, off], np.broadcast_to(target.means[k, off], (n, 500)))
    var = x[:, on].var(axis=0)
    assert abs(np.sqrt(var.mean()) - 0.05) < 0.001
    assert np.linalg.matrix_rank(x - x.mean(0), tol=1e-4) == 700


def test_sampling_runs_in_graph_under_vmap(target):
    draw = jax.jit(jax.vmap(lambda key: target.sample(key, 64)))
    x = np.asarray(draw(jax.random.split(jax.random.key(2), 3)))
    assert x.shape == (3, 64, 1200) and x.dtype == np.float32
    assert not np.array_equal(x[0], x[1])
    one = np.asarray(target.sample(jax.random.split(jax.random.key(2), 3)[1], 64))
    np.testing.assert_allclose(x[1], one, rtol=1e-6, atol=1e-6)   # jit fuses a multiply-add


def test_the_modes_are_drawn_evenly(target, real):
    nearest, _ = metrics.mode_assignment(target, real, HQ)
    counts = np.bincount(np.asarray(nearest), minlength=10)
    assert counts.min() > 200 and counts.max() < 300      # 250 expected, sd about 15


def test_the_targets_own_samples_are_high_quality(target, real):
    out = metrics.mode_metrics(target, jnp.asarray(real), hq_threshold=HQ)
    assert int(out["modes_captured"]) == 10
    assert float(out["hq_fraction"]) == 1.0
    assert float(out["reverse_kl"]) < 0.01
    # Their worst coordinate misses by about 3-5 stds; their Euclidean distance is about
    # sqrt(700) = 26.5 stds, which a threshold of 10 on it would call low quality.
    nearest, _ = metrics.mode_assignment(target, real, HQ)
    worst = np.asarray(target.hq_distance(jnp.asarray(real), nearest))
    assert 2.0 < worst.min() and worst.max() < 6.0
    euclid = np.sqrt(np.min(np.asarray(metrics.standardized_sq_distances(target, real)), 1))
    assert abs(euclid.mean() - np.sqrt(700)) < 0.5


def test_a_dropped_mode_is_missed(target, real):
    nearest, _ = metrics.mode_assignment(target, real, HQ)
    kept = real[np.asarray(nearest) != 4]
    out = metrics.mode_metrics(target, jnp.asarray(kept), hq_threshold=HQ)
    assert int(out["modes_captured"]) == 9
    assert float(out["hq_fraction"]) == 1.0
    assert abs(float(out["reverse_kl"]) - np.log(10 / 9)) < 0.02


def test_samples_off_the_modes_are_not_high_quality(target, real):
    means = target.means.astype(np.float32)
    far = np.stack([np.zeros(1200, np.float32),                   # the origin
                    0.5 * (means[0] + means[1]),                  # between two modes
                    -means[2]])                                   # a mode's mirror image
    out = metrics.mode_metrics(target, jnp.asarray(far), hq_threshold=HQ)
    assert float(out["hq_fraction"]) == 0.0 and int(out["modes_captured"]) == 0
    # One coordinate off a mode's support moved by 11 stds spoils a sample; by 9 it does not.
    k = 6
    c = int(np.flatnonzero(~target.support[k])[0])
    x = means[k].copy()
    for shift, hq in ((11 * 0.05, False), (9 * 0.05, True)):
        x[c] = means[k, c] + shift
        nearest, good = metrics.mode_assignment(target, jnp.asarray(x[None]), HQ)
        assert int(nearest[0]) == k and bool(good[0]) is hq


def test_sample_metrics_in_1200_d(target, real):
    """Every record's metrics, compiled for the 1200-D target (the MMD by its matrix form)."""
    fake = jnp.asarray(real[:200])
    other = target.sample(jax.random.key(5), 200)
    run = jax.jit(lambda a, b: metrics.sample_metrics(target, a, b, hq_threshold=HQ))
    out = run(other, fake)
    assert int(out["modes_captured"]) == 10 and float(out["hq_fraction"]) == 1.0
    assert abs(float(out["mmd2"])) < 0.01 and np.isfinite(float(out["sliced_w1"]))
    worse = run(other, fake.at[:, :600].add(0.5))
    assert float(worse["mmd2"]) > 10 * abs(float(out["mmd2"])) + 0.01
    assert float(worse["hq_fraction"]) == 0.0


def test_a_configuration_names_it(target):
    nets = {"generator": "mlp", "discriminator": "mlp", "latent_dim": 16}
    cfg = config_lib.make_config({"data": "veegan_1200d", "hq_threshold": HQ, **nets})
    np.testing.assert_array_equal(data.make_target(cfg).means, target.means)
    with pytest.raises(ConfigError, match="data_std"):
        config_lib.make_config({"data": "veegan_1200d", "data_std": 0.1, "hq_threshold": HQ,
                                **nets})
    # The default threshold (3 stds) would call most of its own samples poor: refused.
    with pytest.raises(ConfigError, match=r"hq_threshold: got 3.0; must be at least 5.0 for "
                                          r"data = 'veegan_1200d'"):
        config_lib.make_config({"data": "veegan_1200d", **nets})


def test_list_shows_it(capsys):
    assert cli.main(["list", "target"]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if "veegan_1200d" in ln]
    assert len(line) == 1 and "700" in line[0] and "1200" in line[0]
