"""Training methods: how the two players' gradients become one run-step, written once.

A *method* (the configuration's `update`) is a pure function of the two players' states: the
generator's and discriminator's parameters, their optimiser states, and the method's own state
(previous gradients, slow weights, ...), all held in a :class:`Play`. Training (gan_jax.training.train)
calls it on sampled batches; the stability analysis (gan_jax.analysis.stability, the `dirac` command)
differentiates the very same function on a deterministic game. Nothing else in the library
writes an update rule.

A :class:`Game` is the two objectives, both *minimised*, as functions of (g, d, batch):

  g_loss(g, d, batch)   the generator's loss (with its regulariser, if any)
  d_loss(g, d, batch)   the discriminator's loss (with its penalties)
  project_d(d)          applied after every discriminator update (WGAN's clipping)

`xi = (dg_loss/dg, dd_loss/dd)` is the *simultaneous gradient*; plain play steps along -xi.

The methods (Section "Methods" of docs/methods.md has each one's equations and source):

  alternating         d_updates discriminator steps, each on its own batch, then one generator
                      step against the updated discriminator on a batch of its own (the seed's)
  simultaneous        both players step from the same point on the same batch
  extragradient       Korpelevich's extragradient, as Gidel et al. (2019) train GANs: both
                      players step to a look-ahead point on one batch, then the gradient there,
                      on a fresh batch, moves the original point. The optimiser's state
                      advances at both steps (their Extra-Adam).
  extragradient_past  extrapolation from the past (Gidel et al. 2019): the look-ahead step
                      reuses the gradient of the previous look-ahead point; one gradient
                      evaluation per step. The first step makes no look-ahead (there is no
                      previous gradient; their code skips it), so the optimiser's state
                      advances 2t - 1 times in t steps, as theirs.
  optimistic          optimistic play (Daskalakis et al. 2018): each player applies
                      2 u_t - u_{t-1}, u the update of its optimiser, through
                      optax.scale_by_optimistic_gradient. With SGD this is OGDA (equal to
                      optax.optimistic_gradient_descent), with Adam their Optimistic Adam.
                      The first step is a plain step (optax's convention).
  consensus           consensus optimisation (Mescheder et al. 2017): both players descend
                      xi + gamma grad(|xi|^2 / 2), simultaneously (gamma: its option
                      consensus.gamma).
  sga                 symplectic gradient adjustment (Balduzzi et al. 2018, Algorithm 1):
                      both players descend xi + lambda A^T xi, A the antisymmetric part of the
                      game's Hessian, lambda set to their alignment's sign, +-1 (epsilon 0.1).
                      With its option sga.scaled, lambda is its option sga.lambda times
                      that sign: this library's generalisation, equal to theirs at
                      sga.lambda = 1.
  unrolled            unrolled GAN (Metz et al. 2017): on one batch, the discriminator's k
                      (its option unrolled.k) unrolled steps (its optimiser state included)
                      give d_k(g); the generator descends g_loss(g, d_k(g)), differentiated
                      through the unrolling, and the discriminator's own step is the first
                      unrolled step. With d_updates > 1, the first d_updates - 1
                      discriminator steps are plain, each on its own batch.

and wrappers around any method, each keeping its own state beside the wrapped method's
(`inner`) in `Play.extra`: :func:`lookahead` (Chavdarova et al. 2021, lookahead-minimax): every
k steps, both players' slow weights move by alpha towards the fast ones, and the fast weights
restart from them; the optimisers' states are left as they are. :func:`ema` (Yazici et al.
2019): an exponential moving average of the generator, which only observes the players; read
it with :func:`averaged`.

Coefficients (gamma, lambda, alpha) are traced numbers; the method, its k, and d_updates are
static (they fix the number of batches a step draws and the shape of the method's state).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gan_jax.core import registry

SGA_EPSILON = 0.1      # Balduzzi et al. (2018), Algorithm 1: the alignment's epsilon


def _identity(d):
    return d


class Game(NamedTuple):
    """Two objectives to minimise, on parameter pytrees g and d and a batch (any pytree).

    The one game type of the library: training builds it from a configuration
    (gan_jax.training.train.make_game), the local stability analysis from a configuration's
    population losses (gan_jax.analysis.stability.population_game) and the Dirac-GAN from its
    closed form (gan_jax.analysis.dirac.dirac_game); every method steps on it, and wrappers
    such as :func:`nagarajan_kolter` take one and give one.

    value: the game's value for the discriminator, its loss without penalties, as a function
      of (g, d, batch) (the Nagarajan-Kolter term differentiates it); None where not given.
    """

    g_loss: Callable[[Any, Any, Any], jax.Array]
    d_loss: Callable[[Any, Any, Any], jax.Array]
    project_d: Callable[[Any], Any] = _identity
    value: Callable[[Any, Any, Any], jax.Array] | None = None


class Coefs(NamedTuple):
    """The traced coefficients of the wrappers `make_method` applies (a method's own are its
    options, `Context.options`)."""

    lookahead_alpha: Any = 0.5  # lookahead-minimax step of the slow weights


class Play(NamedTuple):
    """Both players' states: parameters, optimiser states, and the method's own state."""

    g: Any
    d: Any
    g_opt: Any
    d_opt: Any
    extra: Any = ()


class Slots(NamedTuple):
    """The batches one step consumes: `d` full batches (real and fake samples), then `g`
    generator batches (latent draws only, unless the game's generator loss needs real data)."""

    d: int
    g: int


class Method(NamedTuple):
    """A method's pure functions. Build with :func:`make_method`.

    slots: the batches a step takes, in order: `step(play, batches)` gets a tuple of
      `slots.d + slots.g` batches.
    init(g, d) -> Play: the initial state.
    step(play, batches) -> Play: one run-step.
    """

    name: str
    slots: Slots
    init: Callable[[Any, Any], Play]
    step: Callable[[Play, tuple], Play]


def _apply(tx: optax.GradientTransformation, grads, opt, params):
    updates, opt = tx.update(grads, opt, params)
    return optax.apply_updates(params, updates), opt


def _vdot(a, b) -> jax.Array:
    return sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def sq_norm(tree) -> jax.Array:
    """|tree|^2 over all its leaves."""
    return sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree))


