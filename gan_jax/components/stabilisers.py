"""Stabilisers of the game: wrappers that change what the players' objectives see or draw.

A stabiliser of the game changes what the players' objectives see (the discriminator, the
samples), what a batch draws, or the objectives themselves, rather than the method's step
(those are the method's wrappers, gan_jax.components.methods.lookahead / ema). Each is a
:class:`Stabiliser`, a NamedTuple of pure functions, registered in the kind "stabiliser"
(gan_jax.core.registry) through the same call a user's plugin makes. Its state, if any, is its
own entry of TrainState.stabilisers, which the step, the resumed run, the history rows and the
update map's Jacobian carry without knowing it (gan_jax.training.train).

The built-ins are switched on by their configuration fields (`on`): spectral normalization
(`spectral_norm`), instance noise (`noise_std > 0`) and the Nagarajan-Kolter term
(`nk_eta > 0`). A stabiliser registered without `on` is switched on by naming it in the
configuration's `stabilisers` list; its options ("<name>.<option>", traced ones included)
reach its hooks through `gan_jax.config.option_values(static, "stabiliser", name, hp)`.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax.numpy as jnp

from gan_jax.components import methods as methods_lib
from gan_jax.components import models
from gan_jax.core import rand, registry


def _no_state(static, d_params, key):
    return ()


class GameView(NamedTuple):
    """What a stabiliser's `wrap` may read of the game it wraps, as its objectives see it.

    d_apply(d, x) -> logits: the discriminator (x packed; the other stabilisers' views on).
    inputs(g, batch) -> (real, fake): the batch's real samples and G(z), perturbed by the
      stabilisers on and packed (real None on a generator-only batch).
    """

    d_apply: Callable
    inputs: Callable


class Stabiliser(NamedTuple):
    """A stabiliser of the game, as pure functions (each optional hook None where unused).

    on(static) -> bool: whether a configuration switches it on (off, it costs nothing); None:
      on when the configuration's `stabilisers` list names it (a plugin's stabiliser).
    init(static, d_params, key) -> state: its own state before the first step (`key`: the
      run's stabiliser stream, rand.fold_in(run key, 5); fold in a number of its own to draw
      more than one thing from it).
    advance(state, d_params) -> state: at the start of each step, from the discriminator the
      step starts at: the state that step's game reads, and that the next step starts from.
    view(state, apply) -> apply: the discriminator `D(d_params, x)` as the objectives see it
      (x already packed).
    words(static, dim) -> (full, generator): random words per packed row of a full batch and
      of a generator-only batch it draws, after the batch's own (real, latent, penalty).
    cut(static, dim, words_NW, full) -> draws: its draws of one batch from its columns of the
      batch's words (`full`: a batch with real samples); they reach `perturb` as `Batch.extra`.
    row_draws(static, keys, shape) -> draws: its draws for a history row's gradients, from
      the row's two keys beside the penalty's, for real samples of `shape`.
    perturb(static, hp, step, draws, real_ND, fake_ND) -> (real_ND, fake_ND): the samples the
      objectives see, before packing (real None on a generator-only batch; step None: the
      step is not known, as in the stability analysis).
    wrap(static, hp, game, view) -> game: the players' objectives as it changes them (a
      methods.Game in, one out; e.g. methods.nagarajan_kolter), after the views and samples
      above are in place; `view` (:class:`GameView`) gives the discriminator and the samples
      as the objectives see them, for a term of its own. A generator-only batch (the
      alternating method's generator step) holds no real samples unless the configuration's
      generator reads them (config.generator_needs_real: NK, a relativistic loss, a named
      stabiliser declaring g_real).
    """

    on: Callable[[Any], bool] | None = None
    init: Callable = _no_state
    advance: Callable | None = None
    view: Callable | None = None
    words: Callable | None = None
    cut: Callable | None = None
    row_draws: Callable | None = None
    perturb: Callable | None = None
    wrap: Callable | None = None
    options: tuple = ()      # its own options (gan_jax.Option), "<name>.<option>"
    g_real: bool = False     # a plugin's: its generator term reads real samples, so the
                             # generator's batches draw them (config.generator_needs_real)
    field: str | None = None  # a built-in's: the configuration field that switches it on


def _sn_view(d_sn, apply):
    return lambda d, x: apply(models.sn_normalize(d, d_sn), x)


# Spectral normalization (Miyato et al. 2018): each layer's weight divided by its top singular
# value, estimated by one power iteration per step from the vectors carried in its state (one
# models.SNVectors (u, v) per layer, from the last step's iteration).
SPECTRAL_NORM = Stabiliser(
    on=lambda static: static.spectral_norm,
    init=lambda static, d, key: models.sn_init(d, key),
    advance=lambda d_sn, d: models.sn_power_iteration(d, d_sn),
    view=_sn_view,
    field="spectral_norm")


def _noise_cut(static, dim, words_NW, full):
    """N(0, 1) noise for the real (a full batch only) and fake samples, from its words."""
    pack, n = static.pack, static.pack * dim

    def normal(w):
        return rand.normal_from_bits(w.reshape(w.shape[0] * pack, dim))

    return (normal(words_NW[:, :n]), normal(words_NW[:, n:])) if full else \
        (None, normal(words_NW))


def _noise_perturb(static, hp, step, draws, real, fake):
    """Real and fake samples plus noise_std x N(0, 1), the std annealed linearly to 0 over the
    run when noise_anneal (`step`: the iterations done)."""
    sigma = hp.noise_std
    if static.noise_anneal and step is not None:
        sigma = sigma * (1.0 - step.astype(jnp.float32) / static.run_steps)
    noise_real, noise_fake = draws
    fake = fake + sigma * noise_fake
    return (None if real is None else real + sigma * noise_real), fake


# Instance noise (Sonderby et al. 2017; Arjovsky & Bottou 2017) on both players' view of the
# discriminator's inputs: no state, draws of its own in every batch.
INSTANCE_NOISE = Stabiliser(
    on=lambda static: static.use_noise,
    words=lambda static, dim: (2 * static.pack * dim, static.pack * dim),
    cut=_noise_cut,
    row_draws=lambda static, keys, shape: (rand.normal(keys[0], shape),
                                           rand.normal(keys[1], shape)),
    perturb=_noise_perturb,
    field="noise_std")

# The Nagarajan-Kolter regulariser (Nagarajan & Kolter 2017) on the generator's objective:
# no state, no draws of its own; the generator's batches then hold real samples (its term
# differentiates the discriminator's value on a full batch).
NAGARAJAN_KOLTER = Stabiliser(
    on=lambda static: static.use_nk,
    wrap=lambda static, hp, game, view: methods_lib.nagarajan_kolter(game, hp.nk_eta),
    field="nk_eta")


def check_stabiliser(obj) -> str | None:
    """The stabiliser protocol's check (registry)."""
    if not isinstance(obj, Stabiliser):
        return "must be a gan_jax.Stabiliser (a NamedTuple of its hooks)"
    hooks = [h for h in Stabiliser._fields if h not in ("options", "g_real", "field")]
    for h in hooks:
        value = getattr(obj, h)
        if value is not None and not callable(value):
            return f"{h} must be a function or None"
    if (obj.words is None) != (obj.cut is None) or (obj.cut is None) != (obj.row_draws is None):
        return "words, cut and row_draws come together (draws of its own) or not at all"
    if obj.perturb is None and obj.cut is not None:
        return "draws of its own (words, cut, row_draws) are read by perturb, which is None"
    if not isinstance(obj.g_real, bool):
        return f"g_real: got {obj.g_real!r}; must be True or False"
    return None


# The registry of game stabilisers (gan_jax.core.registry). The order they apply in, and the
# order of TrainState.stabilisers, is `stabilisers_on`'s.
STABILISERS: dict[str, Stabiliser] = registry.declare(
    "stabiliser", check_stabiliser, "a stabiliser of the game (gan_jax.Stabiliser)",
    "stabilisers")

registry.register("stabiliser", "spectral_norm", SPECTRAL_NORM,
                  doc="spectral normalization of the discriminator (field spectral_norm)")
registry.register("stabiliser", "instance_noise", INSTANCE_NOISE,
                  doc="instance noise on the discriminator's inputs (field noise_std)")
registry.register("stabiliser", "nagarajan_kolter", NAGARAJAN_KOLTER,
                  doc="the Nagarajan-Kolter term on the generator (field nk_eta)")


def stabilisers_on(static) -> tuple[tuple[str, Stabiliser], ...]:
    """(name, stabiliser) of each game stabiliser the configuration switches on, in the order
    they apply (and their states sit in TrainState.stabilisers): the built-ins switched on by
    their fields (`on`), in registration order, then the ones the `stabilisers` list names, by
    name (so their order does not depend on the order plugins were loaded in)."""
    named = getattr(static, "stabilisers", ())
    return tuple((name, s) for name, s in STABILISERS.items()
                 if s.on is not None and s.on(static)) + \
        tuple((name, STABILISERS[name]) for name in sorted(named))
