"""Local dynamics of GAN training: gradient signal, vector field, stationary points, stability.

Gradient signal (the seed's saturation table, for every loss): with s a fake sample's logit
and D(fake) = sigmoid(s), |d g_loss / d s| is the generator's signal and |d d_loss / d s| the
discriminator's, by autodiff of the registry's losses (:func:`saturation`).

Dynamics. The game is the library's one type, gan_jax.components.methods.Game: two objectives
to minimise, of the generator's and the discriminator's parameters (and a batch, None here:
the games analysed are deterministic). At a point (g, d), flattened to x = (theta, phi)
(`flat`, generator first), plain gradient play follows the vector field

  v(x) = (-d g_loss / d theta, -d d_loss / d phi),   x = (theta, phi).

A configuration's game is training's own (train.make_game) on its population nodes
(:func:`population_game`); the Dirac-GAN's is gan_jax.analysis.dirac.dirac_game.

At a stationary point x* (v(x*) = 0, found by Levenberg-Marquardt steps, :func:`find_stationary`)
the Jacobian J = dv/dx (jax.jacfwd) decides the local behaviour:

  gradient flow dx/dt = v:       max Re eig(J) < 0 converges, = 0 cycles / is neutral, > 0 diverges
  simultaneous steps             x <- x + H v(x), H = diag(lr_g for theta, lr_d for phi)
  alternating steps (train.py)   d_updates steps phi <- phi + lr_d v_phi(theta, phi), then
                                 theta <- theta + lr_g v_theta(theta, phi_new)

Both maps are the library's own steps (gan_jax.components.methods with plain SGD, :func:`update_map`).

For the two discrete maps F the verdict is the spectral radius rho of dF/dx at x*: < 1
converges, = 1 cycles (complex eigenvalues on the unit circle) or is neutral (eigenvalue 1: a
flat direction), > 1 diverges. Only plain gradient steps (SGD without momentum) are a map of x
alone; Adam's and momentum's updates carry state and are not analyzed here.

A stationary point that Newton does not reach is reported as such, with the residual norm |v|,
and no eigenvalues; where the field is not differentiable at x* (e.g. the norm in WGAN-GP's
penalty at phi = 0) a central-difference check of J fails and the verdicts are withheld.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from jax.scipy.special import ndtri

from gan_jax import config as config_lib
from gan_jax.analysis import exact
from gan_jax.components import losses, methods, models, stabilisers
from gan_jax.training import train
from gan_jax.config import RunConfig
from gan_jax.core.errors import ConfigError, field_error


# ----------------------------------------------------------------------------- gradient signal

def saturation(probs, names=None) -> dict[str, dict[str, np.ndarray]]:
    """|d g_loss / d s| and |d d_loss / d s_fake| at D(fake) = sigmoid(s) = p, for every loss.

    The real logit is 0 (a real sample the discriminator cannot place): a loss that is a sum
    of a real and a fake term does not depend on it, and a relativistic one (rsgan, ragan)
    compares s with it. For wgan / hinge, whose critic value is not a probability,
    p = sigmoid(critic value) just places s on the same axis.

    Args:
      probs: values of D(fake) in (0, 1).
      names: the losses to include (default: every registered loss).

    Returns:
      loss name -> {"g": f32[len(probs)], "d": f32[len(probs)]}.
    """
    probs = np.asarray(probs, np.float64)
    if not np.all((probs > 0) & (probs < 1)):
        raise ConfigError(f"probs: got {probs.tolist()}; every D(fake) must lie in (0, 1)")
    logits = jnp.asarray(np.log(probs) - np.log1p(-probs), jnp.float32)
    real = jnp.zeros((1,))
    out = {}
    for name in losses.LOSSES if names is None else names:
        loss = losses.get_loss(name)
        g = jax.vmap(jax.grad(lambda s, loss=loss: loss.generator(s[None], real)))(logits)
        d = jax.vmap(jax.grad(lambda s, loss=loss: loss.d_loss(real, s[None])))(logits)
        out[name] = {"g": np.abs(np.asarray(g)), "d": np.abs(np.asarray(d))}
    return out


# ----------------------------------------------------------------------------- games
#
# The analysis takes the library's one game type, gan_jax.components.methods.Game (two
# objectives of (g, d, batch), both minimised), with a point `(g, d)` of parameter pytrees that
# fixes their structure; it works on the flat vector x = ravel((g, d)) (generator first). Its
# games are deterministic: the batch they are called with is None (a population game carries
# its nodes in its objectives, `population_game`).


def flat(point) -> tuple[jax.Array, Callable]:
    """(x, unravel): the point (g, d) as one flat vector, and x -> (g, d)."""
    if not isinstance(point, (tuple, list)) or len(point) != 2:
        raise ConfigError(f"point: got a {type(point).__name__}; must be a pair (g, d) of the "
                          "generator's and the discriminator's parameters (pytrees)")
    return ravel_pytree(tuple(point))


def vector_field(game: methods.Game, point) -> Callable[[jax.Array], jax.Array]:
    """v(x) = -xi(x) = (-d g_loss / d g, -d d_loss / d d), flattened like `flat(point)`."""
    _, unravel = flat(point)

    def v(x):
        g, d = unravel(x)
        return -ravel_pytree(methods.simultaneous_gradient(game, g, d, None))[0]

    return v


def update_map(game: methods.Game, point, lr_g, lr_d, update: str = "simultaneous",
               d_updates: int = 1) -> Callable[[jax.Array], jax.Array]:
    """One run-step of plain gradient play as a map x -> x' (the train loop's order), on flat
    vectors shaped like `flat(point)`.

    The step is the library's own (gan_jax.components.methods.make_method, with optax.sgd(lr_g) and
    optax.sgd(lr_d)): no update rule is written here. Plain SGD keeps no state, so the step
    is a map of x = (g, d) alone.
    """
    if update not in methods.METHODS:
        raise ConfigError(f"update: got {update!r}; must be one of {', '.join(methods.METHODS)}")
    if methods.simultaneous(update) and d_updates != 1:
        raise ConfigError(f"d_updates: got {d_updates}; must be 1 with update = {update!r}")
    _, unravel = flat(point)
    method = methods.make_method(update, game, optax.sgd(lr_g), optax.sgd(lr_d),
                                 d_updates=d_updates)
    batches = (None,) * (method.slots.d + method.slots.g)   # the game is deterministic

    def step(x):
        play = method.step(method.init(*unravel(x)), batches)
        if jax.tree.leaves((play.g_opt, play.d_opt, play.extra)):
            raise ConfigError(f"update: got {update!r}; its step carries state beyond "
                              f"(g, d), so it is not a map of x (gan_jax.analysis.dirac "
                              f"analyses such methods over their whole state)")
        return flat((play.g, play.d))[0]

    return step


def trajectory(step_map: Callable, x0, steps: int) -> jax.Array:
    """f32[steps + 1, n]: x0 and the iterates of step_map."""
    def body(x, _):
        x = step_map(x)
        return x, x

    x0 = jnp.asarray(x0, jnp.float32)
    _, xs = jax.lax.scan(body, x0, None, length=steps)
    return jnp.concatenate([x0[None], xs])


# ----------------------------------------------------------------------------- stationary points

class Stationary(NamedTuple):
    x: np.ndarray        # f32[n]: the last iterate
    residual: float      # |v(x)|
    converged: bool      # residual <= tol
    iterations: int


def _field_and_jacobian(game: methods.Game, point) -> Callable:
    """jit(x -> (v(x), dv/dx(x))): one compiled program for the search and the analysis."""
    v = vector_field(game, point)
    return jax.jit(lambda x: (v(x), jax.jacfwd(v)(x)))


def find_stationary(game: methods.Game, point, *, tol: float = 1e-5, max_iter: int = 200,
                    field: Callable | None = None) -> Stationary:
    """A zero of the vector field near the point (g, d), by Levenberg-Marquardt steps on
    |v|^2, on the flat vector x = flat(point)[0].

    Each step solves (J^T J + mu I) dx = -J^T v: Newton's step where J is well conditioned, a
    short gradient step otherwise, so the search also settles on a continuum of stationary
    points (a singular J, as for a discriminator blind to some parameter) and does not jump to
    far regions where saturated losses make v small. mu shrinks after an accepted step and
    grows after a rejected one. `field` (x -> (v, J), compiled) may be passed in to share
    one compilation with the caller.
    """
    field = field or _field_and_jacobian(game, point)

    def evaluate(x):
        v, jac = field(x)
        return np.asarray(v, np.float64), np.asarray(jac, np.float64)

    x = np.asarray(flat(point)[0], np.float32)
    v, jac = evaluate(x)
    residual = float(np.linalg.norm(v))
    mu = 1e-3
    for it in range(max_iter):
        if residual <= tol:
            return Stationary(x, residual, True, it)
        jtj, jtv = jac.T @ jac, jac.T @ v
        scale = max(float(np.max(np.diag(jtj))), 1e-12)
        while mu < 1e12:
            x_new = (x + np.linalg.solve(jtj + mu * scale * np.eye(x.size), -jtv)).astype(np.float32)
            v_new, jac_new = evaluate(x_new)
            r_new = float(np.linalg.norm(v_new))
            if np.isfinite(r_new) and r_new < residual:
                mu = max(mu / 3.0, 1e-9)
                break
            mu *= 4.0
        else:
            return Stationary(x, residual, False, it)   # no step reduces |v|: stuck
        x, v, jac, residual = x_new, v_new, jac_new, r_new
    return Stationary(x, residual, residual <= tol, max_iter)


# ----------------------------------------------------------------------------- verdicts

class LocalAnalysis(NamedTuple):
    """The local behaviour of gradient play at a stationary point (see the module docstring).

    When `converged` is False (no stationary point found) or `differentiable` is False, the
    eigenvalue fields are None and the verdicts say why.
    """

    x: np.ndarray
    residual: float
    converged: bool
    differentiable: bool
    jacobian_error: float               # relative central-difference mismatch of J
    eigenvalues: np.ndarray | None      # of J = dv/dx (gradient flow)
    flow: str
    rho_simultaneous: float | None      # spectral radius of the simultaneous map's Jacobian
    simultaneous: str
    rho_alternating: float | None
    alternating: str


def flow_verdict(eigs: np.ndarray, tol: float = 1e-4) -> str:
    """Gradient flow: by the largest real part of J's eigenvalues."""
    top = float(np.max(eigs.real))
    if top < -tol:
        return "converges"
    if top > tol:
        return "diverges"
    edge = eigs[np.abs(eigs.real) <= tol]
    return "cycles" if np.any(np.abs(edge.imag) > tol) else "neutral"


