"""Sample-based metrics, computed in-graph so they appear in every history row and final record.

All functions take `x_ND` sample arrays (D = 1 for 1-D targets) and return scalars.

Mode metrics, for any Gaussian-mixture target with modes mu_k and stds sigma_k (the
definitions of VEEGAN, Srivastava et al. 2017, and PacGAN, Lin et al. 2018):

  standardised distance  d_k(x) = ||x - mu_k|| / sigma_k
  nearest mode           k(x) = argmin_k d_k(x)
  high-quality sample    d_{k(x)}(x) < hq_threshold (3 stds); a target with `hq_distance`
                         (data.EmbeddedMixture: components of lower rank than D) gives its
                         own distance in stds, compared with the same threshold
  modes_captured         number of modes k with at least min_count high-quality samples
                         whose nearest mode is k
  hq_fraction            fraction of samples that are high-quality
  mode histogram         p_k = fraction of *all* samples whose nearest mode is k (low-quality
                         samples count for their nearest mode: PacGAN's reverse-KL histogram)
  reverse_kl             KL(p || w) = sum_k p_k log(p_k / w_k), w the target's weights (nats)
  mode_js                Jensen-Shannon divergence of p and w (nats, at most log 2); not the
                         JS of the two laws, which gan_jax.analysis.exact.js computes in 1-D

Distances between samples:

  sliced_w1  the mean over fixed unit directions u of the 1-D W1 of the projections <u, x>
             (exact sorted-sample W1 of equal-size samples); the directions are constants of
             the program, the same for every run (2-D: angles pi j / P, j = 0..P-1; d-D:
             NumPy-seeded Gaussian vectors, normalised; 1-D: u = 1, so sliced_w1 == w1).
  mmd2       unbiased estimate of the squared maximum mean discrepancy with the Gaussian
             kernel exp(-||x - y||^2 / (2 h^2)) (Gretton et al. 2012) on the first
             mmd_samples points of each sample; h defaults to the target's root-mean-square
             per-coordinate std, a fixed scale per target so runs compare.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import xlogy

from gan_jax.core import rand, registry
from gan_jax.components.data import check_samples, has_modes
from gan_jax.core.errors import ConfigError, is_finite_number, is_int

# Defaults of sample_metrics' keyword options (the training loop uses these).
HQ_THRESHOLD = 3.0       # a sample is high-quality within this many stds of its nearest mode
MIN_COUNT = 1            # a mode is captured with at least this many high-quality samples
NUM_PROJECTIONS = 8      # directions of the sliced W1 (2-D: every 22.5 degrees)
MMD_SAMPLES = 1000       # MMD on at most this many points of each sample (cost ~ its square)
PROJECTION_SEED = 0      # NumPy seed of the directions in 3 or more dimensions


def w1_1d(x_N: jax.Array, y_N: jax.Array) -> jax.Array:
    """Empirical 1-D Wasserstein-1 distance of two equal-size samples: mean |x_(i) - y_(i)|."""
    if x_N.shape != y_N.shape:
        raise ValueError(f"w1_1d needs equal-size samples, got {x_N.shape} and {y_N.shape}")
    both = rand.sort(jnp.stack([x_N, y_N]))
    return jnp.mean(jnp.abs(both[0] - both[1]))


def left_fraction(x_N: jax.Array) -> jax.Array:
    """Fraction of samples below 0 (the seed's `left`; `right` is 1 - left)."""
    return jnp.mean(x_N < 0)


def mode_balance(left: jax.Array, right: jax.Array) -> jax.Array:
    """min(left, right) / max(left, right): 1 for an even split, 0 for total collapse."""
    return jnp.minimum(left, right) / jnp.maximum(jnp.maximum(left, right), 1e-12)


# ----------------------------------------------------------------------------- mode metrics

def standardized_sq_distances(target, x_ND: jax.Array) -> jax.Array:
    """f32[N, K]: ||x_n - mu_k||^2 / sigma_k^2, each sample against each mode."""
    means_KD = jnp.asarray(target.means, jnp.float32)
    inv_var_K = jnp.asarray(1.0 / target.stds**2, jnp.float32)
    sq_NK = jnp.sum((x_ND[:, None, :] - means_KD[None]) ** 2, axis=-1)
    return sq_NK * inv_var_K


def mode_assignment(target, x_ND: jax.Array, hq_threshold: float = HQ_THRESHOLD):
    """Each sample's nearest mode by standardised distance, and whether it is high-quality.

    Returns:
      (nearest_N i32[N], high_quality_N bool[N]).
    """
    z_NK = standardized_sq_distances(target, x_ND)
    nearest_N = jnp.argmin(z_NK, axis=1).astype(jnp.int32)
    if hasattr(target, "hq_distance"):
        return nearest_N, target.hq_distance(x_ND, nearest_N) < hq_threshold
    best_N = jnp.min(z_NK, axis=1)
    return nearest_N, best_N < hq_threshold**2


def kl_divergence(p_K: jax.Array, q_K: jax.Array) -> jax.Array:
    """KL(p || q) in nats, with 0 log 0 = 0 (q > 0 wherever p > 0)."""
    return jnp.sum(xlogy(p_K, p_K) - xlogy(p_K, q_K))


def js_divergence(p_K: jax.Array, q_K: jax.Array) -> jax.Array:
    """Jensen-Shannon divergence in nats: (KL(p || m) + KL(q || m)) / 2, m = (p + q) / 2."""
    m_K = 0.5 * (p_K + q_K)
    return 0.5 * (kl_divergence(p_K, m_K) + kl_divergence(q_K, m_K))


def mode_metrics(target, x_ND: jax.Array, *, hq_threshold: float = HQ_THRESHOLD,
                 min_count: int = MIN_COUNT) -> dict[str, jax.Array]:
    """modes_captured, hq_fraction, reverse_kl and mode_js of a sample (module docstring)."""
    k = target.num_modes
    nearest_N, hq_N = mode_assignment(target, x_ND, hq_threshold)
    onehot_NK = jax.nn.one_hot(nearest_N, k, dtype=jnp.float32)
    hq_counts_K = jnp.sum(onehot_NK * hq_N[:, None], axis=0)
    hist_K = jnp.mean(onehot_NK, axis=0)
    weights_K = jnp.asarray(target.weights, jnp.float32)
    return {
        "modes_captured": jnp.sum(hq_counts_K >= min_count).astype(jnp.int32),
        "hq_fraction": jnp.mean(hq_N.astype(jnp.float32)),
        "reverse_kl": kl_divergence(hist_K, weights_K),
        "mode_js": js_divergence(hist_K, weights_K),
    }


# ----------------------------------------------------------------------------- distances

@functools.cache
def projection_directions(dim: int, num: int = NUM_PROJECTIONS) -> np.ndarray:
    """f32[P, D] fixed unit directions of the sliced W1, the same for every run.

    1-D: the single direction +1 (P = 1, whatever num: every direction gives the same W1).
    2-D: num angles evenly spaced on [0, pi) (u and -u give the same W1).
    d-D: num Gaussian vectors from NumPy's generator seeded with PROJECTION_SEED, normalised.
    """
    if dim < 1 or num < 1:
        raise ValueError(f"projection_directions needs dim >= 1 and num >= 1, got {dim}, {num}")
    if dim == 1:
        u = np.ones((1, 1))
    elif dim == 2:
        angles = np.pi * np.arange(num) / num
        u = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    else:
        g = np.random.default_rng(PROJECTION_SEED).standard_normal((num, dim))
        u = g / np.linalg.norm(g, axis=1, keepdims=True)
    u = u.astype(np.float32)
    u.setflags(write=False)
    return u


def sliced_w1(x_ND: jax.Array, y_ND: jax.Array, directions_PD) -> jax.Array:
    """Mean over directions u of the exact W1 of the projected equal-size samples."""
    if x_ND.shape != y_ND.shape:
        raise ValueError(f"sliced_w1 needs equal-size samples, got {x_ND.shape} and {y_ND.shape}")
    u_PD = jnp.asarray(directions_PD, x_ND.dtype)
    both_2PN = rand.sort(jnp.stack([u_PD @ x_ND.T, u_PD @ y_ND.T]))
    return jnp.mean(jnp.abs(both_2PN[0] - both_2PN[1]))


def _kernel_sum(a_ND: jax.Array, b_MD: jax.Array, inv_two_h2: float) -> jax.Array:
    """sum_{n, m} exp(-||a_n - b_m||^2 * inv_two_h2)."""
    # For small D (_pair_sq), differences coordinate by coordinate rather than through
    # ||a||^2 + ||b||^2 - 2 a.b: XLA fuses them with the exp and the sum into one loop, the
    # [N, M] kernel matrix is never stored, and no cancellation makes a squared distance
    # negative; on CPU it is also the fastest of the three forms. For large D the matrix form
    # (one loop term a coordinate would unroll D terms into the program).
    return jnp.sum(jnp.exp(-_pair_sq(a_ND, b_MD) * inv_two_h2))


def mmd2(x_ND: jax.Array, y_MD: jax.Array, bandwidth: float) -> jax.Array:
    """Unbiased squared MMD with the Gaussian kernel exp(-||x - y||^2 / (2 bandwidth^2)).

    MMD_u^2 = sum_{i != j} k(x_i, x_j) / (n(n-1)) + sum_{i != j} k(y_i, y_j) / (m(m-1))
              - 2 sum_{i, j} k(x_i, y_j) / (n m); it may be slightly negative when the two
    distributions are equal.
    """
    n, m = x_ND.shape[0], y_MD.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"mmd2 needs at least 2 points per sample, got {n} and {m}")
    c = 1.0 / (2.0 * bandwidth**2)
    if x_ND.shape == y_MD.shape:
        # One loop over the three pairs: a single kernel-sum body, which XLA compiles once and
        # runs faster on CPU than three sums it fuses together.
        pairs = jnp.stack([jnp.stack([x_ND, x_ND]), jnp.stack([y_MD, y_MD]),
                           jnp.stack([x_ND, y_MD])])
        sxx, syy, sxy = jax.lax.map(lambda p: _kernel_sum(p[0], p[1], c), pairs)
    else:
        sxx, syy, sxy = (_kernel_sum(x_ND, x_ND, c), _kernel_sum(y_MD, y_MD, c),
                         _kernel_sum(x_ND, y_MD, c))
    # k(x, x) = 1: the diagonal's sum is n, removed from the within-sample sums.
    return (sxx - n) / (n * (n - 1)) + (syy - m) / (m * (m - 1)) - 2.0 * sxy / (n * m)


