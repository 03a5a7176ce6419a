"""The training-method ablation: run experiments/methods_ablation.toml, then its tables and figure.

    PYTHONPATH=. python experiments/methods_ablation.py [--out results/methods_ablation] [sweep flags]

Runs (or resumes) the sweep with `python -m gan_jax sweep`, writes the per-cell tables with
`python -m gan_jax table` (OUT/summary.{md,csv,tex}: one row per target x method x loss x
learning rate over 16 seeds), OUT/methods.md (a compact table per target: rows the methods,
columns loss x learning rate, each cell the mean over 16 seeds with its 95% bootstrap interval
and the diverged count) and OUT/methods_curves.png (the primary metric over training, median over
seeds, one line per method, for each loss at the smaller learning rate; needs matplotlib).
Extra arguments go to the sweep command (e.g. --quiet).
"""

from __future__ import annotations

import os
import sys

import numpy as np

from gan_jax.records import results
from gan_jax.report import stats, tables
from gan_jax.commands.cli import main as gan_jax
from gan_jax.commands.cli import sweep_then_tables
from gan_jax.sweep import load_sweep

HERE = os.path.dirname(os.path.abspath(__file__))
SWEEP_FILE = os.path.join(HERE, "methods_ablation.toml")
BY = ("data", "update", "lookahead_k", "loss", "lr_g")
METRICS = ("w1", "mode_balance", "modes_captured", "hq_fraction", "reverse_kl")
# The primary metric of each target: W1 on the 1-D mixture, modes captured on the ring.
PRIMARY = {"bimodal_1d": ("w1", 3), "ring_2d": ("modes_captured", 2)}


def method_label(update: str, lookahead_k: int) -> str:
    return f"lookahead (k = {lookahead_k})" if lookahead_k else update


def compact_tables(records: list[dict]) -> str:
    """One table per target: rows methods, columns loss x learning rate; each cell the mean of
    the target's primary metric over seeds [95% bootstrap interval], and diverged runs."""
    table = tables.make_table(records, BY, tuple(sorted({m for m, _ in PRIMARY.values()})))
    grid = dict(load_sweep(SWEEP_FILE).grid)
    cells = {row.values: row for row in table.rows}
    methods = [(u, 0) for u in grid["update"]] + [("alternating", k) for k in grid["lookahead_k"]
                                                   if k]
    rates = grid["lr_g+lr_d"]
    out = []
    for data, (metric, digits) in PRIMARY.items():
        header = ["method"] + [f"{loss}, lr {lr:g}" for loss in grid["loss"] for lr in rates]
        rows = []
        for update, k in methods:
            row = [method_label(update, k)]
            for loss in grid["loss"]:
                for lr in rates:
                    r = cells.get((data, update, k, loss, float(lr)))
                    if r is None:
                        row.append("—")
                        continue
                    s = r.summaries[metric]
                    div = f" ({r.diverged} div.)" if r.diverged else ""
                    row.append(f"{stats.fmt(s.mean, digits)} [{stats.fmt(s.ci_low, digits)}, "
                               f"{stats.fmt(s.ci_high, digits)}] ({stats.fmt(s.median, digits)})"
                               f"{div}")
            rows.append(row)
        out.append(f"### {data}: final {metric}, mean over seeds [95% bootstrap interval] "
                   "(median)\n\n"
                   + tables.markdown_table(header, rows))
    return "\n\n".join(out) + "\n"


def curves_figure(records: list[dict], path: str) -> str | None:
    """The primary metric over training, median over seeds (a few diverging runs would carry a
    mean), a line per method; one panel per target x loss at the smaller learning rate. None
    when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    grid = dict(load_sweep(SWEEP_FILE).grid)
    lr = min(grid["lr_g+lr_d"])
    losses = grid["loss"]
    fig, axes = plt.subplots(len(PRIMARY), len(losses), figsize=(4.2 * len(losses), 6.4),
                             squeeze=False)
    groups = results.group_records(records, ("data", "update", "lookahead_k", "loss", "lr_g"))
    for i, (data, (metric, _)) in enumerate(PRIMARY.items()):
        for j, loss in enumerate(losses):
            ax = axes[i][j]
            for (d, update, k, l_, r), cell in groups.items():
                if d != data or l_ != loss or r != lr:
                    continue
                steps = np.asarray(cell[0]["history"]["step"])
                ys = np.array([[np.nan if v is None else v for v in rec["history"][metric]]
                               for rec in cell], float)
                if np.isnan(ys).all():        # every run diverged: nothing to draw
                    continue
                ax.plot(steps, np.nanmedian(ys, axis=0), label=method_label(update, k),
                        linestyle="--" if k else "-")
            ax.set_title(f"{data}, {loss}, lr {lr:g}", fontsize=9)
            ax.set_xlabel("step")
            ax.set_ylabel(f"{metric}, median over seeds")
            if metric == "w1":
                ax.set_yscale("log")
            ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_tables(out: str) -> str:
    status = gan_jax(["table", out, "--out", out, "--by", ",".join(BY),
                      "--metrics", ",".join(METRICS)])
    if status:
        raise SystemExit(status)
    records, _ = results.load_results(out)
    text = ("# Training-method ablation\n\n" + compact_tables(records))
    path = os.path.join(out, "methods.md")
    results.write_atomic(path, text)
    curves_figure(records, os.path.join(out, "methods_curves.png"))
    return path


def main(argv: list[str] | None = None) -> int:
    return sweep_then_tables(__doc__, SWEEP_FILE, os.path.join("results", "methods_ablation"), write_tables, argv)


if __name__ == "__main__":
    sys.exit(main())
