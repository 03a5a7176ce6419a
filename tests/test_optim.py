"""The ascent convention and traced optimiser hyperparameters."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_jax.components import optim


def objective(p):
    """A smooth concave-ish objective to *maximise*."""
    return -jnp.sum((p - jnp.asarray([1.0, -2.0, 0.5])) ** 2) + jnp.sum(jnp.sin(p))


def _run(tx, grad_fn, steps=25):
    p = jnp.asarray([0.3, 0.1, -0.2])
    state = tx.init(p)
    for _ in range(steps):
        updates, state = tx.update(grad_fn(p), state, p)
        p = optax.apply_updates(p, updates)
    return p


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop"])
def test_ascent_equals_descent_on_negation(name):
    tx = optim.make_optimizer(name, 0.05, momentum=0.5)
    ascended = _run(optim.maximize(tx), jax.grad(objective))
    descended = _run(tx, jax.grad(lambda p: -objective(p)))
    np.testing.assert_array_equal(np.asarray(ascended), np.asarray(descended))
    # and it really ascends
    assert objective(ascended) > objective(jnp.asarray([0.3, 0.1, -0.2]))


def test_seed_update_rule():
    """maximize(sgd(lr)) is the seed's params <- params + lr * grad."""
    p = jnp.asarray([0.25, 0.0])
    g = jnp.asarray([0.3, -0.7])
    tx = optim.maximize(optim.make_optimizer("sgd", 0.04))
    updates, _ = tx.update(g, tx.init(p), p)
    np.testing.assert_allclose(np.asarray(optax.apply_updates(p, updates)), np.asarray(p + 0.04 * g),
                               rtol=1e-7)


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop"])
def test_traced_hyperparameters_vmap(name):
    """Learning rates and betas as traced values: vmapped equals one at a time."""
    lrs = jnp.asarray([0.01, 0.05, 0.2])
    b1s = jnp.asarray([0.0, 0.5, 0.9])

    def one(lr, b1):
        tx = optim.make_optimizer(name, lr, beta1=b1, momentum=b1, rms_decay=0.9)
        return _run(tx, jax.grad(lambda p: -objective(p)), steps=5)

    batched = jax.jit(jax.vmap(one))(lrs, b1s)
    for i in range(3):
        np.testing.assert_allclose(np.asarray(batched[i]), np.asarray(one(lrs[i], b1s[i])),
                                   rtol=1e-6, atol=1e-7)