def default_bandwidth(target, real_ND: jax.Array | None = None):
    """The target's root-mean-square per-coordinate standard deviation: analytic where the
    target knows it (`target.std`, a constant of the program), else that of the real sample
    (a target without a closed form)."""
    if hasattr(target, "std"):
        return float(np.sqrt(np.mean(np.asarray(target.std) ** 2)))
    if real_ND is None:
        raise ConfigError("mmd_bandwidth: the target has no analytic std; pass the real sample")
    return jnp.sqrt(jnp.mean(jnp.var(real_ND, axis=0)))


# ----------------------------------------------------------------------------- registered metrics

class Metric(NamedTuple):
    """A metric of generated samples against real ones, the metric protocol.

    fn(real_ND, fake_ND) -> f32[]: in jax.numpy, traced into the evaluation program and vmapped
      over runs; the two samples have equal sizes (history_samples, or eval_samples).
    needs: the target capabilities it reads (data: "modes", "1d"); a configuration that asks for
      it on a target without them is refused.
    higher_is_better: which way is better, for paired comparisons and profiles (None: the
      table asks for --higher-is-better or --lower-is-better).
    min_samples: the smallest sample it is defined on (a k-NN metric: k + 1); a configuration
      whose history_samples or eval_samples is smaller is refused.
    options: the metric's own options (registry.Option, static), set in a configuration as
      "<metric>.<option>"; fn then takes each one's value as a keyword argument of its name.
    """

    fn: Callable[[jax.Array, jax.Array], jax.Array]
    needs: tuple[str, ...] = ()
    higher_is_better: bool | None = None
    min_samples: int = 2
    options: tuple = ()


