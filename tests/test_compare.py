"""Table statistics as a product: bounded bootstrap intervals, success rates that count
diverged runs, paired (CRN) comparisons against unpaired ones, P(improvement), Holm counts."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from gan_jax.records import results
from gan_jax.report import stats, tables
from gan_jax.commands.cli import main as cli
from gan_jax.config import ConfigError, make_config


def record(seed, final, *, status="ok", **config):
    cfg = make_config(dict(steps=20, log_every=10, **config))
    return {"run_id": results.run_id(cfg, seed), "sweep": "synthetic", "seed": seed,
            "config": cfg.to_dict(), "status": status,
            "diverged_at": 3 if status == "diverged" else None, "final": final,
            "history": {}, "versions": {}}


def test_default_interval_stays_inside_the_metric_range():
    # 4 seeds, mode balance in [0, 1]: Student t says the mean may be negative.
    balance = [0.0, 0.0, 0.02, 0.9]
    records = [record(s, {"mode_balance": b, "w1": 0.1 + b}) for s, b in enumerate(balance)]
    t_raw = stats.summarize(balance, interval="t")
    assert t_raw.ci_low < 0                                         # the impossible interval
    row = tables.make_table(records, by=(), metrics=("mode_balance",)).rows[0]
    s = row.summaries["mode_balance"]
    assert s.interval == "bootstrap" and 0.0 <= s.ci_low <= s.mean <= s.ci_high <= 1.0
    assert (s.ci_low, s.ci_high) == stats.bootstrap_interval(balance, seed=0)
    t_table = tables.make_table(records, by=(), metrics=("mode_balance",), interval="t")
    assert t_table.rows[0].summaries["mode_balance"].ci_low == 0.0   # clipped to the range
    # A float32-rounded value just past a bound is rounding; far past it is an error.
    records[0]["final"]["mode_balance"] = 1.0000001
    tables.make_table(records, by=(), metrics=("mode_balance",))
    records[0]["final"]["mode_balance"] = 1.5
    with pytest.raises(ConfigError, match="outside its known range"):
        tables.make_table(records, by=(), metrics=("mode_balance",))


def test_success_rates_count_diverged_runs_as_failures(tmp_path, capsys):
    finals = [({"w1": 0.1}, "ok"), ({"w1": 0.2}, "ok"), ({"w1": 0.9}, "ok"),
              ({"w1": None}, "diverged"), ({"w1": 0.05}, "diverged")]   # good value, diverged
    records = [record(s, f, status=st) for s, (f, st) in enumerate(finals)]
    results.append_records(tmp_path / results.RESULTS_FILE, records)
    assert cli(["table", str(tmp_path), "--by", "", "--success", "w1<0.5", "--success",
                "w1 >= 0.9", "--format", "csv"]) == 0
    row = next(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    want = stats.success_rate([1, 1, 0, 0, 0])
    assert (row["w1<0.5_successes"], row["w1<0.5_runs"]) == ("2", "5")
    np.testing.assert_allclose([float(row[f"w1<0.5_{k}"]) for k in ("rate", "ci_low", "ci_high")],
                               [want.value, want.ci_low, want.ci_high], rtol=1e-9)
    assert float(row["w1<0.5_ci_low"]) > 0 and row["w1>=0.9_successes"] == "1"
    assert row["w1_n"] == "3" and row["diverged"] == "2"          # statistics: finished runs
    for bad in ("w1<<0.5", "w1<abc", "0.5>w1"):
        with pytest.raises(ConfigError, match="--success"):
            tables.parse_success(bad)
    with pytest.raises(ConfigError, match="'w2' is not a final metric"):
        tables.make_table(records, by=(), successes=(tables.parse_success("w2<1"),))


def crn_records(seeds=16, effect=0.3):
    """Two losses x two learning rates; w1 = 2 + u_seed + effect (hinge) + small noise: the
    per-seed component u (std 1) is shared by both losses, as common random numbers are."""
    rng = np.random.default_rng(1)
    u = rng.normal(0, 1.0, seeds)
    out = []
    for lr in (0.001, 0.01):
        for loss, shift in (("nonsaturating", 0.0), ("hinge", effect)):
            for s in range(seeds):
                w1 = float(2 + u[s] + shift + rng.normal(0, 0.1))
                out.append(record(s, {"w1": w1, "mode_balance": 0.5}, loss=loss, lr_d=lr))
    return out


def test_paired_interval_is_much_narrower_under_common_random_numbers():
    comp = tables.make_comparison(crn_records(), "loss", "nonsaturating", "hinge",
                                  metrics=("w1",))
    assert comp.by == ("lr_d",) and len(comp.rows) == 2
    for r in comp.rows:
        assert (r.pairs, r.finite_pairs) == (16, 16)
        assert r.paired.value == pytest.approx(r.unpaired.value, abs=1e-12)  # same runs
        assert r.paired.ci_high < 0                          # -0.3: nonsaturating lower W1
        assert r.unpaired.ci_low < 0 < r.unpaired.ci_high    # unpaired cannot tell
        assert tables._width_ratio(r) > 5                    # std 1 shared vs 0.14 not
        assert r.improve_paired.value >= 0.9 and not r.higher_is_better


def test_probability_of_improvement_exact_on_small_data_with_a_diverged_run():
    a = [1.0, 2.0, 3.0, 4.0, None]                # seed 4 of A diverged
    b = [2.0, 1.0, 5.0, 4.0, 3.0]
    records = [record(s, {"w1": v}, status="ok" if v is not None else "diverged",
                      loss="hinge") for s, v in enumerate(a)]
    records += [record(s, {"w1": v}, loss="lsgan") for s, v in enumerate(b)]
    records.append(record(7, {"w1": 0.5}, loss="lsgan"))            # no partner: unpaired only
    (r,) = tables.make_comparison(records, "loss", "hinge", "lsgan", metrics=("w1",)).rows
    assert (r.runs_a, r.runs_b, r.pairs, r.finite_pairs) == (5, 6, 5, 4)
    # Seeds: win, loss, win, tie, loss (diverged counts as the worst W1).
    assert r.improve_paired.value == (1 + 0 + 1 + 0.5 + 0) / 5
    # Unpaired: over the 5 x 6 pairs of every run (the partnerless 0.5 of B included), ties 1/2:
    # (4.5 + 3.5 + 2.5 + 1.5 + 0) / 30; the difference is the summary table's: every finished run.
    assert r.improve_unpaired.value == pytest.approx(12 / 30, abs=1e-15)
    assert r.unpaired.value == pytest.approx(2.5 - 15.5 / 6) and r.unpaired.n == (4, 6)
    assert (r.diverged_a, r.diverged_b, r.seeds, r.finite_seeds) == (1, 0, 5, 4)
    # Survival-conditioned beside it: the 4 finished pairs, win, loss, win, tie.
    assert r.improve_finite.value == (1 + 0 + 1 + 0.5) / 4 and r.improve_finite.n == 4
    assert r.paired.value == pytest.approx(np.mean([-1, 1, -2, 0]))
    assert r.pvalue == stats.sign_flip_pvalue([-1.0, 1.0, -2.0, 0.0])
    higher = tables.make_comparison(records, "loss", "hinge", "lsgan", metrics=("w1",),
                                    higher=("w1",)).rows[0]
    assert higher.improve_paired.value == (0 + 1 + 0 + 0.5 + 0) / 5   # diverged still worst


def test_holm_count_over_many_cells(tmp_path, capsys):
    rng = np.random.default_rng(3)
    records = []
    for lr in (1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3):
        effect = 1.0 if lr < 6e-4 else 0.0                  # three real effects, three nulls
        for s in range(10):
            base = 3 + rng.normal()
            records.append(record(s, {"w1": base}, loss="hinge", lr_d=lr))
            records.append(record(s, {"w1": base + effect + rng.normal(0, 0.05)},
                                  loss="lsgan", lr_d=lr))
    results.append_records(tmp_path / results.RESULTS_FILE, records)
    assert cli(["table", str(tmp_path), "--metrics", "w1", "--compare",
                "loss=hinge,lsgan", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Holm (family-wise error 0.05) keeps 3" in out
    comp = tables.make_comparison(records, "loss", "hinge", "lsgan", metrics=("w1",))
    counts = tables.comparison_counts(comp)
    p = [r.pvalue for r in comp.rows]
    np.testing.assert_allclose([r.holm for r in comp.rows], stats.holm(p))
    assert counts["comparisons"] == 6 and counts["holm"] == 3 == int(np.sum(stats.holm(p) <= .05))
    assert counts["paired_exclude_zero"] >= 3 and min(p) == 2 / 2 ** 10   # exact sign flip
    names = {f.name for f in tmp_path.iterdir()}
    assert {"compare_loss_hinge_lsgan.md", "compare_loss_hinge_lsgan.csv",
            "compare_loss_hinge_lsgan.tex"} <= names
    tex = (tmp_path / "compare_loss_hinge_lsgan.tex").read_text()
    assert r"\begin{tabular}" in tex and r"\label{tab:synthetic-loss-hinge-lsgan}" in tex


@pytest.mark.parametrize("flag, message", [
    ("loss=hinge", "must be KEY=A,B"),
    ("loss=hinge,wgan", "no run has loss='wgan'"),
    ("los=hinge,lsgan", "did you mean 'loss'"),
])
def test_bad_compare_flags(flag, message):
    records = crn_records(seeds=2)
    with pytest.raises(ConfigError, match=message):
        key, a, b = tables.parse_compare(flag)
        tables.make_comparison(records, key, a, b)


def test_a_metric_without_direction_needs_one():
    records = [record(s, {"fake_mean": float(s)}, loss=loss) for s in range(3)
               for loss in ("hinge", "lsgan")]
    with pytest.raises(ConfigError, match="--higher-is-better fake_mean"):
        tables.make_comparison(records, "loss", "hinge", "lsgan", metrics=("fake_mean",))
    comp = tables.make_comparison(records, "loss", "hinge", "lsgan", metrics=("fake_mean",),
                                  lower=("fake_mean",))
    assert comp.rows[0].improve_paired.value == 0.5 and comp.rows[0].pvalue == 1.0


def test_compare_by_seed_when_by_omits_a_varying_key(tmp_path, capsys):
    # 4 seeds x 2 learning rates, hinge always better by 0.5: pairs sharing a seed drew the same
    # real data, so 4 seeds can give no p below 2/2^4 = 0.125 (8 independent pairs would say
    # 2/2^8 = 0.0078).
    records = []
    for lr in (0.001, 0.01):
        for s in range(4):
            base = 2.0 + s
            records.append(record(s, {"w1": base}, loss="lsgan", lr_d=lr))
            records.append(record(s, {"w1": base - 0.5 - 0.01 * s}, loss="hinge", lr_d=lr))
    (r,) = tables.make_comparison(records, "loss", "hinge", "lsgan", by=(),
                                  metrics=("w1",)).rows
    assert (r.pairs, r.finite_pairs, r.seeds, r.finite_seeds) == (8, 8, 4, 4)
    assert r.pvalue >= 0.125 and r.pvalue == 0.125
    assert r.paired.n == 4 and r.improve_paired.n == 4 and r.improve_finite.n == 4
    assert not r.testable
    results.append_records(tmp_path / results.RESULTS_FILE, records)
    assert cli(["table", str(tmp_path), "--by", "", "--metrics", "w1", "--compare",
                "loss=hinge,lsgan"]) == 0
    out = capsys.readouterr().out
    assert "The cells pool lr_d (not in --by)" in out
    # The interval excludes 0 but no test of 4 seeds can reject: it is not counted, and said.
    assert r.paired.ci_high < 0
    assert "0 paired intervals exclude 0" in out and "no test can show a difference" in out
    # With --by lr_d each cell has one pair per seed: the plain statistics, bit for bit.
    for row in tables.make_comparison(records, "loss", "hinge", "lsgan", metrics=("w1",)).rows:
        assert row.seeds == row.pairs == 4
        assert row.pvalue == stats.sign_flip_pvalue([-0.5 - 0.01 * s for s in range(4)])


def test_identical_metrics_are_shown_and_counted_once(tmp_path, capsys):
    # In 1-D sliced W1 is W1: one metric, one test in the Holm family.
    rng = np.random.default_rng(5)
    records = []
    for s in range(8):
        for loss, shift in (("hinge", 0.0), ("lsgan", 0.2)):
            w = float(1 + rng.normal(0, 0.1) + shift)
            records.append(record(s, {"w1": w, "sliced_w1": w, "mode_balance": 0.5 + 0.01 * s},
                                  loss=loss))
    comp = tables.make_comparison(records, "loss", "hinge", "lsgan",
                                  metrics=("w1", "sliced_w1", "mode_balance"))
    assert comp.metrics == ("w1", "mode_balance") and comp.same == {"sliced_w1": "w1"}
    assert tables.comparison_counts(comp)["comparisons"] == 2
    assert "2 comparisons of this table (1 cell × 2 metrics: w1, mode_balance)" in \
        tables.comparison_note(comp)
    table = tables.make_table(records, ("loss",), ("w1", "sliced_w1"))
    assert table.metrics == ("w1",) and "sliced_w1 equals w1 in every run" in \
        tables.to_markdown(table)
    # Without --metrics: the 1-D defaults.
    assert tables.make_table(records).metrics == ("w1", "mode_balance")
    assert tables.make_comparison(records, "loss", "hinge", "lsgan").metrics == (
        "w1", "mode_balance")


def test_a_cell_with_too_few_finite_runs_says_so():
    records = [record(0, {"w1": 0.3}, loss="hinge"),
               record(1, {"w1": None}, status="diverged", loss="hinge"),
               record(0, {"w1": None}, status="diverged", loss="lsgan")]
    table = tables.make_table(records, ("loss",), ("w1",))
    md, tex, text = tables.to_markdown(table), tables.to_latex(table), tables.to_csv(table)
    assert "| hinge | 2 | 1 | 1 | 0.3 (1 run) | 0.3 | 0.3 | too few runs |" in md
    assert "| lsgan | 1 | 1 | 0 | no finite run | – | – | – |" in md
    assert "nan" not in md and "nan" not in tex and "too few runs" in tex
    assert "w1_n" in text.splitlines()[0]                     # n in every format
