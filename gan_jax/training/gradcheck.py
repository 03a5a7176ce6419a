"""Finite-difference gradients: the seed notebook's method, kept to check autodiff.

`finite_difference_grad` perturbs each scalar parameter by +-h (central differences, the
seed's h = 1e-4 by default) and returns a pytree shaped like `params`. Run it in float64
(`with jax.enable_x64(True):`) for a tight comparison: in float32 its rounding error is about
1e-7 * |f| / h.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree


def finite_difference_grad(fn: Callable[[Any], jax.Array], params: Any, h: float = 1e-4) -> Any:
    """Central-difference gradient of a scalar function of a parameter pytree."""
    flat, unravel = ravel_pytree(params)
    f = jax.jit(lambda v: fn(unravel(v)))
    basis = jnp.eye(flat.size, dtype=flat.dtype) * h
    grads = jnp.stack([(f(flat + e) - f(flat - e)) / (2 * h) for e in basis])
    return unravel(grads)


def max_grad_error(fn: Callable[[Any], jax.Array], params: Any, h: float = 1e-4) -> float:
    """max |autodiff - finite differences| over all parameters, scaled by max(1, |grad|)."""
    auto, _ = ravel_pytree(jax.grad(fn)(params))
    fd, _ = ravel_pytree(finite_difference_grad(fn, params, h))
    auto, fd = np.asarray(auto), np.asarray(fd)
    return float(np.max(np.abs(auto - fd) / np.maximum(1.0, np.abs(auto))))