CAPABILITIES = ("modes", "1d")
# Every metric name the library records itself: a registered metric may not take one.
BUILTIN_KEYS = ("w1", "left", "right", "mode_balance", "real_mean", "real_std", "fake_mean",
                "fake_std", "modes_captured", "hq_fraction", "reverse_kl", "mode_js",
                "sliced_w1", "mmd2")


def check_metric(obj) -> str | None:
    if not isinstance(obj, Metric) or not callable(obj.fn):
        return f"must be a gan_jax.Metric(fn, needs), got {type(obj).__name__}"
    if not is_int(obj.min_samples) or obj.min_samples < 2:
        return f"min_samples: got {obj.min_samples!r}; must be an integer >= 2"
    unknown = [n for n in obj.needs if n not in CAPABILITIES]
    if unknown:
        return f"needs: got {unknown}; each must be one of {', '.join(CAPABILITIES)}"
    return None


# The registry of extra metrics (gan_jax.core.registry): the `metrics` field names them.
METRICS: dict[str, Metric] = registry.declare(
    "metric", check_metric, "an extra sample metric (gan_jax.Metric)", "extra_metrics")


def _register_builtin_metrics():
    for k in KNN_KS:
        for fn, better, what in [(precision, True, "fraction of generated samples in the real "
                                  "k-NN manifold"),
                                 (recall, True, "fraction of real samples in the generated "
                                  "k-NN manifold"),
                                 # About 1 for alike samples, above 1 for crowding: no
                                 # direction is better, so a table asks for one.
                                 (density, None, "real k-NN balls per generated sample, over k"),
                                 (coverage, True, "fraction of real k-NN balls holding a "
                                  "generated sample")]:
            registry.register("metric", f"{fn.__name__}_k{k}",
                              Metric(functools.partial(fn, k=k), higher_is_better=better,
                                     min_samples=k + 1),
                              doc=f"{what}, k = {k} (any target)")
    registry.register("metric", "energy_distance",
                      Metric(energy_distance, higher_is_better=False),
                      doc="unbiased energy distance of generated and real samples (any target)")
    for eps in SINKHORN_EPS:
        registry.register("metric", f"sinkhorn_eps{eps:g}",
                          Metric(functools.partial(sinkhorn_divergence, eps=eps),
                                 higher_is_better=False),
                          doc=f"debiased Sinkhorn divergence, squared Euclidean cost (about "
                              f"W2^2), eps = {eps:g} (any target)")


