"""Targets: Gaussian mixtures in d dimensions with isotropic components, known exactly, and
mixtures whose components each span only some of the coordinates (:class:`EmbeddedMixture`,
VEEGAN's 1200-D set); finite training sets drawn from them; and the targets a sweep file
declares (mixtures by their parameters, point clouds read from a file:
:func:`register_declared`, :class:`PointCloud`).

A mixture holds its parameters as NumPy constants, so they are baked into the compiled program
(the target is part of a run's static configuration). Samples are `x_ND` arrays (N samples of
dimension D, D = 1 for the 1-D targets).

A finite training set (:class:`TrainingSet`, the `dataset_size` field) is N samples drawn once;
training reads it as a stream of epochs, each a fresh pseudo-random order of all N samples, and
takes consecutive stretches of the stream as batches. Position p of the stream is sample
sigma_e(p mod N) of epoch e = p // N, where sigma_e is the keyed bijection `rand.permute` under
`fold_in(order_key, e)`, evaluated only at the batch's positions. The alternatives cost more
where it matters: sorting N random keys every step is O(N log N) per step for a batch of a
few hundred; a permutation made once per epoch must live in the loop state (N integers per
run) and be made under a condition, which `vmap` over runs turns into a select that makes it
at every step unless the condition is kept free of every batched value (the run's step
counter is batched). The Feistel bijection is stateless, costs a few hashes per batch sample,
and gives every epoch its own order from the epoch's number alone, so a run's batches depend
only on its key and step.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
from collections.abc import Mapping
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp, ndtr

from gan_jax.core import rand, registry
from gan_jax.core.errors import ConfigError, field_error, is_finite_number, is_number, suggest


class _Modes:
    """What a mixture with `means` (f64[K, D]) and `weights` (f64[K]) gives by them."""

    @property
    def num_modes(self) -> int:
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def mean(self) -> np.ndarray:
        """f64[D] analytic mean."""
        return self.weights @ self.means


@dataclasses.dataclass(frozen=True, eq=False)
class GaussianMixture(_Modes):
    """Mixture sum_k w_k N(means[k], stds[k]^2 I).

    Attributes:
      means: f64[K, D] component means.
      stds: f64[K] component standard deviations (isotropic).
      weights: f64[K] mixing weights, summing to 1.
    """

    means: np.ndarray
    stds: np.ndarray
    weights: np.ndarray

    def __post_init__(self):
        means = np.asarray(self.means, np.float64)
        if means.ndim == 1:
            means = means[:, None]
        stds = np.asarray(self.stds, np.float64)
        weights = np.asarray(self.weights, np.float64)
        if means.ndim != 2 or means.shape[0] < 1:
            raise field_error("means", self.means, "must be a non-empty list of points")
        k = means.shape[0]
        if stds.shape != (k,):
            raise field_error("stds", self.stds, f"must have one value per mode ({k} modes)")
        if weights.shape != (k,):
            raise field_error("weights", self.weights, f"must have one value per mode ({k} modes)")
        if not np.all(np.isfinite(means)):
            raise field_error("means", self.means, "must be finite")
        if not np.all(stds > 0) or not np.all(np.isfinite(stds)):
            raise field_error("stds", self.stds, "every std must be a positive number")
        # Positive, not just non-negative: a zero-weight component is no mode, and the reverse
        # KL of a sample's mode histogram against the weights would be infinite.
        if not np.all(weights > 0) or not np.all(np.isfinite(weights)):
            raise field_error("weights", self.weights, "every weight must be a positive number")
        if abs(weights.sum() - 1.0) > 1e-6:
            raise field_error("weights", self.weights,
                              f"must sum to 1 (they sum to {weights.sum():.9g})")
        # Each component is a mode of the mode-coverage metrics, so no two may share a mean
        # (the common ring built from linspace(0, 2*pi, 8) puts its first and last mode on the
        # same point, up to rounding).
        sq_KK = np.sum((means[:, None] - means[None]) ** 2, axis=-1)
        tol = 1e-9 * (1.0 + np.max(np.abs(means)))
        close = np.argwhere(np.triu(sq_KK <= tol**2, k=1))
        if close.size:
            i, j = close[0]
            raise field_error("means", self.means,
                              f"modes {i} and {j} coincide at {means[i].tolist()}; "
                              "every component must have its own mean")
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "stds", stds)
        object.__setattr__(self, "weights", weights)

    @property
    def std(self) -> np.ndarray:
        """f64[D] analytic per-coordinate standard deviation."""
        second = self.weights @ (self.means**2 + self.stds[:, None] ** 2)
        return np.sqrt(second - self.mean**2)

    @property
    def _spare_mode_bits(self) -> int | None:
        """log2(K) if equal-weight modes can be picked by a normal's spare low bits, else None."""
        k = self.num_modes
        bits = k.bit_length() - 1
        if k == 1 << bits and bits <= rand.SPARE_BITS and np.all(self.weights == 1.0 / k):
            return bits
        return None

    @property
    def words_per_sample(self) -> int:
        """Random u32 words one sample consumes: D normals, plus a uniform for the mode
        unless the normals' spare bits can pick it exactly (equal weights, K a power of 2)."""
        return self.dim + (0 if self._spare_mode_bits is not None else 1)

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """f32[n, D] samples: a component by its weight, then a Gaussian draw around its mean."""
        return self.sample_from_bits(rand.words(key, (n, self.words_per_sample)))

    def sample_from_bits(self, bits_NW: jax.Array) -> jax.Array:
        """f32[N, D] samples from u32[N, words_per_sample] random words."""
        noise_ND = rand.normal_from_bits(bits_NW[:, : self.dim])
        spare = self._spare_mode_bits
        if spare is not None:
            mode_N = rand.low_bits(bits_NW[:, 0], spare)
        else:
            u_N = rand.uniform_from_bits(bits_NW[:, self.dim])
            edges = jnp.asarray(np.cumsum(self.weights)[:-1], jnp.float32)
            mode_N = jnp.sum(u_N[:, None] >= edges[None, :], axis=1).astype(jnp.int32)
        return self.place(mode_N, noise_ND)

    def place(self, mode_N: jax.Array, noise_ND: jax.Array) -> jax.Array:
        """Samples from component indices and standard-normal noise."""
        means = np.asarray(self.means, np.float32)
        stds = np.asarray(self.stds, np.float32)
        if self.num_modes > 32:
            return jnp.asarray(means)[mode_N] + jnp.asarray(stds)[mode_N][:, None] * noise_ND
        # Few modes: a chain of selects against constants, which XLA fuses and vectorises on
        # CPU, instead of a gather; the values are the same.
        mode_N1 = mode_N[:, None]
        mean_ND = jnp.broadcast_to(means[0], noise_ND.shape)
        std_N1 = jnp.full(mode_N1.shape, stds[0])
        for k in range(1, self.num_modes):
            mean_ND = jnp.where(mode_N1 == k, means[k], mean_ND)
            std_N1 = jnp.where(mode_N1 == k, stds[k], std_N1)
        return mean_ND + std_N1 * noise_ND

    def log_prob(self, x_ND: jax.Array) -> jax.Array:
        """f32[N] log density at each point (x may also be f32[N] for a 1-D mixture)."""
        x_ND = self._as_points(x_ND)
        d = self.dim
        sq_NK = jnp.sum((x_ND[:, None, :] - self.means[None]) ** 2, axis=-1)
        log_comp_NK = (-0.5 * sq_NK / self.stds**2 - d * np.log(self.stds)
                       - 0.5 * d * math.log(2 * math.pi))
        return logsumexp(log_comp_NK + np.log(np.maximum(self.weights, 1e-300)), axis=-1)

    def cdf(self, x: jax.Array) -> jax.Array:
        """CDF of a 1-D mixture at x (any shape)."""
        self._require_1d("cdf")
        x = jnp.asarray(x)
        z = (x[..., None] - self.means[:, 0]) / self.stds
        return jnp.sum(self.weights * ndtr(z), axis=-1)

    def check_samples(self, x_ND, what: str = "samples") -> None:
        """Raise ConfigError unless x_ND has shape [N, D] with this mixture's D.

        Shapes are known at trace time, so the check costs nothing after compilation and fails
        before it (e.g. a generator whose output size is not the target's dimension).
        """
        check_samples(self, x_ND, what)

    def _as_points(self, x):
        x = jnp.asarray(x)
        if x.ndim == 1 and self.dim == 1:
            x = x[:, None]
        return x

    def _require_1d(self, what: str):
        if self.dim != 1:
            raise ConfigError(f"{what} is defined for 1-D mixtures only; this one is {self.dim}-D")