def map_verdict(eigs: np.ndarray, tol: float = 1e-4) -> str:
    """A discrete map: by the spectral radius of its Jacobian."""
    rho = float(np.max(np.abs(eigs)))
    if rho < 1 - tol:
        return "converges"
    if rho > 1 + tol:
        return "diverges"
    edge = eigs[np.abs(np.abs(eigs) - 1) <= tol]
    return "cycles" if np.any(np.abs(edge.imag) > tol) else "neutral"


def jacobian_error(field: Callable, jac: np.ndarray, x: np.ndarray, delta: float = 1e-3) -> float:
    """max_i |(v(x + d e_i) - v(x - d e_i)) / 2d - J e_i| / max(|J|, 1): ~0 where v is smooth.

    field: x -> (v(x), J(x)), as from the search.
    """
    fd = np.empty_like(jac)
    for i in range(x.size):
        e = np.zeros(x.size, np.float32)
        e[i] = delta
        fd[:, i] = (np.asarray(field(x + e)[0], np.float64)
                    - np.asarray(field(x - e)[0], np.float64)) / (2 * delta)
    return float(np.max(np.abs(fd - jac)) / max(np.max(np.abs(jac)), 1.0))


def analyze(game: methods.Game, point, *, lr_g: float, lr_d: float, d_updates: int = 1,
            tol: float = 1e-5, max_iter: int = 200, smooth_tol: float = 0.05) -> LocalAnalysis:
    """Find a stationary point near `point` and classify its stability for flow and both maps.

    Args:
      game: the two objectives (deterministic: called with batch None).
      point: (g, d), parameter pytrees where the search starts; LocalAnalysis.x is the
        stationary point flattened like `flat(point)`.
      lr_g, lr_d: step sizes of the discrete maps; d_updates: discriminator steps per
        generator step in the alternating map (the simultaneous map always uses 1).
      tol: |v| below which x counts as stationary.
      smooth_tol: the largest relative central-difference mismatch of J accepted as
        differentiable.
    """
    field = _field_and_jacobian(game, point)
    found = find_stationary(game, point, tol=tol, max_iter=max_iter, field=field)
    if not found.converged:
        why = f"no stationary point (|v| = {found.residual:.3g} after {found.iterations} steps)"
        return LocalAnalysis(found.x, found.residual, False, False, float("nan"), None, why,
                             None, why, None, why)
    jac = np.asarray(field(found.x)[1], np.float64)
    error = jacobian_error(field, jac, found.x)
    if not error <= smooth_tol:
        why = f"not differentiable at x* (J mismatch {error:.3g})"
        return LocalAnalysis(found.x, found.residual, True, False, error, None, why,
                             None, why, None, why)
    sim = update_map(game, point, lr_g, lr_d, "simultaneous")
    alt = update_map(game, point, lr_g, lr_d, "alternating", d_updates)
    map_jacs = jax.jit(lambda x: (jax.jacfwd(sim)(x), jax.jacfwd(alt)(x)))(found.x)
    sim_eigs, alt_eigs = (np.linalg.eigvals(np.asarray(m, np.float64)) for m in map_jacs)
    eigs = np.linalg.eigvals(jac)
    return LocalAnalysis(
        found.x, found.residual, True, True, error, eigs, flow_verdict(eigs),
        float(np.max(np.abs(sim_eigs))), map_verdict(sim_eigs),
        float(np.max(np.abs(alt_eigs))), map_verdict(alt_eigs))


