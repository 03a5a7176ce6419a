"""Sweeps: a TOML file of runs -> static groups -> chunks -> devices -> results.jsonl.

`python -m gan_jax sweep FILE --out DIR` runs every run of a sweep file (DESIGN.md's format).
The grid is expanded; each run is split into its static part, which picks the compiled program,
and its traced part (numbers and the seed); runs are grouped by static part, and each group is
one `jit(vmap(run))` program over its flattened (grid point x seed) run axis, called in chunks of
a fixed size that fits a memory budget, with the run axis sharded across the local devices.
Records are appended to DIR/results.jsonl and fsynced as each chunk finishes; `--resume` skips
the runs already recorded. See docs/sweeps.md.

Everything a user can get wrong (the file, the flags, the output directory) is checked before
anything is compiled, and reported as a ConfigError naming the place.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import functools
import itertools
import os
import re
import sys
import time
import tomllib
from typing import Any, NamedTuple, TextIO

import jax
import numpy as np
from jax.extend import core as jax_core
from jax.sharding import NamedSharding

from gan_jax import engine, results
from gan_jax.config import (FIELD_NAMES, ConfigError, RunConfig, StaticConfig, _is_int,
                            make_config, stack_hparams, static_part, suggest, traced_part)
from gan_jax.train import make_run

SWEEP_KEYS = ("name", "seeds", "base", "grid")
MAX_SEED = 2**32 - 1                # seeds become uint32 keys (engine.seed_keys)
DEFAULT_MEMORY_BUDGET = "1GiB"      # per device
DEFAULT_MAX_CHUNK = 8192            # runs per call, all devices together
DEFAULT_COMPILE_WORKERS = 2         # groups compiled ahead, in threads, while one computes
# Planning estimates a chunk's device memory as FIXED + runs x (MARGIN x the peak of live
# arrays in one run's jaxpr). XLA's buffers for random bits, sorts and loops exceed the jaxpr's
# peak (2.4x for the seed's linear run, 1.3x for MLPs), and a program has buffers that do not
# grow with the runs. Before running, the compiled program's own memory analysis is checked
# against the budget (see `_compile`); the estimate only sizes the first try and the dry run.
ESTIMATE_MARGIN = 3
ESTIMATE_FIXED = 256 << 10


# ----------------------------------------------------------------------------- the file


class Run(NamedTuple):
    """One run of a sweep: a configuration and a seed, at a place in the sweep's run order."""

    index: int        # position in the sweep's run order (grid points, then seeds)
    cfg: RunConfig
    seed: int
    run_id: str       # results.run_id(cfg, seed)


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A validated sweep file: its name, seeds and expanded grid."""

    name: str
    path: str
    seeds: tuple[int, ...]
    grid: tuple[tuple[str, tuple[Any, ...]], ...]   # (key, values) in file order
    configs: tuple[RunConfig, ...]                  # one per grid point, last key fastest

    @property
    def grid_keys(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.grid)

    @property
    def num_runs(self) -> int:
        return len(self.configs) * len(self.seeds)

    def runs(self) -> list[Run]:
        """Every run, grid point by grid point, seeds fastest."""
        out = []
        for cfg in self.configs:
            for seed, run_id in zip(self.seeds, results.run_ids(cfg, self.seeds)):
                out.append(Run(len(out), cfg, seed, run_id))
        return out


def load_sweep(path: str | os.PathLike) -> Sweep:
    """Read and validate a sweep file; every problem is a ConfigError naming file and key."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    return parse_sweep(data, path)


