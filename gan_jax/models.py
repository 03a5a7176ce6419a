"""Generator and discriminator families as (init, apply) pairs of pure functions.

`init(key) -> params`; generators `apply(params, z_NL) -> x_ND`; discriminators
`apply(params, x_ND) -> logits_N` (the raw logit or critic value; D(x) = sigmoid(logit)).
Factories close over the static options (widths, depth, activation).

The seed's families keep their parameters as one flat vector in the seed's order:
linear theta = (a, b), piecewise theta = (a_l, b_l, a_r, b_r), logistic phi = (c, d).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from gan_jax import data as data_lib

Params = Any


class Model(NamedTuple):
    """A family: `init(key) -> params` and `apply(params, inputs) -> outputs`."""

    init: Callable[[jax.Array], Params]
    apply: Callable[[Params, jax.Array], jax.Array]


# Random starts of the seed's families: every parameter ~ N(0, 1). The seed itself starts from
# hand-picked values, passed explicitly as g_init / d_init.
def linear_generator() -> Model:
    """G(z) = a z + b, theta = (a, b): pushes N(0, 1) to N(b, a^2)."""

    def init(key):
        return jax.random.normal(key, (2,))

    def apply(theta, z_N1):
        return theta[0] * z_N1 + theta[1]

    return Model(init, apply)


def piecewise_generator() -> Model:
    """G(z) = a_l z + b_l for z < 0, a_r z + b_r for z >= 0; theta = (a_l, b_l, a_r, b_r)."""

    def init(key):
        return jax.random.normal(key, (4,))

    def apply(theta, z_N1):
        return jnp.where(z_N1 < 0, theta[0] * z_N1 + theta[1], theta[2] * z_N1 + theta[3])

    return Model(init, apply)


def logistic_discriminator() -> Model:
    """Logit c x + d, phi = (c, d); the seed's D(x) = sigmoid(c x + d)."""

    def init(key):
        return jax.random.normal(key, (2,))

    def apply(phi, x_N1):
        return phi[0] * x_N1[:, 0] + phi[1]

    return Model(init, apply)


ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    "leaky_relu": lambda x: jax.nn.leaky_relu(x, 0.2),
    "tanh": jnp.tanh,
    "elu": jax.nn.elu,
    "gelu": jax.nn.gelu,
    "softplus": jax.nn.softplus,
}


class Dense(NamedTuple):
    w: jax.Array  # f32[in, out]
    b: jax.Array  # f32[out]


def mlp(in_dim: int, out_dim: int, width: int, depth: int, activation: str) -> Model:
    """`depth` hidden layers of `width` units, then a linear output layer.

    Weights and biases start ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), the common default of
    published GAN toy experiments, so results compare with theirs.
    """
    act = ACTIVATIONS[activation]
    sizes = [in_dim] + [width] * depth + [out_dim]

    def init(key):
        layers = []
        for k, (n_in, n_out) in zip(jax.random.split(key, len(sizes) - 1), zip(sizes, sizes[1:])):
            kw, kb = jax.random.split(k)
            bound = 1.0 / np.sqrt(n_in)
            layers.append(Dense(jax.random.uniform(kw, (n_in, n_out), minval=-bound, maxval=bound),
                                jax.random.uniform(kb, (n_out,), minval=-bound, maxval=bound)))
        return tuple(layers)

    def apply(layers, x_NI):
        h = x_NI
        for layer in layers[:-1]:
            h = act(h @ layer.w + layer.b)
        return h @ layers[-1].w + layers[-1].b

    return Model(init, apply)


# ----------------------------------------------------------------------------- spectral norm
# Miyato et al. (2018): each weight matrix W is divided by sigma(W), its largest singular
# value, estimated by power iteration with a persistent vector u per layer. sigma = v^T W u is
# differentiated in W with u, v held fixed (their implementation's stop-gradient).


def sn_init(layers, key) -> tuple[jax.Array, ...]:
    """One unit vector u (f32[out]) per Dense layer, drawn from `key`."""
    keys = jax.random.split(key, len(layers))
    us = (jax.random.normal(k, (layer.w.shape[1],)) for k, layer in zip(keys, layers))
    return tuple(u / jnp.linalg.norm(u) for u in us)


def _unit(x):
    return x / (jnp.linalg.norm(x) + 1e-12)


