"""The planner's memory estimate: the liveness pass over a jaxpr, on programs whose peak is
known by hand, and its margin over what XLA allocates for a real run."""

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.sweep import plan

N = 1000                  # f32[N]: 4000 bytes
B = 4 * N


def peak(fn, *args) -> int:
    return plan._peak_live_bytes(jax.make_jaxpr(fn)(*args).jaxpr)


def test_a_chain_holds_its_input_and_one_temporary():
    # t = 2x (x still needed? no: its last use) -> out = t + 1: at most two arrays at once.
    assert peak(lambda x: x * 2.0 + 1.0, jnp.zeros(N)) == 2 * B


def test_temporaries_alive_together_add_up():
    # a and b are both alive when the sum is taken, with x still needed for b.
    def f(x):
        a = x * 2.0
        b = x * 3.0
        return a + b
    assert peak(f, jnp.zeros(N)) == 3 * B


def test_a_loop_body_counts_on_top_of_what_is_alive_around_it():
    def f(x, y):
        def body(_, c):
            return c * 2.0 + 1.0          # two arrays alive inside the body
        return jax.lax.fori_loop(0, 3, body, x) + y
    # Around the loop x and y are alive (2B); the body's own peak (2B) comes on top, and the
    # loop's output is made while they are alive.
    assert peak(f, jnp.zeros(N), jnp.zeros(N)) >= 4 * B


def test_bytes_of_typed_keys_are_counted():
    assert plan._nbytes(jax.eval_shape(jax.random.key, 0)) == 8
    assert plan._nbytes(jax.ShapeDtypeStruct((3, 5), np.float32)) == 60
