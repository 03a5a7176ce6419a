"""Exact 1-D quantities for generators whose law is known in closed form.

The seed's generators push z ~ N(0, 1) through piecewise-linear maps, so their laws are sums of
(truncated) Gaussian pieces: the linear generator G(z) = a z + b gives N(b, a^2); the piecewise
one gives a half-Gaussian below or above b_l (from z < 0) plus one below or above b_r (from
z >= 0), on the side fixed by the sign of each slope. A :class:`Pushforward` holds such a law;
from it this module computes, in-graph and differentiably:

  cdf, pdf / log_pdf, quantile     the generated law itself (a zero slope is an atom)
  w1   = int |F_g(x) - F_data(x)| dx                          (Wasserstein-1)
  js   = 1/2 KL(p_data || m) + 1/2 KL(p_g || m), m = (p_data + p_g) / 2
  kl   = KL(p_g || p_data) or KL(p_data || p_g)   (inf where one law is not covered by the other)
  optimal_logit  s*(x) = log p_data(x) - log p_g(x), i.e. D*(x) = p_data / (p_data + p_g)
  gan_value      V(D, G) = E_data log D(x) + E_g log(1 - D(x))     (the seed's maximised L_D)
  optimal_value  V(D*, G) = 2 JS - log 4
  discriminator_gap  V(D*, G) - V(D, G) >= 0 for a trained discriminator's logit function
  family_floor   min over the family's parameters of exact W1 (or JS), by optax from many starts

Integrals are composite Gauss-Legendre sums in float32 over intervals whose edges are every
piece's breakpoint b_k and b_k +- {1, 4, tail} |a_k|, and every target mode m_j +- {0, 1, 4,
tail} s_j: every density jump and atom falls on an edge (nodes are interior, never on a jump),
and every scale, however narrow, gets its own panels. tests/test_exact.py bounds the error
against hand-derived values and float64 references (|error| < 2e-5 on the seed's cases).

Families without a closed form (MLPs) have no exact quantities here: asking for one raises a
ConfigError that names :func:`estimate_w1`, a large-sample estimate with error bars.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from jax.scipy.special import logsumexp, ndtr, ndtri

from gan_jax.components import data as data_lib
from gan_jax.components import models
from gan_jax.core.errors import ConfigError

CLOSED_FORM = ("linear", "piecewise")
# Losses whose best discriminator is D* = p_data / (p_data + p_g) (LSGAN on probabilities too):
# for these the gap to D* is recorded in every history row.
GAP_LOSSES = ("nonsaturating", "minimax", "lsgan")
OBJECTIVES = ("w1", "js")

_FAMILIES = {"linear": models.linear_generator, "piecewise": models.piecewise_generator}
# log p of a point outside every piece's support: finite, so that exp() is 0 and products with
# it are 0 rather than NaN, in values and in gradients.
_LOG_ZERO = -1e30
_LOG_2PI = math.log(2 * math.pi)


def _family(generator) -> str:
    return generator if isinstance(generator, str) else generator.generator


def no_closed_form(generator, what: str) -> ConfigError:
    """The error for an exact quantity asked of a family without a closed-form law."""
    name = _family(generator)
    return ConfigError(
        f"generator: got {name!r}; {what} is exact only for generators whose law is known in "
        f"closed form ({', '.join(CLOSED_FORM)}). For {name!r} use gan_jax.analysis.exact.estimate_w1 "
        f"(W1 from large samples against exact target quantiles, with an error bar)")


def _require_1d(target) -> None:
    if target.dim != 1:
        raise ConfigError(f"data: exact quantities are 1-D only; this target is {target.dim}-D")


# ----------------------------------------------------------------------------- the law of G(z)

class Pushforward(NamedTuple):
    """The law of x = slope_k z + shift_k over z ~ N(0, 1) restricted to [z_lo_k, z_hi_k).

    The pieces' z-ranges partition the real line, so the masses sum to 1. A zero slope makes
    its piece an atom of mass Phi(z_hi) - Phi(z_lo) at shift.
    """

    slope: jax.Array  # f32[K]
    shift: jax.Array  # f32[K]
    z_lo: jax.Array   # f32[K], -inf allowed
    z_hi: jax.Array   # f32[K], +inf allowed


def pushforward(generator, theta) -> Pushforward:
    """The law of a closed-form generator's output for parameters theta.

    Args:
      generator: a family name ("linear", "piecewise") or a config with a `generator` field.
      theta: f32[2] (a, b) or f32[4] (a_l, b_l, a_r, b_r), as in gan_jax.components.models.

    Raises:
      ConfigError: for a family without a closed form, naming the alternative.
    """
    name = _family(generator)
    if name not in CLOSED_FORM:
        raise no_closed_form(name, "the generated law")
    theta = jnp.asarray(theta, jnp.float32)
    inf = jnp.inf
    if name == "linear":
        _check_size(name, theta, 2)
        return Pushforward(theta[0:1], theta[1:2], jnp.array([-inf]), jnp.array([inf]))
    _check_size(name, theta, 4)
    return Pushforward(jnp.stack([theta[0], theta[2]]), jnp.stack([theta[1], theta[3]]),
                       jnp.array([-inf, 0.0]), jnp.array([0.0, inf]))


def _check_size(name: str, theta, n: int) -> None:
    if theta.shape != (n,):
        raise ValueError(f"{name} generator parameters must have shape ({n},), "
                         f"got {theta.shape}")


def piece_mass(pf: Pushforward) -> jax.Array:
    """f32[K] probability of each piece."""
    return ndtr(pf.z_hi) - ndtr(pf.z_lo)


def atom_mass(pf: Pushforward) -> jax.Array:
    """Total probability held in atoms (pieces with slope 0)."""
    return jnp.sum(jnp.where(pf.slope == 0, piece_mass(pf), 0.0))


def _standardise(pf: Pushforward, x):
    """u[..., K] = (x - shift) / slope, with slope 0 replaced by 1 (its piece is an atom)."""
    atom = pf.slope == 0
    u = (jnp.asarray(x)[..., None] - pf.shift) / jnp.where(atom, 1.0, pf.slope)
    return u, atom


def cdf(pf: Pushforward, x) -> jax.Array:
    """P(G(z) <= x), any shape of x."""
    u, atom = _standardise(pf, x)
    f_lo, f_hi = ndtr(pf.z_lo), ndtr(pf.z_hi)
    f_u = ndtr(jnp.clip(u, pf.z_lo, pf.z_hi))
    # Rising piece: P(z_lo <= z <= u); falling piece (slope < 0): P(u <= z < z_hi).
    per_piece = jnp.where(pf.slope > 0, f_u - f_lo, f_hi - f_u)
    per_piece = jnp.where(atom, (f_hi - f_lo) * (jnp.asarray(x)[..., None] >= pf.shift),
                          per_piece)
    return jnp.sum(per_piece, axis=-1)


def log_pdf_support(pf: Pushforward, x) -> tuple[jax.Array, jax.Array]:
    """log density of the continuous part at x, and whether x is inside some piece's support.

    Outside every support the log density is a large negative finite number (exp gives 0).
    """
    u, atom = _standardise(pf, x)
    inside = (u >= pf.z_lo) & (u < pf.z_hi) & ~atom
    log_piece = -0.5 * u**2 - 0.5 * _LOG_2PI - jnp.log(jnp.abs(jnp.where(atom, 1.0, pf.slope)))
    log_p = logsumexp(jnp.where(inside, log_piece, _LOG_ZERO), axis=-1)
    return jnp.maximum(log_p, _LOG_ZERO), jnp.any(inside, axis=-1)


def log_pdf(pf: Pushforward, x) -> jax.Array:
    """log density of the continuous part (atoms excluded) at x."""
    return log_pdf_support(pf, x)[0]


def pdf(pf: Pushforward, x) -> jax.Array:
    """Density of the continuous part (atoms excluded) at x."""
    return jnp.exp(log_pdf(pf, x))


def bisect(cdf_fn: Callable, p, lo, hi, iters: int = 60) -> jax.Array:
    """The smallest x in [lo, hi] with cdf_fn(x) >= p, elementwise, by bisection."""
    p = jnp.asarray(p, jnp.float32)

    def body(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        below = cdf_fn(mid) < p
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, hi = jax.lax.fori_loop(0, iters, body, (jnp.full_like(p, lo), jnp.full_like(p, hi)))
    return 0.5 * (lo + hi)


def extent(pf: Pushforward, tail: float = 10.0) -> tuple[jax.Array, jax.Array]:
    """An interval holding all but ~1e-23 of the generated mass: shift -+ tail * |slope|."""
    spread = tail * jnp.abs(pf.slope)
    return jnp.min(pf.shift - spread), jnp.max(pf.shift + spread)


def quantile(pf: Pushforward, p) -> jax.Array:
    """Quantile function of the generated law at probabilities p (bisection on the CDF)."""
    lo, hi = extent(pf)
    return bisect(lambda x: cdf(pf, x), p, lo, hi)


def target_quantile(target, p) -> jax.Array:
    """Quantile function of a 1-D Gaussian mixture at probabilities p (bisection)."""
    _require_1d(target)
    lo = float(np.min(target.means[:, 0] - 10 * target.stds))
    hi = float(np.max(target.means[:, 0] + 10 * target.stds))
    return bisect(target.cdf, p, lo, hi)


# ----------------------------------------------------------------------------- quadrature

class Quadrature(NamedTuple):
    """Composite Gauss-Legendre rule: `panels` panels of `order` nodes on every interval.

    tail: the integration range reaches tail standard deviations beyond every piece and mode.
    """

    panels: int = 16
    order: int = 8
    tail: float = 10.0


def _reference_rule(quad: Quadrature) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the composite rule on [0, 1]."""
    t, w = np.polynomial.legendre.leggauss(quad.order)
    starts = np.arange(quad.panels)[:, None] / quad.panels
    nodes = starts + (t[None, :] + 1) / (2 * quad.panels)
    weights = np.broadcast_to(w / (2 * quad.panels), nodes.shape)
    return nodes.ravel(), weights.ravel()


