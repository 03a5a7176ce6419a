"""The Dirac-GAN of Mescheder, Geiger and Nowozin (ICML 2018): every training method at the
equilibrium, through the library's own update rules.

    python -m gan_jax dirac --method extragradient --lr 0.1 [--json]

The game. Target: a point mass at 0. Generator: a point mass at theta (the library's linear
generator with its slope held at 0). Discriminator: the logit psi x (the logistic
discriminator with its bias held at 0). The losses and penalties are gan_jax.components.losses' own,
on the one real and one generated point, so with L(theta, psi) = f(psi theta) + f(0) the
minimax game in the minimise convention (G minimises L, D minimises -L = d_loss), the
nonsaturating and minimax losses have f(t) = -softplus(t), f'(0) = -1/2, f''(0) = -1/4
(lsgan: f'(0) = -1/8; wgan and hinge: f'(0) = -1). The unique equilibrium is (0, 0).

Options that change the game (all off by default):

  r1          d_loss += r1 * losses.r1_penalty = r1/2 psi^2 (Mescheder et al.'s gamma/2 E|grad D|^2)
  r2          d_loss += r2 * losses.r2_penalty, the same on the generated point = r2/2 psi^2
  gp          d_loss += gp * losses.gradient_penalty = gp (|psi| - 1)^2: not differentiable at
              psi = 0, so the equilibrium has no linearisation (the analysis says so)
  clip        the discriminator's parameter is clipped to [-clip, clip] after each of its
              steps (losses.clip_params; WGAN)
  nk_eta      the Nagarajan-Kolter regulariser: G minimises g_loss + nk_eta |d d_value/d psi|^2,
              d_value the loss's d_loss without penalties
  noise_std   instance noise N(0, noise_std^2) added to the real and the generated point; the
              expectations are taken with NOISE_NODES Gauss-Hermite nodes in each, so the game
              stays deterministic (exact for the Jacobian at the equilibrium, which involves
              only the noise's second moment)

The analysis, in float64 (inside jax.enable_x64; the rest of the process is untouched):

  vector field   v = -xi, xi = (dg_loss/dtheta, dd_loss/dpsi) the simultaneous gradient, for
                 alternating, simultaneous, extragradient, extragradient_past, optimistic and
                 lookahead; -methods.consensus_gradient for consensus; -methods.sga_gradient
                 for sga (Balduzzi et al.'s lambda, the alignment's sign; with sga.scaled,
                 sga.lambda times it); for unrolled, the displacement of its own step over
                 the step size,
                 (step(x) - x) / h = -(d/dtheta g_loss(theta, d_k(theta)), dd_loss/dpsi),
                 which depends on h and k. Its Jacobian's eigenvalues at (0, 0) decide the
                 gradient flow (stability.flow_verdict).
  update map     methods.make_method(name, game, optax.sgd(h), optax.sgd(h), ...): the very
                 step training uses, differentiated with jax.jacfwd at the equilibrium over
                 its whole state (parameters, optimiser states and the method's own state,
                 flattened by ravel_pytree): extragradient_past's stored gradient, optimistic's
                 previous update, lookahead's slow weights. Integer and boolean leaves (a step
                 counter, optax's first-step flag, extragradient_past's flag that a
                 look-ahead gradient exists) are held at their steady values, reached
                 by running the method's own step once (a full cycle for lookahead) from
                 the equilibrium. The verdict is stability.map_verdict of the map's
                 eigenvalues: converges (radius < 1), cycles (on the unit circle), diverges.
  lookahead      a k-periodic map: the analysis takes one full cycle of k steps; its radius
                 rho_cycle and the per-step radius rho_cycle^(1/k) are both reported.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from numpy.polynomial.hermite_e import hermegauss

from gan_jax.components import losses, methods, models
from gan_jax.analysis import stability
from gan_jax.core.errors import field_error, is_finite_number, suggest
from gan_jax.report.tables import markdown_table

# Every name the command takes: the library's methods, and lookahead-minimax around
# simultaneous gradient descent.
LOOKAHEAD = "lookahead"
def names() -> tuple[str, ...]:
    """Every name the command takes: the registered methods, and lookahead."""
    return tuple(methods.METHODS) + (LOOKAHEAD,)
NOISE_NODES = 16        # Gauss-Hermite nodes per noisy sample
TOL = 1e-8              # verdict tolerance on |eigenvalue| - 1 and on real parts (float64)
SMOOTH_TOL = 0.05       # the largest relative central-difference mismatch of the field's J
MAX_STEPS_K = 1000


# ----------------------------------------------------------------------------- the game

def d_apply(psi, x_N1):
    """The logit psi x: the library's logistic discriminator with its bias held at 0."""
    return models.logistic_discriminator().apply(
        jnp.stack([psi[0], jnp.zeros_like(psi[0])]), x_N1)


