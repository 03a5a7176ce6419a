"""Result tables, checked against NumPy on the same records; formats, merging, bad input."""

from __future__ import annotations

import csv
import io
import json
import math
import os

import numpy as np
import pytest

from gan_jax.records import results
from gan_jax.report import tables
from gan_jax.commands.cli import main as cli
from gan_jax.config import ConfigError, make_config

# Student t quantiles t_{0.975, df}, from published tables.
T975 = {2: 4.302652729911275, 3: 3.182446305284263, 4: 2.7764451051977987}

LOSSES, LRS, SEEDS = ("hinge", "lsgan"), (0.01, 0.1), range(5)


def make_records():
    """Synthetic records of a loss x lr_d grid over 5 seeds, with a diverged run and a
    run whose mode_balance is missing (non-finite)."""
    rng = np.random.default_rng(0)
    out = []
    for loss in LOSSES:
        for lr in LRS:
            cfg = make_config(dict(loss=loss, lr_d=lr, steps=20, log_every=10))
            for seed in SEEDS:
                diverged = (loss, lr, seed) == ("lsgan", 0.1, 4)
                final = {"w1": None if diverged else round(float(rng.gamma(2.0, 0.5)), 6),
                         "mode_balance": round(float(rng.uniform()), 6)}
                if (loss, lr, seed) == ("hinge", 0.01, 2):
                    final["mode_balance"] = None
                out.append({"run_id": results.run_id(cfg, seed), "sweep": "synthetic",
                            "seed": seed, "config": cfg.to_dict(),
                            "status": "diverged" if diverged else "ok",
                            "diverged_at": 7 if diverged else None, "final": final,
                            "history": {}, "versions": {}})
    return out


@pytest.fixture
def results_dir(tmp_path):
    records = make_records()
    results.append_records(tmp_path / results.RESULTS_FILE, records)
    return tmp_path, records


def numpy_summary(records, loss, lr, metric, interval="bootstrap"):
    """n, mean, std, median, IQM and the interval, from NumPy alone: Student t from a table of
    quantiles (clipped to the metric's range), or the percentile bootstrap of the mean (10,000
    resamples drawn in one block by default_rng(0), 2.5% and 97.5% quantiles)."""
    x = np.array([r["final"][metric] for r in records
                  if r["config"]["loss"] == loss and r["config"]["lr_d"] == lr
                  and r["status"] == "ok" and r["final"][metric] is not None], float)
    n, std = len(x), x.std(ddof=1)
    k = n // 4
    iqm = np.sort(x)[k:n - k].mean()
    if interval == "t":
        half = T975[n - 1] * std / math.sqrt(n)
        low, high = {"w1": (0, math.inf), "mode_balance": (0, 1)}[metric]   # known ranges
        lo, hi = np.clip([x.mean() - half, x.mean() + half], low, high)
    else:
        means = x[np.random.default_rng(0).integers(0, n, size=(10_000, n))].mean(axis=1)
        lo, hi = np.quantile(means, [0.025, 0.975])
    return n, x.mean(), std, np.median(x), iqm, lo, hi


