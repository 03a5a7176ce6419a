"""Generator and discriminator families as (init, apply) pairs of pure functions.

`init(key) -> params`; generators `apply(params, z_NL) -> x_ND`; discriminators
`apply(params, x_ND) -> logits_N` (the raw logit or critic value; D(x) = sigmoid(logit)).
Factories close over the static options (widths, depth, activation; the MLP's maxout pieces,
batch normalization and initialization). A batch-normalized family has a second mode,
inference with population statistics, in `Model.norm` (docs/conventions.md, "Batch
normalization, maxout, finite training sets").

The seed's families keep their parameters as one flat vector in the seed's order:
linear theta = (a, b), piecewise theta = (a_l, b_l, a_r, b_r), logistic phi = (c, d).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from gan_jax.components import data as data_lib
from gan_jax.core import registry

Params = Any


class BatchStats(NamedTuple):
    """One batch-normalized layer's statistics, per unit: the mean and the divisor
    std = sqrt(biased variance + BN_EPSILON) (Blocks keeps these two, as PacGAN trains)."""

    mean: jax.Array   # f32[width]
    std: jax.Array    # f32[width]


# Batch normalization as PacGAN's generator has it (Blocks' BatchNormalization brick): the
# divisor sqrt(var + eps) with the biased batch variance and Blocks' default eps; the
# population statistics (mean and divisor) move towards each training batch's at rate 0.05.
BN_EPSILON = 1e-4
BN_MOMENTUM = 0.05


class Norm(NamedTuple):
    """A batch-normalized family's two modes (Ioffe & Szegedy 2015).

    init() -> stats: population statistics before training (mean 0, std 1 per layer: Blocks').
    forward(params, x, stats=None, groups=1) -> (outputs, stats): with `stats` None, training
      mode: each layer normalises with its batch's own statistics, taken separately over each
      of `groups` interleaved sub-batches (sample i belongs to sub-batch i mod groups), and
      returns those statistics averaged over the sub-batches; with `stats`, inference mode:
      normalises with them and returns them unchanged.
    """

    init: Callable[[], tuple[BatchStats, ...]]
    forward: Callable[..., tuple[jax.Array, tuple[BatchStats, ...]]]


class Model(NamedTuple):
    """A family: `init(key) -> params` and `apply(params, inputs) -> outputs`; a family with
    batch normalization also has `norm` (its `apply` is training mode over the whole batch)."""

    init: Callable[[jax.Array], Params]
    apply: Callable[[Params, jax.Array], jax.Array]
    norm: Norm | None = None


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


class NormDense(NamedTuple):
    """A hidden layer followed by batch normalization: no bias (the shift replaces it)."""

    w: jax.Array      # f32[in, out]
    scale: jax.Array  # f32[out]: gamma, starts at 1
    shift: jax.Array  # f32[out]: beta, starts at 0


WEIGHT_INITS = ("uniform", "normal_0.02", "he_uniform")
NORMS = ("none", "batch")


def _dense_init(key, n_in: int, n_out: int, weight_init: str):
    """(w, b) of one layer: U(+-1/sqrt(fan_in)) both; or w ~ N(0, 0.02^2) and b = 0; or w ~
    U(+-sqrt(6/fan_in)) (std sqrt(2/fan_in)) and b = 0."""
    kw, kb = jax.random.split(key)
    if weight_init == "normal_0.02":
        return 0.02 * jax.random.normal(kw, (n_in, n_out)), jnp.zeros((n_out,))
    if weight_init == "he_uniform":
        bound = np.sqrt(6.0 / n_in)
        return (jax.random.uniform(kw, (n_in, n_out), minval=-bound, maxval=bound),
                jnp.zeros((n_out,)))
    bound = 1.0 / np.sqrt(n_in)
    return (jax.random.uniform(kw, (n_in, n_out), minval=-bound, maxval=bound),
            jax.random.uniform(kb, (n_out,), minval=-bound, maxval=bound))


def mlp(in_dim: int, out_dim: int, width: int, depth: int, activation: str, *,
        pieces: int = 1, norm: str = "none", weight_init: str = "uniform") -> Model:
    """`depth` hidden layers of `width` units, then a linear output layer.

    weight_init "uniform": weights and biases start ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), the
    common default of published GAN toy experiments, so results compare with theirs;
    "normal_0.02": weights ~ N(0, 0.02^2) and biases 0 (PacGAN's, DCGAN's); "he_uniform":
    weights ~ U(-sqrt(6/fan_in), sqrt(6/fan_in)), He et al.'s std sqrt(2/fan_in), and biases 0
    (tflib's `initialization='he'`, WGAN-GP's toy networks).

    pieces = k > 1: the hidden layers are maxout layers (Goodfellow et al. 2013): each unit is
    the max over k affine pieces, the layer's weights [in, width * k] and biases [width * k]
    read as [..., width, k] (Blocks' LinearMaxout); `activation` is then not applied.

    norm "batch": each hidden layer is Linear without bias -> batch normalization (scale gamma,
    shift beta) -> activation, a `NormDense`; the output layer keeps its bias (PacGAN's
    generator). The model's `norm` holds both modes (:class:`Norm`); `apply` is training mode.

    Parameters are a tuple of layers, in order; ravel_pytree flattens each layer's fields in
    order (Dense: w, b; NormDense: w, scale, shift).
    """
    if norm not in NORMS:
        raise ValueError(f"norm: got {norm!r}; must be one of {', '.join(NORMS)}")
    if weight_init not in WEIGHT_INITS:
        raise ValueError(f"weight_init: got {weight_init!r}; must be one of "
                         f"{', '.join(WEIGHT_INITS)}")
    if norm == "batch" and pieces != 1:
        raise ValueError("mlp: batch normalization with maxout layers is not provided")
    act = ACTIVATIONS[activation]
    sizes = [in_dim] + [width * pieces] * depth + [out_dim]
    fan_in = [in_dim] + [width] * depth

    def init(key):
        layers = []
        keys = jax.random.split(key, len(sizes) - 1)
        for i, (k, n_in, n_out) in enumerate(zip(keys, fan_in, sizes[1:])):
            w, b = _dense_init(k, n_in, n_out, weight_init)
            if norm == "batch" and i < depth:
                layers.append(NormDense(w, jnp.ones((n_out,)), jnp.zeros((n_out,))))
            else:
                layers.append(Dense(w, b))
        return tuple(layers)

    def hidden(layer, h):
        a = h @ layer.w + layer.b
        if pieces == 1:
            return act(a)
        return jnp.max(a.reshape(a.shape[:-1] + (width, pieces)), axis=-1)

    def apply(layers, x_NI):
        h = x_NI
        for layer in layers[:-1]:
            h = hidden(layer, h)
        return h @ layers[-1].w + layers[-1].b

    if norm == "none":
        return Model(init, apply)

    def init_stats():
        return tuple(BatchStats(jnp.zeros((width,)), jnp.ones((width,))) for _ in range(depth))

    def forward(layers, x_NI, stats=None, groups: int = 1):
        h, seen = x_NI, []
        for i, layer in enumerate(layers[:-1]):
            a_NW = h @ layer.w
            if stats is None:
                a_RGW = a_NW.reshape(-1, groups, width)   # sample r * groups + g -> [r, g]
                mean_GW = jnp.mean(a_RGW, axis=0)
                std_GW = jnp.sqrt(jnp.mean(jnp.square(a_RGW - mean_GW), axis=0) + BN_EPSILON)
                a_NW = ((a_RGW - mean_GW) / std_GW).reshape(a_NW.shape)
                seen.append(BatchStats(jnp.mean(mean_GW, axis=0), jnp.mean(std_GW, axis=0)))
            else:
                a_NW = (a_NW - stats[i].mean) / stats[i].std
            h = act(a_NW * layer.scale + layer.shift)
        out = h @ layers[-1].w + layers[-1].b
        return out, (tuple(seen) if stats is None else stats)

    return Model(init, lambda layers, x_NI: forward(layers, x_NI)[0], Norm(init_stats, forward))


# ----------------------------------------------------------------------------- spectral norm
# Miyato et al. (2018), Algorithm 1: each weight matrix W is divided by sigma(W), its largest
# singular value, estimated by power iteration with a persistent vector u per layer. In the
# paper's orientation W maps a layer's input to its output (here that is `w.T`, w being
# [in, out]), u has the output's size and v the input's; one iteration is
#   v <- W^T u / |W^T u|,  u <- W v / |W v|,  sigma = u^T W v,
# with the u and v of that same iteration, as their chainer code has it. sigma is
# differentiated in W with u and v held fixed (their implementation's stop-gradient).


class SNVectors(NamedTuple):
    """One layer's power-iteration vectors, in the paper's names: u (f32[out], the persistent
    one) and v (f32[in]), both from the same iteration."""

    u: jax.Array
    v: jax.Array


def sn_init(layers, key) -> tuple[SNVectors, ...]:
    """Per Dense layer, a unit vector u (f32[out]) drawn from `key`, and v = W^T u / |W^T u|
    (the first half of an iteration, so that the vectors have their shapes before any)."""
    keys = jax.random.split(key, len(layers))
    us = (jax.random.normal(k, (layer.w.shape[1],)) for k, layer in zip(keys, layers))
    return tuple(SNVectors(u, _unit(layer.w @ u))
                 for layer, u in zip(layers, (u / jnp.linalg.norm(u) for u in us)))


def _unit(x):
    return x / (jnp.linalg.norm(x) + 1e-12)


def sn_power_iteration(layers, vectors) -> tuple[SNVectors, ...]:
    """One power-iteration step per layer, from each layer's u: v = W^T u / |.| (w @ u here),
    then u = W v / |.| (w.T @ v); the new u and the v it came from."""
    out = []
    for layer, vec in zip(layers, jax.lax.stop_gradient(vectors)):
        v = _unit(layer.w @ vec.u)
        out.append(SNVectors(_unit(layer.w.T @ v), v))
    return tuple(out)


def sn_normalize(layers, vectors):
    """The layers with W / sigma(W), sigma = u^T W v (here v^T w u) from one iteration's u and
    v, both held fixed."""
    return tuple(Dense(layer.w / (vec.v @ layer.w @ vec.u), layer.b)
                 for layer, vec in zip(layers, jax.lax.stop_gradient(vectors)))


def latent_dim(cfg) -> int:
    return cfg.latent_dim if cfg.latent_dim is not None else data_lib.DIMS[cfg.data]


def mlp_sizes(cfg, family: str) -> list[int]:
    """Layer sizes of cfg's MLP generator (latent -> data) or discriminator (data -> 1): the
    units of each layer's output (a maxout layer's width, before its pieces)."""
    dim = data_lib.DIMS[cfg.data]
    if family == "generator":
        return [latent_dim(cfg)] + [cfg.g_width] * cfg.g_depth + [dim]
    return [dim * getattr(cfg, "pack", 1)] + [cfg.d_width] * cfg.d_depth + [1]


def mlp_options(cfg, family: str) -> dict[str, Any]:
    """The MLP options of cfg's generator or discriminator (the keywords of :func:`mlp`)."""
    weight_init = getattr(cfg, "weight_init", "uniform")
    if family == "generator":
        return dict(norm=getattr(cfg, "g_norm", "none"), weight_init=weight_init)
    return dict(pieces=getattr(cfg, "d_pieces", 1), weight_init=weight_init)


