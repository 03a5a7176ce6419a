"""The toy targets of the GAN and flow literature, as their released code defines them.

Two sets, each constant read from the authors' released code (docs/targets.md cites file and
commit for every one):

- WGAN-GP's toy set (Gulrajani et al. 2017; igul222/improved_wgan_training, gan_toy.py):
  `wgangp_8gaussians`, `wgangp_25gaussians`, `wgangp_swissroll`.
- FFJORD's 2-D set (Grathwohl et al. 2019; rtqichen/ffjord, lib/toy_data.py), which most flow
  and diffusion papers reuse: `ffjord_swissroll`, `ffjord_circles`, `ffjord_rings`,
  `ffjord_moons`, `ffjord_8gaussians`, `ffjord_pinwheel`, `ffjord_2spirals`,
  `ffjord_checkerboard`.

The released generators are NumPy (and scikit-learn's make_swiss_roll, make_moons,
make_circles) drawing a batch on the host; here each is the same distribution re-derived in
jax.numpy from a typed key, so it is drawn inside the compiled program and runs under `vmap`
over runs. Where the released code fixes how many points of a batch fall in each part (the two
moons, circles and spirals each get half of a batch; the rings a quarter; the pinwheel's arms
a fifth) or spaces them on a grid (sklearn's moons and circles, FFJORD's rings use `linspace`
angles), the batch is a stratified draw of the distribution below; here each sample picks its
part and its angle at random, which is that distribution's i.i.d. draw. The two mixtures of each
set are :class:`gan_jax.components.data.GaussianMixture` objects, so they have modes and the mode metrics
apply; the other targets have none, and no mode metric is recorded for them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.core import registry
from gan_jax.components.data import GaussianMixture

# The eight directions of both releases' 8 Gaussians, in their order.
_R = 1.0 / np.sqrt(2.0)
EIGHT_CENTERS = np.array([(1, 0), (-1, 0), (0, 1), (0, -1), (_R, _R), (_R, -_R), (-_R, _R),
                          (-_R, -_R)], np.float64)


def eight_gaussians(scale: float, std: float, divisor: float) -> GaussianMixture:
    """Equal-weight modes at scale * EIGHT_CENTERS / divisor, std std / divisor (both releases
    divide the samples by 1.414, "stdev", after adding the noise)."""
    return GaussianMixture(scale * EIGHT_CENTERS / divisor, np.full(8, std / divisor),
                           np.full(8, 1 / 8))


def wgangp_25gaussians() -> GaussianMixture:
    """WGAN-GP's 25 Gaussians: modes at (2x, 2y) / 2.828 for x, y in -2..2 (x major), std
    0.05 / 2.828. The release draws a fixed set of 100000 points (4000 per mode) once and reads
    it in epochs; `dataset_size = 100000` gives the same finite-set regime."""
    xy = np.array([(2.0 * x, 2.0 * y) for x in range(-2, 3) for y in range(-2, 3)])
    return GaussianMixture(xy / 2.828, np.full(25, 0.05 / 2.828), np.full(25, 1 / 25))


class Toy:
    """A 2-D target given by its sampler: `dim` and `sample(key, n)`, no modes (data.has_modes
    is false), no analytic std (the MMD's bandwidth is the real sample's own)."""

    dim = 2

    def __init__(self, name: str, draw, doc: str):
        self.name, self._draw, self.__doc__ = name, draw, doc

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """f32[n, 2] samples from a typed key, in jax.numpy."""
        return jnp.asarray(self._draw(key, n), jnp.float32)

    def __repr__(self):
        return f"Toy({self.name!r})"


def swiss_roll(key, n, noise: float, divisor: float):
    """sklearn's make_swiss_roll(n, noise)[:, [0, 2]] / divisor: t = 1.5 pi (1 + 2 U),
    (t cos t, t sin t) plus N(0, noise^2) per coordinate (the dropped middle coordinate
    y = 21 U takes no part)."""
    k_t, k_e = jax.random.split(key)
    t = 1.5 * jnp.pi * (1 + 2 * jax.random.uniform(k_t, (n,)))
    x = jnp.stack([t * jnp.cos(t), t * jnp.sin(t)], 1)
    return (x + noise * jax.random.normal(k_e, (n, 2))) / divisor


def circles(key, n):
    """FFJORD's circles: 3 * make_circles(n, factor=.5, noise=.08): a circle of radius 1 or 0.5
    (half each), a uniform angle, N(0, 0.08^2) noise, all times 3."""
    k_c, k_a, k_e = jax.random.split(key, 3)
    r = jnp.where(jax.random.bernoulli(k_c, 0.5, (n,)), 0.5, 1.0)
    a = 2 * jnp.pi * jax.random.uniform(k_a, (n,))
    x = r[:, None] * jnp.stack([jnp.cos(a), jnp.sin(a)], 1)
    return 3.0 * (x + 0.08 * jax.random.normal(k_e, (n, 2)))


RING_RADII = (1.0, 0.75, 0.5, 0.25)   # FFJORD's rings, before the factor 3


def rings(key, n):
    """FFJORD's rings: one of four circles of radius 3 * (1, 0.75, 0.5, 0.25) (a quarter
    each), a uniform angle, then N(0, 0.08^2) noise added after the factor 3."""
    k_c, k_a, k_e = jax.random.split(key, 3)
    r = 3.0 * jnp.asarray(RING_RADII)[jax.random.randint(k_c, (n,), 0, 4)]
    a = 2 * jnp.pi * jax.random.uniform(k_a, (n,))
    x = r[:, None] * jnp.stack([jnp.cos(a), jnp.sin(a)], 1)
    return x + 0.08 * jax.random.normal(k_e, (n, 2))


def moons(key, n):
    """FFJORD's moons: 2 * make_moons(n, noise=0.1) + (-1, -0.2): the upper half circle
    (cos s, sin s) or the lower (1 - cos s, 0.5 - sin s) (half each), s uniform on [0, pi],
    N(0, 0.1^2) noise, then scaled and shifted."""
    k_c, k_a, k_e = jax.random.split(key, 3)
    inner = jax.random.bernoulli(k_c, 0.5, (n,))
    s = jnp.pi * jax.random.uniform(k_a, (n,))
    x = jnp.where(inner[:, None], jnp.stack([1 - jnp.cos(s), 1 - jnp.sin(s) - 0.5], 1),
                  jnp.stack([jnp.cos(s), jnp.sin(s)], 1))
    x = x + 0.1 * jax.random.normal(k_e, (n, 2))
    return 2 * x + jnp.asarray([-1.0, -0.2])


def pinwheel(key, n):
    """FFJORD's pinwheel: 5 arms (a fifth each); f = (1 + 0.3 z1, 0.1 z2), z standard normal;
    the arm c's angle 2 pi c / 5 + 0.25 exp(f_1); the point 2 f R with
    R = [[cos, -sin], [sin, cos]] (the release's einsum 'ti,tij->tj')."""
    k_c, k_z = jax.random.split(key)
    c = jax.random.randint(k_c, (n,), 0, 5)
    f = jax.random.normal(k_z, (n, 2)) * jnp.asarray([0.3, 0.1]) + jnp.asarray([1.0, 0.0])
    a = 2 * jnp.pi * c / 5 + 0.25 * jnp.exp(f[:, 0])
    cos, sin = jnp.cos(a), jnp.sin(a)
    return 2 * jnp.stack([f[:, 0] * cos + f[:, 1] * sin, -f[:, 0] * sin + f[:, 1] * cos], 1)


def two_spirals(key, n):
    """FFJORD's 2 spirals: u = sqrt(U) * 540 * 2 pi / 360; d = (-cos(u) u + 0.5 U',
    sin(u) u + 0.5 U''); the point +d / 3 or -d / 3 (half each), plus N(0, 0.1^2) noise."""
    k_u, k_d, k_s, k_e = jax.random.split(key, 4)
    u = jnp.sqrt(jax.random.uniform(k_u, (n,))) * 540 * (2 * jnp.pi) / 360
    jitter = 0.5 * jax.random.uniform(k_d, (n, 2))
    d = jnp.stack([-jnp.cos(u) * u, jnp.sin(u) * u], 1) + jitter
    sign = jnp.where(jax.random.bernoulli(k_s, 0.5, (n,)), -1.0, 1.0)
    return sign[:, None] * d / 3 + 0.1 * jax.random.normal(k_e, (n, 2))


def checkerboard(key, n):
    """FFJORD's checkerboard: x1 = 4 U - 2, x2 = U' - 2 B + (floor(x1) mod 2), B a fair
    bit; the point 2 (x1, x2): uniform on the 8 squares of side 2 of [-4, 4]^2 whose lower-left
    corners have an even sum of coordinates / 2."""
    k_1, k_2, k_b = jax.random.split(key, 3)
    x1 = 4 * jax.random.uniform(k_1, (n,)) - 2
    b = jax.random.bernoulli(k_b, 0.5, (n,)).astype(jnp.float32)
    x2 = jax.random.uniform(k_2, (n,)) - 2 * b + jnp.mod(jnp.floor(x1), 2)
    return 2 * jnp.stack([x1, x2], 1)


WGANGP = "WGAN-GP's toy set (gan_toy.py)"
FFJORD = "FFJORD's 2-D set (lib/toy_data.py)"

TOYS = {
    "wgangp_8gaussians": (eight_gaussians(2.0, 0.02, 1.414),
                          f"8 modes on a circle of radius 2/1.414, std .02/1.414: {WGANGP}"),
    "wgangp_25gaussians": (wgangp_25gaussians(),
                           f"25 modes on a 5 x 5 grid, spacing 2/2.828, std .05/2.828: {WGANGP}"),
    "wgangp_swissroll": (Toy("wgangp_swissroll", lambda k, n: swiss_roll(k, n, 0.25, 7.5),
                             "swiss roll, noise .25, divided by 7.5"),
                         f"swiss roll, noise .25, divided by 7.5: {WGANGP}"),
    "ffjord_swissroll": (Toy("ffjord_swissroll", lambda k, n: swiss_roll(k, n, 1.0, 5.0),
                             "swiss roll, noise 1, divided by 5"),
                         f"swiss roll, noise 1, divided by 5: {FFJORD}"),
    "ffjord_circles": (Toy("ffjord_circles", circles, "two circles"),
                       f"two circles of radius 3 and 1.5, noise .24: {FFJORD}"),
    "ffjord_rings": (Toy("ffjord_rings", rings, "four rings"),
                     f"four rings of radius 3, 2.25, 1.5, .75, noise .08: {FFJORD}"),
    "ffjord_moons": (Toy("ffjord_moons", moons, "two moons"),
                     f"two moons, noise .1, scaled by 2: {FFJORD}"),
    "ffjord_8gaussians": (eight_gaussians(4.0, 0.5, 1.414),
                          f"8 modes on a circle of radius 4/1.414, std .5/1.414: {FFJORD}"),
    "ffjord_pinwheel": (Toy("ffjord_pinwheel", pinwheel, "pinwheel of 5 arms"),
                        f"pinwheel of 5 arms: {FFJORD}"),
    "ffjord_2spirals": (Toy("ffjord_2spirals", two_spirals, "two spirals"),
                        f"two interleaved spirals, noise .1: {FFJORD}"),
    "ffjord_checkerboard": (Toy("ffjord_checkerboard", checkerboard, "checkerboard"),
                            f"uniform on 8 squares of a 4 x 4 checkerboard on [-4, 4]^2: {FFJORD}"),
}

for _name, (_target, _doc) in TOYS.items():
    registry.register("target", _name, _target, doc=_doc)
del _name, _target, _doc
