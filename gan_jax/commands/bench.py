"""`python -m gan_jax bench`: throughput in run-steps per second against runs per call."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys

import jax

from gan_jax.components import methods
from gan_jax.core.errors import ConfigError, suggest
from gan_jax.engine import cache
from gan_jax.engine.bench import (BENCH_CONFIGS, bench_methods, machine_info, matmul_rate, measure,
                                  method_variant, mlp_flops_per_run_step)
from gan_jax.records import results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--configs", default=",".join(BENCH_CONFIGS),
                        help=f"comma-separated, from: {', '.join(BENCH_CONFIGS)}")
    parser.add_argument("--runs", default=None,
                        help="comma-separated runs per call (default: 1, 2, 4, ... to saturation)")
    parser.add_argument("--max-runs", type=int, default=None,
                        help="largest runs per call when doubling (default 4096 CPU, 65536 GPU)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per point (3)")
    parser.add_argument("--steps", type=int, default=None,
                        help="override each configuration's steps (log_every follows)")
    parser.add_argument("--matmul-size", type=int, default=2048,
                        help="n of the n x n reference matrix multiply (2048)")
    parser.add_argument("--methods", default=None,
                        help="comma-separated training methods to compare on each config, with "
                             "one discriminator step per generator step: any update of "
                             f"{', '.join(methods.METHODS)}, 'lookahead' (k = 5 around alternating), "
                             "or 'all'")
    parser.add_argument("--json", default=None, help="write the full results to this file")


def _sizes(args, default_max: int):
    if args.runs:
        yield from (int(r) for r in args.runs.split(","))
        return
    r = 1
    while r <= (args.max_runs or default_max):
        yield r
        r *= 2


def _check_json_target(path: str) -> None:
    """Refuse a --json path that cannot be written, before any benchmark runs."""
    if os.path.isdir(path):
        raise ConfigError(f"--json: {path!r} is a directory; give a file name")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ConfigError(f"--json: {parent!r} is not a directory")
    try:
        results.ensure_writable_dir(parent)
    except OSError as e:
        raise ConfigError(f"--json: cannot write to {parent!r}: {e.strerror or e}") from None


def main(args: argparse.Namespace) -> int:
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    for n in names:
        if n not in BENCH_CONFIGS:
            raise ConfigError(f"--configs: got {n!r}; must be among {', '.join(BENCH_CONFIGS)}"
                              f"{suggest(n, BENCH_CONFIGS)}")
    if args.runs:
        try:
            runs = [int(r) for r in args.runs.split(",")]
        except ValueError:
            raise ConfigError(f"--runs: got {args.runs!r}; must be comma-separated integers")
        if min(runs) < 1:
            raise ConfigError(f"--runs: got {args.runs!r}; every value must be >= 1")
    variants = [None]
    if args.methods:
        variants = [m.strip() for m in args.methods.split(",") if m.strip()]
        if variants == ["all"]:
            variants = list(bench_methods())
        for m in variants:
            if m not in bench_methods():
                raise ConfigError(f"--methods: got {m!r}; must be 'all' or among "
                                  f"{', '.join(bench_methods())}{suggest(m, bench_methods())}")
    if args.repeats < 1:
        raise ConfigError(f"--repeats: got {args.repeats}; must be >= 1")
    if args.steps is not None and args.steps < 1:
        raise ConfigError(f"--steps: got {args.steps}; must be >= 1")
    if args.json:
        _check_json_target(args.json)       # before minutes of benchmark, not after
    # Compile times are reported for an empty cache: the persistent cache is off here.
    cache.configure("off")
    gpu = jax.devices()[0].platform != "cpu"
    report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine_info(), "configs": {}}
    rate = matmul_rate(args.matmul_size)
    report["matmul_flops_per_s"] = rate
    m = report["machine"]
    print(f"# {m['device_count']} x {m['device_kind']} ({m['platform']}), "
          f"{m['cpu_count']} CPUs; f32 matmul {args.matmul_size}^3: "
          f"{rate / 1e9:.1f} GFLOP/s", file=sys.stderr)
    rows = []
    for name, cfg in ((n if v is None else f"{n}/{v}",
                       BENCH_CONFIGS[n] if v is None else method_variant(BENCH_CONFIGS[n], v))
                      for n in names for v in variants):
        if args.steps is not None:
            cfg = cfg.replace(steps=args.steps, log_every=args.steps)
        flops = mlp_flops_per_run_step(cfg)
        points = []
        best_history: list[float] = []
        for runs in _sizes(args, 65536 if gpu else 4096):
            p = measure(cfg, runs, args.repeats)
            if flops is not None:
                p["flops_per_s"] = flops * p["run_steps_per_s"]
                p["fraction_of_matmul"] = p["flops_per_s"] / rate
            points.append(p)
            frac = f"{p['fraction_of_matmul']:.0%}" if flops is not None else "-"
            print(f"{name:24s} runs={runs:6d}  {p['run_steps_per_s']:14,.0f} run-steps/s  "
                  f"compile {p['compile_train_s']:5.2f} + {p['compile_eval_s']:5.2f} s  "
                  f"call {p['median_s']:.3f} s  matmul {frac}", file=sys.stderr)
            rows.append((name, runs, p["run_steps_per_s"],
                         f"{p['compile_train_s']:.2f} + {p['compile_eval_s']:.2f}", frac))
            # Saturation: stop doubling once two doublings in a row gained < 5%.
            best_history.append(p["run_steps_per_s"])
            if not args.runs and len(best_history) >= 3:
                b = best_history
                if b[-1] < 1.05 * max(b[:-1]) and b[-2] < 1.05 * max(b[:-2]):
                    break
        report["configs"][name] = {"config": cfg.to_dict(), "run_steps": cfg.steps + 1,
                                   "matmul_flops_per_run_step": flops, "points": points}
    print("| config | runs/call | run-steps/s | compile s (training + evaluation) | of matmul |")
    print("|---|---|---|---|---|")
    for name, runs, rs, cs, frac in rows:
        print(f"| {name} | {runs} | {rs:,.0f} | {cs} | {frac} |")
    if args.json:
        from gan_jax.records import results
        from gan_jax.core.errors import OutputError
        try:
            results.write_atomic(args.json, json.dumps(report, indent=1))
        except OSError as e:
            raise OutputError(f"--json: cannot write {args.json}: {e.strerror or e}; the "
                              "table above is the benchmark's summary") from None
    return 0