def mixture_1d(means, stds, weights) -> GaussianMixture:
    """A 1-D mixture from lists of means, stds and weights."""
    means = np.asarray(means, np.float64)
    if means.ndim != 1:
        raise field_error("means", means.tolist(), "must be a flat list for a 1-D mixture")
    return GaussianMixture(means[:, None], stds, weights)


def bimodal_1d(std: float = 0.35) -> GaussianMixture:
    """The seed's target: 0.5 N(-2, std^2) + 0.5 N(+2, std^2)."""
    return mixture_1d([-2.0, 2.0], [std, std], [0.5, 0.5])


def ring_2d(radius: float = 1.0, std: float = 0.01, num_modes: int = 8) -> GaussianMixture:
    """num_modes equal modes at (r cos(2 pi k/K), r sin(2 pi k/K)), k = 0..K-1: all distinct.

    The defaults are PacGAN's 2D-ring (Lin et al. 2018; VEEGAN's setup): 8 modes on the unit
    circle, std 0.01. The unrolled GAN's ring (Metz et al. 2017) is radius 2, std 0.02.
    """
    if not isinstance(num_modes, (int, np.integer)) or num_modes < 2:
        raise field_error("num_modes", num_modes, "must be an integer >= 2")
    if not radius > 0 or not math.isfinite(radius):
        raise field_error("data_radius", radius, "must be a positive number")
    angles = 2 * np.pi * np.arange(num_modes) / num_modes
    means = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return GaussianMixture(means, np.full(num_modes, std), np.full(num_modes, 1 / num_modes))


