"""Our numbers beside the papers': the side-by-side tables of docs/reproductions.md.

    PYTHONPATH=. python experiments/reproductions.py pacgan runs/pacgan_2d
    PYTHONPATH=. python experiments/reproductions.py veegan runs/veegan_2d [--first-seeds 5]
    PYTHONPATH=. python experiments/reproductions.py veegan_1200d runs/veegan_1200d

Reads a sweep's records (gan_jax.records.results) and prints a markdown table: per row of the paper's
table and per metric, ours as mean ± standard error over seeds (std / sqrt(n)), with the median
and interquartile range, the published number, and whether the published value lies within 2
combined standard errors of our mean (sqrt(se_ours^2 + se_published^2); PacGAN publishes
standard errors over 10 trials; VEEGAN publishes none, so its se counts as 0). A row of the
paper's table is reproduced when all its metrics are; docs/reproductions.md gives each row's
verdict (reproduced, same ranking, not reproduced) with its likely cause, since one metric
agreeing by chance (an untrained generator's reverse KL, say) is not a reproduction.
Percentages are the papers' (hq_fraction x 100).
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np

from gan_jax.records import results
from gan_jax.report.tables import markdown_table

# (target, row) -> metric -> (published mean, published standard error or None)
# PacGAN, Table 1 (fjxmlzn/PacGAN, synthetic_data_experiments/results/Table1.png): 10 trials.
PACGAN = {
    ("ring_2d", 1): {"modes_captured": (6.3, 0.5), "hq_percent": (98.2, 0.2), "reverse_kl": (0.45, 0.09)},
    ("ring_2d", 2): {"modes_captured": (7.9, 0.1), "hq_percent": (95.6, 2.0), "reverse_kl": (0.07, 0.03)},
    ("ring_2d", 3): {"modes_captured": (7.8, 0.1), "hq_percent": (97.7, 0.3), "reverse_kl": (0.10, 0.02)},
    ("ring_2d", 4): {"modes_captured": (7.8, 0.1), "hq_percent": (95.9, 1.4), "reverse_kl": (0.07, 0.02)},
    ("grid_2d", 1): {"modes_captured": (17.3, 0.8), "hq_percent": (94.8, 0.7), "reverse_kl": (0.70, 0.07)},
    ("grid_2d", 2): {"modes_captured": (23.8, 0.7), "hq_percent": (91.3, 0.8), "reverse_kl": (0.13, 0.04)},
    ("grid_2d", 3): {"modes_captured": (24.6, 0.4), "hq_percent": (94.2, 0.4), "reverse_kl": (0.06, 0.02)},
    ("grid_2d", 4): {"modes_captured": (24.8, 0.2), "hq_percent": (93.6, 0.6), "reverse_kl": (0.04, 0.01)},
}
# VEEGAN, Table 1 (akashgit/VEEGAN, tab.png): 5 runs, no error bars.
VEEGAN = {
    ("ring_2d", "simultaneous"): {"modes_captured": (1, None), "hq_percent": (99.3, None)},
    ("grid_2d", "simultaneous"): {"modes_captured": (3.3, None), "hq_percent": (0.5, None)},
    ("ring_2d", "unrolled"): {"modes_captured": (7.6, None), "hq_percent": (35.6, None)},
    ("grid_2d", "unrolled"): {"modes_captured": (23.6, None), "hq_percent": (16.0, None)},
}
# VEEGAN, Table 1, third block "1200D synthetic" (the same image): modes of 10, % HQ.
VEEGAN_1200D = {
    ("veegan_1200d", "simultaneous"): {"modes_captured": (1.6, None), "hq_percent": (2.0, None)},
    ("veegan_1200d", "unrolled"): {"modes_captured": (0, None), "hq_percent": (0.0, None)},
}
TABLES = {"pacgan": (("data", "pack"), PACGAN), "veegan": (("data", "update"), VEEGAN),
          "veegan_1200d": (("data", "update"), VEEGAN_1200D)}
LABELS = {1: "GAN", 2: "PacGAN2", 3: "PacGAN3", 4: "PacGAN4", "simultaneous": "GAN",
          "unrolled": "unrolled GAN (k = 5)"}


def metric_values(records: list[dict], metric: str) -> np.ndarray:
    if metric == "hq_percent":
        return 100 * np.array([results.number(r["final"].get("hq_fraction")) for r in records])
    return np.array([results.number(r["final"].get(metric)) for r in records], float)


def describe(x: np.ndarray, digits: int = 3) -> tuple[str, float, float]:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return "—", math.nan, math.nan
    se = x.std(ddof=1) / math.sqrt(x.size) if x.size > 1 else math.nan
    q25, q50, q75 = np.percentile(x, [25, 50, 75])
    text = (f"{x.mean():.{digits}g} ± {se:.2g} (median {q50:.{digits}g}, "
            f"IQR {q25:.{digits}g}–{q75:.{digits}g}; n = {x.size})")
    return text, float(x.mean()), float(se)


def within(mean: float, se: float, published: float, published_se: float | None) -> str:
    """'yes' when the published value lies within 2 combined standard errors of our mean."""
    combined = math.sqrt(se ** 2 + (published_se or 0.0) ** 2)
    if not math.isfinite(mean) or not math.isfinite(combined):
        return "—"
    return "yes" if abs(mean - published) <= 2 * combined else "no"


def side_by_side(records: list[dict], by: tuple[str, str], published: dict,
                 seeds: int | None = None) -> str:
    groups = results.group_records(records, by)
    rows = []
    for (target, row), numbers in published.items():
        cell = groups.get((target, row), [])
        if seeds is not None:
            cell = [r for r in cell if r["seed"] < seeds]
        ok = [r for r in cell if r.get("status") != "diverged"]
        for metric, (value, value_se) in numbers.items():
            text, mean, se = describe(metric_values(ok, metric))
            pub = f"{value:g}" + (f" ± {value_se:g}" if value_se is not None else "")
            rows.append([target, LABELS.get(row, str(row)), metric, text, pub,
                         within(mean, se, value, value_se),
                         f"{len(cell) - len(ok)}" if cell else "no runs"])
    return markdown_table(["target", "row", "metric", "ours: mean ± se", "published",
                           "within 2 se", "diverged"], rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", choices=sorted(TABLES))
    parser.add_argument("dir", help="the sweep's output directory")
    parser.add_argument("--first-seeds", type=int, default=None,
                        help="only seeds below this (VEEGAN's five runs: 5)")
    args = parser.parse_args(argv)
    records, notes = results.load_results(args.dir)
    for note in notes:
        print(note, file=sys.stderr)
    by, published = TABLES[args.table]
    print(side_by_side(records, by, published, args.first_seeds), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
