"""Training: `make_train(static) -> train(hparams, key) -> (TrainState, history)`.

Written for one run; batch runs with `jax.vmap` from outside. The schedule is the seed's: for
step in 0..steps (steps + 1 iterations), `d_updates` discriminator steps, each on a fresh real
batch and fresh z, then one generator step on fresh z. History rows are taken after iterations
0, log_every, ..., steps, as in the seed: the loss values on a fresh batch of `eval_batch`, and
the metrics of `gan_jax.metrics` on `history_samples` fresh samples. The whole loop is an outer
`lax.scan` over log points around an inner `fori_loop` over the iterations before each row
(one before the first row, log_every before each later one), so the step is compiled once.
Each iteration's random draws are made at the end of the iteration before it and carried as
loop state (see `make_step`).

Keys: the run's key is split once into named streams (init, loop, history); iteration i draws
from `fold_in(loop_key, i)` with one call for random words (see `make_step`), so a run's
numbers depend on its key alone.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from gan_jax import data as data_lib
from gan_jax import exact
from gan_jax import losses as losses_lib
from gan_jax import metrics as metrics_lib
from gan_jax import models
from gan_jax import optim
from gan_jax import rand
from gan_jax.config import HParams, StaticConfig
from gan_jax.errors import ConfigError

# Families whose parameters are few enough to record in every history row.
SMALL_FAMILIES = ("linear", "piecewise", "logistic")


class TrainState(NamedTuple):
    g_params: Any          # generator parameters (pytree)
    d_params: Any          # discriminator parameters (pytree)
    g_opt: Any             # generator optimiser state
    d_opt: Any             # discriminator optimiser state
    step: jax.Array        # i32[]: iterations done
    diverged_at: jax.Array  # i32[]: first iteration leaving a non-finite parameter, -1 if none


class RunOutput(NamedTuple):
    state: TrainState
    history: dict[str, jax.Array]   # name -> [num_logs, ...]
    final: dict[str, jax.Array]     # name -> scalar, on eval_samples fresh samples
    samples: jax.Array | None = None  # f32[keep_samples, D]: the first generated samples the
                                      # final metrics were computed on (None: none kept)


class Parts(NamedTuple):
    """What a static configuration fixes: target, families, the losses it serves."""

    target: data_lib.GaussianMixture
    generator: models.Model
    discriminator: models.Model
    losses: tuple[str, ...]        # one, or several that runs pick by hp.loss_index
    latent_dim: int

    def loss(self, hp: HParams) -> losses_lib.Loss:
        """The run's loss (losses.pick)."""
        return losses_lib.pick(self.losses, hp.loss_index)


def make_parts(static: StaticConfig) -> Parts:
    return Parts(data_lib.make_target(static), models.make_generator(static),
                 models.make_discriminator(static), static.loss, models.latent_dim(static))


def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def make_d_objective(static: StaticConfig, parts: Parts, hp: HParams) -> Callable:
    """`objective(d_params, real_ND, fake_ND, gp_u_N1) -> scalar`: loss plus enabled penalties.

    gp_u_N1 holds the gradient penalty's interpolation weights, u ~ U(0, 1) per sample."""
    d_apply = parts.discriminator.apply
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
    """The random inputs of one discriminator (or simultaneous) step."""

    real_ND: jax.Array   # real samples
    z_NL: jax.Array      # latent draws for the fake samples
    gp_u_N1: jax.Array   # gradient-penalty interpolation weights (empty without GP)


class StepDraws(NamedTuple):
    """All random inputs of one run-step."""

    d_batches: tuple[Batch, ...]   # one per D-step (one shared batch for simultaneous updates)
    z_g_NL: jax.Array              # the G-step's latent draws (empty for simultaneous updates)