def grid_2d(std: float = 0.05, spacing: float = 2.0, side: int = 5) -> GaussianMixture:
    """side^2 equal modes on the grid {-(side-1)/2, ..., (side-1)/2}^2 * spacing.

    The defaults are PacGAN's 2D-grid: 25 modes on {-4, -2, 0, 2, 4}^2, std 0.05, ordered as
    itertools.product over (x, y), x major.
    """
    if not isinstance(side, (int, np.integer)) or side < 1:
        raise field_error("side", side, "must be a positive integer")
    if not spacing > 0 or not math.isfinite(spacing):
        raise field_error("spacing", spacing, "must be a positive number")
    coords = spacing * (np.arange(side) - (side - 1) / 2)
    xx, yy = np.meshgrid(coords, coords, indexing="ij")
    means = np.stack([xx.ravel(), yy.ravel()], axis=1)
    k = side * side
    return GaussianMixture(means, np.full(k, std), np.full(k, 1 / k))


class EmbeddedMixture(_Modes):
    """Equal-weight mixture of K Gaussians, each on its own d of the D coordinates: component
    k is N(means[k], stds[k]^2 diag(support[k])), support[k] a 0/1 mask with d ones, so its
    covariance has rank d < D and its samples equal its mean on the other D - d coordinates.

    Modes for the mode metrics (data.has_modes): a sample's nearest mode is the one of least
    ||x - mu_k|| / sigma_k, as for an isotropic mixture; its high-quality distance
    (`hq_distance`) is max_c |x_c - mu_kc| / sigma_k over all D coordinates, the number of
    stds by which its worst coordinate misses the mode's mean. A component's own samples miss
    by at most about 4 stds on their d coordinates and by nothing off them.

    Attributes:
      means: f64[K, D] component means.
      stds: f64[K] component standard deviations along their support.
      weights: f64[K] mixing weights, all 1 / K.
      support: bool[K, D] each component's d coordinates.
    """

    def __init__(self, means, stds, support):
        means = np.asarray(means, np.float64)
        stds = np.asarray(stds, np.float64)
        support = np.asarray(support, bool)
        if means.ndim != 2 or means.shape[0] < 1 or not np.all(np.isfinite(means)):
            raise field_error("means", means.shape, "must be a finite array [K, D]")
        k = means.shape[0]
        if stds.shape != (k,) or not np.all(stds > 0) or not np.all(np.isfinite(stds)):
            raise field_error("stds", stds.tolist(), f"must be {k} positive numbers, one a mode")
        if support.shape != means.shape or not np.all(support.sum(1) > 0):
            raise field_error("support", support.shape, f"must be a 0/1 mask of shape "
                              f"{means.shape} with at least one coordinate a mode")
        self.means, self.stds, self.support = means, stds, support
        self.weights = np.full(k, 1.0 / k)
        for a in (self.means, self.stds, self.support, self.weights):
            a.setflags(write=False)

    @property
    def support_dims(self) -> np.ndarray:
        """i64[K]: each component's support dimension d."""
        return self.support.sum(1)

    @property
    def std(self) -> np.ndarray:
        """f64[D] analytic per-coordinate standard deviation."""
        second = self.weights @ (self.means**2 + self.stds[:, None] ** 2 * self.support)
        return np.sqrt(np.maximum(second - self.mean**2, 0.0))

    @property
    def words_per_sample(self) -> int:
        """Random u32 words one sample consumes: D normals (masked to the component's
        support) and a uniform for the component."""
        return self.dim + 1

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """f32[n, D] samples: a component uniformly, then a Gaussian draw on its support."""
        return self.sample_from_bits(rand.words(key, (n, self.words_per_sample)))

    def sample_from_bits(self, bits_NW: jax.Array) -> jax.Array:
        """f32[N, D] samples from u32[N, words_per_sample] random words."""
        noise_ND = rand.normal_from_bits(bits_NW[:, : self.dim])
        u_N = rand.uniform_from_bits(bits_NW[:, self.dim])
        mode_N = jnp.minimum((u_N * self.num_modes).astype(jnp.int32), self.num_modes - 1)
        return self.place(mode_N, noise_ND)

    def place(self, mode_N: jax.Array, noise_ND: jax.Array) -> jax.Array:
        """Samples from component indices and standard-normal noise on all D coordinates."""
        scale_KD = np.asarray(self.stds[:, None] * self.support, np.float32)
        means_KD = np.asarray(self.means, np.float32)
        return jnp.asarray(means_KD)[mode_N] + jnp.asarray(scale_KD)[mode_N] * noise_ND

    def hq_distance(self, x_ND: jax.Array, nearest_N: jax.Array) -> jax.Array:
        """f32[N]: max_c |x_c - mu_kc| / sigma_k, k each sample's nearest mode."""
        means_KD = jnp.asarray(self.means, jnp.float32)
        inv_std_K = jnp.asarray(1.0 / self.stds, jnp.float32)
        return jnp.max(jnp.abs(x_ND - means_KD[nearest_N]), axis=1) * inv_std_K[nearest_N]

    def check_samples(self, x_ND, what: str = "samples") -> None:
        """Raise ConfigError unless x_ND has shape [N, D] with this mixture's D."""
        check_samples(self, x_ND, what)

    def __repr__(self):
        dims = sorted({int(d) for d in self.support_dims})
        return f"EmbeddedMixture({self.num_modes} modes of {dims} dimensions in {self.dim}-D)"


