"""Planning a sweep: runs grouped by static part, each group's chunk size sized to memory.

Runs are grouped by their static part (one compiled training program per group, and an
evaluation program shared by groups of the same `config.eval_part`; gan_jax.engine.programs) and
each group is called in chunks of a fixed size that fits a per-device memory budget. Memory is
estimated from the group's jaxpr, without compiling: a liveness pass finds the peak bytes
alive at once in one run (see :func:`estimate_run_bytes`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import numpy as np
from jax.extend import core as jax_core

from gan_jax.engine import cache
from gan_jax.config import (CHOICE_FIELDS, RunConfig, StaticConfig, merge_statics, shape_key,
                            static_part, traced_part)
from gan_jax.engine.programs import code_token
from gan_jax.sweep.spec import Run, Sweep
from gan_jax.training.train import make_run

DEFAULT_MAX_CHUNK = 8192            # runs per call, all devices together
# Planning estimates a chunk's device memory as FIXED + runs x (MARGIN x the peak of live
# arrays in one run's jaxpr). XLA's buffers for random bits, sorts and loops exceed the jaxpr's
# peak, and a program has buffers that do not grow with the runs. Before running, the compiled
# program's own memory analysis is checked against the budget (see `sweep.run`); the estimate
# only sizes the first try and the dry run.
ESTIMATE_MARGIN = 3
ESTIMATE_FIXED = 256 << 10


@dataclasses.dataclass(frozen=True)
class Group:
    """The runs of one compiled program, called chunk by chunk: runs of one static part, or of
    static parts that differ only in choice fields (config.CHOICE_FIELDS), which the program
    then holds all of."""

    static: StaticConfig          # the program (choice fields: every value its runs use)
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
        """Per group, the static fields that tell it from the other groups, as key=value; a
        choice field the program traces shows all its values, joined by '|'."""
        def shown(value):
            return "|".join(map(str, value)) if isinstance(value, tuple) else str(value)

        varying = [f.name for f in dataclasses.fields(StaticConfig)
                   if len({getattr(g.static, f.name) for g in self.groups}) > 1
                   or any(f.name in CHOICE_FIELDS and len(getattr(g.static, f.name)) > 1
                          for g in self.groups)]
        return [" ".join(f"{f}={shown(getattr(g.static, f))}" for f in varying) or "(all runs)"
                for g in self.groups]


def plan_sweep(sweep: Sweep, *, devices=None, memory_budget: int = 1 << 30,
               max_chunk: int = DEFAULT_MAX_CHUNK, shard: tuple[int, int] = (0, 1),
               recorded_ids: frozenset[str] | set[str] = frozenset(),
               merge_choices: bool = True) -> Plan:
    """Group a sweep's runs into programs and size each group's chunks (no compilation).

    Runs whose static parts differ only in choice fields (the loss) share one program when
    merge_choices is True (a traced index picks each run's own); else each static part is a
    program of its own. A group's program is made from every run of the sweep, whatever is
    recorded or in another shard, so a resumed or sharded sweep compiles the same programs.

    Args:
      sweep: a validated sweep.
      devices: the devices to shard runs over (default: all local devices).
      memory_budget: bytes of device memory one chunk may use on each device.
      max_chunk: at most this many runs per call (all devices together).
      shard: (index, count): take the runs whose position in the sweep is index mod count.
      recorded_ids: run ids already in the results; those runs are skipped.
      merge_choices: whether runs that differ only in choice fields share a program.
    """
    devices = tuple(devices if devices is not None else jax.local_devices())
    index, count = shard
    members: dict[StaticConfig, list[Run]] = {}
    examples: dict[StaticConfig, RunConfig] = {}
    totals: dict[StaticConfig, int] = {}
    statics: dict[StaticConfig, set[StaticConfig]] = {}
    recorded = 0
    runs, per_point = sweep.runs(), len(sweep.seeds)
    for point, cfg in enumerate(sweep.configs):
        static = static_part(cfg)
        key = shape_key(static) if merge_choices else static
        statics.setdefault(key, set()).add(static)
        examples.setdefault(key, cfg)
        totals[key] = totals.get(key, 0) + per_point
        todo = members.setdefault(key, [])
        for run in runs[point * per_point:(point + 1) * per_point]:
            if run.index % count != index:
                continue
            if run.run_id in recorded_ids:
                recorded += 1
                continue
            todo.append(run)
    n_dev = len(devices)
    groups = []
    for key, runs in members.items():
        program = merge_statics(statics[key])
        run_bytes = estimate_run_bytes(program, examples[key])
        size = chunk_size(len(runs), run_bytes, num_devices=n_dev, memory_budget=memory_budget,
                          max_chunk=max_chunk)
        groups.append(Group(program, examples[key], totals[key], tuple(runs), size, run_bytes))
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


def abstract_inputs(cfg: RunConfig):
    """ShapeDtypeStructs of one run's (HParams, key)."""
    hp = jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), np.asarray(x).dtype),
                      traced_part(cfg))
    return hp, jax.eval_shape(jax.random.key, 0)


@functools.cache
def _estimate(static: StaticConfig, hp, key, memo=None, token="") -> int:
    # Kept beside the lowered programs (gan_jax.engine.cache), so that planning a sweep again does
    # not trace every group again; keyed, like them, by the code of the components used
    # (engine.code_token: None, code that cannot be followed, keeps nothing).
    kept = cache.program_key("memory estimate", static, token, cache.call_shape((hp, key)))
    found = cache.load(kept) if token is not None else None
    if isinstance(found, int):
        return found
    jaxpr = jax.make_jaxpr(make_run(static))(hp, key).jaxpr
    estimate = ESTIMATE_MARGIN * _peak_live_bytes(jaxpr)
    if token is not None:
        cache.store(kept, estimate)
    return estimate


def estimate_run_bytes(static: StaticConfig, example: RunConfig) -> int:
    """Estimated device memory of one run, from its jaxpr (traced, not compiled).

    The peak, over the program, of the bytes of arrays alive at once (inputs, intermediates
    still to be used, outputs), counting a loop body's peak on top of what is alive around it,
    times ESTIMATE_MARGIN. Under vmap every array gains the run axis, so a chunk of R runs
    needs about R times this.
    """
    hp, key = abstract_inputs(example)
    token, memo = code_token(static)
    return _estimate(static, hp, key, memo, token)


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