def parse_sweep(data: dict[str, Any], path: str = "<sweep>") -> Sweep:
    """Validate a parsed sweep file as a whole and expand its grid (no compilation)."""

    def fail(message: str) -> ConfigError:
        return ConfigError(f"{path}: {message}")

    for key in data:
        if key not in SWEEP_KEYS:
            hint = (" (run settings go under [base], lists to sweep under [grid])"
                    if key in FIELD_NAMES else suggest(key, SWEEP_KEYS))
            raise fail(f"{key}: unknown key{hint}; allowed: name, seeds, [base], [grid]")
    name = data.get("name")
    if name is None:
        raise fail('name: missing; give the sweep a name, e.g. name = "lr-study"')
    if not isinstance(name, str) or not name.strip():
        raise fail(f"name: got {name!r}; must be a non-empty string")
    seeds = _parse_seeds(data.get("seeds"), fail)

    base = data.get("base", {})
    if not isinstance(base, dict):
        raise fail(f"base: got {base!r}; must be a table ([base])")
    try:
        make_config(base, where="[base]")
    except ConfigError as e:
        raise fail(str(e)) from None

    grid = data.get("grid", {})
    if not isinstance(grid, dict):
        raise fail(f"grid: got {grid!r}; must be a table ([grid]) of lists")
    swept: dict[str, str] = {}                   # field -> the grid key that sets it
    for key, values in grid.items():
        for field in tied_fields(key):
            if field not in FIELD_NAMES:
                hint = ("; seeds are set by the top-level `seeds`" if field in ("seed", "seeds")
                        else suggest(field, FIELD_NAMES))
                raise fail(f"[grid].{key}: {field!r} is not a field{hint}; a grid may sweep "
                           f"any [base] field: {', '.join(FIELD_NAMES)}")
            if field in swept:
                raise fail(f"[grid].{key}: {field} is already swept by [grid].{swept[field]}")
            swept[field] = key
        if not isinstance(values, list):
            raise fail(f"[grid].{key}: got {values!r}; must be a list of values to sweep")
        if not values:
            raise fail(f"[grid].{key}: empty list; give at least one value")
        seen = []
        for i, value in enumerate(values):
            try:
                cfg = make_config({**base, **_assign(key, value)})
            except ConfigError as e:
                raise fail(f"[grid].{key}[{i}]: {e}") from None
            if getattr(cfg, tied_fields(key)[0]) in seen:
                raise fail(f"[grid].{key}[{i}]: {value!r} appears twice; each grid point "
                           "would run twice under the same run id")
            seen.append(getattr(cfg, tied_fields(key)[0]))

    keys = list(grid)
    configs = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        try:
            configs.append(make_config({**base, **{f: v for k, value in zip(keys, combo)
                                                   for f, v in _assign(k, value).items()}}))
        except ConfigError as e:
            point = ", ".join(f"{k} = {v!r}" for k, v in zip(keys, combo))
            raise fail(f"[grid] point {{{point}}}: {e}") from None
    return Sweep(name, path, seeds, tuple((k, tuple(grid[k])) for k in keys), tuple(configs))


def tied_fields(grid_key: str) -> list[str]:
    """The fields a grid key sets: 'lr_d', or several joined by '+' ("lr_g+lr_d") that take
    each listed value together."""
    return [f.strip() for f in grid_key.split("+")]


def _assign(grid_key: str, value: Any) -> dict[str, Any]:
    return {field: value for field in tied_fields(grid_key)}


def _parse_seeds(value: Any, fail) -> tuple[int, ...]:
    if value is None:
        raise fail("seeds: missing; give a count (seeds = 16) or a list (seeds = [0, 1, 2])")
    if _is_int(value):
        if value < 1:
            raise fail(f"seeds: got {value}; a count must be at least 1")
        if value > MAX_SEED + 1:
            raise fail(f"seeds: got {value}; at most 2**32 seeds")
        return tuple(range(value))
    if isinstance(value, list):
        if not value:
            raise fail("seeds: empty list; give at least one seed")
        for i, seed in enumerate(value):
            if not _is_int(seed) or not 0 <= seed <= MAX_SEED:
                raise fail(f"seeds[{i}]: got {seed!r}; a seed is an integer in [0, 2**32)")
        if len(set(value)) != len(value):
            dup = next(s for s in value if value.count(s) > 1)
            raise fail(f"seeds: {dup} appears twice; each run would be done twice")
        return tuple(value)
    raise fail(f"seeds: got {value!r}; must be a count (an integer >= 1) or a list of seeds")


# ----------------------------------------------------------------------------- the plan