# VEEGAN's 1200-D set (Srivastava et al. 2017, Sec. 5.1): "a mixture of ten 700 dimensional
# Gaussian distributions embedded in a 1200 dimensional space", a sample high quality "within
# 10 standard deviations of the nearest mode". The rest is this preset's choice (docs/targets.md):
VEEGAN_1200D_SEED = 1200      # NumPy default_rng seed of the means and the supports
VEEGAN_1200D_STD = 0.05
VEEGAN_1200D_HQ = 10.0        # VEEGAN's threshold, in stds, for hq_threshold


def veegan_1200d(num_modes: int = 10, dim: int = 1200, support_dim: int = 700,
                 std: float = VEEGAN_1200D_STD, seed: int = VEEGAN_1200D_SEED) -> EmbeddedMixture:
    """VEEGAN's 1200-D mixture as this library builds it: `num_modes` equal-weight modes,
    means with coordinates +1 or -1 (fair signs), each mode on its own `support_dim`
    coordinates (a uniformly random subset), std `std` there; the signs, then the subsets,
    from NumPy's default_rng(seed)."""
    if not 1 <= support_dim <= dim:
        raise field_error("support_dim", support_dim, f"must be in [1, dim = {dim}]")
    rng = np.random.default_rng(seed)
    means = rng.choice(np.array([-1.0, 1.0]), size=(num_modes, dim))
    support = np.zeros((num_modes, dim), bool)
    for k in range(num_modes):
        support[k, rng.permutation(dim)[:support_dim]] = True
    return EmbeddedMixture(means, np.full(num_modes, std), support)


class TrainingSet(NamedTuple):
    """A finite training set: N samples drawn once, read in epochs of fresh orders."""

    samples_ND: jax.Array   # f32[N, D]
    order_key: jax.Array    # epoch e reads the samples in the order rand.permute(fold_in(., e))


def training_set(target, key: jax.Array, n: int) -> TrainingSet:
    """N samples of `target` drawn from one half of `key`; the epochs' orders from the other.
    A point cloud (`has_points`) is its own training set: its training points, whatever n."""
    k_samples, k_order = jax.random.split(key)
    if has_points(target):
        return TrainingSet(jnp.asarray(target.training_points), k_order)
    return TrainingSet(target.sample(k_samples, n), k_order)


def stream_indices(data: TrainingSet, start, count: int) -> jax.Array:
    """i32[count]: the samples at positions start, ..., start + count - 1 of the training set's
    stream of epochs (`count` at most N, so the positions span at most two epochs; positions
    must stay below 2**31)."""
    n = data.samples_ND.shape[0]
    if not 1 <= count <= n:
        raise ValueError(f"stream_indices: count must be in [1, N = {n}], got {count}")
    pos = jnp.asarray(start, jnp.int32) + jnp.arange(count, dtype=jnp.int32)
    epoch, offset = pos // n, pos % n
    # Each position keyed by its epoch's words (the first epoch's, or the next one's).
    keys = jnp.stack([rand.words(rand.fold_in(data.order_key, e), (2,))
                      for e in (epoch[0], epoch[0] + 1)])
    k_N2 = keys[(epoch - epoch[0]).astype(jnp.int32)]
    return rand.permute_words(k_N2[:, 0], k_N2[:, 1], offset, n)


