"""The Sinkhorn divergence (metrics.sinkhorn_divergence, the `sinkhorn_eps*` extra metrics)
against independent references: POT's log-domain Sinkhorn plans in float64 for the entropic
costs, exact W2^2 by an assignment (SciPy) and by POT's network simplex for small eps, and
answers known in closed form (a translated sample, a dropped mode)."""

import functools

import jax
import numpy as np
import pytest
from scipy import optimize, spatial

import gan_jax as gj
from gan_jax.components import metrics, toy_targets

ot = pytest.importorskip("ot")   # POT, in the `dev` extra

N = 200


def reference_ot_eps(x, y, eps):
    """OT_eps = <P, C> + eps KL(P | a x b) in float64, P POT's log-domain Sinkhorn plan,
    reached by halving eps from max C with warm-started scalings (as the metric anneals)."""
    x, y = np.float64(x), np.float64(y)
    c = ot.dist(x, y)                      # squared Euclidean
    a, b = np.full(len(x), 1 / len(x)), np.full(len(y), 1 / len(y))
    e, warm = c.max(), None
    while True:
        e_next = max(e / 2, eps)
        if warm is not None:
            warm = (warm[0] * e / e_next, warm[1] * e / e_next)   # same potentials, new eps
        e = e_next
        with np.errstate(over="ignore"):     # POT's log also holds exp(log-scalings), unused
            plan, log = ot.sinkhorn(a, b, c, e, method="sinkhorn_log", log=True, warn=False,
                                    warmstart=warm, stopThr=1e-9,
                                    numItermax=10000 if e == eps else 20)
        if e == eps:
            break
        warm = (log["log_u"], log["log_v"])
    kl = np.sum(plan * np.log(np.maximum(plan, 1e-300) / np.outer(a, b)))
    return np.sum(plan * c) + eps * kl


def exact_w2sq(x, y):
    """W2^2 of two equal-size uniform samples: the optimal assignment (SciPy)."""
    c = spatial.distance.cdist(np.float64(x), np.float64(y), "sqeuclidean")
    rows, cols = optimize.linear_sum_assignment(c)
    return c[rows, cols].mean()


def cases(n=N):
    """Named (x, y) pairs of n 2-D points each, float32."""
    rng = np.random.default_rng(0)
    g = lambda *shape: rng.standard_normal(shape)
    eight = toy_targets.TOYS["ffjord_8gaussians"][0]
    real8 = np.asarray(eight.sample(jax.random.key(1), n))
    fake8 = np.asarray(eight.sample(jax.random.key(2), 2 * n))
    dropped = fake8[np.argmin(((fake8[:, None] - eight.means[None]) ** 2).sum(-1), 1) != 0][:n]
    x = g(n, 2)
    out = {"same law": (x, g(n, 2)),
           "translated": (x, x + np.array([0.6, -0.8])),          # |v|^2 = 1
           "disjoint": (x, g(n, 2) + 20.0),
           "full mixture": (real8, fake8[:n]),
           "a mode dropped": (real8, dropped)}
    return {k: (np.float32(a), np.float32(b)) for k, (a, b) in out.items()}


EPS = (0.01, 0.1, 1.0)


@functools.cache
def computed(n=N, eps_values=EPS):
    """(cases, {eps: (ot_xy, ot_xx, ot_yy, iterations) per case}) in one compiled program per
    eps, vmapped over the cases."""
    c = cases(n)
    x = np.stack([a for a, _ in c.values()])
    y = np.stack([b for _, b in c.values()])
    out = {}
    for eps in eps_values:
        terms = jax.jit(jax.vmap(functools.partial(metrics.sinkhorn_terms, eps=eps)))(x, y)
        out[eps] = {name: [float(np.asarray(t)[i]) for t in terms] for i, name in enumerate(c)}
    return c, out


def divergence(terms):
    ot_xy, ot_xx, ot_yy, _ = terms
    return ot_xy - 0.5 * (ot_xx + ot_yy)


def check_against_pot(n, eps_values, names=None):
    """Each of the three entropic costs within 1e-4 relative (+ 1e-5 absolute) of POT's:
    float32 costs (up to 800 here) carry a relative error of about 1e-6 per operation, and the
    loop stops with the potentials moving by at most eps / 1000 an iteration (POT's own
    float64 value stops short of convergence by up to about 2e-5 relative)."""
    c, got = computed(n, eps_values)
    for eps in eps_values:
        for name, (x, y) in c.items():
            if names is not None and (eps, name) not in names:
                continue
            ot_xy, ot_xx, ot_yy, iters = got[eps][name]
            assert iters < metrics.SINKHORN_MAX_ITERS, (eps, name, iters)   # converged
            for ours, ref in [(ot_xy, reference_ot_eps(x, y, eps)),
                              (ot_xx, reference_ot_eps(x, x, eps)),
                              (ot_yy, reference_ot_eps(y, y, eps))]:
                assert abs(ours - ref) <= 1e-4 * abs(ref) + 1e-5, (n, eps, name, ours, ref)