def generate(theta):
    """f[1, 1]: a point mass at theta, the library's linear generator with its slope at 0."""
    return models.linear_generator().apply(
        jnp.stack([jnp.zeros_like(theta[0]), theta[0]]), jnp.zeros((1, 1), theta.dtype))


def noise(std, nodes: int = NOISE_NODES) -> tuple[Any, np.ndarray]:
    """(eps_N1, w_N): the instance noise's Gauss-Hermite nodes (std times the probabilists'
    Hermite nodes) and weights summing to 1; one node at 0 when std is None (no noise)."""
    if std is None:
        return np.zeros((1, 1)), np.ones(1)
    x, w = hermegauss(nodes)
    return std * x[:, None], w / w.sum()


def dirac_game(loss: str = "nonsaturating", *, r1=None, gp=None, clip=None, nk_eta=None,
               noise_std=None, nodes: int = NOISE_NODES, r2=None) -> methods.Game:
    """The Dirac-GAN as a methods.Game on g = theta, d = psi (f[1] each); the batch is ignored.

    Each option is None (off) or a number (possibly traced): the weight of R1 (and of R2, its
    twin on the generated point), of the gradient penalty, the clipping bound, the Nagarajan-Kolter eta, the instance noise's std.
    Expectations over the noise are weighted sums over the nodes, every real node against
    every generated one, so the registered losses apply as they are (a relativistic loss's
    generator term too, on one real and one generated point; with noise it is refused).
    """
    spec = losses.get_loss(loss)
    if spec.g_real and noise_std is not None:
        # The node pairs' weighted sum is the expectation of a loss that sums over samples;
        # a relativistic loss compares a sample with the others' mean (ragan), which one
        # pair at a time does not give.
        raise field_error("--noise-std", noise_std, f"instance noise takes losses that sum "
                          f"over samples; {loss!r} compares real and generated logits")
    eps_np, w_np = noise(noise_std, nodes)

    def weights():
        return jnp.asarray(w_np)      # made when traced: float64 under enable_x64

    def samples(theta):
        eps_N1 = jnp.asarray(eps_np, theta.dtype)
        return eps_N1, generate(theta) + eps_N1        # real (target 0 + noise), generated

    def d_value(theta, psi, batch=None):
        real_N1, fake_N1 = samples(theta)
        real_N, fake_N = d_apply(psi, real_N1), d_apply(psi, fake_N1)
        pairs_NN = jax.vmap(lambda r: jax.vmap(
            lambda f: spec.d_loss(r[None], f[None]))(fake_N))(real_N)
        w_N = weights()
        return w_N @ pairs_NN @ w_N

    def g_value(theta, psi):
        real_N1, fake_N1 = samples(theta)
        fake_N = d_apply(psi, fake_N1)
        if spec.g_real:        # a relativistic loss: every real node against every fake one
            real_N = d_apply(psi, real_N1)
            pairs_NN = jax.vmap(lambda r: jax.vmap(
                lambda f: spec.g_loss(f[None], r[None]))(fake_N))(real_N)
            return weights() @ pairs_NN @ weights()
        return weights() @ jax.vmap(lambda f: spec.g_loss(f[None]))(fake_N)

    def g_loss(theta, psi, batch=None):
        return g_value(theta, psi)

    def d_loss(theta, psi, batch=None):
        value = d_value(theta, psi)
        real_N1, fake_N1 = samples(theta)
        if r1 is not None:
            per_node = jax.vmap(lambda x: losses.r1_penalty(d_apply, psi, x[None]))(real_N1)
            value = value + r1 * (weights() @ per_node)
        if r2 is not None:     # the same on the generated point (R3GAN pairs it with R1)
            per_node = jax.vmap(lambda x: losses.r2_penalty(d_apply, psi, x[None]))(fake_N1)
            value = value + r2 * (weights() @ per_node)
        if gp is not None:
            # A linear discriminator's input gradient is psi everywhere: the interpolates'
            # place does not matter; they are the midpoints of real and generated nodes.
            per_node = jax.vmap(lambda r, f: losses.gradient_penalty(
                d_apply, psi, r[None], f[None], jnp.full((1,), 0.5)))(real_N1, fake_N1)
            value = value + gp * (weights() @ per_node)
        return value

    game = methods.Game(g_loss, d_loss, value=d_value)
    if nk_eta is not None:      # the wrapper training uses (stabilisers.NAGARAJAN_KOLTER)
        game = methods.nagarajan_kolter(game, nk_eta)
    if clip is not None:
        game = game._replace(project_d=lambda psi: losses.clip_params(psi, clip))
    return game