def nk_regulariser(d_value: Callable, g, d, batch) -> jax.Array:
    """|d d_value / d d|^2 at (g, d): the Nagarajan-Kolter term, which the generator adds to
    its loss with weight eta (their eq. (4): eta multiplies the squared norm, no 1/2); d_value
    is the game's value for the discriminator, without penalties."""
    return sq_norm(jax.grad(d_value, 1)(g, d, batch))


def nagarajan_kolter(game: Game, eta) -> Game:
    """The game with the Nagarajan-Kolter regulariser (Nagarajan & Kolter 2017, eq. (4)) on
    the generator: it minimises g_loss + eta |d value / d d|^2, `value` the game's value for
    the discriminator (Game.value, required). eta may be traced."""
    if game.value is None:
        raise ValueError("nagarajan_kolter: the game gives no value (Game.value) to "
                         "differentiate")

    def g_loss(g, d, batch):
        return game.g_loss(g, d, batch) + eta * nk_regulariser(game.value, g, d, batch)

    return game._replace(g_loss=g_loss)


def simultaneous_gradient(game: Game, g, d, batch):
    """xi = (dg_loss/dg, dd_loss/dd) at (g, d) on one batch."""
    return (jax.grad(game.g_loss, 0)(g, d, batch), jax.grad(game.d_loss, 1)(g, d, batch))


def consensus_gradient(game: Game, g, d, batch, gamma):
    """xi + gamma grad_x (|xi|^2 / 2) (Mescheder et al. 2017, Algorithm 1, in the minimise
    convention: descending it is their ascent along v - gamma grad L, v = -xi)."""
    def half_sq(g, d):
        xi = simultaneous_gradient(game, g, d, batch)
        return 0.5 * _vdot(xi, xi), xi

    (_, xi), grad_l = jax.value_and_grad(half_sq, argnums=(0, 1), has_aux=True)(g, d)
    return jax.tree.map(lambda a, b: a + gamma * b, xi, grad_l)