@dataclasses.dataclass(frozen=True)
class Group:
    """The runs of one static configuration: one compiled program, called chunk by chunk."""

    static: StaticConfig
    example: RunConfig            # any of its runs' configuration (for shapes and labels)
    total: int                    # runs of the group in the whole sweep
    runs: tuple[Run, ...]         # the runs this process still has to do
    chunk_size: int               # runs per call, a multiple of the device count
    run_bytes: int                # estimated device memory of one run

    @property
    def num_chunks(self) -> int:
        return -(-len(self.runs) // self.chunk_size)

    @property
    def run_steps(self) -> int:
        return len(self.runs) * self.static.run_steps


@dataclasses.dataclass(frozen=True)
class Plan:
    """How a sweep's runs are grouped, chunked and placed, for one process (or shard)."""

    sweep: Sweep
    groups: tuple[Group, ...]
    devices: tuple[Any, ...]
    shard: tuple[int, int]        # (index, count): this process takes runs index::count
    memory_budget: int            # bytes per device
    recorded: int                 # runs of this shard found recorded already

    @property
    def todo(self) -> int:
        return sum(len(g.runs) for g in self.groups)

    @property
    def run_steps(self) -> int:
        return sum(g.run_steps for g in self.groups)

    def labels(self) -> list[str]:
        """Per group, the static fields that tell it from the other groups, as key=value."""
        varying = [f.name for f in dataclasses.fields(StaticConfig)
                   if len({getattr(g.static, f.name) for g in self.groups}) > 1]
        return [" ".join(f"{f}={getattr(g.static, f)}" for f in varying) or "(all runs)"
                for g in self.groups]


def plan_sweep(sweep: Sweep, *, devices=None, memory_budget: int = 1 << 30,
               max_chunk: int = DEFAULT_MAX_CHUNK, shard: tuple[int, int] = (0, 1),
               recorded_ids: frozenset[str] | set[str] = frozenset()) -> Plan:
    """Group a sweep's runs by static part and size each group's chunks (no compilation).

    Args:
      sweep: a validated sweep.
      devices: the devices to shard runs over (default: all local devices).
      memory_budget: bytes of device memory one chunk may use on each device.
      max_chunk: at most this many runs per call (all devices together).
      shard: (index, count): take the runs whose position in the sweep is index mod count.
      recorded_ids: run ids already in the results; those runs are skipped.
    """
    devices = tuple(devices if devices is not None else jax.local_devices())
    index, count = shard
    members: dict[StaticConfig, list[Run]] = {}
    examples: dict[StaticConfig, RunConfig] = {}
    totals: dict[StaticConfig, int] = {}
    recorded = 0
    runs, per_point = sweep.runs(), len(sweep.seeds)
    for point, cfg in enumerate(sweep.configs):
        static = static_part(cfg)
        examples.setdefault(static, cfg)
        totals[static] = totals.get(static, 0) + per_point
        todo = members.setdefault(static, [])
        for run in runs[point * per_point:(point + 1) * per_point]:
            if run.index % count != index:
                continue
            if run.run_id in recorded_ids:
                recorded += 1
                continue
            todo.append(run)
    n_dev = len(devices)
    groups = []
    for static, runs in members.items():
        run_bytes = estimate_run_bytes(static, examples[static])
        size = chunk_size(len(runs), run_bytes, num_devices=n_dev, memory_budget=memory_budget,
                          max_chunk=max_chunk)
        groups.append(Group(static, examples[static], totals[static], tuple(runs), size,
                            run_bytes))
    return Plan(sweep, tuple(groups), devices, shard, memory_budget, recorded)


def chunk_size(num_runs: int, run_bytes: int, *, num_devices: int, memory_budget: int,
               max_chunk: int) -> int:
    """Runs per call: what fits the per-device budget, capped, and no more than needed.

    Always a multiple of num_devices (so the run axis splits evenly) and at least two runs per
    device: a unit run axis compiles to other kernels whose rounding differs, and GAN training
    can amplify that (see engine.run_batch), so a run's numbers would depend on its chunk.
    """
    fits = max(1, (memory_budget - ESTIMATE_FIXED) // max(run_bytes, 1)) * num_devices
    needed = -(-max(num_runs, 1) // num_devices) * num_devices
    cap = max(num_devices, min(fits, max_chunk) // num_devices * num_devices)
    # As many chunks as the cap requires, made equal: 32 runs under a cap of 28 are two chunks
    # of 16, not 28 + 4 padded to 28.
    chunks = -(-needed // cap)
    size = -(-needed // chunks)
    size = -(-size // num_devices) * num_devices
    return max(2 * num_devices, size)


def estimate_chunk_bytes(run_bytes: int, runs_per_device: int) -> int:
    """Estimated device memory of a chunk with `runs_per_device` runs on each device."""
    return ESTIMATE_FIXED + runs_per_device * run_bytes


def _abstract_inputs(cfg: RunConfig):
    """ShapeDtypeStructs of one run's (HParams, key)."""
    hp = jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), np.asarray(x).dtype),
                      traced_part(cfg))
    return hp, jax.eval_shape(jax.random.key, 0)


@functools.cache
def _estimate(static: StaticConfig, hp, key) -> int:
    jaxpr = jax.make_jaxpr(make_run(static))(hp, key).jaxpr
    return ESTIMATE_MARGIN * _peak_live_bytes(jaxpr)


def estimate_run_bytes(static: StaticConfig, example: RunConfig) -> int:
    """Estimated device memory of one run, from its jaxpr (traced, not compiled).

    The peak, over the program, of the bytes of arrays alive at once (inputs, intermediates
    still to be used, outputs), counting a loop body's peak on top of what is alive around it,
    times ESTIMATE_MARGIN. Under vmap every array gains the run axis, so a chunk of R runs
    needs about R times this.
    """
    hp, key = _abstract_inputs(example)
    return _estimate(static, hp, key)


def _nbytes(aval) -> int:
    shape, dtype = getattr(aval, "shape", None), getattr(aval, "dtype", None)
    if shape is None or dtype is None:
        return 0
    try:
        itemsize = np.dtype(dtype).itemsize
    except TypeError:           # extended dtypes (typed keys): count their raw data
        itemsize = 8
    return int(np.prod(shape, dtype=np.int64)) * itemsize


def _sub_jaxprs(eqn):
    for value in eqn.params.values():
        for item in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(item, jax_core.ClosedJaxpr):
                yield item.jaxpr
            elif isinstance(item, jax_core.Jaxpr):
                yield item


def _peak_live_bytes(jaxpr) -> int:
    """Peak bytes alive at once while evaluating a jaxpr in order (a liveness pass)."""
    last_use = {}
    for i, eqn in enumerate(jaxpr.eqns):
        for v in eqn.invars:
            if isinstance(v, jax_core.Var):
                last_use[v] = i
    for v in jaxpr.outvars:
        if isinstance(v, jax_core.Var):
            last_use[v] = len(jaxpr.eqns)
    live = sum(_nbytes(v.aval) for v in (*jaxpr.invars, *jaxpr.constvars))
    peak = live
    for i, eqn in enumerate(jaxpr.eqns):
        inner = max((_peak_live_bytes(j) for j in _sub_jaxprs(eqn)), default=0)
        made = sum(_nbytes(v.aval) for v in eqn.outvars)
        peak = max(peak, live + inner + made)
        live += sum(_nbytes(v.aval) for v in eqn.outvars if v in last_use)
        freed = {v for v in eqn.invars if isinstance(v, jax_core.Var) and last_use.get(v) == i}
        live -= sum(_nbytes(v.aval) for v in freed)
    return peak


# ----------------------------------------------------------------------------- execution


class Report(NamedTuple):
    """What a sweep did in this process."""

    path: str                  # the results file written
    done: int                  # runs recorded now
    diverged: int              # of which diverged
    skipped: int               # runs found recorded already
    compilations: int          # programs compiled (one per group with runs, unless shrunk)
    chunks: int                # calls made
    chunk_sizes: tuple[int, ...]           # per group run: runs per call
    num_devices: int
    compile_s: float           # seconds compiling, summed over the compiling threads
    compile_wait_s: float      # seconds of the wall time spent waiting for a compilation
    wall_s: float
    run_steps: int
    device_bytes: tuple[int | None, ...]   # per group run: the program's measured bytes/device


def run_sweep(plan: Plan, path: str | os.PathLike, *, progress: "Progress | None" = None,
              compile_workers: int = DEFAULT_COMPILE_WORKERS) -> Report:
    """Run a plan's groups and append their records to `path`, chunk by chunk.

    Each group is compiled once for its chunk size (the last chunk is padded with copies of a
    real run, whose outputs are dropped). Compilation runs ahead in `compile_workers` threads,
    so the next groups compile while this one computes, and the next chunk is dispatched
    before the previous one's records are written, so the host's work overlaps the devices'.
    """
    path = os.fspath(path)
    sharding = engine.run_sharding(plan.devices)
    version_info = results.versions()
    progress = progress or Progress(plan, enabled=False)
    t_start = time.perf_counter()
    done = diverged = compilations = run_steps = chunks = 0
    compile_s = compile_wait_s = 0.0
    measured, sizes = [], []

    def finish(chunk: list[Run], output, steps_per_run: int) -> None:
        nonlocal done, diverged, run_steps
        host = jax.tree.map(lambda a: np.asarray(a)[:len(chunk)], jax.device_get(output))
        records = results.make_records(plan.sweep.name, [r.cfg for r in chunk],
                                       [r.seed for r in chunk], host,
                                       version_info=version_info,
                                       ids=[r.run_id for r in chunk])
        results.append_records(path, records)
        done += len(records)
        diverged += sum(r["status"] == "diverged" for r in records)
        run_steps += len(chunk) * steps_per_run
        progress.update(runs_done=done, run_steps_done=run_steps,
                        compile_wait_s=compile_wait_s)

    groups = [g for g in plan.groups if g.runs]
    with concurrent.futures.ThreadPoolExecutor(max(1, compile_workers)) as pool:
        compiling = [pool.submit(_compile, g, sharding, plan.memory_budget)
                     for g in groups[:compile_workers]]
        for number, group in enumerate(groups):
            if number + compile_workers < len(groups):
                compiling.append(pool.submit(_compile, groups[number + compile_workers],
                                             sharding, plan.memory_budget))
            progress.start_group(number + 1, compiling=not compiling[number].done())
            t = time.perf_counter()
            compiled, size, nbytes, tries, seconds = compiling[number].result()
            compiling[number] = None                     # let the executable go with the group
            compile_wait_s += time.perf_counter() - t
            compile_s += seconds
            compilations += tries
            measured.append(nbytes)
            sizes.append(size)
            pending = None
            for start in range(0, len(group.runs), size):
                chunks += 1
                chunk = list(group.runs[start:start + size])
                output = compiled(*_chunk_inputs(chunk, size, sharding))   # not awaited
                if pending is not None:
                    finish(*pending)
                pending = (chunk, output, group.static.run_steps)
            finish(*pending)
    progress.close()
    return Report(path, done, diverged, plan.recorded, compilations, chunks, tuple(sizes),
                  len(plan.devices), compile_s, compile_wait_s, time.perf_counter() - t_start,
                  run_steps, tuple(measured))


def _compile(group: Group, sharding: NamedSharding, budget: int):
    """Compile a group's program for its chunk size; shrink the chunk if XLA says it won't fit.

    Returns (compiled, chunk size, measured bytes per device or None, compilations, seconds).
    """
    t0 = time.perf_counter()
    n_dev = sharding.mesh.size
    program = engine.compiled_run(group.static, sharding)
    hp, key = _abstract_inputs(group.example)
    size, tries = group.chunk_size, 0
    while True:
        batched = jax.tree.map(
            lambda s: jax.ShapeDtypeStruct((size, *s.shape), s.dtype, sharding=sharding),
            (hp, key))
        compiled = program.lower(*batched).compile()
        tries += 1
        nbytes = _device_bytes(compiled)
        if nbytes is None or nbytes <= budget or size <= n_dev:
            return compiled, size, nbytes, tries, time.perf_counter() - t0
        smaller = max(n_dev, int(size * budget / nbytes) // n_dev * n_dev)
        size = smaller if smaller < size else size - n_dev


def _device_bytes(compiled) -> int | None:
    """Bytes one device needs for a compiled program, from XLA's memory analysis if any."""
    try:
        m = compiled.memory_analysis()
    except (NotImplementedError, AttributeError, RuntimeError):
        return None
    if m is None:
        return None
    return int(m.temp_size_in_bytes + m.argument_size_in_bytes + m.output_size_in_bytes
               - m.alias_size_in_bytes)


def _chunk_inputs(chunk: list[Run], size: int, sharding: NamedSharding):
    """(HParams, keys) of a chunk padded to `size` runs, placed on the run axis's devices."""
    padded = chunk + [chunk[-1]] * (size - len(chunk))
    hp = stack_hparams([traced_part(r.cfg) for r in padded])
    keys = engine.seed_keys([r.seed for r in padded])
    return jax.device_put((hp, keys), sharding)


# ----------------------------------------------------------------------------- progress


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class Progress:
    """One status line on stderr, rewritten by the host between chunks.

    Quiet unless the stream is a terminal (or `enabled` is given).
    """

    def __init__(self, plan: Plan, stream: TextIO | None = None, enabled: bool | None = None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total = plan.todo
        self.total_steps = plan.run_steps
        self.groups = sum(bool(g.runs) for g in plan.groups)
        self.group = 0
        self.t0 = time.perf_counter()
        self.shown = False

    def _show(self, text: str) -> None:
        if self.enabled:
            self.stream.write("\r\033[K" + text)
            self.stream.flush()
            self.shown = True

    def start_group(self, number: int, compiling: bool = True) -> None:
        """Group `number` (1-based, among groups with runs) starts; it may wait to compile."""
        self.group = number
        if compiling:
            self._show(f"group {self.group}/{self.groups}: compiling...")

    def update(self, *, runs_done: int, run_steps_done: int, compile_wait_s: float) -> None:
        running = max(time.perf_counter() - self.t0 - compile_wait_s, 1e-9)
        rate = run_steps_done / running
        left = (self.total_steps - run_steps_done) / rate if rate > 0 else float("nan")
        self._show(f"group {self.group}/{self.groups} | runs {runs_done}/{self.total} "
                   f"({100 * runs_done / max(self.total, 1):.0f}%) | {rate:,.0f} run-steps/s | "
                   f"~{_duration(left)} left (compiles aside)")

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


# ----------------------------------------------------------------------------- the CLI

_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)


def parse_size(text: str, flag: str = "--memory-budget") -> int:
    """Bytes from '1GiB', '512MB', '2g', '1000000' (K/M/G/T are powers of 1024)."""
    m = _SIZE.match(str(text))
    if not m:
        raise ConfigError(f"{flag}: got {text!r}; give a size such as 512MiB or 2GiB")
    value = float(m.group(1)) * 1024 ** " kmgt".index(m.group(2).lower() or " ")
    if value < 1:
        raise ConfigError(f"{flag}: got {text!r}; must be at least 1 byte")
    return int(value)


def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' -> (I, N): shard I (0-based) of N."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m or not int(m.group(2)) >= 1 or not int(m.group(1)) < int(m.group(2)):
        raise ConfigError(f"--shard: got {text!r}; give I/N with 0 <= I < N, e.g. 3/16 "
                          "(for a job array: --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)")
    return int(m.group(1)), int(m.group(2))


def fmt_bytes(n: float | None) -> str:
    """A byte count for people: '1.5 GiB', '300 B'; 'n/a' when unknown."""
    if n is None:
        return "n/a"
    if n < 1024:
        return f"{n:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="sweep file (TOML; see docs/sweeps.md)")
    parser.add_argument("--out", help="output directory (results.jsonl); required unless --dry-run")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan (groups, runs, chunks, devices, memory) and stop")
    parser.add_argument("--resume", action="store_true",
                        help="continue a sweep in --out, skipping runs already recorded")
    parser.add_argument("--memory-budget", default=DEFAULT_MEMORY_BUDGET, metavar="SIZE",
                        help=f"device memory per chunk and device ({DEFAULT_MEMORY_BUDGET})")
    parser.add_argument("--max-chunk", type=int, default=DEFAULT_MAX_CHUNK, metavar="N",
                        help=f"at most N runs per call, all devices together ({DEFAULT_MAX_CHUNK})")
    parser.add_argument("--devices", type=int, metavar="N",
                        help="shard runs over the first N local devices (default: all)")
    parser.add_argument("--shard", default="0/1", metavar="I/N",
                        help="do only shard I of N (0-based), writing results.shard-I-of-N.jsonl; "
                             "for independent jobs, e.g. a SLURM job array")
    parser.add_argument("--compile-workers", type=int, default=DEFAULT_COMPILE_WORKERS,
                        metavar="W", help="compile up to W groups ahead, in parallel threads, "
                        f"while one group computes ({DEFAULT_COMPILE_WORKERS})")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    multi = parser.add_argument_group(
        "multi-host (jax.distributed; on with --distributed, explicit settings, or a cluster "
        "environment: JAX_COORDINATOR_ADDRESS, srun with several tasks, mpirun)")
    multi.add_argument("--distributed", action="store_true",
                       help="call jax.distributed.initialize() (cluster auto-detection)")
    multi.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address")
    multi.add_argument("--num-processes", type=int, metavar="P")
    multi.add_argument("--process-id", type=int, metavar="I")


def _cluster_environment() -> bool:
    """Whether the environment launched several cooperating processes of this command."""
    env = os.environ

    def more_than_one(name: str) -> bool:
        try:
            return int(env.get(name, "1")) > 1
        except ValueError:
            return False

    return ("JAX_COORDINATOR_ADDRESS" in env or more_than_one("SLURM_STEP_NUM_TASKS")
            or more_than_one("OMPI_COMM_WORLD_SIZE"))


def _start_distributed(args: argparse.Namespace) -> None:
    explicit = (args.coordinator, args.num_processes, args.process_id)
    if not (args.distributed or any(x is not None for x in explicit) or _cluster_environment()):
        return
    if args.num_processes is not None and args.num_processes < 1:
        raise ConfigError(f"--num-processes: got {args.num_processes}; must be at least 1")
    if args.process_id is not None and args.num_processes is not None and not (
            0 <= args.process_id < args.num_processes):
        raise ConfigError(f"--process-id: got {args.process_id}; must be in "
                          f"[0, {args.num_processes})")
    jax.distributed.initialize(coordinator_address=args.coordinator,
                               num_processes=args.num_processes, process_id=args.process_id)


def recorded_runs(out: str, sweep: Sweep) -> tuple[dict[str, set[str]], list[str]]:
    """Run ids recorded in each results file of `out`, and problems found reading them.

    Raises ConfigError if a file there holds another sweep's results.
    """
    recorded, problems = {}, []
    for f in results.results_files(out):
        recs, found = results.read_records(f, fields=("run_id", "sweep"))
        others = sorted({str(r["sweep"]) for r in recs} - {sweep.name})
        if others:
            raise ConfigError(f"--out: {f} holds results of sweep {others[0]!r}, not "
                              f"{sweep.name!r} ({sweep.path}); choose another directory")
        recorded[f] = {r["run_id"] for r in recs}
        problems += found
    return recorded, problems


def prepare_out(out: str, sweep: Sweep, file_name: str, *, resume: bool
                ) -> tuple[str, set[str], list[str]]:
    """Check an output directory before any compute; create it if needed.

    Returns (results path, run ids recorded there, notes for the user). Raises ConfigError for
    a directory that cannot be written, that holds another sweep's results, or that holds this
    sweep's results without --resume. With --resume, a truncated last line left by a kill is
    cut off so that appended records start on a fresh line.
    """
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"--out: {out!r} exists and is not a directory")
    recorded, notes = recorded_runs(out, sweep)
    path = os.path.join(out, file_name)
    own = recorded.get(path, set())
    if own and not resume:
        raise ConfigError(f"--out: {path} already holds {len(own)} results of sweep "
                          f"{sweep.name!r}; pass --resume to finish it, or choose another "
                          "directory")
    try:
        os.makedirs(out, exist_ok=True)
        probe = os.path.join(out, f".write-test-{os.getpid()}")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise ConfigError(f"--out: cannot write to {out!r}: {e.strerror}") from None
    if not resume:
        return path, set(), notes
    cut = results.cut_partial_tail(path)
    if cut:
        notes = [n for n in notes if not n.startswith(f"{path}:")]
        notes.append(f"{path}: cut off {cut} bytes of an interrupted write; "
                     "those runs will be done again")
    return path, set().union(*recorded.values()), notes


def print_plan(plan: Plan, stream: TextIO | None = None) -> None:
    """The plan, for --dry-run: groups, runs, chunks, devices, estimated memory."""
    stream = stream or sys.stdout
    sweep = plan.sweep
    n_dev = len(plan.devices)
    kinds = sorted({d.platform for d in plan.devices})
    grid = " x ".join(f"{len(v)} {k}" for k, v in sweep.grid) or "no grid"
    lines = [
        f"sweep {sweep.name!r} ({sweep.path}): {sweep.num_runs} runs = {len(sweep.configs)} "
        f"grid points ({grid}) x {len(sweep.seeds)} seeds",
        f"devices: {n_dev} x {'/'.join(kinds)}, run axis sharded over all; memory budget "
        f"{fmt_bytes(plan.memory_budget)} per device; shard {plan.shard[0]}/{plan.shard[1]}",
        "",
        f"{'group':>5}  {'runs':>7}  {'to do':>7}  {'chunk':>6}  {'chunks':>6}  "
        f"{'est. memory/device':>18}  program",
    ]
    for i, (g, label) in enumerate(zip(plan.groups, plan.labels()), start=1):
        est = estimate_chunk_bytes(g.run_bytes, g.chunk_size // n_dev)
        lines.append(f"{i:>5}  {g.total:>7}  {len(g.runs):>7}  {g.chunk_size:>6}  "
                     f"{g.num_chunks:>6}  {fmt_bytes(est):>18}  {label}")
    compiles = sum(bool(g.runs) for g in plan.groups)
    lines += ["", f"total: {len(plan.groups)} groups, {compiles} to compile, {plan.todo} runs to "
              f"do ({plan.recorded} already recorded), {plan.run_steps:,} run-steps"]
    stream.write("\n".join(lines) + "\n")


def main(args: argparse.Namespace) -> int:
    budget = parse_size(args.memory_budget)
    if args.max_chunk < 1:
        raise ConfigError(f"--max-chunk: got {args.max_chunk}; must be at least 1")
    if args.compile_workers < 1:
        raise ConfigError(f"--compile-workers: got {args.compile_workers}; must be at least 1")
    shard_index, shard_count = parse_shard(args.shard)
    if not args.dry_run and not args.out:
        raise ConfigError("--out: missing; give an output directory (or use --dry-run)")
    # Before anything touches a device: jax.distributed must start before JAX's backends.
    _start_distributed(args)
    sweep = load_sweep(args.file)
    # Each process of a multi-host run is one more shard: runs are independent, so processes
    # never wait on each other, and each writes its own results file.
    count = shard_count * jax.process_count()
    index = shard_index * jax.process_count() + jax.process_index()
    devices = jax.local_devices()
    if args.devices is not None:
        if not 1 <= args.devices <= len(devices):
            raise ConfigError(f"--devices: got {args.devices}; this process has "
                              f"{len(devices)} local device(s)")
        devices = devices[:args.devices]

    recorded, notes, path = set(), [], None
    if args.dry_run and args.out:               # show what is left; write nothing
        by_file, notes = recorded_runs(args.out, sweep)
        recorded = set().union(*by_file.values()) if args.resume else set()
    elif args.out:
        path, recorded, notes = prepare_out(args.out, sweep,
                                            results.results_file_name(index, count),
                                            resume=args.resume)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    plan = plan_sweep(sweep, devices=devices, memory_budget=budget, max_chunk=args.max_chunk,
                      shard=(index, count), recorded_ids=recorded)
    if args.dry_run:
        print_plan(plan)
        return 0

    report = run_sweep(plan, path, progress=Progress(plan, enabled=False if args.quiet else None),
                       compile_workers=args.compile_workers)
    rate = report.run_steps / max(report.wall_s - report.compile_wait_s, 1e-9)
    measured = [b for b in report.device_bytes if b is not None]
    sizes = "/".join(map(str, sorted(set(report.chunk_sizes)))) or "0"
    print(f"sweep {sweep.name!r}: {report.done} runs recorded in {report.path} "
          f"({report.diverged} diverged; {report.skipped} were recorded already); "
          f"{report.chunks} chunks of {sizes} runs on {report.num_devices} devices; "
          f"{report.compilations} compilations ({report.compile_s:.1f} s, "
          f"{report.compile_wait_s:.1f} s of it waited for); wall {report.wall_s:.1f} s; "
          f"{rate:,.0f} run-steps/s outside compile waits"
          + (f"; largest chunk {fmt_bytes(max(measured))}/device (XLA)" if measured else ""))
    return 0
