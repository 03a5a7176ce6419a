"""The loss ablation: run experiments/loss_ablation.toml, then write its tables.

    PYTHONPATH=. python experiments/loss_ablation.py [--out results/loss_ablation] [sweep flags]

Runs (or resumes) the sweep with `python -m gan_jax sweep`, writes the per-cell tables with
`python -m gan_jax table` (OUT/summary.md, .csv, .tex: one row per generator x discriminator x
loss x learning rate, W1 and mode balance over 16 seeds), and OUT/ablation.md: a compact table
of each generator x discriminator x loss at its best learning rate (lowest mean W1), then the
full table. Extra arguments go to the sweep command (e.g. --quiet, --memory-budget 2GiB).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from gan_jax import results, stats, tables
from gan_jax.__main__ import main as gan_jax

HERE = os.path.dirname(os.path.abspath(__file__))
SWEEP_FILE = os.path.join(HERE, "loss_ablation.toml")
BY = ("generator", "discriminator", "loss", "lr_g")
METRICS = ("w1", "mode_balance")


def best_rate_table(table: tables.Table) -> str:
    """Rows generator x discriminator, columns losses; each cell at its lowest-mean-W1 rate."""
    cells: dict[tuple, tables.Row] = {}
    for row in table.rows:
        generator, discriminator, loss, _ = row.values
        best = cells.get((generator, discriminator, loss))
        w1 = row.summaries["w1"].mean
        if best is None or (w1 == w1 and not best.summaries["w1"].mean <= w1):
            cells[(generator, discriminator, loss)] = row
    losses = list(dict.fromkeys(k[2] for k in cells))
    pairs = list(dict.fromkeys(k[:2] for k in cells))
    lines = ["| generator | discriminator | " + " | ".join(losses) + " |",
             "|---|---|" + "---|" * len(losses)]
    for g, d in pairs:
        row = [g, d]
        for loss in losses:
            r = cells[(g, d, loss)]
            w1, mb = r.summaries["w1"], r.summaries["mode_balance"]
            div = f", {r.diverged} div." if r.diverged else ""
            row.append(f"{stats.fmt(w1.mean, 3)} ± {stats.fmt(w1.std, 2)} "
                       f"({stats.fmt(mb.mean, 2)}; lr {r.values[3]:g}{div})")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("results", "loss_ablation"))
    args, sweep_flags = parser.parse_known_args(argv)
    t0 = time.perf_counter()
    status = gan_jax(["sweep", SWEEP_FILE, "--out", args.out, "--resume", *sweep_flags])
    if status:
        return status
    wall = time.perf_counter() - t0
    status = gan_jax(["table", args.out, "--by", ",".join(BY), "--metrics", ",".join(METRICS)])
    if status:
        return status
    records, _ = tables.load_results(args.out)
    table = tables.make_table(records, BY, METRICS)
    text = ("# Loss ablation on bimodal_1d\n\n"
            "Each cell at its best learning rate (lowest mean W1; lr_g = lr_d): W1 mean ± std "
            "over seeds (mode balance mean; the rate).\n\n" + best_rate_table(table)
            + f"\nSweep wall time (this invocation, compiles included): {wall:.0f} s.\n\n"
            + tables.to_markdown(table))
    results.write_atomic(os.path.join(args.out, "ablation.md"), text)
    print(f"\nwrote {os.path.join(args.out, 'ablation.md')}; sweep wall time {wall:.0f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
