"""`python -m gan_jax confirm FILE --out DIR`: the top K points of a finished sweep, on fresh seeds.

The best of many points, judged on the seeds that chose it, is optimistic: among 64 points of
similar quality the one whose seeds happened to do best wins, and its estimate carries that
luck (the winner's curse). This command ranks the points of a finished sweep (a search, a grid
or both) by the mean of a metric over their seeds, runs the top K again on seeds the sweep
never used, and reports each point's estimate on the seeds that chose it and on the fresh ones,
with intervals, and by how much the estimate fell. The fresh seeds' numbers are the ones to
report for "the best learning rate". See docs/sweeps.md, "Selection without the winner's curse".
"""

from __future__ import annotations

import json
import math
from typing import NamedTuple

import numpy as np

from gan_jax.report import stats
from gan_jax.config import RunConfig
from gan_jax.core.errors import ConfigError
from gan_jax.sweep.spec import MAX_SEED, Sweep

CONFIRM_DIR = "confirm"              # under the sweep's --out, unless --confirm-out
DEFAULT_TOP = 5
DEFAULT_SEEDS = 16


class Point(NamedTuple):
    """One point of a sweep (a configuration) with its metric over the seeds of one set."""

    cfg: RunConfig
    values: tuple[float, ...]     # per seed; a diverged run's value is nan
    diverged: int

    @property
    def finite(self) -> np.ndarray:
        x = np.asarray(self.values, dtype=float)
        return x[np.isfinite(x)]


def _key(config: dict) -> str:
    return json.dumps(config, sort_keys=True)


def collect(records: list[dict], configs, seeds, metric: str) -> list[Point]:
    """Each configuration's values of `metric` over `seeds`, from records (diverged runs and
    non-finite values as nan). Raises ConfigError naming what is missing."""
    wanted = {_key(c.to_dict()): c for c in configs}
    by_point: dict[str, dict[int, dict]] = {k: {} for k in wanted}
    for r in records:
        k = _key(r["config"])
        if k in by_point and r["seed"] in seeds:
            by_point[k][r["seed"]] = r
    missing = sum(len(seeds) - len(v) for v in by_point.values())
    if missing:
        raise ConfigError(f"{missing} of {len(wanted) * len(seeds)} runs are not recorded; "
                          "finish the sweep first (sweep ... --resume)")
    points = []
    for k, cfg in wanted.items():
        values, diverged = [], 0
        for seed in seeds:
            r = by_point[k][seed]
            if r["status"] == "diverged":
                diverged += 1
                values.append(math.nan)
                continue
            if metric not in r["final"]:
                raise ConfigError(f"--metric: got {metric!r}; the records' final metrics are "
                                  f"{', '.join(sorted(r['final']))}")
            values.append(float(r["final"][metric]))
        points.append(Point(cfg, tuple(values), diverged))
    return points


def score(point: Point, higher_is_better: bool) -> float:
    """The mean over every seed, a diverged run or a non-finite value counting as the worst
    possible: a point that failed on any seed ranks after every point that did not."""
    worst = -math.inf if higher_is_better else math.inf
    x = [v if math.isfinite(v) else worst for v in point.values]
    return float(np.mean(x))


def select(points: list[Point], top: int, higher_is_better: bool) -> list[int]:
    """Indices of the `top` best points by `score` (ties: the earlier point first)."""
    keyed = [(-score(p, True) if higher_is_better else score(p, False), i)
             for i, p in enumerate(points)]
    return [i for _, i in sorted(keyed)[:top]]


def fresh_seeds(used, count: int) -> tuple[int, ...]:
    """`count` seeds the sweep never used: those right after its largest seed."""
    start = max(used) + 1
    if start + count - 1 > MAX_SEED:
        raise ConfigError(f"--seeds: got {count}; the sweep's seeds reach {max(used)}, and "
                          "fresh seeds after them must stay below 2**32")
    return tuple(range(start, start + count))