def make_step(static: StaticConfig, parts: Parts, hp: HParams,
              tx_g: optax.GradientTransformation, tx_d: optax.GradientTransformation):
    """`(draw, step)`: `draw(key) -> StepDraws` and `step(state, draws) -> state`, one run-step
    (d_updates D-steps and one G-step).

    All of a step's randomness comes from one `rand.words` call (the words of
    `jax.random.bits`), cut into the batches it needs and turned into exactly jax.random's
    normals and uniforms (see gan_jax.rand). Drawing is kept apart from stepping so that the
    training loop can carry the next step's draws as loop state: XLA then computes them once
    into memory. Left inside the step, XLA's CPU fusion duplicates the hash and the inverse
    error function into every consumer of a sample, about five times over.
    """
    g_apply, d_apply = parts.generator.apply, parts.discriminator.apply
    batch, latent = static.batch_size, parts.latent_dim
    d_objective = make_d_objective(static, parts, hp)
    loss = parts.loss(hp)
    n_real = parts.target.words_per_sample
    n_gp = 1 if static.use_gp else 0
    per_batch = n_real + latent + n_gp          # words per sample of one D batch
    n_d_batches = static.d_updates if static.update == "alternating" else 1
    g_extra = latent if static.update == "alternating" else 0

    def cut(bits_NW) -> Batch:
        real = parts.target.sample_from_bits(bits_NW[:, :n_real])
        z = rand.normal_from_bits(bits_NW[:, n_real:n_real + latent])
        u = rand.uniform_from_bits(bits_NW[:, n_real + latent:per_batch])
        return Batch(real, z, u)

    def draw(key) -> StepDraws:
        bits_NW = rand.words(key, (batch, n_d_batches * per_batch + g_extra))
        d_batches = tuple(cut(bits_NW[:, i * per_batch:(i + 1) * per_batch])
                          for i in range(n_d_batches))
        return StepDraws(d_batches, rand.normal_from_bits(bits_NW[:, n_d_batches * per_batch:]))

    def g_objective(g_params, d_params, z_NL):
        return loss.g_loss(d_apply(d_params, g_apply(g_params, z_NL)))

    def apply_d(state, grads):
        updates, d_opt = tx_d.update(grads, state.d_opt, state.d_params)
        d_params = optax.apply_updates(state.d_params, updates)
        if loss.clip is True:
            d_params = losses_lib.clip_params(d_params, hp.clip)
        elif loss.clip is not False:           # several losses in one program: the run's own
            d_params = jax.tree.map(lambda c, p: jnp.where(loss.clip, c, p),
                                    losses_lib.clip_params(d_params, hp.clip), d_params)
        return state._replace(d_params=d_params, d_opt=d_opt)

    def apply_g(state, grads):
        updates, g_opt = tx_g.update(grads, state.g_opt, state.g_params)
        return state._replace(g_params=optax.apply_updates(state.g_params, updates), g_opt=g_opt)

    def d_grads(state, b: Batch):
        fake = g_apply(state.g_params, b.z_NL)
        return jax.grad(d_objective)(state.d_params, b.real_ND, fake, b.gp_u_N1)

    def alternating(state, draws: StepDraws):
        for b in draws.d_batches:
            state = apply_d(state, d_grads(state, b))
        return apply_g(state, jax.grad(g_objective)(state.g_params, state.d_params, draws.z_g_NL))

    def simultaneous(state, draws: StepDraws):
        # Both gradients at the same (theta, phi) and the same batch, applied together.
        b, = draws.d_batches
        g_grads = jax.grad(g_objective)(state.g_params, state.d_params, b.z_NL)
        return apply_g(apply_d(state, d_grads(state, b)), g_grads)

    body = alternating if static.update == "alternating" else simultaneous

    def step(state, draws: StepDraws):
        state = body(state, draws)
        finite = _all_finite((state.g_params, state.d_params))
        diverged_at = jnp.where((state.diverged_at < 0) & ~finite, state.step, state.diverged_at)
        return state._replace(step=state.step + 1, diverged_at=diverged_at)

    return draw, step


def sample_fake(parts: Parts, g_params, key, n: int) -> jax.Array:
    return parts.generator.apply(g_params, rand.normal(key, (n, parts.latent_dim)))


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
        mmd_samples=static.mmd_samples)