def _mlp(cfg, family: str) -> Model:
    sizes = mlp_sizes(cfg, family)
    width, depth = (cfg.g_width, cfg.g_depth) if family == "generator" else (cfg.d_width,
                                                                           cfg.d_depth)
    return mlp(sizes[0], sizes[-1], width, depth, cfg.activation, **mlp_options(cfg, family))


def _mlp_discriminator(cfg) -> Model:
    net = _mlp(cfg, "discriminator")
    return Model(net.init, lambda params, x_ND: net.apply(params, x_ND)[:, 0])


class Family(NamedTuple):
    """A named family: `build(cfg) -> Model`, its parameter count, and whether it is 1-D only
    (samples, and for generators the latent, of dimension 1); `options`, its own options
    (registry.Option, static, set as "<family>.<option>"), which `build` and `num_params`
    read with `registry.option(cfg, "<family>.<option>")`."""

    build: Callable[[Any], Model]
    num_params: Callable[[Any], int]
    one_d: bool
    options: tuple = ()


def _mlp_count(family: str) -> Callable[[Any], int]:
    def count(cfg) -> int:
        sizes, options = mlp_sizes(cfg, family), mlp_options(cfg, family)
        hidden = len(sizes) - 2
        pieces = options.get("pieces", 1)
        # (n_in + 1) x n_out per layer, times the pieces of a maxout layer; a batch-normalized
        # hidden layer trades its bias for a scale and a shift (one more per unit).
        total = sum((n_in + 1) * n_out * (pieces if i < hidden else 1)
                    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])))
        if options.get("norm") == "batch":
            total += sum(sizes[1:-1])
        return total
    return count