def stream_batch(data: TrainingSet, start, count: int) -> jax.Array:
    """f32[count, D]: the samples at positions start, ..., start + count - 1 of the stream."""
    return data.samples_ND[stream_indices(data, start, count)]


# ----------------------------------------------------------------------------- the protocol
#
# A target is any object with
#   dim: int                         the samples' dimension D
#   sample(key, n) -> f32[n, D]      n samples from a typed key, in jax.numpy (traced)
# and, where it can, the capabilities the library uses when they are there:
#   words_per_sample, sample_from_bits(u32[N, W]) -> f32[N, D]
#                                    samples from the library's random words: training then
#                                    draws a step's real samples with its latent draws in one
#                                    call (faster on CPU); without it, from the step's key
#   means, stds, weights, num_modes  a Gaussian mixture's modes: the mode metrics
#                                    (modes_captured, hq_fraction, reverse_kl, mode_js)
#   hq_distance(x_ND, nearest_N) -> f32[N]
#                                    with modes: the distance, in stds, that the high-quality
#                                    rule compares with hq_threshold (else ||x - mu_k|| / sigma_k)
#   std: f64[D]                      the analytic per-coordinate std (the MMD's bandwidth;
#                                    else the real sample's own)
#   log_prob, cdf (1-D)              exact 1-D analysis (gan_jax.analysis.exact)
#   training_points, reference_points
#                                    a finite set of points (a point cloud): training reads
#                                    the first in epochs, `sample` draws from the second
# A metric or analysis that needs a capability the target lacks is refused with a message
# naming both, never computed into a meaningless number.


def has_bits(target) -> bool:
    """Whether the target samples from the library's random words."""
    return hasattr(target, "sample_from_bits") and hasattr(target, "words_per_sample")


def has_modes(target) -> bool:
    """Whether the target has modes (a Gaussian mixture's means, stds and weights)."""
    return all(hasattr(target, a) for a in ("means", "stds", "weights", "num_modes"))


def has_points(target) -> bool:
    """Whether the target is a finite set of points (a point cloud): training reads its
    `training_points` in epochs, and `sample` draws from its held-out reference points."""
    return hasattr(target, "training_points") and hasattr(target, "reference_points")


def has_cdf(target) -> bool:
    return target.dim == 1 and hasattr(target, "cdf") and has_modes(target)


def check_samples(target, x_ND, what: str = "samples") -> None:
    """Raise ConfigError unless x_ND has shape [N, D] with the target's D (at trace time)."""
    shape = tuple(x_ND.shape)
    if len(shape) != 2 or shape[1] != target.dim:
        raise ConfigError(f"{what}: got shape {shape}; a {target.dim}-D target needs shape "
                          f"[N, {target.dim}] (one row of {target.dim} coordinates per sample)")


class Preset(NamedTuple):
    """A named target: its factory, dimension, and which of `data_std`, `data_radius` apply
    (passed to the factory as `std=`, `radius=`); `options`, its own options
    (registry.Option, static, set as "<target>.<option>"), passed to the factory as keyword
    arguments of their names."""

    build: Callable[..., object]
    dim: int
    has_radius: bool = False
    has_std: bool = True
    options: tuple = ()
    min_hq_threshold: float = 0.0   # the smallest hq_threshold under which the target's own
                                    # samples count as high quality (nearly all of them)


def check_target(obj) -> str | None:
    """What a registered target breaks of the protocol, or None: a Preset, or a target
    object itself (a `dim` and a `sample(key, n)`)."""
    if isinstance(obj, Preset):
        if not callable(obj.build) or not isinstance(obj.dim, int) or obj.dim < 1:
            return "a Preset needs a factory and a positive integer dim"
        if not is_finite_number(obj.min_hq_threshold) or obj.min_hq_threshold < 0:
            return (f"min_hq_threshold: got {obj.min_hq_threshold!r}; must be a non-negative "
                    "number")
        return None
    if not isinstance(getattr(obj, "dim", None), (int, np.integer)) or obj.dim < 1:
        return "a target needs `dim`, a positive integer (its samples' dimension)"
    if not callable(getattr(obj, "sample", None)):
        return "a target needs `sample(key, n) -> f32[n, dim]`"
    if getattr(obj, "options", ()):
        return "a target with options of its own must be a Preset, whose build takes them"
    return None