def grid(pf: Pushforward, target, quad: Quadrature = Quadrature()) -> tuple[jax.Array, jax.Array]:
    """Quadrature nodes x and weights w on the real line for integrals involving pf and target."""
    _require_1d(target)
    tail = quad.tail
    offsets = np.array([-tail, -4.0, -1.0, 1.0, 4.0, tail], np.float32)
    z_bounds = jnp.clip(jnp.stack([pf.z_lo, pf.z_hi], -1), -tail, tail)
    g_edges = jnp.concatenate([
        (pf.shift[:, None] + jnp.abs(pf.slope)[:, None] * offsets).ravel(),
        (pf.shift[:, None] + pf.slope[:, None] * z_bounds).ravel()])
    t_offsets = np.concatenate([offsets, [0.0]])
    t_edges = (target.means[:, 0:1] + target.stds[:, None] * t_offsets).ravel()
    edges = jnp.sort(jnp.concatenate([g_edges, jnp.asarray(t_edges, jnp.float32)]))
    t, w = _reference_rule(quad)
    width = jnp.diff(edges)[:, None]
    return (edges[:-1, None] + width * t).ravel(), (width * w).ravel()


# ----------------------------------------------------------------------------- distances

def w1(pf: Pushforward, target, quad: Quadrature = Quadrature()) -> jax.Array:
    """Exact Wasserstein-1 distance: int |F_g(x) - F_data(x)| dx."""
    x, w = grid(pf, target, quad)
    return jnp.sum(w * jnp.abs(cdf(pf, x) - target.cdf(x)))