def test_entropic_costs_agree_with_pot_in_float64():
    """On 48-point samples: every case at eps = 1, the dropped mode at eps = 0.1 (POT's float64
    iterations take about 10 s a case there)."""
    names = {(1.0, name) for name in cases(48)} | {(0.1, "a mode dropped")}
    check_against_pot(48, (0.1, 1.0), names)


@pytest.mark.slow
def test_entropic_costs_agree_with_pot_in_float64_at_every_eps():
    """Every case of the 48-point samples at eps = 0.1 and 1 (minutes). At eps = 0.01 POT's
    10,000 float64 iterations stop short of convergence by more than the tolerance (its value on
    the dropped mode lies 1.5e-4 relative below ours, a dual lower bound, so the shortfall is the
    reference's); there test_small_eps_approaches_exact_w2 checks the divergence."""
    check_against_pot(48, (0.1, 1.0))


def test_known_answers():
    c, got = computed()
    for eps in EPS:
        s = {name: divergence(t) for name, t in got[eps].items()}
        # A sample against its own translate by v: the cost's cross term -2 <x - y, v> is a sum
        # of a function of x and one of y, which the potentials absorb, so S_eps = |v|^2 exactly
        # at every eps (float32: to 1e-4).
        assert abs(s["translated"] - 1.0) < 1e-4, (eps, s["translated"])
        # Disjoint clouds 20 apart in each coordinate: S_eps ~ |v|^2 = 800 (the samples differ,
        # so not exactly; within 1%).
        assert abs(s["disjoint"] - 800) < 8, (eps, s["disjoint"])
        # Equal laws: positive, from the finite samples alone (at most their exact W2^2, 0.109
        # for these two 200-point samples of N(0, I)), and below a dropped mode's.
        assert 0 < s["same law"] <= 1.01 * exact_w2sq(*c["same law"]), (eps, s)
        assert 0 < s["full mixture"] < s["a mode dropped"], (eps, s)
    # One of FFJORD's 8 modes (radius 2.83) dropped from the generated sample: every eps sees it.
    for eps in EPS:
        full, dropped = (divergence(got[eps][k]) for k in ("full mixture", "a mode dropped"))
        assert dropped > 3 * full, (eps, full, dropped)


def test_small_eps_approaches_exact_w2():
    """As eps -> 0 S_eps -> W2^2 of the samples: exact W2^2 by an optimal assignment (SciPy),
    equal to POT's network simplex (ot.emd2); at eps = 0.01, a tenth of a point's spacing
    squared, S_eps is within 5% of it on every case, closer than at eps = 0.1."""
    c, got = computed()
    for name, (x, y) in c.items():
        w2 = exact_w2sq(x, y)
        a = np.full(N, 1 / N)
        assert abs(ot.emd2(a, a, ot.dist(np.float64(x), np.float64(y))) - w2) < 1e-9 * max(w2, 1)
        small, mid = divergence(got[0.01][name]), divergence(got[0.1][name])
        assert abs(small - w2) <= 0.05 * w2 + 1e-4, (name, small, w2)
        if name != "translated":        # there S_eps = W2^2 = |v|^2 at every eps
            assert abs(small - w2) < abs(mid - w2), (name, small, mid, w2)


def test_registered_for_any_target_and_refused_by_name():
    """Registered for every eps of SINKHORN_EPS; a run on a 1-D target records it; an eps not
    registered is refused by name before anything compiles."""
    names = [f"sinkhorn_eps{e:g}" for e in metrics.SINKHORN_EPS]
    assert names == ["sinkhorn_eps0.01", "sinkhorn_eps0.1", "sinkhorn_eps1"]
    for name in names:
        assert name in gj.METRICS and gj.METRICS[name].higher_is_better is False
    cfg = gj.make_config(dict(data="bimodal_1d", steps=20, log_every=10, batch_size=16,
                              eval_batch=32, history_samples=32, eval_samples=64,
                              mmd_samples=0, extra_metrics=["sinkhorn_eps0.1"]))
    out = gj.run_batch([cfg] * 2, [0, 1])
    v = out.final["sinkhorn_eps0.1"]
    assert v.shape == (2,) and np.all(np.isfinite(v)) and np.all(v > 0), v
    with pytest.raises(gj.ConfigError, match="extra_metrics: got \\['sinkhorn_eps0.05'\\]; must "
                                             "name registered metrics; 'sinkhorn_eps0.05' is not one"):
        gj.make_config(dict(data="ring_2d", extra_metrics=["sinkhorn_eps0.05"]))
    with pytest.raises(gj.ConfigError, match="eps: got -1; must be a positive number"):
        metrics.sinkhorn_divergence(np.zeros((4, 2)), np.zeros((4, 2)), eps=-1)