def make_train(static: StaticConfig) -> Callable[[HParams, jax.Array], tuple[TrainState, dict]]:
    """Build the pure training function of one static configuration.

    Returns:
      `train(hparams, key) -> (final_state, history)` for one run; `hparams` holds scalars (and
      the explicit initial values, if any), `key` is a typed key (`jax.random.key(seed)`).
      history maps names to arrays with a leading axis of `static.num_logs` rows.
    """
    parts = make_parts(static)
    record_params = (static.generator in SMALL_FAMILIES, static.discriminator in SMALL_FAMILIES)

    def history_row(state, key, loss: losses_lib.Loss):
        k_loss, k_metrics = jax.random.split(key)
        loss_draws = eval_draws(parts, k_loss, static.eval_batch)
        metric_draws = eval_draws(parts, k_metrics, static.history_samples)
        d_apply = parts.discriminator.apply
        real_logits = d_apply(state.d_params, loss_draws.real_ND)
        fake_logits = d_apply(state.d_params, parts.generator.apply(state.g_params,
                                                                    loss_draws.z_NL))
        row = {"step": state.step - 1, "loss_d": loss.d_loss(real_logits, fake_logits),
               "loss_g": loss.g_loss(fake_logits)}
        row.update(sample_metrics(static, parts, metric_draws.real_ND,
                                  parts.generator.apply(state.g_params, metric_draws.z_NL)))
        if record_params[0]:
            row["g_params"] = state.g_params
        if record_params[1]:
            row["d_params"] = state.d_params
        # Closed-form generators: the discriminator's exact objective gap to D* (static check).
        row.update(exact.history_fields(static, parts, state.g_params, state.d_params))
        return row

    def train(hp: HParams, key: jax.Array):
        chex.assert_shape(hp.lr_g, ())
        if not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
            raise ConfigError(f"key: got a {key.dtype} array of shape {key.shape} (a legacy "
                              "jax.random.PRNGKey); pass a typed key, jax.random.key(seed)")
        chex.assert_shape(key, ())
        tx_g, tx_d = optim.player_optimizers(static, hp)
        draw, step = make_step(static, parts, hp, tx_g, tx_d)
        k_g, k_d, k_loop, k_hist = jax.random.split(key, 4)
        g_params = models.init_params(parts.generator, k_g,
                                      hp.g_init if static.has_g_init else None)
        d_params = models.init_params(parts.discriminator, k_d,
                                      hp.d_init if static.has_d_init else None)
        state = TrainState(g_params, d_params, tx_g.init(g_params), tx_d.init(d_params),
                           step=jnp.zeros((), jnp.int32), diverged_at=jnp.full((), -1, jnp.int32))

        def iteration(_, carry):
            # Iteration i steps on the draws of fold_in(k_loop, i), made at the end of
            # iteration i - 1 (see make_step), and draws for iteration i + 1.
            state, draws = carry
            state = step(state, draws)
            return state, draw(rand.fold_in(k_loop, state.step))

        def block(carry, log_index):
            # The seed logs after iteration 0, then after every log_every iterations.
            n_iters = jnp.where(log_index == 0, 1, static.log_every)
            state, draws = jax.lax.fori_loop(0, n_iters, iteration, carry)
            return (state, draws), history_row(state, jax.random.fold_in(k_hist, log_index),
                                               parts.loss(hp))

        first = draw(rand.fold_in(k_loop, state.step))
        (state, _), history = jax.lax.scan(block, (state, first), jnp.arange(static.num_logs))
        return state, history

    return train


def make_evaluate(static: StaticConfig, keep_samples: int = 0) -> Callable:
    """`evaluate(state, key) -> (final metrics, samples)` on eval_samples fresh samples.

    samples: the first keep_samples generated samples of the evaluation, f32[keep_samples, D],
    or None when keep_samples is 0.
    """
    if not 0 <= keep_samples <= static.eval_samples:
        raise ConfigError(f"keep_samples: got {keep_samples!r}; must be an integer in "
                          f"[0, eval_samples = {static.eval_samples}]")
    parts = make_parts(static)

    def evaluate(state: TrainState, key: jax.Array):
        draws = eval_draws(parts, key, static.eval_samples)
        fake = parts.generator.apply(state.g_params, draws.z_NL)
        final = sample_metrics(static, parts, draws.real_ND, fake)
        return final, (fake[:keep_samples] if keep_samples else None)

    return evaluate


def make_run(static: StaticConfig, keep_samples: int = 0) -> Callable[[HParams, jax.Array],
                                                                      RunOutput]:
    """`run(hparams, key) -> RunOutput`: train on one half of the key, evaluate on the other;
    keep the first `keep_samples` generated samples of the evaluation."""
    train, evaluate = make_train(static), make_evaluate(static, keep_samples)

    def run(hp: HParams, key: jax.Array) -> RunOutput:
        k_train, k_eval = jax.random.split(key)
        state, history = train(hp, k_train)
        final, samples = evaluate(state, k_eval)
        return RunOutput(state, history, final, samples)

    return run
