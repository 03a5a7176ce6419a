"""Successive halving (gan_jax.sweep.halving): rungs of growing steps over a sweep's points,
the best 1/eta continued from the kept states of the rung before, every rung recorded."""

from __future__ import annotations

import os

import numpy as np
import pytest

from gan_jax.records import results
from gan_jax.core.errors import ConfigError
from gan_jax.sweep.halving import halve, rung_steps
from gan_jax.sweep.spec import parse_sweep

from sweep_testing import ONE_DEVICE, TINY_BASE


def _sweep(steps=20, log_every=10, **base):
    return parse_sweep({"name": "sh", "seeds": [0, 1],
                        "base": dict(TINY_BASE, steps=steps, log_every=log_every, **base),
                        "grid": {"lr_g": [0.001, 0.01, 0.03, 0.1]}})


def test_rung_budgets_and_their_checks():
    assert rung_steps(_sweep(steps=90), 3, 3) == [10, 30, 90]
    assert rung_steps(_sweep(steps=20), 2, 2) == [10, 20]
    with pytest.raises(ConfigError, match="--rungs: got 4; .* log_every = 10"):
        rung_steps(_sweep(steps=40), 2, 4)           # 40/8 = 5 steps: not a row of 40
    with pytest.raises(ConfigError, match="--eta: got 1"):
        rung_steps(_sweep(), 1, 2)
    with pytest.raises(ConfigError, match="noise_anneal"):
        rung_steps(_sweep(noise_std=0.1, noise_anneal=True), 2, 2)


def test_a_table_reads_each_run_at_its_last_rung():
    def rec(seed, steps, rung=None, lr=0.01):
        r = {"sweep": "sh", "seed": seed, "config": {"steps": steps, "lr_g": lr}}
        return r if rung is None else {**r, "rung": rung}

    kept = results.last_rungs([rec(0, 10, 0), rec(0, 20, 1), rec(1, 10, 0),
                               rec(0, 10, 0, lr=0.1), rec(0, 10), rec(0, 20)])
    assert kept == [rec(0, 20, 1), rec(1, 10, 0), rec(0, 10, 0, lr=0.1), rec(0, 10),
                    rec(0, 20)]


@pytest.mark.slow     # five programs compiled
def test_successive_halving_keeps_the_best_half_and_continues_them(tmp_path):
    sweep = _sweep()
    out = str(tmp_path)
    path = os.path.join(out, results.RESULTS_FILE)
    text = halve(sweep, [10, 20], 2, "w1", False, out, path, set(), devices=ONE_DEVICE)
    recs, problems = results.read_records(path)
    assert not problems
    first = [r for r in recs if r["rung"] == 0]
    second = [r for r in recs if r["rung"] == 1]
    assert len(first) == 8 and {r["config"]["steps"] for r in first} == {10}
    assert len(second) == 4 and {r["config"]["steps"] for r in second} == {20}
    # The two points kept are the two best by mean w1 over the seeds at rung 0.
    mean = {lr: np.mean([r["final"]["w1"] for r in first if r["config"]["lr_g"] == lr])
            for lr in (0.001, 0.01, 0.03, 0.1)}
    assert {r["config"]["lr_g"] for r in second} == set(sorted(mean, key=mean.get)[:2])
    # Continued, not trained again: rung 1 trained only its last 10 steps per run.
    assert "| 1 | 20 | 2 | 4 | 40 | 4 |" in text, text
    assert f"Run-steps trained by this process: {8 * 11 + 4 * 10}" in text
    # Every rung kept; a table reads the survivors at rung 1, the others at rung 0.
    last = results.last_rungs(recs)
    assert len(last) == 8 and sorted(r["rung"] for r in last) == [0] * 4 + [1] * 4
