"""Local dynamics of GAN training: gradient signal, vector field, stationary points, stability.

Gradient signal (the seed's saturation table, for every loss): with s a fake sample's logit
and D(fake) = sigmoid(s), |d g_loss / d s| is the generator's signal and |d d_loss / d s| the
discriminator's, by autodiff of the registry's losses (:func:`saturation`).

Dynamics. A :class:`Game` is two losses to minimise on flat parameter vectors theta (generator)
and phi (discriminator). Plain gradient play follows the vector field

  v(x) = (-d g_loss / d theta, -d d_loss / d phi),   x = (theta, phi).

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
from gan_jax.components import losses, methods, models
from gan_jax.training import train
from gan_jax.config import RunConfig
from gan_jax.core.errors import ConfigError


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

class Game(NamedTuple):
    """Two losses to minimise, `g_loss(theta, phi)` and `d_loss(theta, phi)`, on flat vectors.

    num_g: the length of theta; x = concatenate([theta, phi]).
    project_d: applied to phi after each discriminator step (WGAN's clipping), or None.
    """

    g_loss: Callable[[jax.Array, jax.Array], jax.Array]
    d_loss: Callable[[jax.Array, jax.Array], jax.Array]
    num_g: int
    project_d: Callable[[jax.Array], jax.Array] | None = None


def vector_field(game: Game) -> Callable[[jax.Array], jax.Array]:
    """v(x) = (-d g_loss / d theta, -d d_loss / d phi)."""
    n = game.num_g

    def v(x):
        theta, phi = x[:n], x[n:]
        return jnp.concatenate([-jax.grad(game.g_loss, 0)(theta, phi),
                                -jax.grad(game.d_loss, 1)(theta, phi)])

    return v


def update_map(game: Game, lr_g, lr_d, update: str = "simultaneous",
               d_updates: int = 1) -> Callable[[jax.Array], jax.Array]:
    """One run-step of plain gradient play as a map x -> x' (the train loop's order).

    The step is the library's own (gan_jax.components.methods.make_method, with optax.sgd(lr_g) and
    optax.sgd(lr_d)): no update rule is written here. Plain SGD keeps no state, so the step
    is a map of x = (theta, phi) alone.
    """
    if update not in methods.METHODS:
        raise ConfigError(f"update: got {update!r}; must be one of {', '.join(methods.METHODS)}")
    if methods.simultaneous(update) and d_updates != 1:
        raise ConfigError(f"d_updates: got {d_updates}; must be 1 with update = {update!r}")
    n = game.num_g
    method = methods.make_method(update, as_method_game(game), optax.sgd(lr_g),
                                 optax.sgd(lr_d), d_updates=d_updates)
    batches = (None,) * (method.slots.d + method.slots.g)   # the game is deterministic

    def step(x):
        play = method.step(method.init(x[:n], x[n:]), batches)
        if jax.tree.leaves((play.g_opt, play.d_opt, play.extra)):
            raise ConfigError(f"update: got {update!r}; its step carries state beyond "
                              f"(theta, phi), so it is not a map of x (gan_jax.analysis.dirac "
                              f"analyses such methods over their whole state)")
        return jnp.concatenate([play.g, play.d])

    return step


def as_method_game(game: Game) -> methods.Game:
    """The game as gan_jax.components.methods takes it: losses of (g, d, batch), the batch ignored."""
    method_game = methods.Game(lambda g, d, batch: game.g_loss(g, d),
                               lambda g, d, batch: game.d_loss(g, d))
    return method_game._replace(project_d=game.project_d) if game.project_d else method_game


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


def _field_and_jacobian(game: Game) -> Callable:
    """jit(x -> (v(x), dv/dx(x))): one compiled program for the search and the analysis."""
    v = vector_field(game)
    return jax.jit(lambda x: (v(x), jax.jacfwd(v)(x)))


def find_stationary(game: Game, x0, *, tol: float = 1e-5, max_iter: int = 200,
                    field: Callable | None = None) -> Stationary:
    """A zero of the vector field near x0, by Levenberg-Marquardt steps on |v|^2.

    Each step solves (J^T J + mu I) dx = -J^T v: Newton's step where J is well conditioned, a
    short gradient step otherwise, so the search also settles on a continuum of stationary
    points (a singular J, as for a discriminator blind to some parameter) and does not jump to
    far regions where saturated losses make v small. mu shrinks after an accepted step and
    grows after a rejected one. `field` (x -> (v, J), compiled) may be passed in to share
    one compilation with the caller.
    """
    field = field or _field_and_jacobian(game)

    def evaluate(x):
        v, jac = field(x)
        return np.asarray(v, np.float64), np.asarray(jac, np.float64)

    x = np.asarray(x0, np.float32)
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


def analyze(game: Game, x0, *, lr_g: float, lr_d: float, d_updates: int = 1,
            tol: float = 1e-5, max_iter: int = 200, smooth_tol: float = 0.05) -> LocalAnalysis:
    """Find a stationary point near x0 and classify its stability for flow and both maps.

    Args:
      game: the two losses.
      x0: f32[n] where the search starts.
      lr_g, lr_d: step sizes of the discrete maps; d_updates: discriminator steps per
        generator step in the alternating map (the simultaneous map always uses 1).
      tol: |v| below which x counts as stationary.
      smooth_tol: the largest relative central-difference mismatch of J accepted as
        differentiable.
    """
    field = _field_and_jacobian(game)
    found = find_stationary(game, x0, tol=tol, max_iter=max_iter, field=field)
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
    sim = update_map(game, lr_g, lr_d, "simultaneous")
    alt = update_map(game, lr_g, lr_d, "alternating", d_updates)
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

    game: Game
    x0: jax.Array                     # f32[n]: the configuration's initial (theta, phi)
    unravel_g: Callable               # flat theta -> generator params pytree
    unravel_d: Callable


def population_game(cfg: RunConfig, *, nodes: int = 1024, key=None) -> ConfigGame:
    """The expected (population) losses of a 1-D configuration, as a Game.

    Expectations use equal-weight nodes, the mid-quantiles (i + 1/2) / nodes of the target and
    of z ~ N(0, 1), so the library's batch-mean losses and penalties (train.make_d_objective)
    apply unchanged and the game is deterministic. WGAN-GP's interpolation weights are drawn
    once from a fixed key. The initial point is cfg's g_init / d_init, or a draw from `key`.
    A relativistic loss (g_real) is evaluated on every pair of real and generated nodes.
    """
    # What the population game leaves out is refused, never dropped without a word.
    for name, off, what in (("nk_eta", 0.0, "the Nagarajan-Kolter term"),
                            ("noise_std", 0.0, "instance noise"), ("pack", 1, "packing"),
                            ("spectral_norm", False, "spectral normalization")):
        if getattr(cfg, name) != off:
            raise ConfigError(f"{name}: got {getattr(cfg, name)!r}; the population game has no "
                              f"{what}: leave it at {off!r} (the Dirac-GAN, `python -m gan_jax "
                              "dirac`, analyses the stabilisers it names)")
    static = dataclasses.replace(config_lib.static_part(cfg), batch_size=nodes)
    parts = train.make_parts(static)
    if parts.target.dim != 1 or parts.latent_dim != 1:
        raise ConfigError(f"data: population games are built for 1-D data and latent; got "
                          f"{parts.target.dim}-D data, latent_dim {parts.latent_dim}")
    hp = config_lib.traced_part(cfg)
    key = jax.random.key(0) if key is None else key
    k_g, k_d, k_pen = jax.random.split(key, 3)
    gp_u = jax.random.uniform(k_pen, (nodes,))   # fixed interpolation weights of the GP
    g0 = models.init_params(parts.generator, k_g, hp.g_init if static.has_g_init else None)
    d0 = models.init_params(parts.discriminator, k_d, hp.d_init if static.has_d_init else None)
    theta0, unravel_g = ravel_pytree(g0)
    phi0, unravel_d = ravel_pytree(d0)
    p = (jnp.arange(nodes) + 0.5) / nodes
    real = exact.target_quantile(parts.target, p)[:, None]
    z = ndtri(p)[:, None]
    d_objective = train.make_d_objective(static, parts, hp)
    d_apply, g_apply = parts.discriminator.apply, parts.generator.apply
    loss = parts.loss(hp)
    if loss.g_real:
        # A relativistic loss pairs the i-th real node with the i-th fake one: every real
        # node against every fake node gives the expectation over independent draws.
        real, z = jnp.repeat(real, nodes, axis=0), jnp.tile(z, (nodes, 1))
        gp_u = jnp.tile(gp_u, nodes)

    def g_loss(theta, phi):
        d = unravel_d(phi)
        return loss.generator(d_apply(d, g_apply(unravel_g(theta), z)), d_apply(d, real))

    def d_loss(theta, phi):
        return d_objective(unravel_d(phi), real, g_apply(unravel_g(theta), z), gp_u)

    project = None
    if loss.clip:
        project = lambda phi: losses.clip_params(phi, hp.clip)  # noqa: E731
    game = Game(g_loss, d_loss, theta0.size, project)
    return ConfigGame(game, jnp.concatenate([theta0, phi0]), unravel_g, unravel_d)


def analyze_config(cfg: RunConfig, x0=None, *, nodes: int = 1024, **kwargs) -> LocalAnalysis:
    """:func:`analyze` of a configuration's population game at its learning rates.

    Raises:
      ConfigError: for optimisers other than plain SGD (their updates are not a map of x).
    """
    if cfg.optimizer != "sgd" or cfg.momentum != 0:
        raise ConfigError(f"optimizer: got {cfg.optimizer!r} (momentum {cfg.momentum}); the "
                          f"local analysis models plain gradient steps: 'sgd' with momentum 0")
    built = population_game(cfg, nodes=nodes)
    start = built.x0 if x0 is None else jnp.asarray(x0, jnp.float32)
    return analyze(built.game, start, lr_g=cfg.lr_g, lr_d=cfg.lr_d,
                   d_updates=cfg.d_updates if cfg.update == "alternating" else 1, **kwargs)
