"""`python -m gan_jax reproduce-seed`: the seed notebook's two runs over many seeds, with tables."""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import time

import jax

from gan_jax.analysis.seed_repro import (clipping_example, comparison_table, final_table,
                                         history_table, objective_table, saturation_table,
                                         SEED_CONFIGS, SWEEP)
from gan_jax.core.errors import ConfigError
from gan_jax.engine import programs as engine
from gan_jax.records import results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--seeds", type=int, default=64, help="seeds per configuration (64)")


MAX_SEEDS = 2**16


def _prepare_out(path: str) -> str:
    try:
        results.ensure_writable_dir(path)
    except OSError as e:
        raise ConfigError(f"--out: cannot write to {path!r}: {e.strerror or e}") from None
    target = os.path.join(path, results.RESULTS_FILE)
    others = results.sweep_names(target) - {SWEEP}
    if others:
        raise ConfigError(f"--out: {target!r} holds results of another sweep "
                          f"({', '.join(sorted(map(str, others)))}); choose another directory")
    return target


def main(args: argparse.Namespace) -> int:
    # All seeds of a configuration run in one call: 2**16 runs of the seed's small programs
    # fit a CPU's memory; 1e11 would fail only after the output directory was made.
    if not 2 <= args.seeds <= MAX_SEEDS:
        raise ConfigError(f"--seeds: got {args.seeds}; must be an integer in [2, {MAX_SEEDS:,}] "
                          "(all seeds run in one call)")
    target = _prepare_out(args.out)
    t0 = time.perf_counter()
    seeds = list(range(args.seeds))
    timing = {}

    def run(name: str):
        t = time.perf_counter()
        out = engine.run_batch([SEED_CONFIGS[name]] * len(seeds), seeds)
        timing[name] = time.perf_counter() - t
        return out

    # The two programs compile and run side by side (XLA releases the GIL): on a 2-core CPU
    # each otherwise leaves a core idle. Ctrl-C does not wait for them (cli.exit_process).
    pool = concurrent.futures.ThreadPoolExecutor(len(SEED_CONFIGS))
    try:
        outs = dict(zip(SEED_CONFIGS, pool.map(run, SEED_CONFIGS)))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    records = [r for name, cfg in SEED_CONFIGS.items()
               for r in results.make_records(SWEEP, [cfg] * len(seeds), seeds, outs[name])]
    results.write_atomic(target, "".join(map(results.to_line, records)))

    n_div = sum(r["status"] == "diverged" for r in records)
    parts = [f"# The seed notebook, reproduced over {args.seeds} seeds per configuration\n",
             "Each configuration is one `jit(vmap(train))` call. Loss columns use the seed's "
             "sign (maximised objectives: L_D = -loss_d, L_G = -loss_g). Cells of the history "
             "tables: median [25%, 75%] over seeds.\n"]
    for name, cfg in SEED_CONFIGS.items():
        parts += [f"## Training history: {name} generator\n", history_table(outs[name], cfg), ""]
    for name in SEED_CONFIGS:
        parts += [f"## Final statistics: {name} generator "
                  f"({SEED_CONFIGS[name].eval_samples} fresh samples)\n",
                  final_table(outs[name], name), ""]
    parts += ["## Linear vs piecewise\n", comparison_table(outs), "",
              "## Saturation (exact: autodiff of the library's generator losses)\n",
              saturation_table(), "",
              "## Objectives at the trained piecewise parameters (fresh batch of 256)\n",
              objective_table(outs["piecewise"], SEED_CONFIGS["piecewise"], seeds), "",
              "## WGAN intuition\n", clipping_example(), ""]
    elapsed = time.perf_counter() - t0
    parts.append(f"Runs: {len(records)} ({n_div} diverged). Wall time {elapsed:.1f} s "
                 f"(linear {timing['linear']:.1f} s, piecewise {timing['piecewise']:.1f} s, "
                 f"compile included, side by side) on {jax.devices()[0].platform}.\n")
    report = "\n".join(parts)
    results.write_atomic(os.path.join(args.out, "report.md"), report)
    sys.stdout.write(report)
    return 0