def _log_densities(pf, target, x):
    log_g, in_support = log_pdf_support(pf, x)
    return target.log_prob(x), log_g, in_support


def js(pf: Pushforward, target, quad: Quadrature = Quadrature()) -> jax.Array:
    """Jensen-Shannon divergence (natural log, in [0, log 2]).

    An atom of mass m (a zero slope) is singular to the target and adds m/2 log 2.
    """
    x, w = grid(pf, target, quad)
    log_d, log_g, _ = _log_densities(pf, target, x)
    log_m = jnp.logaddexp(log_d, log_g) - math.log(2)
    integrand = jnp.exp(log_d) * (log_d - log_m) + jnp.exp(log_g) * (log_g - log_m)
    return 0.5 * jnp.sum(w * integrand) + 0.5 * math.log(2) * atom_mass(pf)


def kl(pf: Pushforward, target, direction: str = "g||data",
       quad: Quadrature = Quadrature()) -> jax.Array:
    """KL(p_g || p_data) (direction "g||data") or KL(p_data || p_g) ("data||g").

    Infinite where the first law is not absolutely continuous with respect to the second: an
    atom in p_g for "g||data"; for "data||g", any interval outside every piece's support.
    """
    if direction not in ("g||data", "data||g"):
        raise ConfigError(f"direction: got {direction!r}; must be 'g||data' or 'data||g'")
    x, w = grid(pf, target, quad)
    log_d, log_g, in_support = _log_densities(pf, target, x)
    if direction == "g||data":
        value = jnp.sum(w * jnp.exp(log_g) * (log_g - log_d))
        return jnp.where(atom_mass(pf) > 0, jnp.inf, value)
    value = jnp.sum(w * jnp.exp(log_d) * (log_d - log_g))
    return jnp.where(jnp.all(in_support), value, jnp.inf)