def sga_gradient(game: Game, g, d, batch, sga_lambda=None):
    """xi + lambda A^T xi, A = (H - H^T) / 2, H = dxi/dx (Balduzzi et al. 2018, Algorithm 1).

    A^T xi = (H^T xi - H xi) / 2, from one reverse (H^T xi = grad |xi|^2 / 2) and one forward
    (H xi) product. lambda = sign(<xi, H^T xi> <A^T xi, H^T xi> / n + epsilon), n the number
    of parameters, epsilon = 0.1 (their "alignment"): the adjustment's sign is chosen so that
    it pulls towards a stable fixed point and pushes away from an unstable one.

    sga_lambda: None, their rule; a number c, this library's generalisation lambda = c times
    that sign (the same at c = 1)."""
    def xi_fn(x):
        return simultaneous_gradient(game, x[0], x[1], batch)

    x = (g, d)
    xi, h_xi = jax.jvp(xi_fn, (x,), (xi_fn(x),))
    _, vjp = jax.vjp(xi_fn, x)
    ht_xi, = vjp(xi)
    at_xi = jax.tree.map(lambda a, b: 0.5 * (a - b), ht_xi, h_xi)
    n = sum(leaf.size for leaf in jax.tree.leaves(x))
    lam = jnp.sign(_vdot(xi, ht_xi) * _vdot(at_xi, ht_xi) / n + SGA_EPSILON)
    if sga_lambda is not None:
        lam = sga_lambda * lam
    return jax.tree.map(lambda a, b: a + lam * b, xi, at_xi)


def unrolled_discriminator(game: Game, tx_d, g, d, d_opt, batch, k: int):
    """d_k(g): k discriminator steps from (d, d_opt) on one batch, optimiser state included;
    differentiable in g (and d) through every step."""
    def one(carry, _):
        d, d_opt = carry
        d, d_opt = _apply(tx_d, jax.grad(game.d_loss, 1)(g, d, batch), d_opt, d)
        return (game.project_d(d), d_opt), None

    (d, _), _ = jax.lax.scan(one, (d, d_opt), None, length=k)
    return d


class Players(NamedTuple):
    """Both players' optimiser steps for a method's step function: each takes a Play and
    gradients (descent directions, pytrees like the parameters) and returns the Play after the
    step; the discriminator's step is followed by the game's `project_d`."""

    init: Callable[[Any, Any, Any], Play]      # (g, d, extra) -> Play
    step_d: Callable[[Play, Any], Play]
    step_g: Callable[[Play, Any], Play]
    step_both: Callable[[Play, tuple], Play]   # (g grads, d grads): D, then G, from one point


def players(game: Game, tx_g: optax.GradientTransformation,
            tx_d: optax.GradientTransformation) -> Players:
    """The players' steps with these optimisers (descent transformations)."""
    def step_d(play: Play, grads) -> Play:
        d, d_opt = _apply(tx_d, grads, play.d_opt, play.d)
        return play._replace(d=game.project_d(d), d_opt=d_opt)

    def step_g(play: Play, grads) -> Play:
        g, g_opt = _apply(tx_g, grads, play.g_opt, play.g)
        return play._replace(g=g, g_opt=g_opt)

    def step_both(play: Play, grads) -> Play:
        return step_g(step_d(play, grads[1]), grads[0])

    def init(g, d, extra=()) -> Play:
        return Play(g, d, tx_g.init(g), tx_d.init(d), extra)

    return Players(init, step_d, step_g, step_both)


class Context(NamedTuple):
    """What a method is built from: the game, the players' optimisers (descent
    transformations, from the configuration), the wrappers' coefficients, the static setting
    the configuration gives every method (d_updates), and the method's own options
    (`MethodSpec.options`: option name -> value, a traced one an f32[] array: consensus's
    gamma, sga's scaled and lambda, unrolled's k)."""

    game: Game
    tx_g: optax.GradientTransformation
    tx_d: optax.GradientTransformation
    coefs: Coefs
    d_updates: int = 1
    options: dict = {}

    def players(self) -> Players:
        return players(self.game, self.tx_g, self.tx_d)


class MethodSpec(NamedTuple):
    """A training method, the method protocol (register with gan_jax.register("method", ...)).

    build(ctx: Context) -> (init(g, d) -> Play, step(play, batches) -> Play): pure functions
      of both players' states; `batches` is a tuple of slots(d_updates) batches, the full
      ones first (real and fake samples), then the generator-only ones.
    slots(d_updates) -> Slots: the batches one step takes (no JAX: validation and the
      training loop's draws size themselves by it).
    simultaneous: both players move from one point (d_updates must then be 1).
    direction: None, or (ctx, g, d, batch) -> (g direction, d direction), the descent
      direction whose negative is the method's vector field (the Dirac-GAN's analysis); None: the simultaneous gradient, or, for `unrolls`, the step's own
      displacement.
    unrolls: the method differentiates through optimiser steps (Adam then gets a tiny
      eps_root inside its root, optim.UNROLL_EPS_ROOT, so that the derivative stays finite).
    options: the method's own options (registry.Option), set in a configuration as
      "<method>.<option>"; `build` reads their values in `ctx.options`.
    """

    build: Callable[[Context], tuple]
    slots: Callable[[int], Slots]
    simultaneous: bool = True
    direction: Callable | None = None
    unrolls: bool = False
    options: tuple = ()


