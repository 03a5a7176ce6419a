"""The Sinkhorn divergence's cost per evaluation and its finite-sample floor, per target.

    PYTHONPATH=. python experiments/sinkhorn_divergence.py [--sizes 256 1024] [--seeds 4]

For each registered eps (metrics.SINKHORN_EPS) and sample size N:
- cost: one compiled program of the metric (`sinkhorn_epsE` as training computes it) vmapped
  over --seeds pairs of N-point samples of ffjord_8gaussians; compile time, then the best of
  three runs, per run;
- floor: S_eps of two independent N-point samples of the same target, mean and standard
  error over --seeds pairs (keys 2s and 2s + 1 of seed s), for targets of different scales.
  This is what a perfect generator scores: the divergence's finite-sample bias.
Prints markdown tables (docs/targets.md, "The Sinkhorn divergence").
"""

from __future__ import annotations

import functools
import sys
import time

import jax
import numpy as np

from gan_jax.commands import cli
from gan_jax.components import data, metrics
from gan_jax.report import tables

TARGETS = ("bimodal_1d", "ring_2d", "grid_2d", "ffjord_8gaussians", "ffjord_checkerboard")


def pairs(name: str, n: int, seeds: int):
    """f32[S, N, D] twice: independent samples of a target (keys 2s and 2s + 1)."""
    target = data.preset(name).build()
    draw = lambda k: target.sample(jax.random.key(k), n)
    return (np.stack([draw(2 * s) for s in range(seeds)]),
            np.stack([draw(2 * s + 1) for s in range(seeds)]))


def program(eps: float):
    return jax.jit(jax.vmap(functools.partial(metrics.sinkhorn_divergence, eps=eps)))


def run(args) -> int:
    cost_rows, floor_rows = [], []
    for n in args.sizes:
        for eps in metrics.SINKHORN_EPS:
            x, y = pairs("ffjord_8gaussians", n, args.seeds)
            t0 = time.perf_counter()
            compiled = program(eps).lower(x, y).compile()
            compile_s = time.perf_counter() - t0
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                jax.block_until_ready(compiled(x, y))
                times.append(time.perf_counter() - t0)
            cost_rows.append([str(n), f"{eps:g}", f"{compile_s:.1f}",
                              f"{min(times) / args.seeds * 1e3:.0f}"])
            row = [str(n), f"{eps:g}"]
            for name in TARGETS:
                x, y = pairs(name, n, args.seeds)
                s = np.asarray(compiled(x, y) if x.shape[2] == 2 else program(eps)(x, y),
                               np.float64)
                row.append(f"{s.mean():.4f} ± {s.std(ddof=1) / np.sqrt(len(s)):.4f}")
            floor_rows.append(row)
            print(" | ".join(cost_rows[-1] + row[2:]), file=sys.stderr, flush=True)
    print(tables.markdown_table(["N", "eps", "compile (s)", "per run (ms)"], cost_rows))
    print()
    print(tables.markdown_table(["N", "eps", *TARGETS], floor_rows))
    return 0


def main():
    def add(parser):
        parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
        parser.add_argument("--seeds", type=int, default=4)

    cli.run_script(__doc__, add, run)


if __name__ == "__main__":
    main()
