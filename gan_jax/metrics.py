"""Sample-based metrics, computed in-graph so they appear in every history row and final record.

All functions take `x_ND` sample arrays (D = 1 for 1-D targets) and return scalars.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def w1_1d(x_N: jax.Array, y_N: jax.Array) -> jax.Array:
    """Empirical 1-D Wasserstein-1 distance of two equal-size samples: mean |x_(i) - y_(i)|."""
    if x_N.shape != y_N.shape:
        raise ValueError(f"w1_1d needs equal-size samples, got {x_N.shape} and {y_N.shape}")
    return jnp.mean(jnp.abs(jnp.sort(x_N) - jnp.sort(y_N)))


def left_fraction(x_N: jax.Array) -> jax.Array:
    """Fraction of samples below 0 (the seed's `left`; `right` is 1 - left)."""
    return jnp.mean(x_N < 0)


def mode_balance(left: jax.Array, right: jax.Array) -> jax.Array:
    """min(left, right) / max(left, right): 1 for an even split, 0 for total collapse."""
    return jnp.minimum(left, right) / jnp.maximum(jnp.maximum(left, right), 1e-12)


def sample_metrics(target, real_ND: jax.Array, fake_ND: jax.Array) -> dict[str, jax.Array]:
    """The metrics of a generated sample against an equal-size real one.

    For 1-D targets: w1, left, right, mode_balance, and real/fake mean and std (population
    std, as the seed's statistics.pstdev).
    """
    out = {}
    if target.dim == 1:
        real, fake = real_ND[:, 0], fake_ND[:, 0]
        left = left_fraction(fake)
        right = 1.0 - left
        out.update(
            w1=w1_1d(real, fake), left=left, right=right, mode_balance=mode_balance(left, right),
            real_mean=jnp.mean(real), real_std=jnp.std(real),
            fake_mean=jnp.mean(fake), fake_std=jnp.std(fake),
        )
    return out