def check_method(obj) -> str | None:
    if not isinstance(obj, MethodSpec):
        return f"must be a gan_jax.components.methods.MethodSpec(build, slots, ...), got {type(obj).__name__}"
    if not callable(obj.build) or not callable(obj.slots):
        return "build(ctx) and slots(d_updates) must be functions"
    return None


# The registry of methods (gan_jax.core.registry): configuration validates `update` against it,
# in the order docs and tables list them.
METHODS: dict[str, MethodSpec] = registry.declare(
    "method", check_method, "a training method (methods.MethodSpec)", "update")


def method_options(name: str, given: dict | None = None) -> dict:
    """Method `name`'s own options, option name -> value: `given`'s, else the declared
    defaults."""
    declared = {o.name: o.default for o in registry.options_of(METHODS[name])}
    unknown = set(given or {}) - set(declared)
    if unknown:
        raise ValueError(f"options: got {sorted(unknown)}; method {name!r} declares "
                         f"{sorted(declared) or 'none'}")
    return {**declared, **(given or {})}


def simultaneous(name: str) -> bool:
    """Whether method `name`'s step moves both players from one point (d_updates 1)."""
    return METHODS[name].simultaneous


def slots(name: str, d_updates: int = 1) -> Slots:
    """The batches one step of method `name` takes (no JAX: configuration validation and the
    training loop's draws size themselves by it)."""
    return METHODS[name].slots(d_updates)


def make_method(name: str, game: Game, tx_g: optax.GradientTransformation,
                tx_d: optax.GradientTransformation, coefs: Coefs = Coefs(), *,
                d_updates: int = 1, lookahead_k: int = 0,
                options: dict | None = None) -> Method:
    """The method `name` on `game` with the players' optimisers (descent transformations).

    Args:
      d_updates: discriminator steps per generator step (alternating and unrolled; 1 for the
        simultaneous methods).
      lookahead_k: 0, or wrap the method in lookahead-minimax with this k (:func:`lookahead`).
      options: values of the method's own options (`MethodSpec.options`) by option name;
        those not given take their declared defaults (consensus's `gamma`; unrolled's `k`;
        sga's `scaled`: lambda = its option `lambda` times the alignment's sign, this
        library's generalisation, instead of the sign itself, :func:`sga_gradient`).
    """
    if name not in METHODS:
        raise ValueError(f"update: got {name!r}; must be one of {', '.join(METHODS)}")
    spec = METHODS[name]
    if spec.simultaneous and d_updates != 1:
        raise ValueError(f"d_updates: got {d_updates}; must be 1 with update = {name!r}")
    init, step = spec.build(Context(game, tx_g, tx_d, coefs, d_updates,
                                    method_options(name, options)))
    method = Method(name, spec.slots(d_updates), init, step)
    return lookahead(method, lookahead_k, coefs.lookahead_alpha) if lookahead_k else method


# ----------------------------------------------------------------------------- the built-ins

def _one_batch(d_updates: int) -> Slots:
    return Slots(1, 0)


def _alternating(ctx: Context):
    p = ctx.players()
    game, k = ctx.game, ctx.d_updates

    def step(play, batches):
        for b in batches[:k]:
            play = p.step_d(play, jax.grad(game.d_loss, 1)(play.g, play.d, b))
        return p.step_g(play, jax.grad(game.g_loss, 0)(play.g, play.d, batches[k]))

    return p.init, step


def _simultaneous_direction(ctx: Context, g, d, batch):
    return simultaneous_gradient(ctx.game, g, d, batch)


