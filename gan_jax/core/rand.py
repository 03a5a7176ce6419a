"""Random draws from raw 32-bit words, so one `jax.random.bits` call can feed a whole step.

`uniform_from_bits` and `normal_from_bits` apply exactly the transforms of `jax.random.uniform`
and `jax.random.normal` (float32), so `normal_from_bits(jax.random.bits(key, s))` equals
`jax.random.normal(key, s)` bit for bit. The uniform uses only a word's top 23 bits; its low
9 bits are independent of them and can pick a mixture component (`low_bits`) at no extra cost.
`permute` is a keyed pseudo-random permutation of [0, n) evaluated index by index (a finite
training set's epochs, gan_jax.components.data).
"""

from __future__ import annotations

import contextlib
import contextvars

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

MANTISSA_BITS = 23
SPARE_BITS = 32 - MANTISSA_BITS  # low bits of a word that a float32 uniform leaves unused

_NORMAL_LO = np.nextafter(np.float32(-1.0), np.float32(0.0))


_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _rotl(x, r: int):
    return lax.bitwise_or(lax.shift_left(x, np.uint32(r)),
                          lax.shift_right_logical(x, np.uint32(32 - r)))


def threefry2x32(k1, k2, x0, x1):
    """The Threefry-2x32 block cipher, 20 rounds (Salmon et al. 2011), as JAX defines it.

    Unrolled with constant rotations so that XLA fuses the whole hash into one vectorised
    loop; JAX's own CPU lowering runs the rounds as a rolled loop, through memory. Written in
    lax operations (the same program as jnp's operators, which trace several times slower:
    a hash is 120 of them).
    """
    add, xor = lax.add, lax.bitwise_xor
    k3 = xor(xor(k1, k2), np.uint32(0x1BD11BDA))
    ks = (k1, k2, k3)
    x0, x1 = add(x0, k1), add(x1, k2)
    for block in range(5):
        for r in _ROTATIONS[block % 2]:
            x0 = add(x0, x1)
            x1 = xor(_rotl(x1, r), x0)
        x0 = add(x0, ks[(block + 1) % 3])
        x1 = add(add(x1, ks[(block + 2) % 3]), np.uint32(block + 1))
    return x0, x1


def words(key: jax.Array, shape) -> jax.Array:
    """u32 random words: exactly `jax.random.bits(key, shape, uint32)` for threefry keys.

    JAX (with its default, partitionable threefry) hashes the 64-bit flat index of each word,
    as (hi, lo) 32-bit halves, and XORs the two output halves; so do we, in one fusion.
    Other key implementations fall back to jax.random.bits.
    """
    shape = tuple(shape)
    if jax.random.key_impl(key) != "threefry2x32" or not jax.config.jax_threefry_partitionable:
        return jax.random.bits(key, shape, jnp.uint32)
    size = int(np.prod(shape))
    if size >= 2**32:
        raise ValueError(f"at most 2**32 words per call, asked for {shape}")
    k = jax.random.key_data(key)
    lo = lax.iota(jnp.uint32, size).reshape(shape)
    x0, x1 = threefry2x32(k[0], k[1], jnp.zeros_like(lo), lo)
    return x0 ^ x1


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


def fold_in(key: jax.Array, data) -> jax.Array:
    """`jax.random.fold_in(key, data)` for threefry keys, by the unrolled hash.

    JAX folds a u32 `data` in by hashing the counter pair (0, data) under the key; the two
    output words are the new key.
    """
    if jax.random.key_impl(key) != "threefry2x32":
        return jax.random.fold_in(key, data)
    k = jax.random.key_data(key)
    y0, y1 = threefry2x32(k[0], k[1], jnp.uint32(0), jnp.asarray(data, jnp.uint32))
    return jax.random.wrap_key_data(jnp.stack([y0, y1]), impl="threefry2x32")


def normal(key: jax.Array, shape) -> jax.Array:
    """f32 standard normals: exactly `jax.random.normal(key, shape)`, from `words`."""
    return normal_from_bits(words(key, shape))


# Rounds of the Feistel network of `permute`. Luby and Rackoff's construction needs 4 rounds
# of a pseudo-random function to be a pseudo-random permutation; 8 leave a margin at no real
# cost (each round is one Threefry hash per index).
FEISTEL_ROUNDS = 8