@pytest.mark.parametrize("interval", ["bootstrap", "t"])
def test_csv_matches_numpy(results_dir, capsys, interval):
    directory, records = results_dir
    flags = [] if interval == "bootstrap" else ["--interval", "t"]     # bootstrap: the default
    assert cli(["table", str(directory), "--format", "csv", "--out", str(directory), *flags]) == 0
    printed = capsys.readouterr().out
    assert printed == (directory / "summary.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(printed)))
    assert [(r["loss"], float(r["lr_d"])) for r in rows] == [(l, lr) for l in LOSSES for lr in LRS]
    for row in rows:
        loss, lr = row["loss"], float(row["lr_d"])
        cell = [r for r in records if r["config"]["loss"] == loss and r["config"]["lr_d"] == lr]
        assert int(row["runs"]) == len(cell) == 5
        assert int(row["diverged"]) == sum(r["status"] == "diverged" for r in cell)
        for metric in ("w1", "mode_balance"):
            n, mean, std, median, iqm, lo, hi = numpy_summary(records, loss, lr, metric,
                                                              interval)
            assert int(row[f"{metric}_n"]) == n
            got = [float(row[f"{metric}_{s}"]) for s in ("mean", "std", "median", "iqm",
                                                         "ci_low", "ci_high")]
            np.testing.assert_allclose(got, [mean, std, median, iqm, lo, hi], rtol=1e-8)
    # The diverged cell and the missing value really shrink n.
    assert {(r["loss"], r["lr_d"], r["w1_n"], r["mode_balance_n"]) for r in rows} >= {
        ("lsgan", "0.1", "4", "4"), ("hinge", "0.01", "5", "4")}


def test_default_rows_are_the_varying_keys_and_by_overrides(results_dir):
    _, records = results_dir
    assert results.varying_keys(records) == ("loss", "lr_d")
    table = tables.make_table(records)
    assert table.by == ("loss", "lr_d") and table.metrics == ("w1", "mode_balance")
    by_loss = tables.make_table(records, by=("loss",), metrics=("w1",))
    assert [(r.values, r.runs, r.diverged) for r in by_loss.rows] == [
        (("hinge",), 10, 0), (("lsgan",), 10, 1)]
    w1 = [r["final"]["w1"] for r in records if r["config"]["loss"] == "hinge"]
    assert by_loss.rows[0].summaries["w1"].mean == pytest.approx(np.mean(w1), rel=1e-12)
    everything = tables.make_table(records, by=(), metrics=("w1",))
    assert len(everything.rows) == 1 and everything.rows[0].runs == 20


def test_markdown_and_latex_layout(results_dir, capsys):
    directory, records = results_dir
    assert cli(["table", str(directory), "--metrics", "w1,mode_balance"]) == 0
    assert os.listdir(directory) == [results.RESULTS_FILE]          # nothing written unasked
    unwritten = capsys.readouterr()
    assert unwritten.err == ""
    assert cli(["table", str(directory), "--metrics", "w1,mode_balance", "--out",
                str(directory)]) == 0
    captured = capsys.readouterr()
    md = captured.out
    assert md == unwritten.out and f"wrote {directory / 'summary.md'}" in captured.err
    assert md == (directory / "summary.md").read_text()
    table_lines = [l for l in md.splitlines() if l.startswith("|")]
    assert len(table_lines) == 2 + 4
    assert table_lines[0].count("|") == table_lines[-1].count("|") == 2 + 2 + 10 + 1
    assert "percentile bootstrap, 10,000 resamples, seed 0" in md
    n, mean, std, *_ = numpy_summary(records, "hinge", 0.01, "w1")
    assert f"| hinge | 0.01 | 5 | 0 | 5 | {mean:.4g} ± {std:.4g} |" in md

    assert cli(["table", str(directory), "--format", "latex", "--out", str(directory)]) == 0
    tex = capsys.readouterr().out
    assert tex == (directory / "summary.tex").read_text()
    for piece in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{llrrrrrrcrrrrc}",
                  r"\multicolumn{5}{c}{$W_1$}", r"\cmidrule(lr){5-9}", r"lr\_d", "IQM", "$n$",
                  "percentile bootstrap",
                  r"\label{tab:synthetic}", "booktabs"):
        assert piece in tex, piece
    body = tex.split(r"\midrule")[1].split(r"\bottomrule")[0].strip().splitlines()
    assert len(body) == 4 and all(l.count("&") == 13 and l.endswith(r"\\") for l in body)
    assert "_" not in "".join(body).replace(r"\_", "")
    assert {f for f in os.listdir(directory) if not f.startswith("results")} == {
        "summary.md", "summary.csv", "summary.tex"}                 # no temporary files left


def test_shards_merge_and_a_doubled_run_counts_once(tmp_path, capsys):
    records = make_records()
    results.append_records(tmp_path / results.results_file_name(0, 2), records[:12])
    results.append_records(tmp_path / results.results_file_name(1, 2), records[11:])
    with open(tmp_path / results.results_file_name(1, 2), "a") as f:
        f.write(json.dumps(records[0])[:40])                         # a kill's cut line
    assert cli(["table", str(tmp_path), "--by", "loss", "--metrics", "w1",
                "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert "recorded twice; counted once" in captured.err
    assert "truncated last line" in captured.err
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    assert [int(r["runs"]) for r in rows] == [10, 10]


def test_a_table_does_not_depend_on_the_order_of_its_records():
    # Shards merged, a resumed sweep, a file sorted by hand: each cell's bootstrap resamples
    # its values in seed order, so the intervals are the same to the last digit.
    records = make_records()
    shuffled = [records[i] for i in np.random.default_rng(1).permutation(len(records))]
    a, b = (tables.to_csv(tables.make_table(r, ("loss", "lr_d"), ("w1", "mode_balance")))
            for r in (records, shuffled))
    assert a == b


@pytest.mark.parametrize("flags, expected", [
    (["--by", "los"], "--by: 'los' is not a config key (did you mean 'loss'?)"),
    (["--metrics", "w1,mode_balanse"], "--metrics: 'mode_balanse' is not a final metric of "
                                       "these results (did you mean 'mode_balance'?)"),
])
def test_bad_keys_exit_2_with_a_suggestion(results_dir, capsys, flags, expected):
    directory, _ = results_dir
    assert cli(["table", str(directory), *flags]) == 2
    assert expected in capsys.readouterr().err
    assert os.listdir(directory) == [results.RESULTS_FILE]


def test_directory_without_results(tmp_path, capsys):
    assert cli(["table", str(tmp_path)]) == 2
    assert "no results files" in capsys.readouterr().err
    assert cli(["table", str(tmp_path / "missing")]) == 2
    assert "no such directory" in capsys.readouterr().err


def test_latex_escapes_and_numbers():
    assert tables.latex_escape("a_b & 50% #1") == r"a\_b \& 50\% \#1"
    assert tables._tex_num(1.5e-5) == r"1.50\times 10^{-5}"
    with pytest.raises(ConfigError):
        tables.make_table(make_records(), by=("nope",))


def test_out_must_be_a_directory(results_dir, tmp_path, capsys):
    directory, _ = results_dir
    file = tmp_path / "a_file"
    file.write_text("x")
    assert cli(["table", str(directory), "--out", str(file)]) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert "--out:" in err and "is a file" in err and "Traceback" not in err
    assert captured.out == ""                               # refused before any table
    out = tmp_path / "new" / "tables"                       # made when missing
    assert cli(["table", str(directory), "--metrics", "w1", "--out", str(out)]) == 0
    assert sorted(os.listdir(out)) == ["summary.csv", "summary.md", "summary.tex"]