# ----------------------------------------------------------------------------- the optimal D

def optimal_logit(pf: Pushforward, target, x) -> jax.Array:
    """s*(x) = log p_data(x) - log p_g(x): the logit of D*(x) = p_data / (p_data + p_g).

    Outside the generator's support it is a large positive number (D* = 1); on an atom, a
    large negative one (D* = 0).
    """
    x = jnp.asarray(x)
    on_atom = jnp.any((x[..., None] == pf.shift) & (pf.slope == 0), axis=-1)
    return jnp.where(on_atom, _LOG_ZERO, target.log_prob(x) - log_pdf(pf, x))


def _expect(pf, target, logit_fn, quad, per_point):
    """int per_point(p_d, log_d, p_g, log_g, s) dx, plus atoms: sum_k m_k per_atom(s(b_k))."""
    x, w = grid(pf, target, quad)
    s_all = logit_fn(jnp.concatenate([x, pf.shift]))
    s, s_atoms = s_all[: x.shape[0]], s_all[x.shape[0]:]
    log_d, log_g, _ = _log_densities(pf, target, x)
    cont, atom_fn = per_point(log_d, log_g, s)
    atoms = jnp.where(pf.slope == 0, piece_mass(pf), 0.0)
    return jnp.sum(w * cont) + jnp.sum(atoms * atom_fn(s_atoms))


def gan_value(pf: Pushforward, target, logit_fn: Callable,
              quad: Quadrature = Quadrature()) -> jax.Array:
    """V(D, G) = E_data log sigmoid(s(x)) + E_g log(1 - sigmoid(s(x))), exactly.

    logit_fn maps f32[N] points to f32[N] logits. V is the seed's maximised L_D, i.e. minus the
    non-saturating d_loss, in expectation rather than on a batch.
    """
    def per_point(log_d, log_g, s):
        cont = (jnp.exp(log_d) * jax.nn.log_sigmoid(s) + jnp.exp(log_g) * jax.nn.log_sigmoid(-s))
        return cont, lambda s_atom: jax.nn.log_sigmoid(-s_atom)

    return _expect(pf, target, logit_fn, quad, per_point)


def optimal_value(pf: Pushforward, target, quad: Quadrature = Quadrature()) -> jax.Array:
    """V(D*, G) = 2 JS(p_data, p_g) - log 4: the best the discriminator can do against G."""
    return 2.0 * js(pf, target, quad) - math.log(4.0)


def discriminator_gap(pf: Pushforward, target, logit_fn: Callable,
                      quad: Quadrature = Quadrature()) -> jax.Array:
    """V(D*, G) - V(D, G) >= 0: how far a discriminator's objective is below the optimum.

    Computed pointwise as int (p_d + p_g) KL(Bernoulli(D*(x)) || Bernoulli(D(x))) dx (every
    term non-negative, so no cancellation between two large sums). An atom at b, where
    D* = 0, adds its mass times -log(1 - D(b)).
    """
    def per_point(log_d, log_g, s):
        s_star = log_d - log_g
        cont = (jnp.exp(log_d) * (jax.nn.log_sigmoid(s_star) - jax.nn.log_sigmoid(s))
                + jnp.exp(log_g) * (jax.nn.log_sigmoid(-s_star) - jax.nn.log_sigmoid(-s)))
        return cont, lambda s_atom: -jax.nn.log_sigmoid(-s_atom)

    return _expect(pf, target, logit_fn, quad, per_point)


