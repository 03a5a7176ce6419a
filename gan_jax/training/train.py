"""Training: `make_train(static) -> train(hparams, key) -> (TrainState, history)`.

Written for one run; batch runs with `jax.vmap` from outside. The schedule is the seed's: for
step in 0..steps (steps + 1 iterations), `d_updates` discriminator steps, each on a fresh real
batch and fresh z, then one generator step on fresh z. History rows are taken after iterations
0, log_every, ..., steps, as in the seed: the loss values on a fresh batch of `eval_batch`, and
the metrics of `gan_jax.components.metrics` on `history_samples` fresh samples. The whole loop is an outer
`lax.scan` over log points around an inner `fori_loop` over the iterations before each row
(one before the first row, log_every before each later one), so the step is compiled once.
Each iteration's random draws are made at the end of the iteration before it and carried as
loop state (see `make_step`).

Keys: the run's key is split once into named streams (init, loop, history; a finite training
set's from a fifth); iteration i draws from `fold_in(loop_key, i)` with one call for random
words (see `make_step`), so a run's numbers depend on its key alone.

Training and evaluation are two parts, `make_training` (the loop, each history row's training
fields, and the generator at each row) and `make_evaluation` (every row's sample metrics and
the final metrics, from those generators): the sweep engine compiles them as two programs, the
evaluation shared by every configuration of the same target, generator and metric options;
`make_train` and `make_run` compose them into one function with the same numbers.

A batch-normalized generator (g_norm = 'batch') is applied in two modes: inside the training
method's step with batch statistics (`generator_view`), everywhere else with the population
statistics carried in `TrainState.g_bn` (`generate`).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax.components import data as data_lib
from gan_jax.analysis import exact
from gan_jax.components import losses as losses_lib
from gan_jax.components import methods as methods_lib
from gan_jax.components import metrics as metrics_lib
from gan_jax.components import models
from gan_jax.components import optim
from gan_jax.components import stabilisers as stabilisers_lib
from gan_jax.components.stabilisers import STABILISERS, stabilisers_on
from gan_jax.core import rand
from gan_jax import config as config_lib
from gan_jax.config import EvalConfig, HParams, StaticConfig
from gan_jax.core.errors import ConfigError

# Families whose parameters are few enough to record in every history row.
SMALL_FAMILIES = ("linear", "piecewise", "logistic")


class TrainState(NamedTuple):
    g_params: Any          # generator parameters (pytree)
    d_params: Any          # discriminator parameters (pytree)
    g_opt: Any             # generator optimiser state
    d_opt: Any             # discriminator optimiser state
    step: jax.Array        # i32[]: iterations done
    diverged_at: jax.Array  # i32[]: first iteration leaving a non-finite parameter, -1 if none
    method: Any = ()       # the training method's own state, its wrappers' included
                           # (gan_jax.components.methods: lookahead's slow weights, the averaged
                           # generator of ema_beta > 0, read with `averaged_generator`)
    stabilisers: Any = ()  # the game's stabilisers' own states, one per stabiliser on, in
                           # stabilisers_on order (spectral normalization's power-iteration
                           # vectors); read one with `stabiliser_state`
    g_bn: Any = ()         # g_norm = 'batch': the generator's population statistics, one
                           # models.BatchStats per hidden layer


class RunOutput(NamedTuple):
    state: TrainState
    history: dict[str, jax.Array]   # name -> [num_logs, ...]
    final: dict[str, jax.Array]     # name -> scalar, on eval_samples fresh samples
    samples: jax.Array | None = None  # f32[keep_samples, D]: the first generated samples the
                                      # final metrics were computed on (None: none kept)


class Parts(NamedTuple):
    """What a static configuration fixes: target, families, the losses it serves."""

    target: Any                    # a target (data: the protocol), e.g. a GaussianMixture
    generator: models.Model
    discriminator: models.Model
    losses: tuple[str, ...]        # one, or several that runs pick by hp.loss_index
    latent_dim: int
    static: Any = None             # the StaticConfig, whose losses' options `loss` gives them

    def loss(self, hp: HParams) -> losses_lib.Loss:
        """The run's loss (losses.pick), with its options' values (static ones from the
        configuration, traced ones from `hp.options`)."""
        options = None if self.static is None else [
            config_lib.option_values(self.static, "loss", n, hp) for n in self.losses]
        return losses_lib.pick(self.losses, hp.loss_index, options)


def make_parts(static: StaticConfig) -> Parts:
    return Parts(data_lib.make_target(static), models.make_generator(static),
                 models.make_discriminator(static), static.loss, models.latent_dim(static),
                 static)


def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def make_d_objective(static: StaticConfig, parts: Parts, hp: HParams,
                     d_apply: Callable | None = None) -> Callable:
    """`objective(d_params, real_ND, fake_ND, gp_u_N1) -> scalar`: loss plus enabled penalties.

    gp_u_N1 holds the gradient penalty's interpolation weights, u ~ U(0, 1) per sample.
    d_apply: the discriminator as training sees it (packed, normalized); default the family's.
    """
    d_apply = d_apply or parts.discriminator.apply
    loss = parts.loss(hp)

    def objective(d_params, real_ND, fake_ND, gp_u_N1):
        # Two passes, not one over the concatenated batch: on CPU, XLA fuses the concatenation
        # with both samplers and then duplicates that fusion into each consumer, recomputing
        # the random draws (slower, and longer to compile: BENCHMARKS.md).
        value = loss.d_loss(d_apply(d_params, real_ND), d_apply(d_params, fake_ND))
        if static.use_gp:
            value += hp.gp_weight * losses_lib.gradient_penalty(
                d_apply, d_params, real_ND, fake_ND, gp_u_N1)
        if static.use_r1:
            value += hp.r1_weight * losses_lib.r1_penalty(d_apply, d_params, real_ND)
        if static.use_r2:
            value += hp.r2_weight * losses_lib.r2_penalty(d_apply, d_params, fake_ND)
        return value

    return objective


class Batch(NamedTuple):
    """The random inputs of one player-gradient evaluation. A generator-only batch (the
    alternating method's generator step) has no real samples and no penalty weights."""

    real_ND: jax.Array | None    # real samples (pack x batch_size of them)
    z_NL: jax.Array              # latent draws for the fake samples
    gp_u_N1: jax.Array | None    # gradient-penalty interpolation weights, one per pack
    extra: tuple = ()            # each game stabiliser's own draws (Stabiliser.cut), one per
                                 # stabiliser on, in stabilisers_on order (() where it draws none)


def pack_samples(x_ND: jax.Array, pack: int) -> jax.Array:
    """PacGAN's packing: m consecutive samples become one input of m x D values."""
    return x_ND if pack == 1 else x_ND.reshape(x_ND.shape[0] // pack, -1)


def stabiliser_state(static: StaticConfig, state: "TrainState", name: str):
    """The state of stabiliser `name` in a TrainState, or None when it is off."""
    for (n, _), own in zip(stabilisers_on(static), state.stabilisers):
        if n == name:
            return own
    return None


def discriminator_view(static: StaticConfig, parts: Parts, states=()) -> Callable:
    """`D(d_params, x) -> logits` as training sees the discriminator (x already packed): the
    family's, wrapped by each stabiliser on that views it (spectral normalization, with the
    power-iteration vectors of its state in `states`, TrainState.stabilisers)."""
    apply = parts.discriminator.apply
    for (_, s), own in zip(stabilisers_on(static), states or (() for _ in STABILISERS)):
        if s.view is not None:
            apply = s.view(own, apply)
    return apply


def generator_view(static: StaticConfig, parts: Parts) -> Callable:
    """`G(g_params, z) -> x` as training sees the generator: with g_norm = 'batch', each call
    normalizes with its own batch's statistics, taken separately over each of the pack's
    interleaved sub-batches (sample i of a call in sub-batch i mod pack: the samples that
    share a place in the packs), as PacGAN's m generator calls each normalize their own."""
    norm = parts.generator.norm
    if norm is None:
        return parts.generator.apply
    return lambda g, z_NL: norm.forward(g, z_NL, None, static.pack)[0]


def generate(parts: Parts, g_params, z_NL: jax.Array, stats=()) -> jax.Array:
    """G(z) as evaluation sees the generator: with batch normalization, normalized by the
    population statistics `stats` (TrainState.g_bn), so a sample does not depend on the
    others drawn with it."""
    norm = parts.generator.norm
    if norm is None:
        return parts.generator.apply(g_params, z_NL)
    return norm.forward(g_params, z_NL, stats)[0]


def _moving_average(running, batch):
    """PacGAN's population-statistics update: running <- 0.95 running + 0.05 batch."""
    rate = models.BN_MOMENTUM
    return jax.tree.map(lambda r, b: (1 - rate) * r + rate * b, running, batch)


def population_stats(static: StaticConfig, parts: Parts) -> methods_lib.Tracker | None:
    """Batch normalization's population statistics as a :class:`gan_jax.components.methods.Tracker`
    (None without g_norm = 'batch'): they start at mean 0 and std 1, and after a step on
    `batches` move towards the batch statistics of one training-mode pass of the generator,
    at the parameters the step started from, on the latent draws of the step's last batch
    (see `make_step`). The generator's own (`TrainState.g_bn`) and the averaged generator's
    (inside its `methods.ema` wrapper) follow this one rule."""
    norm = parts.generator.norm
    if norm is None:
        return None
    return methods_lib.Tracker(
        lambda g: norm.init(),
        lambda stats, g, batches: _moving_average(
            stats, norm.forward(g, batches[-1].z_NL, None, static.pack)[1]))


def make_game(static: StaticConfig, parts: Parts, hp: HParams, *, states=(),
              step=None) -> methods_lib.Game:
    """The two players' objectives on a :class:`Batch`, as the training method sees them.

    g_loss: the loss's generator term (with the real logits, for a relativistic loss).
    d_loss: the loss's discriminator term plus the enabled penalties (make_d_objective).
    value: the loss's discriminator term alone.
    All see packed inputs (pack > 1), the discriminator and the samples as the game's
    stabilisers on make them (`STABILISERS`: spectral normalization with its state in
    `states`, TrainState.stabilisers; instance noise; `step` is the iterations done), and
    the objectives as they wrap them (the Nagarajan-Kolter term). The generator is the
    training view (`generator_view`: batch statistics under g_norm = 'batch'). project_d:
    WGAN's clipping after every discriminator update.
    """
    g_apply, pack = generator_view(static, parts), static.pack
    d_apply = discriminator_view(static, parts, states)
    d_objective = make_d_objective(static, parts, hp, d_apply)
    loss = parts.loss(hp)
    on = stabilisers_on(static)

    def inputs(g, b: Batch):
        real, fake = b.real_ND, g_apply(g, b.z_NL)
        for (_, s), draws in zip(on, b.extra or ((),) * len(on)):
            if s.perturb is not None:
                real, fake = s.perturb(static, hp, step, draws, real, fake)
        return (None if real is None else pack_samples(real, pack)), pack_samples(fake, pack)

    def d_value(g, d, b):
        real, fake = inputs(g, b)
        return loss.d_loss(d_apply(d, real), d_apply(d, fake))

    def d_loss(g, d, b):
        real, fake = inputs(g, b)
        return d_objective(d, real, fake, b.gp_u_N1)

    def g_loss(g, d, b):
        real, fake = inputs(g, b)
        return loss.generator(d_apply(d, fake), d_apply(d, real) if loss.g_real else None)

    def project_d(d):
        if loss.clip is True:
            return losses_lib.clip_params(d, hp.clip)
        if loss.clip is not False:           # several losses in one program: the run's own
            return jax.tree.map(lambda c, p: jnp.where(loss.clip, c, p),
                                losses_lib.clip_params(d, hp.clip), d)
        return d

    game = methods_lib.Game(g_loss, d_loss, project_d, d_value)
    view = stabilisers_lib.GameView(d_apply, inputs)
    for _, s in on:
        if s.wrap is not None:
            game = s.wrap(static, hp, game, view)
    return game


def make_method(static: StaticConfig, parts: Parts, hp: HParams, game: methods_lib.Game,
                tx_g: optax.GradientTransformation,
                tx_d: optax.GradientTransformation) -> methods_lib.Method:
    """The configuration's training method (gan_jax.components.methods) on `game`, inside the
    wrappers it switches on (`methods.wrappers_on`, innermost first: lookahead
    (`lookahead_k`), then the generator's average (ema_beta > 0, `methods.ema`, with batch
    normalization's population statistics of the averaged generator, `population_stats`),
    then a plugin's, by name)."""
    method = methods_lib.make_method(static.update, game, tx_g, tx_d,
                                     d_updates=static.d_updates,
                                     options=config_lib.option_values(
                                         static, "method", static.update, hp))
    on = methods_lib.wrappers_on(static)
    track = population_stats(static, parts) if on else None
    for _, w in on:
        method = w.wrap(static, hp, method, track)
    return method


def make_step(static: StaticConfig, parts: Parts, hp: HParams,
              tx_g: optax.GradientTransformation, tx_d: optax.GradientTransformation,
              training_set: data_lib.TrainingSet | None = None):
    """`(draw, step)`: `draw(key, i) -> batches`, the batches of iteration i, and
    `step(state, batches) -> state`, one run-step of the configuration's training method
    (`update`: the seed's alternating d_updates discriminator steps and one generator step, or
    any method of gan_jax.components.methods).

    All of a step's randomness comes from one `rand.words` call (the words of
    `jax.random.bits`), cut into the batches the method takes (`Method.slots`) and turned into
    exactly jax.random's normals and uniforms (see gan_jax.core.rand). Drawing is kept apart from
    stepping so that the training loop can carry the next step's draws as loop state: XLA then
    computes them once into memory. Left inside the step, XLA's CPU fusion duplicates the hash
    and the inverse error function into every consumer of a sample, about five times over.

    With a finite training set (dataset_size > 0, or a point cloud; `training_set` given), the
    real samples are not drawn: iteration i's batches read positions i R, ..., i R + R - 1 of
    the set's stream of epochs (data.stream_batch; R = config.real_samples_per_step), batch after batch in slot
    order, and a row of words holds no real-sample words. `i` is used for nothing else.

    With g_norm = 'batch', after the method's step the population statistics move towards the
    batch statistics of one training-mode pass of the generator, at the parameters the step
    started from, on the latent draws of the step's last batch (the generator's batch of the
    alternating method, the one batch of the simultaneous ones): PacGAN updates them from the
    forward pass of the step's gradients, which is at those parameters.
    """
    latent, pack, dim = parts.latent_dim, static.pack, parts.target.dim
    slots = methods_lib.slots(static.update, static.d_updates)
    from_set = static.dataset_size > 0 or data_lib.has_points(parts.target)
    if from_set and training_set is None:
        raise ValueError("make_step: dataset_size > 0 (or a point cloud) needs the run's "
                         "training set")
    # A target without sampling from random words (data.has_bits) samples each real batch
    # from its own stream of the step's key instead; its row of words holds no real words.
    from_key = not from_set and not data_lib.has_bits(parts.target)
    n_real = 0 if from_set or from_key else parts.target.words_per_sample
    # Words of one row (one pack) of a full batch: real, latent, GP weight, then each game
    # stabiliser's own (instance noise: real and fake noise); of a generator-only batch:
    # latent, then each stabiliser's (fake noise). Without packing and noise this is the
    # layout of the seed's reproduction. From a training set, no real words.
    on = stabilisers_on(static)
    own = [s.words(static, dim) if s.words is not None else (0, 0) for _, s in on]
    widths = (pack * n_real, pack * latent, 1 if static.use_gp else 0) + tuple(w for w, _ in own)
    edges = np.cumsum((0,) + widths)
    per_full = int(edges[-1])
    g_edges = np.cumsum((pack * latent,) + tuple(w for _, w in own))
    # The generator's batches hold real samples only where it reads them: the NK
    # regulariser's d_value, a relativistic loss's generator term.
    g_full = config_lib.generator_needs_real(static)
    per_g = per_full if g_full else int(g_edges[-1])
    # Batches with real samples, and the real samples a step reads from a training set.
    n_real_batches = slots.d + (slots.g if g_full else 0)
    batch_real = static.batch_size * pack
    bn = population_stats(static, parts)

    def unpack(bits_NW, n):          # [N, pack * n] words -> [N * pack, n]
        return bits_NW.reshape(bits_NW.shape[0] * pack, n)

    def cut_full(bits_NW, real=None) -> Batch:
        part = [bits_NW[:, a:b] for a, b in zip(edges, edges[1:])]
        if real is None:
            real = parts.target.sample_from_bits(unpack(part[0], n_real))
        z = rand.normal_from_bits(unpack(part[1], latent))
        u = rand.uniform_from_bits(part[2])
        extra = tuple(() if s.cut is None else s.cut(static, dim, part[3 + i], True)
                      for i, (_, s) in enumerate(on))
        return Batch(real, z, u, extra)

    def cut_g(bits_NW, real=None) -> Batch:
        if g_full:
            return cut_full(bits_NW, real)
        z = rand.normal_from_bits(unpack(bits_NW[:, :pack * latent], latent))
        extra = tuple(() if s.cut is None else s.cut(static, dim, bits_NW[:, a:b], False)
                      for (_, s), a, b in zip(on, g_edges, g_edges[1:]))
        return Batch(None, z, None, extra)

    def draw(key, i=0) -> tuple[Batch, ...]:
        bits_NW = rand.words(key, (static.batch_size, slots.d * per_full + slots.g * per_g))
        reals = [None] * (slots.d + slots.g)
        if from_set:
            count = n_real_batches * batch_real
            real = data_lib.stream_batch(training_set, jnp.asarray(i, jnp.int32) * count,
                                         count)
            reals[:n_real_batches] = [real[j * batch_real:(j + 1) * batch_real]
                                      for j in range(n_real_batches)]
        elif from_key:
            reals[:n_real_batches] = [parts.target.sample(rand.fold_in(key, j + 1), batch_real)
                                      for j in range(n_real_batches)]
        full = tuple(cut_full(bits_NW[:, j * per_full:(j + 1) * per_full], reals[j])
                     for j in range(slots.d))
        base = slots.d * per_full
        return full + tuple(cut_g(bits_NW[:, base + j * per_g:base + (j + 1) * per_g],
                                  reals[slots.d + j]) for j in range(slots.g))

    def step(state: TrainState, batches) -> TrainState:
        states = tuple(own if s.advance is None else s.advance(own, state.d_params)
                       for (_, s), own in zip(stabilisers_on(static), state.stabilisers))
        game = make_game(static, parts, hp, states=states, step=state.step)
        play = make_method(static, parts, hp, game, tx_g, tx_d).step(
            methods_lib.Play(state.g_params, state.d_params, state.g_opt, state.d_opt,
                             state.method), batches)
        g_bn = state.g_bn if bn is None else bn.update(state.g_bn, state.g_params, batches)
        finite = _all_finite((play.g, play.d))
        diverged_at = jnp.where((state.diverged_at < 0) & ~finite, state.step, state.diverged_at)
        return TrainState(play.g, play.d, play.g_opt, play.d_opt, state.step + 1, diverged_at,
                          play.extra, states, g_bn)

    return draw, step


def init_state(static: StaticConfig, parts: Parts, hp: HParams, tx_g, tx_d, g_params, d_params,
               key) -> TrainState:
    """The state before the first step, the method's (its wrappers' included), the game's
    stabilisers' (`key`, their stream: spectral normalization's power-iteration vectors) and
    batch normalization's (its population statistics start at mean 0 and std 1)."""
    play = make_method(static, parts, hp, make_game(static, parts, hp), tx_g, tx_d).init(
        g_params, d_params)
    states = tuple(s.init(static, d_params, key) for _, s in stabilisers_on(static))
    bn = population_stats(static, parts)
    g_bn = bn.init(g_params) if bn is not None else ()
    return TrainState(g_params, d_params, play.g_opt, play.d_opt, jnp.zeros((), jnp.int32),
                      jnp.full((), -1, jnp.int32), play.extra, states, g_bn)


def num_joint_params(static: StaticConfig) -> int:
    """Both players' parameter counts together (arithmetic)."""
    return models.num_params(static, "generator") + models.num_params(static, "discriminator")


def history_batch(static: StaticConfig, parts: Parts, draws: "EvalDraws", key) -> Batch:
    """A full :class:`Batch` around a history row's evaluation draws: penalty weights and
    the game's stabilisers' draws (instance noise) from `key`."""
    n = draws.real_ND.shape[0]
    k_u, *keys = jax.random.split(key, 3)
    u = jax.random.uniform(k_u, (n // static.pack, 1 if static.use_gp else 0))
    extra = tuple(() if s.row_draws is None else s.row_draws(static, keys, draws.real_ND.shape)
                  for _, s in stabilisers_on(static))
    return Batch(draws.real_ND, draws.z_NL, u, extra)


def update_jacobian(static: StaticConfig, parts: Parts, hp: HParams, tx_g, tx_d,
                    state: TrainState, batch: Batch) -> jax.Array:
    """d x' / d x of one run-step of the training method at the state's parameters
    x = (g, d), flattened in ravel order (generator first), with `batch` in every slot of the
    step and the optimisers' and method's states held fixed: the same function that trains."""
    from jax.flatten_util import ravel_pytree
    x, unravel = ravel_pytree((state.g_params, state.d_params))
    game = make_game(static, parts, hp, states=state.stabilisers, step=state.step)
    method = make_method(static, parts, hp, game, tx_g, tx_d)
    batches = (batch,) * (method.slots.d + method.slots.g)

    def step_map(x):
        g, d = unravel(x)
        play = method.step(methods_lib.Play(g, d, state.g_opt, state.d_opt, state.method),
                           batches)
        return ravel_pytree((play.g, play.d))[0]

    return jax.jacfwd(step_map)(x)


def sample_fake(parts: Parts, g_params, key, n: int, stats=()) -> jax.Array:
    """n generated samples (batch normalization: with the population statistics `stats`)."""
    return generate(parts, g_params, rand.normal(key, (n, parts.latent_dim)), stats)


class EvalDraws(NamedTuple):
    """Fresh real samples and latent draws for one evaluation (a history row's loss values, or
    sample metrics); the fake samples are G(z) under the parameters of the moment."""

    real_ND: jax.Array
    z_NL: jax.Array


def eval_draws(parts: Parts, key, n: int) -> EvalDraws:
    k_real, k_fake = jax.random.split(key)
    return EvalDraws(parts.target.sample(k_real, n),
                     rand.normal(k_fake, (n, parts.latent_dim)))


def sample_metrics(static: StaticConfig, parts: Parts, real_ND: jax.Array,
                   fake_ND: jax.Array) -> dict[str, jax.Array]:
    """The configuration's metrics of generated samples against real ones."""
    return metrics_lib.sample_metrics(
        parts.target, real_ND, fake_ND, hq_threshold=static.hq_threshold,
        min_count=static.min_count, num_projections=static.num_projections,
        mmd_samples=static.mmd_samples, extra=static.extra_metrics,
        extra_options={name: config_lib.option_values(static, "metric", name)
                       for name in static.extra_metrics})


class Snapshot(NamedTuple):
    """The generator as evaluation sees it at one moment: its parameters, batch
    normalization's population statistics, and the averaged generator's (each () where off)."""

    g_params: Any
    g_bn: Any = ()
    g_ema: Any = ()
    g_ema_bn: Any = ()


def averaged_generator(state: TrainState) -> tuple[Any, Any]:
    """The averaged generator of ema_beta > 0 as (parameters, batch normalization's population
    statistics), read from its wrapper's state in `state.method` (methods.averaged); ((), ())
    without one (statistics () also without g_norm = 'batch')."""
    avg = methods_lib.averaged(state.method)
    return ((), ()) if avg is None else (avg.g, avg.stats)


def snapshot(state: TrainState) -> Snapshot:
    return Snapshot(state.g_params, state.g_bn, *averaged_generator(state))


def run_keys(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A run's key split into (training, final evaluation)."""
    k_train, k_eval = jax.random.split(key)
    return k_train, k_eval


def train_keys(k_train: jax.Array) -> tuple[jax.Array, ...]:
    """The training key split into (init G, init D, loop, history)."""
    return tuple(jax.random.split(k_train, 4))


def row_keys(k_hist: jax.Array, log_index) -> tuple[jax.Array, jax.Array]:
    """History row `log_index`'s keys: (loss values and gradients, sample metrics)."""
    k_loss, k_metrics = jax.random.split(jax.random.fold_in(k_hist, log_index))
    return k_loss, k_metrics


def merge_history(trained: dict, metrics: dict) -> dict:
    """One history from the training program's fields and the evaluation's sample metrics."""
    clash = trained.keys() & metrics.keys()
    if clash:
        raise ValueError(f"merge_history: fields in both parts: {sorted(clash)}")
    return {**trained, **metrics}


class Training(NamedTuple):
    """The training part of a static configuration (`make_training`), for one run:
    `training(hparams, key) -> (final_state, history, snapshots)` is
    `loop(hparams, key, init(hparams, key))`. The engine vmaps the two apart, so that every
    leaf of the loop's carry enters the loop batched (otherwise vmap's scan and while rules
    batch the loop body twice: once to find which carry leaves become batched)."""

    init: Callable      # (hparams, key) -> carry: (initial TrainState, the first
                        #   step's draws, the first history row's draws)
    loop: Callable      # (hparams, key, carry, start=0, length=None) -> (final_state,
                        #   history, snapshots) of rows start..num_logs - 1, or of `length`
                        #   rows from start (then start may be traced: one program per length)
    resume: Callable | None = None   # (hparams, key, state, start) -> carry: to continue
                        #   from `state`, the state at history row start - 1

    def __call__(self, hp: HParams, key: jax.Array):
        return self.loop(hp, key, self.init(hp, key))


def make_training(static: StaticConfig) -> Training:
    """Build the training part of one static configuration, without its sample metrics.

    Returns:
      `training(hparams, key) -> (final_state, history, snapshots)` for one run (a
      :class:`Training`: its `init` and `loop` apart), `key` the run's training key
      (`run_keys(key)[0]`). history holds each row's training fields (step, loss values,
      gradient norms, recorded parameters, the update map's Jacobian, d_gap); snapshots the
      generator at each row (:class:`Snapshot`, leading axis `static.num_logs`), from which
      `make_evaluation` computes the rows' sample metrics.
    """
    parts = make_parts(static)
    record_params = (static.generator in SMALL_FAMILIES, static.discriminator in SMALL_FAMILIES)
    track_jacobian = num_joint_params(static) <= static.jacobian_max_params

    def row_batch(k_hist, log_index) -> Batch:
        """A history row's draws: evaluation samples for its loss values, and around them
        fresh penalty weights and noise (their own streams of the row's key) for its
        gradients."""
        k_loss, _ = row_keys(k_hist, log_index)
        loss_draws = eval_draws(parts, k_loss, static.eval_batch * static.pack)
        return history_batch(static, parts, loss_draws, jax.random.fold_in(k_loss, 2))

    def history_row(state: TrainState, batch: Batch, hp: HParams, tx_g, tx_d):
        loss = parts.loss(hp)
        d_apply = discriminator_view(static, parts, state.stabilisers)
        real_logits = d_apply(state.d_params, pack_samples(batch.real_ND, static.pack))
        fake_logits = d_apply(state.d_params, pack_samples(
            generate(parts, state.g_params, batch.z_NL, state.g_bn), static.pack))
        row = {"step": state.step - 1, "loss_d": loss.d_loss(real_logits, fake_logits),
               "loss_g": loss.generator(fake_logits, real_logits)}
        # Each player's gradient of its own objective, on the same batch.
        game = make_game(static, parts, hp, states=state.stabilisers, step=state.step)
        g_grad, d_grad = methods_lib.simultaneous_gradient(game, state.g_params,
                                                          state.d_params, batch)
        row["grad_norm_g"] = jnp.sqrt(methods_lib.sq_norm(g_grad))
        row["grad_norm_d"] = jnp.sqrt(methods_lib.sq_norm(d_grad))
        if record_params[0]:
            row["g_params"] = state.g_params
        if record_params[1]:
            row["d_params"] = state.d_params
        if track_jacobian:
            row["update_jacobian"] = update_jacobian(static, parts, hp, tx_g, tx_d, state, batch)
        # Closed-form generators: the discriminator's exact objective gap to D* (static check).
        row.update(exact.history_fields(static, parts, state.g_params, state.d_params))
        return row, snapshot(state)

    def setup(hp: HParams, key: jax.Array):
        """What init and loop both derive from (hp, key): optimizers, key streams, the step."""
        tx_g, tx_d = optim.player_optimizers(static, hp)
        k_g, k_d, k_loop, k_hist = train_keys(key)
        # A finite training set comes from a fifth stream (fold_in(key, 4) is split(key, 5)[4]
        # under JAX's partitionable Threefry), so it moves no other draw.
        # A point cloud is its own training set (its training points).
        training_set = (data_lib.training_set(parts.target, rand.fold_in(key, 4),
                                              static.dataset_size)
                        if static.dataset_size or data_lib.has_points(parts.target) else None)
        draw, step = make_step(static, parts, hp, tx_g, tx_d, training_set)
        return tx_g, tx_d, k_g, k_d, k_loop, k_hist, draw, step

    def init(hp: HParams, key: jax.Array):
        chex.assert_shape(hp.lr_g, ())
        if not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
            raise ConfigError(f"key: got a {key.dtype} array of shape {key.shape} (a legacy "
                              "jax.random.PRNGKey); pass a typed key, jax.random.key(seed)")
        chex.assert_shape(key, ())
        tx_g, tx_d, k_g, k_d, k_loop, k_hist, draw, _ = setup(hp, key)
        g_params = models.init_params(parts.generator, k_g,
                                      hp.g_init if static.has_g_init else None)
        d_params = models.init_params(parts.discriminator, k_d,
                                      hp.d_init if static.has_d_init else None)
        # The game's stabilisers' (spectral normalization's vectors): a sixth stream
        # (fold_in(k_d, 1) would be the key of the discriminator's second layer,
        # split(k_d, n)[1]).
        state = init_state(static, parts, hp, tx_g, tx_d, g_params, d_params,
                           rand.fold_in(key, 5))
        return state, draw(rand.fold_in(k_loop, state.step), state.step), row_batch(k_hist, 0)

    def resume(hp: HParams, key: jax.Array, state: TrainState, start: int):
        # Iteration i's draws and row i's depend only on (key, i): recomputed, they are the
        # draws the uninterrupted run carried.
        *_, k_loop, k_hist, draw, _ = setup(hp, key)
        return state, draw(rand.fold_in(k_loop, state.step), state.step), row_batch(k_hist, start)

    def loop(hp: HParams, key: jax.Array, carry, start=0, length: int | None = None):
        tx_g, tx_d, _, _, k_loop, k_hist, draw, step = setup(hp, key)

        def iteration(_, carry):
            # Iteration i steps on the draws of fold_in(k_loop, i), made at the end of
            # iteration i - 1 (see make_step), and draws for iteration i + 1.
            state, draws = carry
            state = step(state, draws)
            return state, draw(rand.fold_in(k_loop, state.step), state.step)

        def block(carry, log_index):
            # The seed logs after iteration 0, then after every log_every iterations. Row i
            # reads the draws that row i - 1 (or init) made for it: carried into the loop
            # body, they are computed once, where drawing them in the body would let XLA
            # recompute the hash in each of their consumers' fusions (and compile each copy).
            # The last row's draws, for a row that never comes, cost one row's sampling.
            state, draws, batch = carry
            n_iters = jnp.where(log_index == 0, 1, static.log_every)
            if length == 1:     # the padding row (see below) runs no iteration
                n_iters = jnp.where(log_index == start, n_iters, 0)
            state, draws = jax.lax.fori_loop(0, n_iters, iteration, (state, draws))
            row = history_row(state, batch, hp, tx_g, tx_d)
            return (state, draws, row_batch(k_hist, log_index + 1)), row

        # XLA removes a loop of one trip and compiles its body with the code around it,
        # whose rounding differs from the loop's: one row is scanned as two, the second
        # running no iteration and its row dropped.
        rows = (jnp.arange(start, static.num_logs) if length is None
                else start + jnp.arange(max(length, 2), dtype=jnp.int32))
        (state, *_), (history, snapshots) = jax.lax.scan(block, carry, rows)
        if length == 1:
            history, snapshots = jax.tree.map(lambda x: x[:1], (history, snapshots))
        return state, history, snapshots

    return Training(init, loop, resume)


def _evaluators(ecfg: EvalConfig, keep_samples: int):
    """(rows, final): `rows(snapshots, k_train)`, the history rows' sample metrics, and
    `final(snapshot, k_eval) -> (metrics, samples)`, the final evaluation."""
    if not 0 <= keep_samples <= ecfg.eval_samples:
        raise ConfigError(f"keep_samples: got {keep_samples!r}; must be an integer in "
                          f"[0, eval_samples = {ecfg.eval_samples}]")
    parts = Parts(data_lib.make_target(ecfg), models.make_generator(ecfg), None, (),
                  models.latent_dim(ecfg))

    def metrics_of(snap: Snapshot, draws: EvalDraws):
        fake = generate(parts, snap.g_params, draws.z_NL, snap.g_bn)
        out = sample_metrics(ecfg, parts, draws.real_ND, fake)
        if ecfg.use_ema:       # the averaged generator, on the same draws
            out.update({f"ema_{k}": v for k, v in sample_metrics(
                ecfg, parts, draws.real_ND,
                generate(parts, snap.g_ema, draws.z_NL, snap.g_ema_bn)).items()})
        return out, fake

    def rows(snapshots: Snapshot, k_train: jax.Array, start: int = 0) -> dict[str, jax.Array]:
        """The metrics of rows start, start + 1, ... (one per snapshot)."""
        k_hist = train_keys(k_train)[3]

        def draws_of(log_index) -> EvalDraws:
            return eval_draws(parts, row_keys(k_hist, log_index)[1], ecfg.history_samples)

        def row(draws, args):
            # Row i reads the draws that row i - 1 made for it: carried, they are computed
            # once (as in make_training's loop; the last row's are never read).
            log_index, snap = args
            return draws_of(log_index + 1), metrics_of(snap, draws)[0]

        count = jax.tree.leaves(snapshots)[0].shape[0]
        return jax.lax.scan(row, draws_of(start),
                            (jnp.arange(start, start + count), snapshots))[1]

    def final(snap: Snapshot, k_eval: jax.Array):
        metrics, fake = metrics_of(snap, eval_draws(parts, k_eval, ecfg.eval_samples))
        return metrics, (fake[:keep_samples] if keep_samples else None)

    return rows, final


def make_evaluation(ecfg: EvalConfig, keep_samples: int = 0) -> Callable:
    """Build the evaluation of one run's generators: every history row's sample metrics and
    the final metrics. It reads only the target, the generator and the metric options
    (:data:`gan_jax.config.EvalConfig`, `config.eval_part(static)`), so runs of any
    discriminator, loss or training method share it.

    Returns:
      `evaluation(snapshots, final, key) -> (history metrics, final metrics, samples)` for one
      run: `snapshots` the generator at each history row (leading axis: rows), `final` at the
      end (:class:`Snapshot`), `key` the run's key. Row i's metrics are computed on
      `history_samples` fresh samples from its row key, the final ones on `eval_samples` from
      the evaluation key (`run_keys`); samples: the first `keep_samples` generated samples of
      the final evaluation, or None when keep_samples is 0.
    """
    rows, final = _evaluators(ecfg, keep_samples)

    def evaluation(snapshots: Snapshot, last: Snapshot, key: jax.Array):
        k_train, k_eval = run_keys(key)
        return (rows(snapshots, k_train), *final(last, k_eval))

    return evaluation


def make_train(static: StaticConfig) -> Callable[[HParams, jax.Array], tuple[TrainState, dict]]:
    """Build the pure training function of one static configuration, its history's sample
    metrics included (`make_training`, then the rows of `make_evaluation`).

    Returns:
      `train(hparams, key) -> (final_state, history)` for one run; `hparams` holds scalars (and
      the explicit initial values, if any), `key` is a typed key (`jax.random.key(seed)`), the
      run's training key. history maps names to arrays with a leading axis of
      `static.num_logs` rows.
    """
    training = make_training(static)
    rows, _ = _evaluators(config_lib.eval_part(static), 0)

    def train(hp: HParams, key: jax.Array):
        state, trained, snapshots = training(hp, key)
        return state, merge_history(trained, rows(snapshots, key))

    return train


def make_evaluate(static: StaticConfig, keep_samples: int = 0) -> Callable:
    """`evaluate(state, key) -> (final metrics, samples)` on eval_samples fresh samples.

    samples: the first keep_samples generated samples of the evaluation, f32[keep_samples, D],
    or None when keep_samples is 0.
    """
    _, final = _evaluators(config_lib.eval_part(static), keep_samples)
    return lambda state, key: final(snapshot(state), key)


def output(state: TrainState, trained: dict, evaluated) -> RunOutput:
    """A run's output from its training part (state, history fields) and its evaluation's
    (history metrics, final metrics, samples)."""
    metrics, final, samples = evaluated
    return RunOutput(state, merge_history(trained, metrics), final, samples)


def make_run(static: StaticConfig, keep_samples: int = 0) -> Callable[[HParams, jax.Array],
                                                                      RunOutput]:
    """`run(hparams, key) -> RunOutput`: train on one half of the key, evaluate on the other,
    in one function; keep the first `keep_samples` generated samples of the evaluation. The
    sweep engine runs the same two parts as two programs (gan_jax.engine.programs)."""
    training = make_training(static)
    evaluation = make_evaluation(config_lib.eval_part(static), keep_samples)

    def run(hp: HParams, key: jax.Array) -> RunOutput:
        state, trained, snapshots = training(hp, run_keys(key)[0])
        return output(state, trained, evaluation(snapshots, snapshot(state), key))

    return run
