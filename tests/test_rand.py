"""The project's random words, normals and sort equal JAX's own, bit for bit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.core import rand


# The default run checks an odd 1-D length and a 3-D shape; -m slow also one word and a larger
# 2-D shape (each shape compiles programs of its own).
@pytest.mark.parametrize("shape", [pytest.param((1,), marks=pytest.mark.slow), (7,),
                                   pytest.param((128, 5), marks=pytest.mark.slow), (3, 4, 5)])
@pytest.mark.parametrize("seed", [0, 2**32 - 1])
def test_words_and_normals_equal_jax_random(shape, seed):
    key = jax.random.fold_in(jax.random.key(seed), 3)
    words = jax.jit(rand.words, static_argnums=1)(key, shape)    # as training runs it
    np.testing.assert_array_equal(words, jax.random.bits(key, shape, jnp.uint32))
    np.testing.assert_array_equal(jax.jit(rand.normal, static_argnums=1)(key, shape),
                                  jax.random.normal(key, shape))
    np.testing.assert_array_equal(rand.uniform_from_bits(words), jax.random.uniform(key, shape))


def test_words_under_vmap_equal_jax_random():
    keys = jax.random.split(jax.random.key(1), 8)
    ours = jax.jit(jax.vmap(lambda k: rand.words(k, (16, 3))))(keys)
    theirs = jax.vmap(lambda k: jax.random.bits(k, (16, 3), jnp.uint32))(keys)
    np.testing.assert_array_equal(ours, theirs)


def test_low_bits_are_uniform_and_independent_of_the_uniform():
    bits = rand.words(jax.random.key(0), (200_000,))
    low = np.asarray(rand.low_bits(bits, 1))
    u = np.asarray(rand.uniform_from_bits(bits))
    # 200k fair coins: the mean's standard error is 0.0011; 5 SE bounds
    assert abs(low.mean() - 0.5) < 0.0056
    # independence: the uniform's mean is 0.5 given either bit (SE 0.00091 each)
    assert abs(u[low == 0].mean() - 0.5) < 0.0046 and abs(u[low == 1].mean() - 0.5) < 0.0046


# Default run: a padded length (3), an unpadded power of two (64), the network's largest axis
# (2000, padded to 2048) and the jnp.sort fallback (3000); -m slow also 1, 2 and 17.
@pytest.mark.parametrize("n", [pytest.param(1, marks=pytest.mark.slow),
                               pytest.param(2, marks=pytest.mark.slow), 3,
                               pytest.param(17, marks=pytest.mark.slow), 64, 2000, 3000])
def test_sort_equals_jnp_sort(n):
    x = jax.random.normal(jax.random.key(n), (3, n))
    x = x.at[0, : n // 2].set(0.5)            # ties
    np.testing.assert_array_equal(jax.jit(rand.sort)(x), jnp.sort(x, axis=-1))
    np.testing.assert_array_equal(jax.jit(jax.vmap(rand.sort))(x), jnp.sort(x, axis=-1))


def test_network_limit_sorts_longer_axes_with_the_same_values():
    x = jax.random.normal(jax.random.key(4), (2, 4000))
    assert 4000 > rand.MAX_NETWORK       # by default this axis goes to jnp.sort
    with rand.network_limit(rand.LARGE_NETWORK):
        np.testing.assert_array_equal(jax.jit(rand.sort)(x), jnp.sort(x, axis=-1))


@pytest.mark.parametrize("data", [0, 1, 12345, 2**32 - 1])
def test_fold_in_equals_jax(data):
    key = jax.random.key(7)
    np.testing.assert_array_equal(jax.random.key_data(rand.fold_in(key, data)),
                                  jax.random.key_data(jax.random.fold_in(key, data)))
    keys = jax.random.split(key, 4)
    steps = jnp.arange(4, dtype=jnp.int32) + data % 1000
    np.testing.assert_array_equal(
        jax.random.key_data(jax.jit(jax.vmap(rand.fold_in))(keys, steps)),
        jax.random.key_data(jax.vmap(jax.random.fold_in)(keys, steps)))