def make(name: str, game: methods.Game, lr, options: dict | None = None, *,
         steps_k: int = 5, alpha=0.5) -> methods.Method:
    """The library's method `name` with SGD at step lr and its own `options` (defaults where
    not given), or lookahead (steps_k, alpha) around simultaneous gradient descent."""
    tx = optax.sgd(lr)
    if name == LOOKAHEAD:
        return methods.make_method("simultaneous", game, tx, tx, methods.Coefs(alpha),
                                   lookahead_k=steps_k)
    return methods.make_method(name, game, tx, tx, options=options)


def method_options(name: str, *, steps_k: int, gamma, sga_lambda,
                   sga_scaled: bool) -> dict | None:
    """The method's own options from the command's: consensus's gamma (--gamma), sga's scaled
    and lambda (--sga-scaled, --sga-lambda), unrolled's k (--steps-k); the others' defaults."""
    return {"consensus": {"gamma": gamma}, "unrolled": {"k": steps_k},
            "sga": {"scaled": sga_scaled, "lambda": sga_lambda}}.get(name)


def batches_of(method: methods.Method) -> tuple:
    """The batches one step takes: the game is deterministic, so all None."""
    return (None,) * (method.slots.d + method.slots.g)


def vector_field(name: str, game: methods.Game, method: methods.Method, lr,
                 options: dict | None = None) -> Callable[[jax.Array], jax.Array]:
    """x = (theta, psi) -> v(x), the method's field (see the module docstring)."""
    def v(x):
        g, d = x[:1], x[1:]
        spec = methods.METHODS.get(name)
        if spec is not None and spec.direction is not None:       # consensus, sga
            ctx = methods.Context(game, None, None, methods.Coefs(),
                                  options=methods.method_options(name, options))
            direction = spec.direction(ctx, g, d, None)
        elif spec is not None and spec.unrolls:                    # its own displacement
            after = method.step(method.init(g, d), batches_of(method))
            return (jnp.concatenate([after.g, after.d]) - x) / lr
        else:
            direction = methods.simultaneous_gradient(game, g, d, None)
        return -jnp.concatenate(direction)

    return v


def _is_float(leaf) -> bool:
    return jnp.issubdtype(jnp.result_type(leaf), jnp.inexact)