class Row(NamedTuple):
    """One selected point: its estimate on the seeds that chose it and on fresh seeds."""

    rank: int                     # 1 = selected as best
    label: str
    chosen: stats.Summary         # over the sweep's seeds (diverged runs left out)
    fresh: stats.Summary          # over the fresh seeds
    chosen_diverged: int
    fresh_diverged: int
    fell: stats.Interval          # how much worse the fresh estimate is (> 0: worse)
    fresh_rank: int               # its rank among the selected points on the fresh seeds


def compare(chosen: list[Point], fresh: list[Point], labels: list[str],
            higher_is_better: bool) -> list[Row]:
    """A Row per selected point (in selection order)."""
    fresh_order = select(fresh, len(fresh), higher_is_better)
    rows = []
    for rank, (a, b, label) in enumerate(zip(chosen, fresh, labels), start=1):
        # Worse on fresh seeds is positive in either direction.
        x, y = (a.finite, b.finite) if higher_is_better else (b.finite, a.finite)
        fell = stats.unpaired_difference(x, y)
        rows.append(Row(rank, label, stats.summarize(a.finite), stats.summarize(b.finite),
                        a.diverged, b.diverged, fell, fresh_order.index(rank - 1) + 1))
    return rows


def point_labels(sweep: Sweep, cfgs: list[RunConfig]) -> list[str]:
    """Each configuration as the fields where the sweep's configurations differ."""
    dicts = [c.to_dict() for c in sweep.configs]
    varying = [k for k in dicts[0] if len({json.dumps(d[k]) for d in dicts}) > 1]
    return [", ".join(f"{k}={c.to_dict()[k]}" for k in varying) or "(one point)" for c in cfgs]


def report(rows: list[Row], metric: str, higher_is_better: bool, n_chosen: int, n_fresh: int,
           n_points: int) -> str:
    """The confirmation as markdown: a table and what it says about the winner."""
    f = stats.fmt
    better = "higher" if higher_is_better else "lower"
    lines = [f"Top {len(rows)} of {n_points} points by mean {metric} ({better} is better) on "
             f"the sweep's {n_chosen} seeds, run again on {n_fresh} fresh seeds; 95% "
             "percentile-bootstrap intervals of the mean. 'fell by': how much worse the "
             "fresh estimate is (negative: better; unpaired bootstrap).", "",
             f"| rank | point | chosen on: {metric} [95% CI] | fresh: {metric} [95% CI] | "
             "fell by [95% CI] | fresh rank |",
             "| ---: | --- | --- | --- | --- | ---: |"]

    def cell(s: stats.Summary, diverged: int) -> str:
        text = f"{f(s.mean)} [{f(s.ci_low)}, {f(s.ci_high)}] (n={s.n})"
        return text + (f", {diverged} diverged" if diverged else "")

    for r in rows:
        lines.append(f"| {r.rank} | {r.label} | {cell(r.chosen, r.chosen_diverged)} | "
                     f"{cell(r.fresh, r.fresh_diverged)} | {f(r.fell.value)} "
                     f"[{f(r.fell.ci_low)}, {f(r.fell.ci_high)}] | {r.fresh_rank} |")
    best = rows[0]
    change = best.fell.value
    share = (f" ({100 * abs(change) / abs(best.chosen.mean):.0f}%)"
             if best.chosen.mean and math.isfinite(change) else "")
    lines += ["", f"The selected best point ({best.label}) had mean {metric} "
              f"{f(best.chosen.mean)} on the seeds that chose it and {f(best.fresh.mean)} on "
              "fresh seeds: "
              + (f"the estimate fell by {f(change)}{share}. " if not change < 0 else
                 f"the estimate did not fall; it is better by {f(-change)}{share} on fresh "
                 "seeds. ")
              + ("It is still the best of the selected points on fresh seeds."
                 if best.fresh_rank == 1 else
                 f"On fresh seeds it ranks {best.fresh_rank} of {len(rows)}; report the "
                 "fresh-seed numbers.")]
    return "\n".join(lines) + "\n"
