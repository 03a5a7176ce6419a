"""Selection without the winner's curse: `confirm` ranks a finished sweep's points, runs the
top K on fresh seeds and says how much each estimate fell."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gan_jax.records import results
from gan_jax.commands.cli import main as cli
from gan_jax.config import ConfigError, make_config
from gan_jax.sweep import confirm, load_sweep

from sweep_testing import TINY_BASE, records_by_id, sweep_text


def point(values, diverged=0, lr=0.01):
    return confirm.Point(make_config(dict(TINY_BASE, lr_d=lr)), tuple(values), diverged)


def test_a_point_that_failed_on_any_seed_ranks_last():
    points = [point([0.5, 0.5]), point([0.1, math.nan], diverged=1), point([0.3, 0.2]),
              point([0.3, 0.2])]
    assert confirm.select(points, 4, higher_is_better=False) == [2, 3, 0, 1]   # ties: in order
    assert confirm.select(points, 2, higher_is_better=True) == [0, 2]
    assert confirm.score(points[1], higher_is_better=False) == math.inf


def test_fresh_seeds_follow_the_sweeps_largest():
    assert confirm.fresh_seeds((0, 1, 2, 3), 3) == (4, 5, 6)
    assert confirm.fresh_seeds((9, 2), 2) == (10, 11)
    with pytest.raises(ConfigError, match="--seeds: got 2"):
        confirm.fresh_seeds((2**32 - 2,), 2)


def test_the_winners_curse_is_measured_in_the_metrics_direction():
    # 64 points of equal quality (w1 0.5 on average): the best on 4 noisy seeds looks better
    # than 0.5 only by luck, and on 64 fresh seeds it is 0.5 again.
    rng = np.random.default_rng(0)
    chosen = [point(0.5 + 0.2 * rng.standard_normal(4), lr=0.001 * (i + 1)) for i in range(64)]
    top = confirm.select(chosen, 3, higher_is_better=False)
    fresh = [point(0.5 + 0.2 * rng.standard_normal(64), lr=chosen[i].cfg.lr_d) for i in top]
    rows = confirm.compare([chosen[i] for i in top], fresh, ["a", "b", "c"],
                           higher_is_better=False)
    best = rows[0]
    assert best.chosen.mean < 0.3 and abs(best.fresh.mean - 0.5) < 0.1
    assert best.fell.value == pytest.approx(best.fresh.mean - best.chosen.mean)
    assert best.fell.ci_low > 0                 # fell, beyond the intervals' noise
    assert sorted(r.fresh_rank for r in rows) == [1, 2, 3]
    text = confirm.report(rows, "w1", False, 4, 64, 64)
    assert "Top 3 of 64 points by mean w1 (lower is better)" in text
    assert f"the estimate fell by {best.fell.value:.4g}" in text
    # Higher is better: the same numbers mirrored fall by the same amount.
    mirrored = confirm.compare([point([-v for v in chosen[i].values]) for i in top],
                               [point([-v for v in p.values]) for p in fresh], ["a", "b", "c"],
                               higher_is_better=True)
    assert mirrored[0].fell.value == pytest.approx(best.fell.value)


def test_confirm_runs_the_top_points_on_fresh_seeds_and_resumes(tmp_path, capsys):
    file = tmp_path / "s.toml"
    file.write_text(sweep_text("pick", 2, TINY_BASE)
                    + '\n[search]\nsamples = 4\nsampler = "sobol"\n'
                      '"lr_g+lr_d" = { log_uniform = [0.003, 0.3] }\n')
    out = tmp_path / "out"
    flags = ["--devices", "1", "--quiet"]
    assert cli(["confirm", str(file), "--out", str(out), *flags]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert cli(["sweep", str(file), "--out", str(out), *flags]) == 0
    capsys.readouterr()
    # 4 points x 2 seeds, then the top 2 on 4 fresh seeds: the same chunk of 8 runs.
    assert cli(["confirm", str(file), "--out", str(out), "--top", "2", "--seeds", "4",
                *flags]) == 0
    text = capsys.readouterr().out
    fresh = records_by_id(out / "confirm")
    assert len(fresh) == 8 and {r["seed"] for r in fresh.values()} == {2, 3, 4, 5}
    assert {r["sweep"] for r in fresh.values()} == {"pick (confirm)"}
    # The two points confirmed are the two best by mean w1 on seeds 0 and 1.
    sweep = load_sweep(file)
    first = records_by_id(out)
    means = sorted((np.mean([r["final"]["w1"] for r in first.values()
                             if r["config"]["lr_g"] == c.lr_g]), c.lr_g) for c in sweep.configs)
    assert {r["config"]["lr_g"] for r in fresh.values()} == {lr for _, lr in means[:2]}
    assert f"lr_g={means[0][1]}" in text.splitlines()[4]          # rank 1, the best
    assert (out / "confirm" / "confirm.md").read_text() == text
    # Run again: nothing is recomputed, the same report.
    assert cli(["confirm", str(file), "--out", str(out), "--top", "2", "--seeds", "4",
                *flags]) == 0
    assert capsys.readouterr().out == text and len(records_by_id(out / "confirm")) == 8


def test_confirm_refuses_an_unfinished_sweep_and_bad_flags(tmp_path, capsys):
    file = tmp_path / "s.toml"
    file.write_text(sweep_text("pick", 2, TINY_BASE, dict(lr_d=[0.01, 0.02])))
    out = tmp_path / "out"
    out.mkdir()
    s = load_sweep(file)
    run = s.runs()[0]
    record = {"run_id": run.run_id, "sweep": "pick", "seed": run.seed,
              "config": run.cfg.to_dict(), "status": "ok", "diverged_at": None,
              "final": {"w1": 0.1}, "history": {"step": [0]}, "versions": {}}
    results.append_records(out / results.RESULTS_FILE, [record])
    assert cli(["confirm", str(file), "--out", str(out)]) == 2
    assert "3 of 4 runs are not recorded; finish the sweep first" in capsys.readouterr().err
    for flags, message in ((["--top", "0"], "--top: got 0"), (["--seeds", "1"], "--seeds: got 1"),
                           (["--metric", "speed"], "speed: no known direction")):
        assert cli(["confirm", str(file), "--out", str(out), *flags]) == 2
        assert message in capsys.readouterr().err
    assert not (out / "confirm").exists()
