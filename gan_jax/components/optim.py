"""Optimisers through optax, with traced hyperparameters, and the ascent convention.

Learning rates, betas, momentum and decay may be traced arrays: each builder passes them into
optax as values, so `jit(vmap(train))` sweeps them without recompiling. Training minimises the
losses of `gan_jax.components.losses`; to *maximise* an objective instead (the seed's convention,
params <- params + lr * grad), wrap any optimiser in :func:`maximize`.
"""

from __future__ import annotations

import optax

from gan_jax.components import methods
from gan_jax.core import registry
from gan_jax.core.errors import field_error


def maximize(tx: optax.GradientTransformation) -> optax.GradientTransformation:
    """Gradient ascent with any optimiser: flips the gradient's sign before `tx`.

    `maximize(tx)` fed the gradient of f gives exactly the updates `tx` gives when fed the
    gradient of -f, so every optimiser (sgd, adam, ...) ascends f.
    """
    return optax.chain(optax.scale(-1.0), tx)


def _sgd(lr, *, momentum, **_):
    # optax.sgd(momentum=None) is plain SGD; with a traced momentum we always keep the trace,
    # which equals plain SGD when momentum == 0.
    return optax.chain(optax.trace(decay=momentum), optax.scale_by_learning_rate(lr))


def _adam(lr, *, beta1, beta2, eps, eps_root=0.0, **_):
    return optax.adam(lr, b1=beta1, b2=beta2, eps=eps, eps_root=eps_root)


def _rmsprop(lr, *, rms_decay, eps, **_):
    return optax.rmsprop(lr, decay=rms_decay, eps=eps)


def check_optimizer(obj) -> str | None:
    """An optimiser is a builder `(lr, *, beta1, beta2, momentum, rms_decay, eps, eps_root)
    -> optax.GradientTransformation` (it may ignore what it does not use, with **_)."""
    return None if callable(obj) else "must be a function lr, **hyperparameters -> optax " \
                                      "GradientTransformation"


# The registry of optimisers (gan_jax.core.registry): configuration validates `optimizer` against it.
OPTIMIZERS = registry.declare("optimizer", check_optimizer,
                              "both players' optimiser (a builder of an optax transformation)",
                              "optimizer")
registry.register("optimizer", "sgd", _sgd, doc="SGD with heavy-ball momentum (0: plain)")
registry.register("optimizer", "adam", _adam, doc="Adam (beta1, beta2)")
registry.register("optimizer", "rmsprop", _rmsprop, doc="RMSProp (rms_decay)")


# Adam's square root is differentiated when a method unrolls optimiser steps (update =
# "unrolled"): at a second moment of exactly 0 (a parameter whose gradient is exactly 0, as
# behind a dead ReLU) d sqrt(v) / dv is infinite and the generator's gradient becomes NaN.
# A tiny constant inside the root (optax's eps_root, meant for meta-gradients through Adam)
# keeps it finite and changes an update only where v < ~1e-16.
UNROLL_EPS_ROOT = 1e-16


def make_optimizer(name: str, lr, *, beta1=0.5, beta2=0.999, momentum=0.0,
                   rms_decay=0.9, eps: float = 1e-8,
                   eps_root: float = 0.0) -> optax.GradientTransformation:
    """A descent optimiser by name; numeric arguments may be traced scalars.

    Args:
      name: "sgd" (with heavy-ball `momentum`, 0 for plain SGD), "adam" (`beta1`, `beta2`,
        and `eps_root` inside its square root), or "rmsprop" (`rms_decay`; its eps is inside
        the root already).
      lr: learning rate.
    """
    if name not in OPTIMIZERS:
        raise field_error("optimizer", name, f"must be one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](lr, beta1=beta1, beta2=beta2, momentum=momentum,
                            rms_decay=rms_decay, eps=eps, eps_root=eps_root)


def player_optimizers(static, hp) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
    """(generator, discriminator) optimisers for a run's static config and traced HParams."""
    common = dict(beta1=hp.beta1, beta2=hp.beta2, momentum=hp.momentum, rms_decay=hp.rms_decay,
                  eps_root=UNROLL_EPS_ROOT if methods.METHODS[static.update].unrolls else 0.0)
    return (make_optimizer(static.optimizer, hp.lr_g, **common),
            make_optimizer(static.optimizer, hp.lr_d, **common))
