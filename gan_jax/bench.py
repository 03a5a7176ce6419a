"""Throughput benchmark: `python -m gan_jax bench [--json FILE]`.

A *run-step* is one generator update with its d_updates discriminator updates.
For each benchmark configuration and each number of runs per call R (doubling from 1 until
throughput stops growing, or a given list), it compiles the configuration's two programs for R
runs (training and evaluation, gan_jax.engine; compile time reported apart, each program
compiled afresh), times the compiled call `--repeats` times, and reports the median:

  run-steps/s = R * (steps + 1) / median seconds per call

The call is a whole run as the sweep engine runs it: training, history rows and the final
evaluation. For MLP configurations it also reports the achieved matrix-multiply FLOP rate (the
dots of the forward and backward passes, counted analytically) as a fraction of a large f32
matrix multiply measured on the same machine in the same process.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import config as config_lib
from gan_jax import data as data_lib
from gan_jax import cache, engine, methods, models, presets, results
from gan_jax.config import RunConfig
from gan_jax.errors import ConfigError, suggest

BENCH_CONFIGS = presets.BENCH_CONFIGS
def _methods() -> tuple[str, ...]:
    """Every registered method, and lookahead (k = 5 around alternating)."""
    return tuple(methods.METHODS) + ("lookahead",)


def method_variant(cfg: RunConfig, method: str) -> RunConfig:
    """cfg trained by `method`, with one discriminator step per generator step (so that a
    run-step is comparable across methods): 'lookahead' is lookahead-minimax, k = 5, around
    alternating steps."""
    if method == "lookahead":
        return cfg.replace(update="alternating", d_updates=1, lookahead_k=5)
    return cfg.replace(update=method, d_updates=1)


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


def dense_flops(sizes: list[int], n: int, *, weight_grads: bool, input_grads: str) -> int:
    """Matrix-multiply FLOPs of an MLP with layer sizes `sizes` on n samples.

    Forward: 2 n in out per layer. Backward: weight gradients (2 n in out per layer) if asked;
    input gradients for every layer ("all"), all but the first ("inner"), or none ("none").
    """
    layers = list(zip(sizes, sizes[1:]))
    fwd = sum(2 * n * i * o for i, o in layers)
    total = fwd
    if weight_grads:
        total += fwd
    if input_grads == "all":
        total += fwd
    elif input_grads == "inner":
        total += sum(2 * n * i * o for i, o in layers[1:])
    return total


def mlp_flops_per_run_step(cfg: RunConfig) -> int | None:
    """Dot FLOPs of one run-step (alternating updates) of an MLP-vs-MLP configuration (None
    for other methods and stabilisers, whose extra products are not counted here)."""
    if cfg.generator != "mlp" or cfg.discriminator != "mlp" or cfg.update != "alternating" or \
            cfg.pack != 1 or cfg.spectral_norm or cfg.nk_eta or cfg.noise_std or cfg.ema_beta \
            or cfg.d_pieces != 1 or cfg.g_norm != "none":
        return None
    dim, latent, b = data_lib.DIMS[cfg.data], models.latent_dim(cfg), cfg.batch_size
    g = [latent] + [cfg.g_width] * cfg.g_depth + [dim]
    d = [dim] + [cfg.d_width] * cfg.d_depth + [1]
    # D step: G forward on b, D forward + backward (weights, inner inputs) on 2b.
    d_step = (dense_flops(g, b, weight_grads=False, input_grads="none")
              + dense_flops(d, 2 * b, weight_grads=True, input_grads="inner"))
    # G step: D forward + backward to its input, G forward + backward (weights, inner inputs).
    g_step = (dense_flops(d, b, weight_grads=False, input_grads="all")
              + dense_flops(g, b, weight_grads=True, input_grads="inner"))
    return cfg.d_updates * d_step + g_step


def matmul_rate(n: int, repeats: int = 5) -> float:
    """Measured f32 FLOP/s of an n x n by n x n matrix multiply (median of repeats)."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    f = jax.jit(jnp.matmul)
    f(a, b).block_until_ready()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f(a, b).block_until_ready()
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times)


def measure(cfg: RunConfig, runs: int, repeats: int) -> dict:
    """Compile and time one configuration at `runs` runs per call: its training and
    evaluation programs, as the sweep engine runs them (gan_jax.engine)."""
    static = config_lib.static_part(cfg)
    hps = config_lib.stack_hparams([config_lib.traced_part(cfg)] * runs)
    hps = jax.tree.map(jnp.asarray, hps)
    keys = engine.seed_keys(np.arange(runs))
    # The run axis over every local device, as the sweep engine places it (when it divides).
    devices = jax.devices()
    sharding = None
    if len(devices) > 1 and runs % len(devices) == 0:
        sharding = engine.run_sharding(devices)
        hps, keys = jax.device_put((hps, keys), sharding)
    engine.forget_compiled()            # compile both programs afresh, as alone
    program = engine.compiled_run(static, sharding)
    t = time.perf_counter()
    compiled = program.compile(hps, keys)
    compile_s = time.perf_counter() - t
    jax.block_until_ready(compiled(hps, keys))          # warm-up
    times, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        jax.block_until_ready(compiled(hps, keys))
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    median = statistics.median(times)
    point = {
        "runs": runs, "compile_s": round(compile_s, 3),
        "compile_train_s": round(compiled.train_s, 3),
        "compile_eval_s": round(compiled.eval_s, 3),
        "median_s": median,
        "times_s": times, "run_steps_per_s": runs * static.run_steps / median,
        # Process CPU seconds per call (all threads): steadier than wall time on a busy machine.
        "cpu_s": statistics.median(cpu),
    }
    mem = compiled.device_bytes()
    if mem is not None:
        point["memory_bytes"] = mem
        point["memory_bytes_per_run"] = mem / runs
    return point


def _sizes(args, default_max: int):
    if args.runs:
        yield from (int(r) for r in args.runs.split(","))
        return
    r = 1
    while r <= (args.max_runs or default_max):
        yield r
        r *= 2


def machine_info() -> dict:
    dev = jax.devices()[0]
    return {"platform": dev.platform, "device_kind": dev.device_kind,
            "device_count": jax.device_count(), "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "jax": jax.__version__, "python": platform.python_version()}


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
            variants = list(_methods())
        for m in variants:
            if m not in _methods():
                raise ConfigError(f"--methods: got {m!r}; must be 'all' or among "
                                  f"{', '.join(_methods())}{suggest(m, _methods())}")
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
        from gan_jax import results
        from gan_jax.errors import OutputError
        try:
            results.write_atomic(args.json, json.dumps(report, indent=1))
        except OSError as e:
            raise OutputError(f"--json: cannot write {args.json}: {e.strerror or e}; the "
                              "table above is the benchmark's summary") from None
    return 0
