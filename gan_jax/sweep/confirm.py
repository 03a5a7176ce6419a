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

import argparse
import json
import math
import os
import sys
from typing import NamedTuple

import numpy as np

from gan_jax import results, stats, tables
from gan_jax.config import RunConfig
from gan_jax.errors import ConfigError
from gan_jax.sweep.command import chosen_devices, prepare_out
from gan_jax.sweep.plan import DEFAULT_MAX_CHUNK, plan_sweep
from gan_jax.sweep.run import Progress, run_sweep
from gan_jax.sweep.spec import MAX_SEED, Sweep, load_sweep

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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="the sweep file (TOML) whose results are in --out")
    parser.add_argument("--out", required=True,
                        help="the finished sweep's output directory (its results files)")
    parser.add_argument("--metric", default="w1", help="final metric to rank by (w1)")
    parser.add_argument("--top", type=int, default=DEFAULT_TOP, metavar="K",
                        help=f"points to confirm ({DEFAULT_TOP})")
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, metavar="N",
                        help=f"fresh seeds per point ({DEFAULT_SEEDS}), after the sweep's "
                             "largest seed")
    parser.add_argument("--confirm-out", metavar="DIR",
                        help=f"where the fresh runs and the report go (OUT/{CONFIRM_DIR})")
    direction = parser.add_mutually_exclusive_group()
    direction.add_argument("--higher-is-better", action="store_true",
                           help="the metric is better higher (default: its known direction)")
    direction.add_argument("--lower-is-better", action="store_true",
                           help="the metric is better lower (default: its known direction)")
    parser.add_argument("--max-chunk", type=int, default=DEFAULT_MAX_CHUNK, metavar="N",
                        help=f"at most N runs per call ({DEFAULT_MAX_CHUNK})")
    parser.add_argument("--devices", type=int, metavar="N",
                        help="shard runs over the first N local devices (default: all)")
    parser.add_argument("--quiet", action="store_true", help="no progress display")


def main(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise ConfigError(f"--top: got {args.top}; must be at least 1")
    if args.seeds < 2:
        raise ConfigError(f"--seeds: got {args.seeds}; must be at least 2 (an interval needs "
                          "two seeds)")
    if args.max_chunk < 1:
        raise ConfigError(f"--max-chunk: got {args.max_chunk}; must be at least 1")
    higher = (args.metric,) if args.higher_is_better else ()
    lower = (args.metric,) if args.lower_is_better else ()
    higher_is_better = tables.direction(args.metric, higher, lower)
    sweep = load_sweep(args.file)
    records, notes = results.load_results(args.out)
    for note in results.summarize_problems(notes):
        print(f"note: {note}", file=sys.stderr)
    mine = [r for r in records if r["sweep"] == sweep.name]
    chosen_points = collect(mine, sweep.configs, sweep.seeds, args.metric)
    top = select(chosen_points, min(args.top, len(chosen_points)), higher_is_better)
    seeds = fresh_seeds(sweep.seeds, args.seeds)
    cfgs = [chosen_points[i].cfg for i in top]

    devices = chosen_devices(args.devices)     # only once the input is checked
    out = args.confirm_out or os.path.join(args.out, CONFIRM_DIR)
    confirm = Sweep(f"{sweep.name} (confirm)", sweep.path, seeds, (), tuple(cfgs))
    path, recorded, notes, lock = prepare_out(out, confirm, results.RESULTS_FILE, resume=True)
    try:
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        plan = plan_sweep(confirm, devices=devices, max_chunk=args.max_chunk,
                          recorded_ids=recorded)
        run_sweep(plan, path, progress=Progress(plan, enabled=False if args.quiet else None))
    finally:
        lock.release()
    fresh_records = [r for r in results.load_results(out)[0] if r["sweep"] == confirm.name]
    fresh_points = collect(fresh_records, cfgs, seeds, args.metric)
    rows = compare([chosen_points[i] for i in top], fresh_points, point_labels(sweep, cfgs),
                   higher_is_better)
    text = report(rows, args.metric, higher_is_better, len(sweep.seeds), len(seeds),
                  len(chosen_points))
    print(text, end="", flush=True)
    try:
        results.write_atomic(os.path.join(out, "confirm.md"), text)
        print(f"wrote {os.path.join(out, 'confirm.md')}", file=sys.stderr)
    except OSError as e:
        print(f"warning: could not write {out}/confirm.md: {e.strerror or e}", file=sys.stderr)
    return 0
