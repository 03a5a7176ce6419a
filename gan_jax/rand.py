"""Random draws from raw 32-bit words, so one `jax.random.bits` call can feed a whole step.

`uniform_from_bits` and `normal_from_bits` apply exactly the transforms of `jax.random.uniform`
and `jax.random.normal` (float32), so `normal_from_bits(jax.random.bits(key, s))` equals
`jax.random.normal(key, s)` bit for bit. The uniform uses only a word's top 23 bits; its low
9 bits are independent of them and can pick a mixture component (`low_bits`) at no extra cost.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

MANTISSA_BITS = 23
SPARE_BITS = 32 - MANTISSA_BITS  # low bits of a word that a float32 uniform leaves unused

_NORMAL_LO = np.nextafter(np.float32(-1.0), np.float32(0.0))


def words(key: jax.Array, shape) -> jax.Array:
    """u32 random words."""
    return jax.random.bits(key, shape, jnp.uint32)


def uniform_from_bits(bits: jax.Array, minval=0.0, maxval=1.0) -> jax.Array:
    """f32 in [minval, maxval) from u32 words, as jax.random.uniform does it."""
    minval, maxval = np.float32(minval), np.float32(maxval)
    float_bits = lax.shift_right_logical(bits, np.uint32(SPARE_BITS)) | np.uint32(0x3F800000)
    floats = lax.bitcast_convert_type(float_bits, jnp.float32) - np.float32(1.0)
    return lax.max(minval, floats * (maxval - minval) + minval)


def normal_from_bits(bits: jax.Array) -> jax.Array:
    """f32 standard normals from u32 words, as jax.random.normal does it."""
    u = uniform_from_bits(bits, _NORMAL_LO, 1.0)
    return np.float32(np.sqrt(2)) * lax.erf_inv(u)


def low_bits(bits: jax.Array, n: int) -> jax.Array:
    """i32 in [0, 2**n) from a word's low n <= 9 bits (independent of its uniform)."""
    if not 0 <= n <= SPARE_BITS:
        raise ValueError(f"at most {SPARE_BITS} spare bits, asked for {n}")
    return (bits & np.uint32((1 << n) - 1)).astype(jnp.int32)