def metric_problem(name: str, target) -> str | None:
    """Why metric `name` cannot be computed on `target` (a missing capability), or None."""
    if name in BUILTIN_KEYS:
        return f"{name!r} is a metric every record has already"
    if name not in METRICS:
        return f"must be registered metrics; {name!r} is not (registered: " \
               f"{', '.join(METRICS) or 'none'})"
    for need in METRICS[name].needs:
        if need == "modes" and not has_modes(target):
            return f"{name!r} needs a target with modes; this one has none"
        if need == "1d" and target.dim != 1:
            return f"{name!r} is defined for 1-D targets; this one is {target.dim}-D"
    return None


# ----------------------------------------------------------------------------- any target
#
# Metrics that need no modes, registered below as built-in extra metrics (`extra_metrics`):
# records keep their keys unless a configuration asks for these.
#
#   k-NN manifolds (Kynkaanniemi et al. 2019): the real manifold is the union of the balls
#   B(x_i, r_k(x_i)), r_k(x_i) the distance from x_i to its k-th nearest other real sample;
#   the generated manifold likewise with the generated samples.
#   precision   fraction of generated samples inside the real manifold
#   recall      fraction of real samples inside the generated manifold
#   density     (Naeem et al. 2020) mean over generated samples of the number of real balls
#               holding it, divided by k: about 1 when the two samples are alike, above 1
#               where generated samples crowd dense real regions
#   coverage    (Naeem et al. 2020) fraction of real balls holding at least one generated
#               sample
#   A point on a ball's boundary is outside it (strict <, as the reference implementation,
#   the `prdc` package, compares). k is part of the name (`precision_k3`); the papers'
#   choices are k = 3 for precision and recall, k = 5 for density and coverage.
#
#   energy_distance  (Szekely and Rizzo 2004) 2 E|X - Y| - E|X - X'| - E|Y - Y'| with
#               U-statistics for the within-sample means (no diagonal terms), so unbiased;
#               zero exactly when the laws are equal, no bandwidth; it may be slightly
#               negative for equal laws. Euclidean norms.
#   sinkhorn    (Feydy et al. 2019) the debiased Sinkhorn divergence with the squared
#               Euclidean cost C(x, y) = |x - y|^2,
#                 S_eps(a, b) = OT_eps(a, b) - (OT_eps(a, a) + OT_eps(b, b)) / 2,
#               OT_eps(a, b) = min_P <P, C> + eps KL(P | a x b) over couplings P of a and b,
#               the entropic transport cost. OT_eps(a, a) > 0: entropic OT alone is biased
#               (it does not vanish for equal laws); S_eps is 0 for equal laws, positive
#               otherwise, and tends to W2^2 as eps -> 0 and to |mean a - mean b|^2 as
#               eps -> infinity. eps is part of the name (`sinkhorn_eps0.1`), in squared
#               units of the target (blur sqrt(eps)).
#
# Each forms every pair's squared distance, [N, N] in blocks of KNN_BLOCK rows (lax.map), so
# the memory is O(KNN_BLOCK * N) per run and the cost O(N^2 D) (the Sinkhorn divergence:
# per iteration, four passes over the pairs, recomputed rather than stored).