def _as_preset(obj) -> Preset:
    if isinstance(obj, Preset):
        return obj
    return Preset(lambda: obj, int(obj.dim), has_radius=False, has_std=False)


# The registry of named targets (gan_jax.core.registry): configuration validates `data` against it.
TARGETS: dict[str, Preset] = registry.declare(
    "target", check_target, "what the generator learns (data.Preset, or dim + sample)", "data")
registry.register("target", "bimodal_1d", Preset(bimodal_1d, 1),
                  doc="the seed's two modes at -2 and 2, std 0.35 (1-D)")
registry.register("target", "ring_2d", Preset(ring_2d, 2, has_radius=True),
                  doc="8 modes on a circle of radius 1, std 0.01 (2-D)")
registry.register("target", "grid_2d", Preset(grid_2d, 2),
                  doc="25 modes on a 5 x 5 grid of spacing 2, std 0.05 (2-D)")
# Its own samples miss their mode's mean by up to max |N(0, 1)| over 700 coordinates, above
# 5 stds for fewer than 1 in 2,500 samples: below that threshold its high-quality fraction would
# call its own samples poor.
registry.register("target", "veegan_1200d", Preset(veegan_1200d, 1200, has_std=False,
                                                   min_hq_threshold=5.0),
                  doc="VEEGAN's 10 modes of 700 dimensions in 1200-D: means of +-1 "
                      "coordinates, std 0.05 on each mode's own 700 coordinates")


def preset(name: str) -> Preset:
    """The registered target `name` as a Preset (a target object registered as it is is
    wrapped in one that takes no options)."""
    if name not in TARGETS:
        raise field_error("data", name, f"must be one of {', '.join(TARGETS)}")
    return _as_preset(TARGETS[name])


def dim_of(name: str) -> int:
    """The dimension of the registered target `name`, without building it."""
    return preset(name).dim


class _Dims(Mapping):
    """name -> dimension of every registered target, read live from TARGETS."""

    def __getitem__(self, name):
        if name not in TARGETS:
            raise KeyError(name)
        return dim_of(name)

    def __iter__(self):
        return iter(TARGETS)

    def __len__(self):
        return len(TARGETS)


DIMS = _Dims()


def make_target(cfg):
    """The target named by a configuration (its fields data, data_std, data_radius)."""
    spec = preset(cfg.data)
    kwargs = {}
    if spec.has_std and cfg.data_std is not None:
        kwargs["std"] = cfg.data_std
    if spec.has_radius and cfg.data_radius is not None:
        kwargs["radius"] = cfg.data_radius
    own = dict(getattr(cfg, "options", ()))
    kwargs.update({o.name: own.get(f"{cfg.data}.{o.name}", o.default)
                   for o in registry.options_of(spec)})
    target = spec.build(**kwargs)
    if int(target.dim) != spec.dim:
        raise field_error("data", cfg.data, f"built a {target.dim}-D target but is registered "
                          f"as {spec.dim}-D")
    return target


# ----------------------------------------------------------------------------- declared targets
#
# A sweep file declares targets of its own under [targets.NAME] (gan_jax.sweep.spec): a
# Gaussian mixture by its parameters, or a point cloud by its file. Each is registered under
# NAME.DIGEST, DIGEST the first DIGEST_CHARS hex digits of the sha256 of what defines it (the
# mixture's parameters; the file's sha256 and the split), so a changed declaration is another
# target: another run id, another row of a table, another kept program.

DIGEST_CHARS = 12
DEFAULT_HOLDOUT = 0.2
POINT_FILES = (".npy", ".csv")
MIXTURE_KEYS = ("means", "stds", "weights")
CLOUD_KEYS = ("file", "holdout", "split_seed")