def check_family(obj) -> str | None:
    """What a registered family breaks of the protocol (:class:`Family`), or None."""
    if not isinstance(obj, Family):
        return f"must be a gan_jax.components.models.Family(build, num_params, one_d), got " \
               f"{type(obj).__name__}"
    if not callable(obj.build) or not callable(obj.num_params):
        return "build(cfg) -> Model and num_params(cfg) -> int must be functions"
    return None


# The registries of families (gan_jax.core.registry): configuration validates `generator` and
# `discriminator` against them, and counts parameters by arithmetic (no JAX device is touched
# while validating).
GENERATORS: dict[str, Family] = registry.declare(
    "generator", check_family, "a generator family (models.Family: z -> x)", "generator")
DISCRIMINATORS: dict[str, Family] = registry.declare(
    "discriminator", check_family, "a discriminator family (models.Family: x -> logit)",
    "discriminator")
registry.register("generator", "linear",
                  Family(lambda cfg: linear_generator(), lambda cfg: 2, one_d=True),
                  doc="G(z) = a z + b, the seed's (1-D)")
registry.register("generator", "piecewise",
                  Family(lambda cfg: piecewise_generator(), lambda cfg: 4, one_d=True),
                  doc="two lines joined at z = 0, the seed's (1-D)")
registry.register("generator", "mlp",
                  Family(lambda cfg: _mlp(cfg, "generator"), _mlp_count("generator"),
                         one_d=False),
                  doc="MLP of g_depth hidden layers of g_width units")
registry.register("discriminator", "logistic",
                  Family(lambda cfg: logistic_discriminator(), lambda cfg: 2, one_d=True),
                  doc="logit w x + c, the seed's (1-D)")
registry.register("discriminator", "mlp",
                  Family(_mlp_discriminator, _mlp_count("discriminator"), one_d=False),
                  doc="MLP of d_depth hidden layers of d_width units (maxout with d_pieces)")
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
