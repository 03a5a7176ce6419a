"""Continuing a run: a run of T steps, continued from its final state by the 2T run's program,
equals the 2T run bit for bit (the building block of extending a finished sweep's steps).

Iteration i draws from fold_in(loop key, i) and history row i from fold_in(history key, i),
so the draws a continued run needs are recomputed from (key, step), not stored; the state
(both players, optimisers, the method's and stabilisers' state, step) is all it carries.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from gan_jax.engine import programs as engine
from gan_jax.training import train
from gan_jax.config import eval_part, make_config, stack_hparams, static_part, traced_part

from sweep_testing import TINY_BASE


def _leaves(tree):
    return [np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype,
                                                                        jax.dtypes.prng_key)
                       else x) for x in jax.tree.leaves(tree)]


@pytest.mark.slow     # three programs compiled
@pytest.mark.parametrize("base", [
    dict(TINY_BASE, optimizer="adam", loss="hinge", ema_beta=0.9),
])
def test_a_run_continued_from_its_final_state_equals_the_longer_run(base):
    steps, log_every = 20, 10
    short = make_config(dict(base, steps=steps, log_every=log_every))
    long = short.replace(steps=2 * steps)
    seeds = [0, 1, 2, 3]
    hp = stack_hparams([traced_part(short)] * len(seeds))
    keys = jax.vmap(lambda k: train.run_keys(k)[0])(engine.seed_keys(seeds))
    first, longer = train.make_training(static_part(short)), train.make_training(static_part(long))
    rows, _ = train._evaluators(eval_part(static_part(long)), 0)
    start = steps // log_every + 1            # the first row the short run does not have

    def whole(hp, key):
        state, history, snapshots = longer(hp, key)
        return state, history, rows(snapshots, key)

    def continued(hp, key, state):
        state, history, snapshots = longer.loop(hp, key, longer.resume(hp, key, state, start),
                                                start)
        return state, history, rows(snapshots, key, start)

    state_t, history_t, _ = jax.jit(jax.vmap(first))(hp, keys)
    state_2t, history_2t, metrics_2t = jax.jit(jax.vmap(whole))(hp, keys)
    state_c, history_c, metrics_c = jax.jit(jax.vmap(continued))(hp, keys, state_t)

    for a, b in zip(_leaves(state_2t), _leaves(state_c)):
        np.testing.assert_array_equal(a, b)
    assert int(state_c.step[0]) == 2 * steps + 1
    for name, value in history_2t.items():
        np.testing.assert_array_equal(np.asarray(value)[:, :start], history_t[name], name)
        np.testing.assert_array_equal(np.asarray(value)[:, start:], history_c[name], name)
    for name, value in metrics_2t.items():
        np.testing.assert_array_equal(np.asarray(value)[:, start:], metrics_c[name], name)
