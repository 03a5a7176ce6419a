"""Throughput benchmark: `python -m gan_jax bench [--json FILE]`.

A *run-step* is one generator update with its d_updates discriminator updates.
For each benchmark configuration and each number of runs per call R (doubling from 1 until
throughput stops growing, or a given list), it compiles the configuration's two programs for R
runs (training and evaluation, gan_jax.engine.programs; compile time reported apart, each program
compiled afresh), times the compiled call `--repeats` times, and reports the median:

  run-steps/s = R * (steps + 1) / median seconds per call

The call is a whole run as the sweep engine runs it: training, history rows and the final
evaluation. For MLP configurations it also reports the achieved matrix-multiply FLOP rate (the
dots of the forward and backward passes, counted analytically) as a fraction of a large f32
matrix multiply measured on the same machine in the same process.
"""

from __future__ import annotations

import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import config as config_lib
from gan_jax.components import data as data_lib
from gan_jax import presets
from gan_jax.engine import programs as engine
from gan_jax.components import methods, models
from gan_jax.config import RunConfig

BENCH_CONFIGS = presets.BENCH_CONFIGS
def bench_methods() -> tuple[str, ...]:
    """Every registered method, and lookahead (k = 5 around alternating)."""
    return tuple(methods.METHODS) + ("lookahead",)


def method_variant(cfg: RunConfig, method: str) -> RunConfig:
    """cfg trained by `method`, with one discriminator step per generator step (so that a
    run-step is comparable across methods): 'lookahead' is lookahead-minimax, k = 5, around
    alternating steps."""
    if method == "lookahead":
        return cfg.replace(update="alternating", d_updates=1, lookahead_k=5)
    return cfg.replace(update=method, d_updates=1)


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
    evaluation programs, as the sweep engine runs them (gan_jax.engine.programs)."""
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


def machine_info() -> dict:
    dev = jax.devices()[0]
    return {"platform": dev.platform, "device_kind": dev.device_kind,
            "device_count": jax.device_count(), "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "jax": jax.__version__, "python": platform.python_version()}