KNN_BLOCK = 128
KNN_KS = (3, 5, 10)      # the k of the registered names
SINKHORN_EPS = (0.01, 0.1, 1.0)  # the eps of the registered names (sinkhorn_eps0.01, ...)
SINKHORN_DECAY = 0.5     # eps-scaling: iteration t runs at max(eps, diameter^2 * DECAY^t)
SINKHORN_TOL = 1e-3      # converged once no potential moves by more than TOL * eps
SINKHORN_MAX_ITERS = 2000
SINKHORN_OMEGA = 1.8     # over-relaxation of the (x, y) updates once eps is reached


def _pair_sq(a_BD: jax.Array, b_ND: jax.Array) -> jax.Array:
    """f32[B, N] squared Euclidean distances: coordinate by coordinate for small D (exact, never
    negative), else through ||a||^2 + ||b||^2 - 2 a.b clipped at 0."""
    if a_BD.shape[1] <= 16:
        return sum((a_BD[:, None, d] - b_ND[None, :, d]) ** 2 for d in range(a_BD.shape[1]))
    sq = (jnp.sum(a_BD**2, 1)[:, None] + jnp.sum(b_ND**2, 1)[None]
          - 2 * a_BD @ b_ND.T)
    return jnp.maximum(sq, 0.0)


def _by_rows(fn, rows):
    """fn applied to blocks of KNN_BLOCK rows of `rows` (a pytree of [N, ...] arrays)."""
    return jax.lax.map(fn, rows, batch_size=KNN_BLOCK)


def knn_sq_radius(x_ND: jax.Array, k: int) -> jax.Array:
    """f32[N]: squared distance from each sample to its k-th nearest other sample of x_ND (the
    (k + 1)-th smallest distance, the point itself being the first at 0)."""
    n = x_ND.shape[0]
    if not 1 <= k < n:
        raise ConfigError(f"k: got {k}; needs 1 <= k < the sample size {n}")
    return _by_rows(lambda x_D: kth_smallest(_pair_sq(x_D[None], x_ND)[0], k), x_ND)


def kth_smallest(v_N: jax.Array, k: int) -> jax.Array:
    """The (k + 1)-th smallest entry of v_N (0-based k-th of the sorted v_N), ties counted.

    k + 1 passes, each the smallest entry above the last one and how many entries lie at or
    below it: O(k N), fused by XLA; lax.top_k and sorts of the row cost far more on CPU.
    """
    cur = jnp.full((), -jnp.inf, v_N.dtype)
    out = jnp.full((), jnp.inf, v_N.dtype)
    found = jnp.zeros((), bool)
    for _ in range(k + 1):
        cur = jnp.min(jnp.where(v_N > cur, v_N, jnp.inf))
        hit = ~found & (jnp.sum(v_N <= cur) >= k + 1)
        out, found = jnp.where(hit, cur, out), found | hit
    return out