def whole_state_map(method: methods.Method, steps: int):
    """(x0, F, template): the method's state at the equilibrium after `steps` of its own
    steps, flattened (float leaves only), and the map of that flat state through `steps`
    more steps. Integer and boolean leaves keep their values from the template."""
    batches = batches_of(method)

    def run(play):
        return jax.lax.fori_loop(0, steps, lambda i, p: method.step(p, batches), play)

    zero = jnp.zeros((1,))
    template = run(method.init(zero, zero))
    leaves, treedef = jax.tree.flatten(template)
    floats = [_is_float(leaf) for leaf in leaves]
    x0, unravel = ravel_pytree([leaf for leaf, f in zip(leaves, floats) if f])

    def flat(play):
        return ravel_pytree([leaf for leaf, f in zip(jax.tree.leaves(play), floats) if f])[0]

    def cycle(x):
        parts = iter(unravel(x))
        play = treedef.unflatten([next(parts) if f else leaf for leaf, f in zip(leaves, floats)])
        return flat(run(play))

    return x0, cycle, template


# ----------------------------------------------------------------------------- the analysis

class Options(NamedTuple):
    """What the analysis depends on. None switches an option off."""

    method: str
    lr: float = 0.1
    loss: str = "nonsaturating"
    gamma: float = methods.method_options("consensus")["gamma"]
    sga_lambda: float = methods.method_options("sga")["lambda"]
    sga_scaled: bool = False
    steps_k: int = 5
    alpha: float = methods.Coefs().lookahead_alpha
    r1: float | None = None
    gp: float | None = None
    clip: float | None = None
    nk_eta: float | None = None
    noise_std: float | None = None
    r2: float | None = None


_NUMBERS = ("lr", "gamma", "sga_lambda", "alpha", "r1", "gp", "clip", "nk_eta", "noise_std",
            "r2")
_SWITCHES = ("r1", "gp", "clip", "nk_eta", "noise_std", "r2")


class Static(NamedTuple):
    """The part of Options that picks the compiled programs; the numbers are traced."""

    method: str
    loss: str
    steps_k: int
    on: tuple[bool, ...]          # per _SWITCHES
    sga_scaled: bool = False


def _static(options: Options) -> Static:
    return Static(options.method, options.loss, options.steps_k,
                  tuple(getattr(options, s) is not None for s in _SWITCHES),
                  bool(options.sga_scaled))


def _numbers(options: Options) -> dict[str, float]:
    return {k: float(getattr(options, k) or 0.0) for k in _NUMBERS}


def _setup(static: Static, nums: dict):
    switches = {s: (nums[s] if on else None) for s, on in zip(_SWITCHES, static.on)}
    game = dirac_game(static.loss, **switches)
    options = method_options(static.method, steps_k=static.steps_k, gamma=nums["gamma"],
                             sga_lambda=nums["sga_lambda"], sga_scaled=static.sga_scaled)
    method = make(static.method, game, nums["lr"], options, steps_k=static.steps_k,
                  alpha=nums["alpha"])
    return game, options, method


@functools.lru_cache(maxsize=None)
def _programs(static: Static):
    """jit(field and its Jacobian at x) and jit(the whole-state map's Jacobian), compiled once
    per static part and reused for every step size and coefficient."""
    steps = static.steps_k if static.method == LOOKAHEAD else 1

    def field(x, nums):
        game, options, method = _setup(static, nums)
        v = vector_field(static.method, game, method, nums["lr"], options)
        return v(x), jax.jacfwd(v)(x)

    def update(nums):
        _, _, method = _setup(static, nums)
        x0, cycle, _ = whole_state_map(method, steps)
        return x0, cycle(x0), jax.jacfwd(cycle)(x0)

    return jax.jit(field), jax.jit(update), steps


