"""Where one call of a bench configuration spends its time, per XLA operation.

    python experiments/profile_run.py --config seed_linear --runs 1024 [--top 25]

Compiles the configuration at --runs runs per call (one device, as `bench` with
XLA_FLAGS=--xla_force_host_platform_device_count=1), runs it once to warm up, then once under
`jax.profiler` and prints the thread time of each XLA operation, summed over the call, and the
totals by how often an operation ran: steps + 1 times (the training step), once per history
row, once (the final evaluation). Thread times add up over the CPU's threads, so their sum
exceeds the wall time when XLA runs operations side by side.
"""

from __future__ import annotations

import collections
import glob
import os
import tempfile
import time

import jax
import numpy as np

from gan_jax import config
from gan_jax.engine import bench, programs as engine
from gan_jax.commands.cli import run_script
from gan_jax.core.errors import ConfigError


def add_arguments(parser):
    parser.add_argument("--config", default="seed_linear", help=", ".join(bench.BENCH_CONFIGS))
    parser.add_argument("--runs", type=int, default=1024, help="runs per call (1024)")
    parser.add_argument("--top", type=int, default=25, help="operations listed (25)")


def profile(args) -> int:
    if args.config not in bench.BENCH_CONFIGS:
        raise ConfigError(f"--config: got {args.config!r}; must be among "
                          f"{', '.join(bench.BENCH_CONFIGS)}")
    if args.runs < 1:
        raise ConfigError(f"--runs: got {args.runs}; must be >= 1")
    cfg = bench.BENCH_CONFIGS[args.config]
    static = config.static_part(cfg)
    hps = config.stack_hparams([config.traced_part(cfg)] * args.runs)
    keys = engine.seed_keys(np.arange(args.runs))
    fn = jax.jit(engine.batched_run(static)).lower(hps, keys).compile()
    jax.block_until_ready(fn(hps, keys))
    with tempfile.TemporaryDirectory() as trace_dir:
        t = time.perf_counter()
        with jax.profiler.trace(trace_dir):
            jax.block_until_ready(fn(hps, keys))
        wall = time.perf_counter() - t
        path, = glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True)
        data = jax.profiler.ProfileData.from_file(path)
    total, count = collections.Counter(), collections.Counter()
    for plane in data.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_XLAEigen"):   # XLA's CPU worker threads
                continue
            for event in line.events:
                if event.name.startswith(("ThunkExecutor", "SlinkyThreadPool")):
                    continue
                total[event.name] += event.duration_ns
                count[event.name] += 1
    steps = static.steps + 1
    print(f"{args.config}, {args.runs} runs, one call: {wall:.2f} s wall under the profiler; "
          f"{args.runs * steps / wall:,.0f} run-steps/s")
    print(f"{'thread ms':>10s} {'calls':>6s}  operation")
    for name, ns in total.most_common(args.top):
        print(f"{ns / 1e6:10.1f} {count[name]:6d}  {name}")
    parts = collections.Counter()
    for name, ns in total.items():
        c = count[name]
        part = ("training step" if c == steps else "history rows" if c == static.num_logs
                else "final evaluation" if c == 1 else "other")
        parts[part] += ns
    print("by part (thread s): " + ", ".join(f"{k} {v / 1e9:.2f}" for k, v in parts.most_common()))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
    run_script(__doc__, add_arguments, profile)
