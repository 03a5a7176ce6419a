"""Test-session setup.

JAX is started here, before any test runs, so the in-process device count is the
environment's (XLA_FLAGS) for every test: the command line gives XLA one device per core only
when it runs before JAX starts, and a test's outcome must not depend on test order. Tests
whose result depends on the device count set it themselves: `devices=` in the planner, the
`--devices` flag, or a subprocess environment (tests/sweep_testing.py).
"""

import jax

jax.devices()
