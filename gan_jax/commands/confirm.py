"""`python -m gan_jax confirm`: re-run a finished sweep's top K points on fresh seeds."""

from __future__ import annotations

import argparse
import os
import sys

from gan_jax.commands.sweep import (add_ranking_arguments, chosen_devices, prepare_out,
                                    ranking_direction)
from gan_jax.core.errors import ConfigError
from gan_jax.records import results
from gan_jax.sweep.confirm import (collect, compare, CONFIRM_DIR, DEFAULT_SEEDS, DEFAULT_TOP,
                                   fresh_seeds, point_labels, report, select)
from gan_jax.sweep.plan import plan_sweep
from gan_jax.sweep.run import Progress, run_sweep
from gan_jax.sweep.spec import load_sweep, Sweep


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
    add_ranking_arguments(parser)


def main(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise ConfigError(f"--top: got {args.top}; must be at least 1")
    if args.seeds < 2:
        raise ConfigError(f"--seeds: got {args.seeds}; must be at least 2 (an interval needs "
                          "two seeds)")
    higher_is_better = ranking_direction(args)
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