def _along(direction, optimistic: bool = False):
    """A method whose one step moves both players along `direction(ctx, g, d, batch)`."""
    def build(ctx: Context):
        tx_g, tx_d = ctx.tx_g, ctx.tx_d
        if optimistic:
            tx_g = optax.chain(tx_g, optax.scale_by_optimistic_gradient())
            tx_d = optax.chain(tx_d, optax.scale_by_optimistic_gradient())
        p = players(ctx.game, tx_g, tx_d)

        def step(play, batches):
            b, = batches
            return p.step_both(play, direction(ctx, play.g, play.d, b))

        return p.init, step

    return build


def _extragradient(ctx: Context):
    p, game = ctx.players(), ctx.game

    def step(play, batches):
        b_look, b_step = batches
        half = p.step_both(play, simultaneous_gradient(game, play.g, play.d, b_look))
        xi = simultaneous_gradient(game, half.g, half.d, b_step)
        return p.step_both(half._replace(g=play.g, d=play.d), xi)

    return p.init, step


class Past(NamedTuple):
    """Extrapolation from the past's own state: the previous look-ahead gradient (zeros, and
    `seen` False, before the first step)."""

    grads: Any             # (g, d) gradient pytrees
    seen: jax.Array        # bool[]: whether a look-ahead gradient exists yet


def _extragradient_past(ctx: Context):
    p, game = ctx.players(), ctx.game

    def init(g, d):      # the previous look-ahead gradient: none yet
        return p.init(g, d, Past((jax.tree.map(jnp.zeros_like, g),
                                  jax.tree.map(jnp.zeros_like, d)), jnp.zeros((), bool)))

    def step(play, batches):
        b, = batches
        past = play.extra
        # The look-ahead steps along the previous look-ahead gradient; the first step has
        # none and makes no look-ahead (nor an optimiser step), as Gidel et al.'s code.
        look = p.step_both(play, past.grads)
        half = jax.tree.map(lambda a, c: jnp.where(past.seen, a, c), look, play)
        xi = simultaneous_gradient(game, half.g, half.d, b)
        return p.step_both(half._replace(g=play.g, d=play.d), xi)._replace(
            extra=Past(xi, jnp.ones((), bool)))

    return init, step


def _unrolled(ctx: Context):
    p, game, k = ctx.players(), ctx.game, ctx.d_updates

    def step(play, batches):
        for b in batches[:k - 1]:
            play = p.step_d(play, jax.grad(game.d_loss, 1)(play.g, play.d, b))
        b = batches[k - 1]

        def surrogate(g):
            d_k = unrolled_discriminator(game, ctx.tx_d, g, play.d, play.d_opt, b,
                                         ctx.options["k"])
            return game.g_loss(g, d_k, b)

        g_grads = jax.grad(surrogate)(play.g)
        return p.step_g(p.step_d(play, jax.grad(game.d_loss, 1)(play.g, play.d, b)), g_grads)

    return p.init, step


def _consensus_direction(ctx: Context, g, d, batch):
    return consensus_gradient(ctx.game, g, d, batch, ctx.options["gamma"])


def _sga_direction(ctx: Context, g, d, batch):
    return sga_gradient(ctx.game, g, d, batch,
                        ctx.options["lambda"] if ctx.options["scaled"] else None)


MAX_UNROLL = 2**8     # unrolled's k: its steps are unrolled into the program (compile time)


def _nonnegative(v) -> str | None:
    return None if v >= 0 else "must be a non-negative number"


def _unroll_steps(k) -> str | None:
    return None if 1 <= k <= MAX_UNROLL else \
        f"must be an integer in [1, {MAX_UNROLL}] (compile time)"