# History rows use fewer panels: the gap's integrand is smooth between the edges, and 4 panels
# keep it within 3e-6 of a 64-panel reference (logistic and MLP discriminators) at a quarter of
# the cost inside the training program.
HISTORY_QUADRATURE = Quadrature(panels=4)


def records_d_gap(static) -> bool:
    """Whether training records `d_gap` in its history rows (a static condition): a closed-form
    generator and a loss whose best discriminator is D* (for a program of several losses, any
    of them; a run's record keeps d_gap only if its own loss is one, see results)."""
    return (static.generator in CLOSED_FORM and any(n in GAP_LOSSES for n in static.loss)
            and data_lib.has_cdf(data_lib.make_target(static)))


def history_fields(static, parts, g_params, d_params) -> dict[str, jax.Array]:
    """Exact entries of a history row: {"d_gap": ...} where records_d_gap(static), else {}."""
    if not records_d_gap(static):
        return {}
    pf = pushforward(static.generator, g_params)
    return {"d_gap": discriminator_gap(
        pf, parts.target, lambda x_N: parts.discriminator.apply(d_params, x_N[:, None]),
        HISTORY_QUADRATURE)}


# ----------------------------------------------------------------------------- estimates

class Estimate(NamedTuple):
    """A numerical estimate of W1 for a family without a closed form.

    value: mean over R batches of W1(batch of n samples, exact target law).
    stderr: standard error of that mean over the batches (its random part).
    bound: n^{-1/2} int sqrt(F_g (1 - F_g)) dx, estimated from the pooled samples: the
      Bobkov-Ledoux bound on E W1(P_n, P_g), hence on the estimate's bias (|W1(P_n, Q) -
      W1(P_g, Q)| <= W1(P_n, P_g) by the triangle inequality). The error bar is
      bound + 2 stderr.
    """

    value: jax.Array
    stderr: jax.Array
    bound: jax.Array

    @property
    def error(self) -> jax.Array:
        return self.bound + 2.0 * self.stderr


def estimate_w1(samples_RN, target) -> Estimate:
    """W1 of a sampled law to a 1-D target, from R batches of n samples (f32[R, n]).

    Each batch's sorted samples are compared with the target's exact quantiles at the
    plotting positions (i + 1/2) / n: int_0^1 |Q_n(p) - Q_data(p)| dp with Q_data exact, so
    the target contributes no sampling noise.
    """
    samples_RN = jnp.asarray(samples_RN)
    r, n = samples_RN.shape
    q = target_quantile(target, (jnp.arange(n) + 0.5) / n)
    w1_R = jnp.mean(jnp.abs(jnp.sort(samples_RN, axis=1) - q), axis=1)
    pooled = jnp.sort(samples_RN.ravel())
    f = jnp.arange(1, r * n) / (r * n)
    spread = jnp.sum(jnp.diff(pooled) * jnp.sqrt(f * (1 - f)))
    stderr = jnp.std(w1_R, ddof=1) / math.sqrt(r) if r > 1 else jnp.array(jnp.nan)
    return Estimate(jnp.mean(w1_R), stderr, spread / math.sqrt(n))


# ----------------------------------------------------------------------------- family floor

class Floor(NamedTuple):
    """The best a generator family can do against a target, found from many starts."""

    params: jax.Array   # f32[P]: the best start's final parameters
    value: jax.Array    # f32[]: its objective (exact W1 or JS)
    values: jax.Array   # f32[S]: every start's final objective
    starts: jax.Array   # f32[S, P]: the starting parameters


def objective_fn(generator, target, objective: str = "w1",
                 quad: Quadrature = Quadrature()) -> Callable[[jax.Array], jax.Array]:
    """theta -> exact W1 or JS of the family's law at theta against target."""
    name = _family(generator)
    if objective not in OBJECTIVES:
        raise ConfigError(f"objective: got {objective!r}; must be one of {', '.join(OBJECTIVES)}")
    if name not in CLOSED_FORM:
        raise no_closed_form(name, f"the family's best {objective.upper()}")
    _require_1d(target)
    measure = w1 if objective == "w1" else js
    return lambda theta: measure(pushforward(name, theta), target, quad)


