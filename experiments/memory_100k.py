"""Peak resident memory and wall time of a sweep of the seed's linear run over many seeds.

    PYTHONPATH=. python experiments/memory_100k.py [--seeds 100000] [--out DIR] [sweep flags]

Writes a sweep file of the seed notebook's linear configuration (gan_jax.presets, as
reproduce-seed runs it) with
`--seeds` seeds, runs `python -m gan_jax sweep` on it in a child process, and reports the
child's peak resident set size (getrusage), wall time and CPU time. Chunking is what keeps
memory flat: the default 1 GiB per-device budget bounds each call, whatever the seed count.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from gan_jax import presets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sweep_text(seeds: int) -> str:
    """A sweep file of the seed notebook's linear run (gan_jax.presets.SEED_CONFIGS) as is."""
    base = presets.non_default_fields(presets.SEED_CONFIGS["linear"])
    lines = [f'name = "memory-{seeds}"', f"seeds = {seeds}", "", "[base]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in base.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100_000)
    parser.add_argument("--out", default=os.path.join("results", "memory_100k"))
    args, sweep_flags = parser.parse_known_args(argv)
    os.makedirs(args.out, exist_ok=True)
    file = os.path.join(args.out, "sweep.toml")
    with open(file, "w", encoding="utf-8") as f:
        f.write(sweep_text(args.seeds))
    env = dict(os.environ, PYTHONPATH=ROOT)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "gan_jax", "sweep", file, "--out", args.out,
                           "--resume", "--quiet", *sweep_flags], env=env)
    wall = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_gib = usage.ru_maxrss * 1024 / 2**30          # ru_maxrss is in KiB on Linux
    print(f"seeds {args.seeds}: exit {proc.returncode}; peak resident memory {peak_gib:.2f} GiB; "
          f"wall {wall:.0f} s; CPU {usage.ru_utime + usage.ru_stime:.0f} s "
          f"({os.cpu_count()} CPUs, load average now {os.getloadavg()[0]:.1f})")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