# ----------------------------------------------------------------------------- a configuration

class ConfigGame(NamedTuple):
    """A configuration's population game and where its parameters start."""

    game: methods.Game       # deterministic: its nodes are inside its objectives
    point: tuple             # (g, d): the configuration's initial parameters (pytrees)


NOISE_NODES = 32     # the population game's instance-noise nodes per sample


def _on_nodes(game: methods.Game, batch) -> methods.Game:
    """The game with its batch fixed: a deterministic game, whatever batch it is given."""
    value = game.value
    return methods.Game(lambda g, d, _: game.g_loss(g, d, batch),
                        lambda g, d, _: game.d_loss(g, d, batch), game.project_d,
                        None if value is None else lambda g, d, _: value(g, d, batch))


def population_game(cfg: RunConfig, *, nodes: int = 1024, noise_nodes: int = NOISE_NODES,
                    key=None) -> ConfigGame:
    """The expected (population) losses of a 1-D configuration: the game training plays
    (train.make_game, with the game stabilisers it switches on), on one deterministic batch of
    nodes in place of random draws.

    real and latent samples: the mid-quantiles (i + 1/2) / nodes of the target and of
      z ~ N(0, 1), equal-weight nodes, so the library's batch-mean losses are expectations by
      the midpoint rule in probability. The latent nodes are in a fixed random order, so the
      i-th real and generated samples (paired by the gradient penalty's interpolates) are not
      rank-correlated: a Latin-hypercube estimate of the penalty's expectation over
      independent draws, not an exact one.
    packing (pack = m): member k of pack i is node perm_k(i), perm_0 the identity and the
      others fixed random permutations: a Latin-hypercube estimate of the expectation over
      independent m-tuples (not exact; its error shrinks as nodes grow).
    a relativistic loss (g_real): every real node (or pack) against every generated one, so
      a loss that compares pairs has the expectation over independent draws (nodes^2 rows).
    instance noise: the batch repeated once for each of `noise_nodes` mid-quantiles of
      N(0, 1), scaled to unit variance (32 mid-quantiles alone hold 0.961 of it), so each
      sample meets every noise node; the real and the generated samples' noise are paired
      apart (member k's node permuted per member, the generated one's shifted by a fixed
      random offset per pack), as training draws them independently. A quadrature, not exact
      (at std 1 its loss term is off by a few thousandths); the anneal is not applied (the
      step is not known).
    the gradient penalty's interpolation weights: the mid-quantiles of U(0, 1) in a fixed
      random order, one per pack.
    the Nagarajan-Kolter term: training's own wrap of the game (methods.nagarajan_kolter),
      and a plugin stabiliser's `view` and `wrap` likewise.
    A stabiliser that keeps state (spectral normalization) or makes draws other than instance
    noise's has no population form and is refused. The initial point is cfg's g_init /
    d_init, or a draw from `key`. The method's wrappers (lookahead, the average) are not part
    of the game (analyze_config refuses lookahead).
    """
    static = dataclasses.replace(config_lib.static_part(cfg), batch_size=nodes)
    on = stabilisers.stabilisers_on(static)
    for name, s in on:
        stateful = s.init is not stabilisers.Stabiliser._field_defaults["init"] or s.advance
        if name != "instance_noise" and (stateful or s.cut or s.row_draws):
            field, value = (s.field, getattr(cfg, s.field)) if s.field else \
                ("stabilisers", list(cfg.stabilisers))
            raise field_error(field, value, f"the population game has no form of the "
                              f"stabiliser {name!r} (it keeps state or draws of its own): "
                              "switch it off (the Dirac-GAN, `python -m gan_jax dirac`, "
                              "analyses the stabilisers it names)")
    parts = train.make_parts(static)
    if parts.target.dim != 1 or parts.latent_dim != 1:
        raise ConfigError(f"data: population games are built for 1-D data and latent; got "
                          f"{parts.target.dim}-D data, latent_dim {parts.latent_dim}")
    hp = config_lib.traced_part(cfg)
    loss = parts.loss(hp)
    use_noise, pack = static.use_noise, static.pack
    if use_noise and loss.g_real:
        raise ConfigError(f"noise_std: got {cfg.noise_std!r}; the population game of a "
                          f"relativistic loss ({cfg.loss!r}) has no instance noise (its "
                          f"nodes^2 x noise_nodes rows): leave noise_std at 0")
    key = jax.random.key(0) if key is None else key
    k_g, k_d, k_pen = jax.random.split(key, 3)
    # The gradient penalty's interpolation weights: the mid-quantiles of U(0, 1) in a fixed
    # random order (stratified, like the samples, rather than `nodes` plain draws).
    gp_u = (jax.random.permutation(k_pen, nodes) + 0.5) / nodes

    def members(k, count):
        """i32[count, m]: member j of row i is node perm_j(i) (perm_0 the identity)."""
        perms = [jnp.arange(count)] + [jax.random.permutation(jax.random.fold_in(k, j), count)
                                       for j in range(1, pack)]
        return jnp.stack(perms, axis=1)

    g0 = models.init_params(parts.generator, k_g, hp.g_init if static.has_g_init else None)
    d0 = models.init_params(parts.discriminator, k_d, hp.d_init if static.has_d_init else None)
    p = (jnp.arange(nodes) + 0.5) / nodes
    real_nodes, z_nodes = exact.target_quantile(parts.target, p), ndtri(p)
    real_i = members(jax.random.fold_in(k_pen, 1), nodes)
    z_i = jax.random.permutation(jax.random.fold_in(k_pen, 4), nodes)[
        members(jax.random.fold_in(k_pen, 2), nodes)]
    if loss.g_real:
        # Every real pack against every fake one: a loss that compares the i-th real pack
        # with the i-th fake one then has the expectation over independent draws.
        real_i, z_i = jnp.repeat(real_i, nodes, axis=0), jnp.tile(z_i, (nodes, 1))
        gp_u = jnp.tile(gp_u, nodes)
    extra = tuple(() for _ in on)
    if use_noise:
        eps = ndtri((jnp.arange(noise_nodes) + 0.5) / noise_nodes)
        eps = eps / jnp.sqrt(jnp.mean(eps**2))      # the noise's variance exactly
        # Copy c of the batch: member j of each pack meets real noise node perm_j(c), and
        # generated noise node perm'_j(c) + s_i of its own (s_i the pack's offset).
        packs = real_i.shape[0]
        real_cj = members(jax.random.fold_in(k_pen, 3), noise_nodes)
        fake_cj = members(jax.random.fold_in(k_pen, 5), noise_nodes)
        shift_i = jax.random.randint(jax.random.fold_in(k_pen, 6), (packs,), 0, noise_nodes)
        real_noise = jnp.broadcast_to(eps[real_cj][:, None, :], (noise_nodes, packs, pack))
        fake_noise = eps[(fake_cj[:, None, :] + shift_i[None, :, None]) % noise_nodes]
        real_i, z_i = jnp.tile(real_i, (noise_nodes, 1)), jnp.tile(z_i, (noise_nodes, 1))
        gp_u = jnp.tile(gp_u, noise_nodes)
        extra = tuple((real_noise.reshape(-1, 1), fake_noise.reshape(-1, 1))
                      if name == "instance_noise" else () for name, _ in on)
    batch = train.Batch(real_nodes[real_i.reshape(-1)][:, None],
                        z_nodes[z_i.reshape(-1)][:, None], gp_u, extra)
    game = train.make_game(static, parts, hp, states=tuple(() for _ in on), step=None)
    return ConfigGame(_on_nodes(game, batch), (g0, d0))