def family_floor(generator, target, key: jax.Array, *, objective: str = "w1",
                 starts: int = 16, extra_starts=None, steps: int = 1500, lr: float = 0.05,
                 quad: Quadrature = Quadrature()) -> Floor:
    """Minimise exact W1 (or JS) over the family's parameters with Adam, from many starts.

    Starts: `starts` draws from the family's own random initialisation (every parameter
    ~ N(0, 1)) plus `extra_starts` (f32[S', P], e.g. trained runs' final parameters). All run
    in one vmapped program; the learning rate decays by cosine from lr to lr / 1000, so the
    reported minimum is resolved to about the quadrature's accuracy. The floor is the best
    start's value: an upper bound on the family's infimum, tight when starts agree.
    """
    name = _family(generator)
    fn = objective_fn(name, target, objective, quad)
    if not isinstance(starts, int) or starts < 0 or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"starts, steps: got {starts!r}, {steps!r}; need integers >= 0 and >= 1")
    model = _FAMILIES[name]()
    theta0 = jax.vmap(model.init)(jax.random.split(key, starts))
    if extra_starts is not None:
        theta0 = jnp.concatenate([theta0, jnp.asarray(extra_starts, jnp.float32)])
    if theta0.shape[0] == 0:
        raise ConfigError("starts: no starting points (starts = 0 and no extra_starts)")
    return _minimise(fn, theta0, steps, lr)


def _minimise(fn: Callable, theta0_SP: jax.Array, steps: int, lr: float) -> Floor:
    """Adam on fn from every start (one vmapped program); the best finite end is the floor."""
    tx = optax.adam(optax.cosine_decay_schedule(lr, steps, alpha=1e-3))
    value_and_grad = jax.value_and_grad(fn)

    def one(theta):
        def step(carry, _):
            theta, opt = carry
            _, g = value_and_grad(theta)
            updates, opt = tx.update(g, opt, theta)
            return (optax.apply_updates(theta, updates), opt), None

        (theta, _), _ = jax.lax.scan(step, (theta, tx.init(theta)), None, length=steps)
        return theta, fn(theta)

    theta_S, values_S = jax.jit(jax.vmap(one))(theta0_SP)
    best = jnp.argmin(jnp.where(jnp.isfinite(values_S), values_S, jnp.inf))
    return Floor(theta_S[best], values_S[best], values_S, theta0_SP)


def estimated_floor(cfg, key: jax.Array, *, nodes: int = 2048, starts: int = 4,
                    steps: int = 2000, lr: float = 3e-3) -> Floor:
    """The best W1 found for a family without a closed form (e.g. an MLP), as an estimate.

    Minimises W1 on deterministic nodes, (1/n) sum_i |sort(G(z_i)) - Q_data(p_i)| with
    p_i = (i + 1/2) / n and z_i = Phi^-1(p_i) (a quadrature of the quantile form), with Adam
    from `starts` draws of the family's initialisation. `params` are flat (ravel_pytree order)
    and `value` is the node estimate: re-estimate it on fresh samples with :func:`estimate_w1`
    for an error bar. The floor is an upper bound on the family's infimum (training finds a
    generator this good when it is fitted to the target directly).
    """
    target = data_lib.make_target(cfg)
    _require_1d(target)
    if models.latent_dim(cfg) != 1:
        raise ConfigError(f"latent_dim: got {cfg.latent_dim}; the node estimate needs a 1-D latent")
    model = models.make_generator(cfg)
    p = (jnp.arange(nodes) + 0.5) / nodes
    z_N1 = ndtri(p)[:, None]
    q = target_quantile(target, p)
    _, unravel = ravel_pytree(model.init(jax.random.key(0)))

    def node_w1(flat):
        return jnp.mean(jnp.abs(jnp.sort(model.apply(unravel(flat), z_N1)[:, 0]) - q))

    flat0 = jax.vmap(lambda k: ravel_pytree(model.init(k))[0])(jax.random.split(key, starts))
    return _minimise(node_w1, flat0, steps, lr)