def _ball_counts(centers_ND, sq_radii_N, points_MD) -> jax.Array:
    """i32[M]: how many balls B(center_i, radius_i) hold each point (strictly inside)."""
    return _by_rows(lambda p_D: jnp.sum(_pair_sq(p_D[None], centers_ND)[0] < sq_radii_N),
                    points_MD)


def precision(real_ND: jax.Array, fake_ND: jax.Array, k: int = 3) -> jax.Array:
    """Fraction of generated samples inside the real k-NN manifold."""
    counts = _ball_counts(real_ND, knn_sq_radius(real_ND, k), fake_ND)
    return jnp.mean((counts > 0).astype(jnp.float32))


def recall(real_ND: jax.Array, fake_ND: jax.Array, k: int = 3) -> jax.Array:
    """Fraction of real samples inside the generated k-NN manifold."""
    counts = _ball_counts(fake_ND, knn_sq_radius(fake_ND, k), real_ND)
    return jnp.mean((counts > 0).astype(jnp.float32))


def density(real_ND: jax.Array, fake_ND: jax.Array, k: int = 5) -> jax.Array:
    """Mean number of real k-NN balls holding a generated sample, over k."""
    counts = _ball_counts(real_ND, knn_sq_radius(real_ND, k), fake_ND)
    return jnp.mean(counts.astype(jnp.float32)) / k


def coverage(real_ND: jax.Array, fake_ND: jax.Array, k: int = 5) -> jax.Array:
    """Fraction of real k-NN balls holding at least one generated sample."""
    nearest = _by_rows(lambda x_D: jnp.min(_pair_sq(x_D[None], fake_ND)[0]), real_ND)
    return jnp.mean((nearest < knn_sq_radius(real_ND, k)).astype(jnp.float32))


def energy_distance(x_ND: jax.Array, y_MD: jax.Array) -> jax.Array:
    """Unbiased estimate of the energy distance 2 E|X - Y| - E|X - X'| - E|Y - Y'|."""
    n, m = x_ND.shape[0], y_MD.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"energy_distance needs at least 2 points per sample, got {n} and {m}")

    def dist_sum(a, b):
        return jnp.sum(_by_rows(lambda a_D: jnp.sum(jnp.sqrt(_pair_sq(a_D[None], b)[0])), a))

    # The diagonal of a sample against itself is 0, so the off-diagonal sum is the whole sum.
    return (2 * dist_sum(x_ND, y_MD) / (n * m) - dist_sum(x_ND, x_ND) / (n * (n - 1))
            - dist_sum(y_MD, y_MD) / (m * (m - 1)))


def _softmin(eps, x_ND: jax.Array, y_MD: jax.Array, g_M: jax.Array) -> jax.Array:
    """f32[N]: -eps log (1/M) sum_m exp((g_m - |x_n - y_m|^2) / eps), the entropic c-transform
    of g for uniform weights, in log space (a logsumexp, so no underflow at small eps), row
    block by row block (the [N, M] costs are recomputed, never stored)."""
    log_m = np.log(y_MD.shape[0])
    return _by_rows(lambda x_D: -eps * (jax.nn.logsumexp(
        (g_M - _pair_sq(x_D[None], y_MD)[0]) / eps) - log_m), x_ND)