def analyze_config(cfg: RunConfig, point=None, *, nodes: int = 1024, **kwargs) -> LocalAnalysis:
    """:func:`analyze` of a configuration's population game at its learning rates, from
    `point` ((g, d) pytrees; default the configuration's initial parameters).

    Raises:
      ConfigError: for optimisers other than plain SGD (their updates are not a map of x).
    """
    if cfg.optimizer != "sgd" or cfg.momentum != 0:
        raise ConfigError(f"optimizer: got {cfg.optimizer!r} (momentum {cfg.momentum}); the "
                          f"local analysis models plain gradient steps: 'sgd' with momentum 0")
    # It reports the flow and the simultaneous and alternating maps: another method, or a
    # wrapper that changes the step, would be analysed as something it is not.
    if cfg.update not in ("alternating", "simultaneous"):
        raise field_error("update", cfg.update, "the local analysis models alternating and "
                          "simultaneous gradient steps; `python -m gan_jax dirac` analyses "
                          "every method on the Dirac-GAN")
    if cfg.lookahead_k or cfg.wrappers:
        field, value = ("lookahead_k", cfg.lookahead_k) if cfg.lookahead_k else \
            ("wrappers", list(cfg.wrappers))
        raise field_error(field, value, "the local analysis models the plain step, not a "
                          "wrapper around it; `python -m gan_jax dirac` analyses lookahead")
    built = population_game(cfg, nodes=nodes)
    return analyze(built.game, built.point if point is None else point,
                   lr_g=cfg.lr_g, lr_d=cfg.lr_d,
                   d_updates=cfg.d_updates if cfg.update == "alternating" else 1, **kwargs)