for _name, _spec, _doc in (
        ("alternating", MethodSpec(_alternating, lambda k: Slots(k, 1), simultaneous=False),
         "d_updates D steps, each on its own batch, then one G step (the seed's)"),
        ("simultaneous", MethodSpec(_along(_simultaneous_direction), _one_batch),
         "both players step from one point on one batch"),
        ("extragradient", MethodSpec(_extragradient, lambda k: Slots(2, 0)),
         "extragradient / Extra-Adam (Korpelevich 1976; Gidel et al. 2019)"),
        ("extragradient_past", MethodSpec(_extragradient_past, _one_batch),
         "extrapolation from the past (Gidel et al. 2019)"),
        ("optimistic", MethodSpec(_along(_simultaneous_direction, optimistic=True),
                                  _one_batch),
         "optimistic GDA / Optimistic Adam (Daskalakis et al. 2018)"),
        ("consensus", MethodSpec(_along(_consensus_direction), _one_batch,
                                 direction=_consensus_direction,
                                 options=(registry.Option(
                                     "gamma", 10.0, "the weight gamma of grad |xi|^2 / 2",
                                     check=_nonnegative, traced=True,
                                     legacy="consensus_gamma"),)),
         "consensus optimisation (Mescheder et al. 2017)"),
        ("sga", MethodSpec(_along(_sga_direction), _one_batch, direction=_sga_direction,
                           options=(registry.Option(
                               "scaled", False, "false: lambda is the alignment's sign "
                               "(Balduzzi et al.'s Algorithm 1); true: sga.lambda times that "
                               "sign (this library's generalisation)", legacy="sga_scaled"),
                               registry.Option(
                               "lambda", 1.0, "with sga.scaled: |lambda|, the alignment's "
                               "sign times this", check=_nonnegative, traced=True,
                               legacy="sga_lambda"))),
         "symplectic gradient adjustment (Balduzzi et al. 2018)"),
        ("unrolled", MethodSpec(_unrolled, lambda k: Slots(k, 0), simultaneous=False,
                                unrolls=True, options=(registry.Option(
                                    "k", 5, "discriminator steps unrolled",
                                    check=_unroll_steps, legacy="unroll_k"),)),
         "unrolled GAN, k unrolled steps (Metz et al. 2017)")):
    registry.register("method", _name, _spec, doc=_doc)


class LookaheadState(NamedTuple):
    inner: Any             # the wrapped method's own state
    slow_g: Any
    slow_d: Any
    count: jax.Array       # i32[]: fast steps since the last synchronisation


def lookahead(method: Method, k: int, alpha) -> Method:
    """Lookahead-minimax (Chavdarova et al. 2021, Algorithm 1) around any method.

    After every k steps of `method`: slow <- slow + alpha (fast - slow) for both players
    together, and fast <- slow. The slow weights start at the initial parameters; the
    optimisers' states are untouched by the synchronisation.
    """
    def init(g, d) -> Play:
        play = method.init(g, d)
        return play._replace(extra=LookaheadState(play.extra, g, d, jnp.zeros((), jnp.int32)))

    def step(play: Play, batches) -> Play:
        state = play.extra
        fast = method.step(play._replace(extra=state.inner), batches)
        count = state.count + 1
        sync = count >= k

        def pull(slow, fast_p):
            return jax.tree.map(lambda s, f: jnp.where(sync, s + alpha * (f - s), s), slow, fast_p)

        slow_g, slow_d = pull(state.slow_g, fast.g), pull(state.slow_d, fast.d)
        g = jax.tree.map(lambda s, f: jnp.where(sync, s, f), slow_g, fast.g)
        d = jax.tree.map(lambda s, f: jnp.where(sync, s, f), slow_d, fast.d)
        return fast._replace(g=g, d=d, extra=LookaheadState(
            fast.extra, slow_g, slow_d, jnp.where(sync, 0, count)))

    return Method(f"lookahead({method.name}, k={k})", method.slots, init, step)


# ----------------------------------------------------------------------------- stabilisers
#
# A stabiliser that keeps state of its own is a wrapper like `lookahead`: a function
# (method, coefficients...) -> Method whose state, in `Play.extra`, holds the wrapped
# method's state as its `inner` field beside its own (optax's wrappers own their state the
# same way). Wrappers compose in any order and with any method; code outside reads a
# wrapper's state through an accessor (`averaged`), which finds it however deep it is nested.


class Tracker(NamedTuple):
    """Statistics a wrapper keeps of a generator it holds apart from the players (the averaged
    generator's batch-normalization population statistics): `init(g) -> stats` for parameters
    g, and `update(stats, g, batches) -> stats` after a step on `batches`, g the parameters the
    wrapper held before that step."""

    init: Callable[[Any], Any]
    update: Callable[[Any, Any, tuple], Any]


class EMAState(NamedTuple):
    inner: Any             # the wrapped method's own state
    g: Any                 # the averaged generator's parameters
    stats: Any = ()        # their statistics (the Tracker's), () without one