class PointCloud:
    """A finite set of points, split once into training points and held-out reference points.

    Training reads `training_points` in epochs of fresh orders (`training_set`, as a finite
    training set of `dataset_size` samples is read); `sample(key, n)` draws n distinct
    reference points (a pseudo-random subset, `rand.permute`), so the sample metrics (and a
    history row's loss values) compare the generator with points it never trained on. The
    split is a permutation of the rows from NumPy's PCG64 generator seeded with `split_seed`:
    the first round(holdout x N) rows of it are the reference points. Both sets are NumPy
    constants of the compiled program. No modes: no mode metric applies.

    Attributes:
      training_points, reference_points: f32[N_train, D], f32[N_ref, D].
      std: f64[D] the reference points' per-coordinate (population) std, the MMD's bandwidth,
        the same for every run.
      provenance: {"file", "sha256", "points", "holdout", "split_seed"}: written into the
        records' components (results.plugin_components).
    """

    def __init__(self, points, holdout: float = DEFAULT_HOLDOUT, split_seed: int = 0, *,
                 file: str = "", sha256: str = "", where: str = "points"):
        x = np.asarray(points)
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2 or x.dtype.kind not in "fiu" or x.shape[1] < 1:
            raise field_error(where, f"an array of shape {x.shape} and dtype {x.dtype}",
                              "must hold a number array of shape [N, D] (one row per point)")
        if not np.all(np.isfinite(x)):
            raise field_error(where, f"{int(np.sum(~np.isfinite(x)))} non-finite values",
                              "every value must be a finite number")
        if not (isinstance(holdout, float) and 0.0 < holdout < 1.0):
            raise field_error("holdout", holdout, "must be a number in (0, 1), the fraction of "
                              "the points held out as the metrics' reference set")
        if not isinstance(split_seed, (int, np.integer)) or isinstance(split_seed, bool) \
                or not 0 <= split_seed < 2**63:
            raise field_error("split_seed", split_seed, "must be an integer in [0, 2**63)")
        n = x.shape[0]
        n_ref = int(round(holdout * n))
        if n_ref < 2 or n - n_ref < 1:
            raise field_error(where, f"{n} points", f"holdout = {holdout} leaves {n_ref} "
                              f"reference and {n - n_ref} training points; needs at least 2 "
                              "reference points and 1 training point")
        x = x.astype(np.float32)
        order = np.random.Generator(np.random.PCG64(int(split_seed))).permutation(n)
        self.reference_points = x[order[:n_ref]]
        self.training_points = x[order[n_ref:]]
        self.dim = int(x.shape[1])
        self.std = np.std(self.reference_points.astype(np.float64), axis=0)
        if not np.any(self.std > 0):
            raise field_error(where, f"{n} points", "the reference points are all the same "
                              "point; the metrics need a spread")
        self.provenance = {"file": file, "sha256": sha256, "points": n, "holdout": holdout,
                           "split_seed": int(split_seed)}

    @property
    def num_reference(self) -> int:
        return self.reference_points.shape[0]

    @property
    def num_training(self) -> int:
        return self.training_points.shape[0]

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """f32[n, D]: n distinct reference points, a subset picked by `key` (n at most the
        reference points' count; config.validate checks the sample counts)."""
        m = self.num_reference
        if n > m:
            raise ConfigError(f"samples: got {n}; a point cloud gives at most its {m} "
                              "held-out reference points per draw (each drawn once)")
        return jnp.asarray(self.reference_points)[rand.permute(key, jnp.arange(n), m)]

    def __repr__(self):
        return (f"PointCloud({self.provenance['file']!r}, {self.num_training} training + "
                f"{self.num_reference} reference points, {self.dim}-D)")


