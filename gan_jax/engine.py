"""Running many runs of one static configuration as one compiled program.

`compiled_run(static)` is `jit(vmap(run))` for that configuration, built once and cached, so
every batch of its runs (any hyperparameter values, any seeds) reuses one compilation.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import config as config_lib
from gan_jax import rand
from gan_jax.config import RunConfig, StaticConfig
from gan_jax.train import RunOutput, make_run


RUN_AXIS = "runs"

# Calls of at least this many runs sort the final evaluation's samples (up to
# rand.LARGE_NETWORK of them) with the sorting network: its extra compilation is repaid within
# one call of this size, not of a small one (figures: BENCHMARKS.md).
NETWORK_RUNS = 256


def batched_run(static: StaticConfig, keep_samples: int = 0):
    """`vmap(run)` of a static configuration, (HParams[R], keys[R]) -> RunOutput[R], to jit.

    Traced once per call shape, so it knows R: calls of NETWORK_RUNS or more trace with the
    larger sorting network (the same values; see rand.sort). keep_samples: generated samples
    of the final evaluation each run keeps (train.make_run).
    """
    run = jax.vmap(make_run(static, keep_samples))

    def batched(hps, keys):
        limit = rand.LARGE_NETWORK if keys.shape[0] >= NETWORK_RUNS else rand.MAX_NETWORK
        with rand.network_limit(limit):
            return run(hps, keys)

    return batched


def run_sharding(devices) -> jax.sharding.NamedSharding:
    """The run axis split over `devices` (a 1-D mesh named RUN_AXIS)."""
    mesh = jax.sharding.Mesh(np.asarray(devices), (RUN_AXIS,))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(RUN_AXIS))


@functools.cache
def compiled_run(static: StaticConfig, sharding: jax.sharding.Sharding | None = None,
                 keep_samples: int = 0):
    """`jit(vmap(run))` of a static configuration: (HParams[R], keys[R]) -> RunOutput[R].

    Args:
      static: the static configuration; picks the program.
      sharding: where the run axis lives, e.g. `NamedSharding(mesh, PartitionSpec("runs"))`
        to split runs across devices; applied to every input and output (all lead with the
        run axis). None: jit's default placement.
      keep_samples: generated samples of the final evaluation each run keeps.
    """
    program = batched_run(static, keep_samples)
    if sharding is None:
        return jax.jit(program)
    return jax.jit(program, in_shardings=sharding, out_shardings=sharding)


def seed_keys(seeds) -> jax.Array:
    """Typed keys `jax.random.key(seed)`, one per run; a run's key depends on its seed alone."""
    return jax.vmap(jax.random.key)(jnp.asarray(np.asarray(seeds, np.uint32)))


def run_batch(cfgs: list[RunConfig], seeds: list[int], *, keep_samples: int = 0) -> RunOutput:
    """Run configurations that share one program, in one call; returns NumPy arrays.

    Their static parts may differ in choice fields only (config.CHOICE_FIELDS: the loss):
    the program then serves each run's own choice.
    """
    statics = {config_lib.static_part(c) for c in cfgs}
    if len({config_lib.shape_key(s) for s in statics}) != 1:
        raise ValueError(f"run_batch needs one program, got {len(statics)} static parts that "
                         "differ in more than their choice fields")
    program = config_lib.merge_statics(statics)
    n = len(cfgs)
    # A batch of one compiles to other kernels (a unit run axis is squeezed away), whose
    # rounding differs; GAN training can amplify that. Padding to two keeps one run's numbers
    # the same as in any larger batch.
    if n == 1:
        cfgs, seeds = list(cfgs) * 2, list(seeds) * 2
    hps = config_lib.stack_hparams([config_lib.traced_part(c, program) for c in cfgs])
    out = compiled_run(program, None, keep_samples)(hps, seed_keys(seeds))
    return jax.tree.map(lambda x: np.asarray(x)[:n], out)


def rerun(records: list[dict], keep_samples: int) -> list[RunOutput]:
    """Run recorded runs again from their records (configuration and seed), keeping samples.

    A run's numbers depend on its configuration and seed alone, so a re-run repeats the
    recorded one; runs of one static configuration share one call. Returns one RunOutput per
    record, NumPy arrays without a run axis.
    """
    cfgs = [config_lib.make_config(r["config"], where="record config") for r in records]
    by_static: dict[StaticConfig, list[int]] = {}
    for i, cfg in enumerate(cfgs):
        by_static.setdefault(config_lib.static_part(cfg), []).append(i)
    out: list[RunOutput | None] = [None] * len(records)
    for idx in by_static.values():
        batch = run_batch([cfgs[i] for i in idx], [records[i]["seed"] for i in idx],
                          keep_samples=keep_samples)
        for b, i in enumerate(idx):
            out[i] = jax.tree.map(lambda a: a[b], batch)
    return out