def permute(key: jax.Array, i: jax.Array, n: int) -> jax.Array:
    """sigma(i) for the pseudo-random permutation sigma of [0, n) that `key` picks (i32, the
    shape of i; i must lie in [0, n)). Evaluated only at the indices asked for: no array of
    n values is made or sorted.

    sigma is a balanced Feistel network on 2h bits (2^2h the least even power of two >= n, so
    2^2h < 4n), whose round functions are Threefry hashes of the right half keyed by two words
    drawn from `key` and the round number: a bijection of [0, 2^2h) (Luby & Rackoff 1988).
    Cycle walking (Black & Rogaway 2002) makes it one of [0, n): a value that lands at n or
    above is sent through the network again until it lands below n; the walk ends because the
    cycle of i < n returns to i. Each pass lands below n with probability n / 2^2h > 1/4, so a
    few passes serve a whole batch.
    """
    k = words(key, (2,))
    return permute_words(k[0], k[1], i, n)


def permute_words(k0: jax.Array, k1: jax.Array, i: jax.Array, n: int) -> jax.Array:
    """:func:`permute` keyed by two u32 words, which may differ from index to index (k0, k1
    broadcast against i): one network serves indices of several permutations."""
    i = jnp.asarray(i)
    if n < 1:
        raise ValueError(f"permute: n must be >= 1, got {n}")
    if n == 1:
        return jnp.zeros(i.shape, jnp.int32)
    bits = max(2, (n - 1).bit_length())
    half = (bits + 1) // 2
    mask = np.uint32((1 << half) - 1)
    k0, k1 = (jnp.broadcast_to(jnp.asarray(k, jnp.uint32), i.shape) for k in (k0, k1))

    def network(x):
        left, right = x >> np.uint32(half), x & mask
        for r in range(FEISTEL_ROUNDS):
            f, _ = threefry2x32(k0, k1, jnp.full_like(right, np.uint32(r)), right)
            left, right = right, left ^ (f & mask)
        return (left << np.uint32(half)) | right

    # One network in the program: the first pass is the loop's first iteration.
    bound = np.uint32(n)

    def body(carry):
        x, first = carry
        return jnp.where(first | (x >= bound), network(x), x), jnp.zeros_like(first)

    x, _ = lax.while_loop(lambda c: jnp.any(c[1] | (c[0] >= bound)), body,
                          (i.astype(jnp.uint32), jnp.ones(i.shape, bool)))
    return x.astype(jnp.int32)


# Longest axis sorted by the network: its log2(n)(log2(n)+1)/2 stages (66 at 2048, 78 at 4096)
# each add to compile time, which only a large call repays. By default the network sorts up to
# MAX_NETWORK values (the history rows' 2000); `network_limit` sets another limit for one
# trace, as the engine does by a call's number of runs: 0 for small calls, which then compile
# faster, and LARGE_NETWORK for calls of many runs, whose final evaluation (4000 values by
# default) then sorts several times faster at the price of more compilation (figures:
# BENCHMARKS.md).
MAX_NETWORK = 2048
LARGE_NETWORK = 4096
_network_limit = contextvars.ContextVar("network_limit", default=MAX_NETWORK)


@contextlib.contextmanager
def network_limit(n: int):
    """Within this context (at trace time, in this thread), `sort` uses the network for axes
    of up to n values."""
    token = _network_limit.set(n)
    try:
        yield
    finally:
        _network_limit.reset(token)


def sort(x: jax.Array) -> jax.Array:
    """Ascending sort along the last axis: the same values as `jnp.sort` for non-NaN input.

    Up to MAX_NETWORK values (or those of `network_limit`), a bitonic sorting network
    (Batcher 1968) of min/max stages over the axis padded to a power of two with +inf: every
    stage is a vectorised pass over the array, which on CPU runs several times faster than
    XLA's comparison sort (BENCHMARKS.md). Longer axes use jnp.sort.
    """
    n = x.shape[-1]
    m = max(1, (n - 1).bit_length())
    size = 1 << m
    if size > _network_limit.get():
        return jnp.sort(x, axis=-1)
    lead = x.shape[:-1]
    if size != n:
        x = jnp.concatenate([x, jnp.full(lead + (size - n,), jnp.inf, x.dtype)], axis=-1)

    def exchange(x, group, reverse):
        v = x.reshape(lead + (size // (2 * group), 2, group))
        lo, hi = v[..., 0, :], v[..., 1, :]
        if reverse:   # the first stage of a merge compares each element with its mirror
            hi = hi[..., ::-1]
        small, large = lax.min(lo, hi), lax.max(lo, hi)
        if reverse:
            large = large[..., ::-1]
        return jnp.stack([small, large], axis=-2).reshape(lead + (size,))

    for k in range(1, m + 1):
        x = exchange(x, 1 << (k - 1), reverse=True)
        for j in range(k - 2, -1, -1):
            x = exchange(x, 1 << j, reverse=False)
    return x[..., :n]
