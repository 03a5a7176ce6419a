"""Training runs that several test modules assert on, computed once per test process.

A whole training program takes seconds to compile (most of a test's time on CPU), so tests
that can check their property on the same run share it rather than compiling a program of
their own: each function here is cached (functools.cache), so the first test to ask pays
for the compilation and the run, and later ones, in any module, reuse the result. Runs are
deterministic (a run's numbers depend on its configuration and seed alone), so which test
asks first changes nothing.
"""

from __future__ import annotations

import functools

from gan_jax.engine import programs as engine
from gan_jax.analysis import seed_repro

# Seeds of the seed notebook's two configurations (tests/test_seed_repro.py's spread).
SEED_SEEDS = tuple(range(16))


@functools.cache
def seed_run(name: str):
    """seed_repro.SEED_CONFIGS[name] over SEED_SEEDS, one call (NumPy arrays, run axis first)."""
    cfg = seed_repro.SEED_CONFIGS[name]
    return engine.run_batch([cfg] * len(SEED_SEEDS), list(SEED_SEEDS))