def sinkhorn_terms(x_ND: jax.Array, y_MD: jax.Array, eps: float, *, tol: float = SINKHORN_TOL,
                   max_iters: int = SINKHORN_MAX_ITERS, omega: float = SINKHORN_OMEGA):
    """The entropic transport costs OT_eps(x, y), OT_eps(x, x), OT_eps(y, y) of two uniform
    empirical laws (squared Euclidean cost), and the iterations taken.

    Log-domain Sinkhorn iterations under one lax.while_loop (no host round trip, vmappable):
    alternate updates f = T(g), g = T(f) for (x, y) and the averaged symmetric update
    p = (p + T(p)) / 2 for each self term (Feydy et al. 2019, eq. 25). eps-scaling: iteration
    t runs at max(eps, diam^2 * SINKHORN_DECAY^t), diam the diagonal of the samples' bounding
    box, so the potentials are warm when eps is reached. At eps the (x, y) updates are
    over-relaxed, f = (1 - omega) f + omega T(g) (Thibault et al. 2021): with clustered
    samples, mass moving between clusters makes plain Sinkhorn slow (a 200-point mixture:
    800 iterations at omega = 1, 132 at 1.8, the same value). The loop ends at eps once no
    potential moved by more than tol * eps (or 16 float ulps of diam^2, what rounding alone
    moves them by) in an iteration, or after max_iters iterations
    (annealing included). Each cost is the dual objective at (f, T(f)): with the second
    potential the c-transform of the first, the plan has mass 1 and the dual is <a, f> +
    <b, T(f)>, a lower bound of OT_eps that is tight at convergence.

    Returns:
      (ot_xy, ot_xx, ot_yy, iterations): three f32 scalars and an i32 scalar.
    """
    n, m = x_ND.shape[0], y_MD.shape[0]
    both = jnp.concatenate([x_ND, y_MD])
    diam2 = jnp.sum((jnp.max(both, 0) - jnp.min(both, 0)) ** 2)

    def eps_at(t):
        return jnp.maximum(eps, diam2 * SINKHORN_DECAY ** t.astype(x_ND.dtype))

    def step(state):
        t, f, g, p, q, _ = state
        e = eps_at(t)
        w = jnp.where(e > eps, 1.0, omega).astype(f.dtype)
        f1 = (1 - w) * f + w * _softmin(e, x_ND, y_MD, g)
        new = (f1, (1 - w) * g + w * _softmin(e, y_MD, x_ND, f1),
               0.5 * (p + _softmin(e, x_ND, x_ND, p)), 0.5 * (q + _softmin(e, y_MD, y_MD, q)))
        moved = jnp.max(jnp.stack([jnp.max(jnp.abs(a - b)) for a, b in zip(new, (f, g, p, q))]))
        return (t + 1, *new, moved)

    # The potentials are at most about diam^2 in size, so float32 rounding alone moves them by
    # a few of its ulps: the tolerance is never below 16 of them.
    floor = 16 * jnp.finfo(x_ND.dtype).eps * diam2

    def going(state):
        t, *_, moved = state
        # eps_at(t - 1) is the eps the last iteration ran at (diam^2 * 2 before the first).
        return (t < max_iters) & ((eps_at(t - 1) > eps) | (moved > jnp.maximum(tol * eps, floor)))

    zeros = lambda k: jnp.zeros((k,), x_ND.dtype)
    init = (jnp.zeros((), jnp.int32), zeros(n), zeros(m), zeros(n), zeros(m),
            jnp.full((), jnp.inf, x_ND.dtype))
    t, f, _, p, q, _ = jax.lax.while_loop(going, step, init)
    ot_xy = jnp.mean(f) + jnp.mean(_softmin(eps, y_MD, x_ND, f))
    ot_xx = jnp.mean(p) + jnp.mean(_softmin(eps, x_ND, x_ND, p))
    ot_yy = jnp.mean(q) + jnp.mean(_softmin(eps, y_MD, y_MD, q))
    return ot_xy, ot_xx, ot_yy, t


def sinkhorn_divergence(x_ND: jax.Array, y_MD: jax.Array, eps: float = 0.1) -> jax.Array:
    """Debiased Sinkhorn divergence OT_eps(x, y) - (OT_eps(x, x) + OT_eps(y, y)) / 2 of two
    uniform empirical laws, squared Euclidean cost: about W2^2 for small eps (`sinkhorn_terms`)."""
    if not (is_finite_number(eps) and eps > 0):
        raise ConfigError(f"eps: got {eps!r}; must be a positive number")
    ot_xy, ot_xx, ot_yy, _ = sinkhorn_terms(x_ND, y_MD, eps)
    return ot_xy - 0.5 * (ot_xx + ot_yy)


# ----------------------------------------------------------------------------- all together

