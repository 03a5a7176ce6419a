"""Successive halving over a sweep's points (`python -m gan_jax halve FILE --out DIR`).

Successive halving (Jamieson & Talwalkar 2016; the inner loop of Hyperband, Li et al. 2018)
spends a budget of steps where it matters: every point of the sweep (its grid, its [search],
or both) trains for a first budget on all of the sweep's seeds; the best 1/eta of the points,
by the mean of a final metric over the seeds (a diverged run counting as the worst,
`confirm.score`), continue to eta times the steps; and so on, until the survivors reach the
sweep's own `steps`. Rung k trains `steps / eta^(rungs - 1 - k)` steps.

A survivor is not trained again from step 0: its runs continue from the states the rung
before kept (gan_jax.sweep.states), so a run costs the steps of its last rung, and its record
equals that of a run trained for those steps from the start in chunks of the same size (later
rungs have fewer runs, so smaller chunks: docs/sweeps.md). Every rung's records are kept in
OUT/results.jsonl, each with a field `rung` (0 first); `table` reads each run's last rung
(results.last_rungs). The run is resumable: run the same command with --resume.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time

from gan_jax.records import results
from gan_jax.report import stats
from gan_jax.core.errors import ConfigError
from gan_jax.sweep.confirm import collect, point_labels, score, select
from gan_jax.sweep.plan import DEFAULT_MAX_CHUNK, plan_sweep
from gan_jax.sweep.run import Progress, run_sweep
from gan_jax.sweep.spec import Sweep
from gan_jax.sweep.states import Store, continuable

DEFAULT_ETA = 3
DEFAULT_RUNGS = 3


def rung_steps(sweep: Sweep, eta: int, rungs: int) -> list[int]:
    """Each rung's steps, the last the sweep's own; raises ConfigError if a rung's steps would
    not be a whole multiple of the points' log_every (a rung's last row must be a row of the
    rungs after it), or if a point cannot continue (states.continuable)."""
    if eta < 2:
        raise ConfigError(f"--eta: got {eta}; must be an integer >= 2 (the fraction 1/eta of "
                          "the points kept at each rung)")
    if rungs < 2:
        raise ConfigError(f"--rungs: got {rungs}; must be at least 2")
    steps = {c.steps for c in sweep.configs}
    if len(steps) != 1:
        raise ConfigError(f"steps: got {sorted(steps)} across the sweep's points; successive "
                          "halving needs one final budget (do not sweep steps)")
    full = steps.pop()
    every = math.lcm(*{c.log_every for c in sweep.configs})
    first = full // eta ** (rungs - 1)
    if full % eta ** (rungs - 1) or first % every:
        raise ConfigError(f"--rungs: got {rungs}; with --eta {eta} the first rung trains "
                          f"{full}/{eta}**{rungs - 1} steps, which must be a whole multiple of "
                          f"log_every = {every}; choose fewer rungs, another eta, or steps")
    for cfg in sweep.configs:
        why = continuable(cfg)
        if why is not None:
            raise ConfigError(f"noise_anneal: got True; a point cannot continue from a rung "
                              f"to the next: {why}")
    return [full // eta ** (rungs - 1 - k) for k in range(rungs)]


def halve(sweep: Sweep, budgets: list[int], eta: int, metric: str, higher_is_better: bool,
          out: str, path: str, recorded: set[str], *, devices, max_chunk: int = DEFAULT_MAX_CHUNK,
          quiet: bool = True) -> str:
    """Run the rungs (each a sweep of the surviving points at its budget, continued from the
    rung before's kept states) and return the report as markdown."""
    points = list(range(len(sweep.configs)))
    seeds = len(sweep.seeds)
    rows, computed, t0 = [], 0, time.perf_counter()
    for rung, steps in enumerate(budgets):
        cfgs = tuple(sweep.configs[i].replace(steps=steps) for i in points)
        part = dataclasses.replace(sweep, configs=cfgs)
        plan = plan_sweep(part, devices=devices, max_chunk=max_chunk, recorded_ids=recorded)
        store = Store(out, keep=rung < len(budgets) - 1)
        report = run_sweep(plan, path, states=store, record_fields={"rung": rung},
                           progress=Progress(plan, enabled=False if quiet else None))
        for note in store.summary():
            print(f"note: {note}", file=sys.stderr)
        computed += report.run_steps
        mine = [r for r in results.load_results(out)[0] if r["sweep"] == sweep.name]
        scored = collect(mine, cfgs, sweep.seeds, metric)
        keep = (select(scored, max(1, math.ceil(len(points) / eta)), higher_is_better)
                if rung < len(budgets) - 1 else select(scored, 1, higher_is_better))
        best = scored[keep[0]]
        rows.append((rung, steps, len(points), len(points) * seeds, report.run_steps,
                     report.continued, point_labels(sweep, [best.cfg])[0],
                     score(best, higher_is_better)))
        points = [points[i] for i in keep] if rung < len(budgets) - 1 else points
    full = len(sweep.configs) * seeds * (budgets[-1] + 1)
    return report_text(rows, metric, higher_is_better, eta, computed, full,
                       time.perf_counter() - t0)


def report_text(rows, metric: str, higher_is_better: bool, eta: int, computed: int, full: int,
                wall_s: float) -> str:
    """The halving as markdown: per rung its budget, points, runs, run-steps and best point."""
    better = "higher" if higher_is_better else "lower"
    lines = [f"Successive halving by mean final {metric} ({better} is better), eta = {eta}:",
             "", f"| rung | steps | points | runs | run-steps trained now | runs continued | "
             f"best point | its mean {metric} |", "|---|---|---|---|---|---|---|---|"]
    for rung, steps, n, runs, done, cont, label, value in rows:
        lines.append(f"| {rung} | {steps} | {n} | {runs} | {done:,} | {cont} | {label} | "
                     f"{stats.fmt(value)} |")
    lines += ["", f"Run-steps trained by this process: {computed:,}; every point for the full "
              f"budget would train {full:,} ({computed / full:.1%} of it); wall "
              f"{wall_s:.1f} s, compilations included."]
    return "\n".join(lines) + "\n"