def sn_power_iteration(layers, us) -> tuple[jax.Array, ...]:
    """One power-iteration step per layer: u <- W^T W u / |.| (v = W u / |W u|)."""
    return tuple(_unit(layer.w.T @ _unit(layer.w @ u))
                 for layer, u in zip(layers, jax.lax.stop_gradient(us)))


def sn_normalize(layers, us):
    """The layers with W / sigma(W), sigma = v^T W u, v = W u / |W u| (u, v held fixed)."""
    out = []
    for layer, u in zip(layers, jax.lax.stop_gradient(us)):
        v = jax.lax.stop_gradient(_unit(layer.w @ u))
        out.append(Dense(layer.w / (v @ layer.w @ u), layer.b))
    return tuple(out)


def latent_dim(cfg) -> int:
    return cfg.latent_dim if cfg.latent_dim is not None else data_lib.DIMS[cfg.data]


def mlp_sizes(cfg, family: str) -> list[int]:
    """Layer sizes of cfg's MLP generator (latent -> data) or discriminator (data -> 1)."""
    dim = data_lib.DIMS[cfg.data]
    if family == "generator":
        return [latent_dim(cfg)] + [cfg.g_width] * cfg.g_depth + [dim]
    return [dim * getattr(cfg, "pack", 1)] + [cfg.d_width] * cfg.d_depth + [1]


def _mlp_discriminator(cfg) -> Model:
    net = mlp(*_mlp_args(cfg, "discriminator"))
    return Model(net.init, lambda params, x_ND: net.apply(params, x_ND)[:, 0])


def _mlp_args(cfg, family: str):
    sizes = mlp_sizes(cfg, family)
    width, depth = (cfg.g_width, cfg.g_depth) if family == "generator" else (cfg.d_width,
                                                                           cfg.d_depth)
    return sizes[0], sizes[-1], width, depth, cfg.activation


class Family(NamedTuple):
    """A named family: `build(cfg) -> Model`, its parameter count, and whether it is 1-D only
    (samples, and for generators the latent, of dimension 1)."""

    build: Callable[[Any], Model]
    num_params: Callable[[Any], int]
    one_d: bool


def _mlp_count(family: str) -> Callable[[Any], int]:
    def count(cfg) -> int:
        sizes = mlp_sizes(cfg, family)
        return sum((n_in + 1) * n_out for n_in, n_out in zip(sizes, sizes[1:]))
    return count


# The registries of families: configuration validates `generator` and `discriminator` against
# them, and counts parameters by arithmetic (no JAX device is touched while validating).
GENERATORS: dict[str, Family] = {
    "linear": Family(lambda cfg: linear_generator(), lambda cfg: 2, one_d=True),
    "piecewise": Family(lambda cfg: piecewise_generator(), lambda cfg: 4, one_d=True),
    "mlp": Family(lambda cfg: mlp(*_mlp_args(cfg, "generator")), _mlp_count("generator"),
                  one_d=False),
}
DISCRIMINATORS: dict[str, Family] = {
    "logistic": Family(lambda cfg: logistic_discriminator(), lambda cfg: 2, one_d=True),
    "mlp": Family(_mlp_discriminator, _mlp_count("discriminator"), one_d=False),
}
FAMILIES = {"generator": GENERATORS, "discriminator": DISCRIMINATORS}


def make_generator(cfg) -> Model:
    """The generator family named by a configuration."""
    return GENERATORS[cfg.generator].build(cfg)


def make_discriminator(cfg) -> Model:
    """The discriminator family named by a configuration; apply returns f32[N]."""
    return DISCRIMINATORS[cfg.discriminator].build(cfg)


def make_model(cfg, family: str) -> Model:
    return make_generator(cfg) if family == "generator" else make_discriminator(cfg)


def num_params(cfg, family: str) -> int:
    """Number of scalar parameters of cfg's generator or discriminator (arithmetic)."""
    return FAMILIES[family][getattr(cfg, family)].num_params(cfg)


def init_params(model: Model, key: jax.Array, flat: jax.Array | None = None) -> Params:
    """Parameters drawn from `key`, or, if `flat` is given, those values in ravel order."""
    params = model.init(key)
    if flat is None:
        return params
    _, unravel = ravel_pytree(params)
    return unravel(jnp.asarray(flat, jnp.float32))