class Analysis(NamedTuple):
    """A method's local behaviour at the Dirac-GAN's equilibrium (module docstring).

    Where the field is not differentiable at (0, 0) (`differentiable` False), the eigenvalue
    and radius fields are None and `verdict` says why.
    """

    options: Options
    differentiable: bool
    jacobian_error: float                  # relative central-difference mismatch of the field's J
    field_residual: float                  # max |v(0, 0)|: 0 up to round-off (stationary)
    field_eigenvalues: np.ndarray | None   # complex, sorted
    flow: str                              # stability.flow_verdict
    map_eigenvalues: np.ndarray | None     # of the (cycle) map's Jacobian over the whole state
    steps_per_map: int                     # k for lookahead (one cycle), else 1
    state_size: int                        # the flattened state's length
    fixed_point_residual: float            # |F(x0) - x0|: 0 if the state is a fixed point
    cycle_radius: float | None             # spectral radius of the (cycle) map
    radius: float | None                   # per step: cycle_radius ** (1 / steps_per_map)
    verdict: str                           # stability.map_verdict of the map's eigenvalues


def analyze(options: Options) -> Analysis:
    """The field's eigenvalues, the update map's spectral radius and the verdicts."""
    check(options)
    static, nums = _static(options), _numbers(options)
    field_fn, update_fn, steps = _programs(static)
    with jax.enable_x64(True):
        nums = {k: jnp.asarray(v, jnp.float64) for k, v in nums.items()}
        origin = np.zeros(2)

        def field(x):
            v, jac = field_fn(jnp.asarray(x, jnp.float64), nums)
            return np.asarray(v), np.asarray(jac)

        v0, jac = field(origin)
        error = stability.jacobian_error(field, jac, origin)
        x0, x1, map_jac = (np.asarray(a) for a in update_fn(nums))
    stationary = float(np.max(np.abs(v0)))
    residual = float(np.max(np.abs(x1 - x0))) if x0.size else 0.0
    if not error <= SMOOTH_TOL:
        why = f"not differentiable at the equilibrium (J mismatch {error:.3g})"
        return Analysis(options, False, error, stationary, None, why, None, steps, x0.size,
                        residual, None, None, why)
    field_eigs = np.sort_complex(np.linalg.eigvals(jac))
    map_eigs = np.sort_complex(np.linalg.eigvals(map_jac))
    cycle_radius = float(np.max(np.abs(map_eigs)))
    return Analysis(options, True, error, stationary, field_eigs,
                    stability.flow_verdict(field_eigs, TOL),
                    map_eigs, steps, x0.size, residual, cycle_radius,
                    cycle_radius ** (1.0 / steps), stability.map_verdict(map_eigs, TOL))


# ----------------------------------------------------------------------------- checks

def check(options: Options) -> None:
    """Raise errors.ConfigError naming the flag, the value and what is allowed."""
    if options.method not in names():
        raise field_error("--method", options.method,
                          f"must be one of {', '.join(names())}{suggest(options.method, names())}")
    if options.loss not in losses.LOSSES:
        raise field_error("--loss", options.loss, f"must be one of {', '.join(losses.LOSSES)}"
                          f"{suggest(options.loss, losses.LOSSES)}")
    rules = {  # flag -> (value, test, rule)
        "--lr": (options.lr, lambda x: x > 0, "must be a positive number"),
        "--gamma": (options.gamma, lambda x: x >= 0, "must be a number >= 0"),
        "--sga-lambda": (options.sga_lambda, lambda x: x >= 0, "must be a number >= 0"),
        "--alpha": (options.alpha, lambda x: 0 < x <= 1, "must be a number in (0, 1]"),
        "--r1": (options.r1, lambda x: x > 0, "must be a positive number (or leave it out)"),
        "--r2": (options.r2, lambda x: x > 0, "must be a positive number (or leave it out)"),
        "--gp": (options.gp, lambda x: x > 0, "must be a positive number (or leave it out)"),
        "--clip": (options.clip, lambda x: x > 0, "must be a positive number"),
        "--nk-eta": (options.nk_eta, lambda x: x > 0,
                     "must be a positive number (or leave it out)"),
        "--noise-std": (options.noise_std, lambda x: x > 0,
                        "must be a positive number (or leave it out)"),
    }
    for flag, (value, test, rule) in rules.items():
        if value is not None and not (is_finite_number(value) and test(value)):
            raise field_error(flag, value, rule)
    if not options.sga_scaled and options.sga_lambda != Options("").sga_lambda:
        raise field_error("--sga-lambda", options.sga_lambda,
                          "applies only with --sga-scaled: Balduzzi et al.'s Algorithm 1 sets "
                          "lambda to the alignment's sign, +-1, and has no weight")
    k = options.steps_k
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_STEPS_K:
        raise field_error("--steps-k", k, f"must be an integer in [1, {MAX_STEPS_K}]")


