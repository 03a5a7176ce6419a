"""The toy targets of WGAN-GP and FFJORD against their released generators (tests/toy_reference.py
transcribes them): the mixtures' modes exactly, every target's distribution by moments and
two-sample Kolmogorov-Smirnov tests on 20000 points of each, drawn in the compiled program
under vmap; and no mode metric where a target has no modes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import gan_jax as gj
from gan_jax.components import data, metrics, toy_targets
from toy_reference import released

N = 20_000
NAMES = list(toy_targets.TOYS)


@pytest.fixture(scope="module")
def drawn():
    """N samples of every target, all drawn in one compiled program, vmapped over two keys."""
    keys = jax.random.split(jax.random.key(24), 2)

    @jax.jit
    def draw(keys):
        return {name: jax.vmap(lambda k, t=t: t.sample(k, N // 2))(keys).reshape(N, 2)
                for name, (t, _) in toy_targets.TOYS.items()}

    return {name: np.asarray(x, np.float64) for name, x in draw(keys).items()}


def features(x):
    """Statistics of a 2-D sample whose means the two generators must share."""
    r = np.hypot(x[:, 0], x[:, 1])
    a = np.arctan2(x[:, 1], x[:, 0])
    # The last three see a spiral's handedness (a mirrored pinwheel fails them).
    return np.stack([x[:, 0], x[:, 1], x[:, 0] ** 2, x[:, 1] ** 2, x[:, 0] * x[:, 1], r,
                     np.cos(a), np.sin(a), np.cos(2 * a), np.sin(3 * a), np.sin(5 * a),
                     r * np.sin(5 * a), np.cos(5 * a + 2 * r)], 1)


@pytest.mark.parametrize("name", NAMES)
def test_every_target_is_its_released_distribution(name, drawn):
    ours, ref = drawn[name], released(name, N, seed=1)
    assert ours.shape == ref.shape == (N, 2) and np.all(np.isfinite(ours))
    # Means of each statistic: independent samples, so the difference has standard error
    # sqrt(var_a / n + var_b / n); 5 standard errors (two-sided p 6e-7 each, 143 comparisons).
    fa, fb = features(ours), features(ref)
    se = np.sqrt(fa.var(0) / N + fb.var(0) / N)
    z = np.abs(fa.mean(0) - fb.mean(0)) / se
    assert np.all(z < 5), (name, z.round(2))
    # Whole marginals: two-sample KS on the radius and three directions (p > 1e-4 each).
    u = np.array([[1, 0], [0, 1], [np.sqrt(0.5), np.sqrt(0.5)]])
    for a, b in [(np.hypot(*ours.T), np.hypot(*ref.T))] + [(ours @ v, ref @ v) for v in u]:
        assert stats.ks_2samp(a, b).pvalue > 1e-4, name


def test_the_comparison_tells_near_misses_apart(drawn):
    """The comparison above has power: WGAN-GP's and FFJORD's swiss rolls (noise .25 / 7.5 and
    1 / 5) fail its KS test, and a mirrored pinwheel fails its moments."""
    a, b = drawn["wgangp_swissroll"], released("ffjord_swissroll", N)
    assert stats.ks_2samp(np.hypot(*a.T), np.hypot(*b.T)).pvalue < 1e-10
    fa = features(drawn["ffjord_pinwheel"] * np.array([1, -1]))
    fb = features(released("ffjord_pinwheel", N, seed=1))
    z = np.abs(fa.mean(0) - fb.mean(0)) / np.sqrt(fa.var(0) / N + fb.var(0) / N)
    assert z.max() > 20


def test_the_mixtures_are_the_released_modes_exactly():
    r = 1 / np.sqrt(2)
    eight = np.array([(1, 0), (-1, 0), (0, 1), (0, -1), (r, r), (r, -r), (-r, r), (-r, -r)])
    grid = np.array([(2 * x, 2 * y) for x in range(-2, 3) for y in range(-2, 3)])
    for name, means, std, k in [("wgangp_8gaussians", 2 * eight / 1.414, .02 / 1.414, 8),
                                ("ffjord_8gaussians", 4 * eight / 1.414, .5 / 1.414, 8),
                                ("wgangp_25gaussians", grid / 2.828, .05 / 2.828, 25)]:
        t = gj.make_target(gj.make_config(dict(data=name, generator="mlp", discriminator="mlp")))
        assert data.has_modes(t) and t.num_modes == k
        np.testing.assert_allclose(t.means, means, rtol=0, atol=1e-15)
        np.testing.assert_allclose(t.stds, std, rtol=0, atol=1e-15)
        np.testing.assert_array_equal(t.weights, np.full(k, 1 / k))


def test_the_checkerboard_is_uniform_on_its_eight_squares(drawn):
    for x in (drawn["ffjord_checkerboard"], released("ffjord_checkerboard", N)):
        assert np.all((x >= -4) & (x < 4))
        col, row = np.floor(x[:, 0] / 2).astype(int), np.floor(x[:, 1] / 2).astype(int)
        assert np.all((col + row) % 2 == 0)
        counts = np.bincount((col + 2) * 4 + (row + 2), minlength=16)[(np.arange(16) // 4
                                                                      + np.arange(16) % 4) % 2 == 0]
        assert stats.chisquare(counts).pvalue > 1e-4, counts


def test_rings_and_circles_lie_on_their_radii(drawn):
    for name, radii, noise in [("ffjord_rings", 3 * np.array([1, .75, .5, .25]), .08),
                               ("ffjord_circles", np.array([3, 1.5]), .24)]:
        r = np.hypot(*drawn[name].T)
        nearest = np.min(np.abs(r[:, None] - radii[None]), 1)
        assert np.quantile(nearest, 0.99) < 3.5 * noise, name


def test_mode_metrics_only_for_the_mixtures():
    x = jax.ShapeDtypeStruct((64, 2), jnp.float32)
    for name, (t, _) in toy_targets.TOYS.items():
        # The record's keys, from the traced evaluation (nothing is compiled or run).
        out = jax.eval_shape(lambda r, f, t=t: metrics.sample_metrics(t, r, f), x, x)
        assert ("modes_captured" in out) == isinstance(t, data.GaussianMixture), name
    with pytest.raises(gj.ConfigError, match="data_std.*takes no options"):
        gj.make_config(dict(data="ffjord_moons", generator="mlp", discriminator="mlp",
                            data_std=0.1))


def test_a_table_of_modes_captured_over_targets_with_and_without_modes():
    """A target without modes has no modes_captured in its records: its cell says the metric
    is not defined for it, never a number (and the table does not fail reading its modes)."""
    base = dict(generator="mlp", discriminator="mlp")
    records = [{"config": dict(base, data=d), "seed": s, "status": "finished",
                "final": dict({"sliced_w1": 0.1 * s}, **({"modes_captured": 8} if m else {}))}
               for d, m in [("ffjord_moons", False), ("ffjord_8gaussians", True)]
               for s in (0, 1)]
    table = gj.make_table(records, by=("data",), metrics=("modes_captured",))
    n = {row.values[0]: row.summaries["modes_captured"].n for row in table.rows}
    assert n == {"ffjord_8gaussians": 2, "ffjord_moons": 0}
    text = gj.to_markdown(table)
    assert "| ffjord_moons | 2 | 0 | 0 | not defined for ffjord_moons (no modes) |" in text
    assert r"not defined for ffjord\_moons (no modes)" in gj.to_latex(table)
    row8, = [line for line in text.splitlines() if line.startswith("| ffjord_8gaussians |")]
    assert "not defined" not in row8 and "| 2 | 8 ± 0 |" in row8