def ema(method: Method, beta, track: Tracker | None = None) -> Method:
    """An exponential moving average of the generator (Yazici et al. 2019) around any method.

    After every step of `method`: g_avg <- beta g_avg + (1 - beta) g, g the generator the step
    left (after lookahead's synchronisation, when the average wraps lookahead), from g_avg = g
    at init. The average only observes: the players' parameters and optimiser states are the
    wrapped method's. `track`: statistics of the averaged generator that move with each step
    (train.population_stats: batch normalization's, updated at the average the step started
    from). Read the average with :func:`averaged`.
    """
    def init(g, d) -> Play:
        play = method.init(g, d)
        return play._replace(extra=EMAState(play.extra, g, track.init(g) if track else ()))

    def step(play: Play, batches) -> Play:
        state = play.extra
        new = method.step(play._replace(extra=state.inner), batches)
        g = jax.tree.map(lambda e, p: beta * e + (1 - beta) * p, state.g, new.g)
        stats = track.update(state.stats, state.g, batches) if track else ()
        return new._replace(extra=EMAState(new.extra, g, stats))

    return Method(f"ema({method.name})", method.slots, init, step)


class Wrapper(NamedTuple):
    """A wrapper of the training method, the wrapper protocol (register with
    gan_jax.register("wrapper", ...)).

    wrap(static, hp, method, track) -> Method: `method` wrapped. Its state (`Play.extra`) is a
      NamedTuple of its own holding the wrapped method's state as its `inner` field, so that
      `wrapper_state` finds any wrapper's state through it. `track`: the generator's
      statistics rule (batch normalization's population statistics, train.population_stats;
      None without), for a wrapper that keeps a generator of its own. Its options' values:
      gan_jax.config.option_values(static, "wrapper", name, hp).
    on(static) -> bool: a built-in's switch (its configuration fields); None: on when the
      configuration's `wrappers` list names it.
    options: its own options (registry.Option), "<name>.<option>".

    Wrappers apply innermost first: the built-ins in registration order, lookahead, then the
    average (which so averages the generator after lookahead's synchronisation), then a
    plugin's, by name.
    """

    wrap: Callable
    on: Callable | None = None
    options: tuple = ()
    field: str | None = None   # a built-in's: the configuration field that switches it on


def check_wrapper(obj) -> str | None:
    if not isinstance(obj, Wrapper):
        return f"must be a gan_jax.Wrapper(wrap, ...), got {type(obj).__name__}"
    if not callable(obj.wrap) or (obj.on is not None and not callable(obj.on)):
        return "wrap(static, hp, method, track) and on(static) must be functions"
    return None


# The registry of the method's wrappers (gan_jax.core.registry).
WRAPPERS: dict[str, Wrapper] = registry.declare(
    "wrapper", check_wrapper, "a wrapper of the training method (gan_jax.Wrapper)", "wrappers")

registry.register("wrapper", "lookahead", Wrapper(
    lambda static, hp, method, track: lookahead(method, static.lookahead_k, hp.lookahead_alpha),
    on=lambda static: static.lookahead_k > 0, field="lookahead_k"),
    doc="lookahead-minimax around the method (fields lookahead_k, lookahead_alpha)")
registry.register("wrapper", "ema", Wrapper(
    lambda static, hp, method, track: ema(method, hp.ema_beta, track),
    on=lambda static: static.use_ema, field="ema_beta"),
    doc="the generator's exponential moving average (field ema_beta)")


def wrappers_on(static) -> tuple[tuple[str, Wrapper], ...]:
    """(name, wrapper) of each wrapper of the method a configuration switches on, in the order
    they apply, innermost first: the built-ins switched on by their fields (`on`), in
    registration order, then the ones the `wrappers` list names, by name."""
    named = getattr(static, "wrappers", ())
    return tuple((name, w) for name, w in WRAPPERS.items()
                 if w.on is not None and w.on(static)) + \
        tuple((name, WRAPPERS[name]) for name in sorted(named))


def wrapper_state(extra, kind: type):
    """The state of type `kind` in a method's state `extra`, the outermost one found by
    following wrappers' `inner` fields, or None if no wrapper of that kind is there."""
    while extra is not None:
        if isinstance(extra, kind):
            return extra
        extra = getattr(extra, "inner", None)
    return None


def averaged(extra) -> EMAState | None:
    """The averaged generator in a method's state (`Play.extra`, `TrainState.method`): its
    :func:`ema` wrapper's state (parameters `.g`, statistics `.stats`), or None without one."""
    return wrapper_state(extra, EMAState)