# ----------------------------------------------------------------------------- output

def _pairs(eigs) -> list[list[float]] | None:
    """[[re, im], ...], with -0.0 written as 0.0."""
    return None if eigs is None else [[float(z.real) + 0.0, float(z.imag) + 0.0] for z in eigs]


def to_json(a: Analysis) -> dict:
    """The analysis as one JSON-able object (jacobian_eigenvalues: the field's)."""
    o = a.options
    return {
        "method": o.method,
        "jacobian_eigenvalues": _pairs(a.field_eigenvalues),
        "update_spectral_radius": a.radius,
        "verdict": a.verdict,
        "flow": a.flow,
        "map_eigenvalues": _pairs(a.map_eigenvalues),
        "steps_per_map": a.steps_per_map,
        "cycle_spectral_radius": a.cycle_radius,
        "state_size": a.state_size,
        "differentiable": a.differentiable,
        "jacobian_error": a.jacobian_error,
        "field_residual": a.field_residual,
        "fixed_point_residual": a.fixed_point_residual,
        "options": o._asdict(),
    }


def format_eigenvalues(eigs) -> str:
    """'a ± bi' once per conjugate pair, each real eigenvalue as itself; round-off
    (|x| < 1e-12) printed as 0."""
    if eigs is None:
        return "-"

    def num(x):
        return f"{0.0 if abs(x) < 1e-12 else x:.6g}"

    return ", ".join(num(z.real) if abs(z.imag) < 1e-12 else f"{num(z.real)} ± {num(z.imag)}i"
                     for z in eigs if z.imag > -1e-12)


def report(a: Analysis) -> str:
    o = a.options
    game = [f"loss {o.loss}"] + [f"{name} {getattr(o, name)}" for name in _SWITCHES
                                 if getattr(o, name) is not None]
    sga = (f", lambda {o.sga_lambda} x the alignment's sign" if o.sga_scaled
           else ", lambda the alignment's sign")
    coef = {"consensus": f", gamma {o.gamma}", "sga": sga,
            "unrolled": f", k {o.steps_k}",
            LOOKAHEAD: f" around simultaneous, k {o.steps_k}, alpha {o.alpha}"}.get(o.method, "")
    radius = "-" if a.radius is None else f"{a.radius:.8f}"
    rows = [["eigenvalues of the field's Jacobian", format_eigenvalues(a.field_eigenvalues)],
            ["gradient flow", a.flow],
            [f"eigenvalues of the update map's Jacobian (state size {a.state_size}"
             + (f", one cycle of {a.steps_per_map} steps" if a.steps_per_map > 1 else "") + ")",
             format_eigenvalues(a.map_eigenvalues)],
            ["spectral radius per step" + (" (cycle radius ^ (1/k))"
                                           if a.steps_per_map > 1 else ""), radius],
            ["verdict", a.verdict]]
    head = (f"Dirac-GAN at the equilibrium (theta, psi) = (0, 0): method {o.method}{coef}; "
            f"{', '.join(game)}; SGD, lr {o.lr} for both players\n\n")
    return head + markdown_table(["quantity", "value"], rows) + "\n"
