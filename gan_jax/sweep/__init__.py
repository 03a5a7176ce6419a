"""Sweeps: a TOML file of runs -> static groups -> chunks -> devices -> results.jsonl.

`spec` reads and validates the sweep file (its grid and its sampled search points), `plan`
groups its runs by static part and sizes each group's chunks to a memory budget, `run`
compiles each group once and appends records chunk by chunk, and `command` is `python -m
gan_jax sweep`. See docs/sweeps.md.
"""

from gan_jax.sweep.plan import (DEFAULT_MAX_CHUNK, ESTIMATE_FIXED, ESTIMATE_MARGIN, Group, Plan,
                                chunk_size, estimate_chunk_bytes, estimate_run_bytes, plan_sweep)
from gan_jax.sweep.run import DEFAULT_COMPILE_WORKERS, Progress, Report, run_sweep
from gan_jax.sweep.spec import MAX_SEED, Run, Search, Sweep, load_sweep, parse_sweep, tied_fields

__all__ = [
    "DEFAULT_MAX_CHUNK", "ESTIMATE_FIXED", "ESTIMATE_MARGIN", "Group", "Plan", "chunk_size",
    "estimate_chunk_bytes", "estimate_run_bytes", "plan_sweep",
    "DEFAULT_COMPILE_WORKERS", "Progress", "Report", "run_sweep",
    "MAX_SEED", "Run", "Search", "Sweep", "load_sweep", "parse_sweep", "tied_fields",
]
