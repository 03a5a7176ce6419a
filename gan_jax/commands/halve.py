"""`python -m gan_jax halve FILE --out DIR`: successive halving (gan_jax.sweep.halving)."""

from __future__ import annotations

import argparse
import os
import sys

from gan_jax.commands.sweep import (add_ranking_arguments, chosen_devices, prepare_out,
                                    ranking_direction)
from gan_jax.records import results
from gan_jax.sweep.halving import DEFAULT_ETA, DEFAULT_RUNGS, halve, rung_steps
from gan_jax.sweep.spec import load_sweep


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="sweep file (TOML): its points, seeds and final steps")
    parser.add_argument("--out", required=True, help="output directory (results.jsonl, "
                        "states/, halving.md)")
    parser.add_argument("--metric", default="w1", help="final metric to rank by (w1)")
    parser.add_argument("--eta", type=int, default=DEFAULT_ETA,
                        help=f"keep the best 1/eta of the points at each rung ({DEFAULT_ETA})")
    parser.add_argument("--rungs", type=int, default=DEFAULT_RUNGS,
                        help=f"budgets, each eta times the one before ({DEFAULT_RUNGS})")
    parser.add_argument("--resume", action="store_true",
                        help="continue a halving in --out, skipping runs already recorded")
    add_ranking_arguments(parser)


def main(args: argparse.Namespace) -> int:
    higher_is_better = ranking_direction(args)
    sweep = load_sweep(args.file)
    budgets = rung_steps(sweep, args.eta, args.rungs)
    devices = chosen_devices(args.devices)
    path, recorded, notes, lock = prepare_out(args.out, sweep, results.RESULTS_FILE,
                                              resume=args.resume)
    try:
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        text = halve(sweep, budgets, args.eta, args.metric, higher_is_better, args.out, path,
                     recorded, devices=devices, max_chunk=args.max_chunk, quiet=args.quiet)
    finally:
        lock.release()
    print(text, end="", flush=True)
    try:
        results.write_atomic(os.path.join(args.out, "halving.md"), text)
    except OSError as e:
        print(f"warning: could not write {args.out}/halving.md: {e.strerror or e}",
              file=sys.stderr)
    return 0