def _digest(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def read_points(path: str, where: str = "file") -> tuple[np.ndarray, str]:
    """The points of a `.npy` file (an array [N, D], or [N] for 1-D) or a `.csv` file (one
    point a row, comma-separated numbers, an optional header row), and the file's sha256."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in POINT_FILES:
        raise field_error(where, path, f"must be a {' or '.join(POINT_FILES)} file")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise field_error(where, path, "no such file (a path is relative to the sweep "
                                       "file's folder)") from None
    except OSError as e:
        raise field_error(where, path, f"cannot be read: {e.strerror}") from None
    try:
        if ext == ".npy":
            points = np.load(io.BytesIO(raw), allow_pickle=False)
        else:
            text = raw.decode("utf-8")
            try:
                points = np.loadtxt(io.StringIO(text), delimiter=",", ndmin=2)
            except ValueError:               # a header row
                points = np.loadtxt(io.StringIO(text), delimiter=",", ndmin=2, skiprows=1)
    except (ValueError, UnicodeDecodeError, EOFError) as e:
        raise field_error(where, path, f"cannot be read as {ext}: {e}") from None
    return points, hashlib.sha256(raw).hexdigest()


def declare(name: str, spec, base: str = ".", where: str = "targets"):
    """The target a [targets.NAME] table declares: (registered name NAME.DIGEST, object).

    A mixture: `means` (K points of D coordinates; a flat list of K numbers for 1-D), `stds`
    (one number for every mode, or one per mode: isotropic components), `weights` (one per
    mode, summing to 1; default equal). A point cloud: `file` (a .npy or .csv path relative to
    `base`), `holdout` (default DEFAULT_HOLDOUT), `split_seed` (default 0). Raises
    ConfigError naming [`where`.NAME].KEY.
    """
    at = f"[{where}.{name}]"
    if not isinstance(spec, dict):
        raise field_error(at, spec, "must be a table: a mixture (means, stds, weights) or a "
                                    "point cloud (file, holdout, split_seed)")
    kind = "points" if "file" in spec else "mixture"
    allowed = CLOUD_KEYS if kind == "points" else MIXTURE_KEYS
    for key in spec:
        if key not in allowed:
            other = MIXTURE_KEYS if kind == "points" else CLOUD_KEYS
            why = (f"; a point cloud (file) takes no {key}" if key in other else
                   suggest(key, allowed))
            raise ConfigError(f"{at}.{key}: unknown key{why}; a {kind} takes "
                              f"{', '.join(allowed)}")
    if kind == "points":
        file = spec["file"]
        if not isinstance(file, str) or not file.strip():
            raise field_error(f"{at}.file", file, "must be the path of a .npy or .csv file")
        holdout = spec.get("holdout", DEFAULT_HOLDOUT)
        holdout = float(holdout) if is_number(holdout) and not isinstance(holdout, bool) \
            else holdout
        path = os.path.join(base, os.path.expanduser(file))
        points, sha = read_points(path, f"{at}.file")
        try:
            obj = PointCloud(points, holdout, spec.get("split_seed", 0), file=file, sha256=sha,
                             where=f"{at}.file")
        except ConfigError as e:
            text = str(e)
            raise ConfigError(text if text.startswith(at) else f"{at}.{text}") from None
        payload = {"kind": kind, "sha256": sha, "holdout": holdout,
                   "split_seed": obj.provenance["split_seed"]}
        doc = (f"{obj.num_training} training + {obj.num_reference} reference points of {file} "
               f"({obj.dim}-D, sha256 {sha[:12]})")
    else:
        if "means" not in spec:
            raise ConfigError(f"{at}.means: missing; a mixture needs means (and stds), a point "
                              "cloud a file")
        if "stds" not in spec:
            raise ConfigError(f"{at}.stds: missing; give one std for every mode, or one per "
                              "mode")
        means = _number_rows(spec["means"], f"{at}.means")
        k = means.shape[0]
        stds = spec["stds"]
        if is_number(stds):
            stds = [stds] * k
        weights = spec.get("weights", [1.0 / k] * k)
        for key, value in (("stds", stds), ("weights", weights)):
            if not isinstance(value, list) or not all(is_number(v) for v in value):
                raise field_error(f"{at}.{key}", spec.get(key, value),
                                  "must be a number or a list of numbers, one per mode"
                                  if key == "stds" else "must be a list of numbers, one per "
                                  "mode")
        try:
            obj = GaussianMixture(spec["means"] if means.shape[1] > 1 else means[:, 0],
                                  stds, weights)
        except ConfigError as e:
            raise ConfigError(f"{at}.{e}") from None
        payload = {"kind": kind, "means": obj.means.tolist(), "stds": obj.stds.tolist(),
                   "weights": obj.weights.tolist()}
        doc = f"{obj.num_modes} isotropic Gaussians in {obj.dim}-D"
    return f"{name}.{_digest(payload)[:DIGEST_CHARS]}", obj, doc


def _number_rows(value, where: str) -> np.ndarray:
    """f64[K, D] from a list of K lists of D numbers (or a flat list of K numbers: D = 1)."""
    rule = "must be a non-empty list of points, each a list of numbers of one length"
    if not isinstance(value, list) or not value:
        raise field_error(where, value, rule)
    if all(is_number(v) for v in value):
        return np.asarray(value, np.float64)[:, None]
    if not all(isinstance(v, list) and v and all(is_number(x) for x in v) for v in value) or \
            len({len(v) for v in value}) != 1:
        raise field_error(where, value, rule)
    return np.asarray(value, np.float64)


def register_declared(table, base: str, path: str, where: str = "targets") -> dict[str, str]:
    """Register every target of a sweep file's [targets] table (declared in `path`, files
    relative to `base`); returns NAME -> NAME.DIGEST. Raises ConfigError on the first problem."""
    if not isinstance(table, dict):
        raise field_error("targets", table, "must be a table of [targets.NAME] tables")
    names = {}
    for name, spec in table.items():
        if not isinstance(name, str) or not registry.NAME.match(name):
            raise ConfigError(f"[{where}.{name}]: a target's name must start with a letter and "
                              "hold only letters, digits, '_', '.' and '-'")
        if name in TARGETS:
            raise ConfigError(f"[{where}.{name}]: a target of that name is registered already; "
                              "choose another name")
        full, obj, doc = declare(name, spec, base, where)
        registry.register("target", full, obj, doc=doc, declared_in=path)
        names[name] = full
    return names