def sample_metrics(target, real_ND: jax.Array, fake_ND: jax.Array, *,
                   hq_threshold: float = HQ_THRESHOLD, min_count: int = MIN_COUNT,
                   num_projections: int = NUM_PROJECTIONS, mmd_samples: int = MMD_SAMPLES,
                   mmd_bandwidth: float | None = None,
                   extra: tuple[str, ...] = (),
                   extra_options: dict | None = None) -> dict[str, jax.Array]:
    """The metrics of a generated sample against an equal-size real one.

    For 1-D targets: w1, left, right, mode_balance, and real/fake mean and std (population
    std, as the seed's statistics.pstdev). For every target: modes_captured, hq_fraction,
    reverse_kl, mode_js (of the generated sample's modes, see the module docstring), sliced_w1 and
    mmd2 (generated against real).

    Args:
      target: the GaussianMixture the real sample comes from.
      real_ND, fake_ND: f32[N, D] samples, D the target's dimension.
      hq_threshold: standardised distance under which a sample is high-quality.
      min_count: high-quality samples a mode needs to count as captured.
      num_projections: directions of the sliced W1 (2-D and up).
      mmd_samples: the MMD uses the first min(N, mmd_samples) points of each sample; 0 leaves
        the MMD out (its cost grows with the square of this number).
      mmd_bandwidth: the Gaussian kernel's h; None: `default_bandwidth(target)`.
      extra: names of registered metrics (METRICS) to compute as well, each under its name.
      extra_options: metric name -> its options' values (Metric.options), where it has any.

    The mode metrics are computed where the target has modes (data.has_modes), and only
    there.

    Raises:
      ConfigError: at trace time, if a sample's shape is not [N, D] (e.g. a generator whose
        output size is not the target's dimension), or an option is out of range.
    """
    _check_options(hq_threshold=hq_threshold, min_count=min_count,
                   num_projections=num_projections, mmd_samples=mmd_samples,
                   mmd_bandwidth=mmd_bandwidth)
    check_samples(target, real_ND, "real samples")
    check_samples(target, fake_ND, "generated samples")
    chex.assert_equal_shape([real_ND, fake_ND])
    if real_ND.shape[0] < 2:
        raise ConfigError(f"sample_metrics: got {real_ND.shape[0]} sample(s); needs at least 2 "
                          "(history_samples and eval_samples must be >= 2)")
    out = {}
    if target.dim == 1:
        real, fake = real_ND[:, 0], fake_ND[:, 0]
        left = left_fraction(fake)
        right = 1.0 - left
        out.update(
            w1=w1_1d(real, fake), left=left, right=right, mode_balance=mode_balance(left, right),
            real_mean=jnp.mean(real), real_std=jnp.std(real),
            fake_mean=jnp.mean(fake), fake_std=jnp.std(fake),
        )
    if has_modes(target):       # mode metrics only where the target has modes
        out.update(mode_metrics(target, fake_ND, hq_threshold=hq_threshold,
                                min_count=min_count))
    if target.dim == 1:
        out["sliced_w1"] = out["w1"]  # one direction: the same sorts, done once
    else:
        out["sliced_w1"] = sliced_w1(real_ND, fake_ND,
                                     projection_directions(target.dim, num_projections))
    if mmd_samples:
        n = min(real_ND.shape[0], mmd_samples)
        h = default_bandwidth(target, real_ND) if mmd_bandwidth is None else mmd_bandwidth
        out["mmd2"] = mmd2(real_ND[:n], fake_ND[:n], h)
    for name in extra:
        problem = metric_problem(name, target)
        if problem:
            raise ConfigError(f"metrics: got {list(extra)}; {problem}")
        out[name] = jnp.asarray(METRICS[name].fn(real_ND, fake_ND,
                                                 **(extra_options or {}).get(name, {})),
                                jnp.float32)
    return out


def option_problem(name: str, value) -> str | None:
    """What is wrong with a value of a metric option (the rule), or None if it is allowed."""
    if name == "hq_threshold":
        return None if is_finite_number(value) and value > 0 else "must be a positive number"
    if name in ("min_count", "num_projections"):
        return None if is_int(value) and value >= 1 else "must be an integer >= 1"
    if name == "mmd_samples":
        return None if is_int(value) and (value == 0 or value >= 2) else \
            "must be 0 (no MMD) or an integer >= 2"
    if name == "mmd_bandwidth":
        return None if value is None or (is_finite_number(value) and value > 0) else \
            "must be a positive number"
    raise KeyError(name)


def _check_options(**options):
    for name, value in options.items():
        problem = option_problem(name, value)
        if problem:
            raise ConfigError(f"{name}: got {value!r}; {problem}")


_register_builtin_metrics()
