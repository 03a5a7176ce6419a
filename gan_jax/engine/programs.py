"""Running many runs of one static configuration as compiled programs.

A run is two programs (`gan_jax.training.train`): its *training* (`make_training`: the loop, the history
rows' loss values, gradient norms and recorded parameters, and the generator at each row) and
its *evaluation* (`make_evaluation`: the rows' sample metrics and the final metrics, from the
recorded generators). The training program is one per static configuration; the evaluation
reads only the target, the generator and the metric options (`config.eval_part`), so one
evaluation program serves every discriminator, loss and training method of a grid, and it is
compiled once per process for each call shape. `compiled_run(static)` gives both, built once
and cached, so every batch of a configuration's runs (any hyperparameter values, any seeds)
reuses their compilations.
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import threading
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.core import digest
from gan_jax.engine import cache
from gan_jax import config as config_lib
from gan_jax.core import rand
from gan_jax.core import registry
from gan_jax.training import train as train_lib
from gan_jax.config import EvalConfig, RunConfig, StaticConfig
from gan_jax.training.train import RunOutput


RUN_AXIS = "runs"

# Which sort a call's evaluation traces, by its number of runs (the values are the same; see
# rand.sort). Under NETWORK_MIN_RUNS: XLA's sort, since the sorting network's compilation costs
# more than it saves in calls this small. From NETWORK_RUNS: the network also for the final
# evaluation's samples (up to rand.LARGE_NETWORK), whose extra compilation one call of this
# size repays. In between: the network up to rand.MAX_NETWORK values. Figures: BENCHMARKS.md.
NETWORK_MIN_RUNS = 64
NETWORK_RUNS = 256


def _network(runs: int):
    """The sorting network's limit for a call of `runs` runs (rand.network_limit)."""
    if runs < NETWORK_MIN_RUNS:
        return rand.network_limit(0)
    return rand.network_limit(rand.LARGE_NETWORK if runs >= NETWORK_RUNS else rand.MAX_NETWORK)


def batched_run(static: StaticConfig, keep_samples: int = 0):
    """`vmap(run)` of a static configuration as one function, (HParams[R], keys[R]) ->
    RunOutput[R], to jit: training and evaluation in one program (the engine runs them as
    two, `compiled_run`; the numbers are the same). Traced once per call shape, so it knows R
    and picks the sort by it (`_network`; the same values, see rand.sort). keep_samples:
    generated samples of the final evaluation each run keeps.
    """
    run = jax.vmap(train_lib.make_run(static, keep_samples))

    def batched(hps, keys):
        with _network(keys.shape[0]):
            return run(hps, keys)

    return batched


def batched_training(static: StaticConfig):
    """`vmap(training)`: (HParams[R], run keys[R]) -> (TrainState[R], history fields[R],
    Snapshots[R]), each run trained on its key's training half (train.run_keys)."""
    training = train_lib.make_training(static)
    init, loop = jax.vmap(training.init), jax.vmap(training.loop)

    def batched(hps, keys):
        # init apart: its outputs leave vmap batched, so the loop's carry enters it batched
        # and its body is batched once (train.Training).
        keys = jax.vmap(lambda key: train_lib.run_keys(key)[0])(keys)
        return loop(hps, keys, init(hps, keys))

    return batched


def batched_evaluation(ecfg: EvalConfig, keep_samples: int = 0):
    """`vmap(evaluation)`: (Snapshots[R], final Snapshot[R], run keys[R]) -> (history metrics,
    final metrics, samples), traced with the sorting network of its call size."""
    evaluation = jax.vmap(train_lib.make_evaluation(ecfg, keep_samples))

    def batched(snapshots, last, keys):
        with _network(keys.shape[0]):
            return evaluation(snapshots, last, keys)

    return batched


def run_sharding(devices) -> jax.sharding.NamedSharding:
    """The run axis split over `devices` (a 1-D mesh named RUN_AXIS)."""
    mesh = jax.sharding.Mesh(np.asarray(devices), (RUN_AXIS,))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(RUN_AXIS))


def _jit(fn, sharding):
    if sharding is None:
        return jax.jit(fn)
    return jax.jit(fn, in_shardings=sharding, out_shardings=sharding)


@functools.cache
def _evaluation_program(ecfg: EvalConfig, sharding, keep_samples: int, token):
    return _jit(batched_evaluation(ecfg, keep_samples), sharding)


def code_token(cfg) -> tuple:
    """(key, memo) of the code a configuration's programs use beyond the package's source
    (gan_jax.core.digest.component_token over registry.used(cfg)): `key` enters the kept
    programs' keys ("" when there is no such code; None when some cannot be followed, and then
    nothing is kept by configuration), `memo` the programs built in this process (the digest,
    or, for code that cannot be followed, the objects' identities)."""
    used = registry.used(cfg)
    key = digest.component_token(used)
    memo = key if key is not None else ("unfollowable",) + tuple(id(o) for *_, o in used)
    return key, memo


def run_output(program, state, trained, snapshots, keys) -> RunOutput:
    """A chunk's RunOutput from its training program's outputs and the evaluation `program`."""
    return train_lib.output(state, trained,
                            program(snapshots, train_lib.snapshot(state), keys))


class Program(NamedTuple):
    """The two programs of a static configuration: `program(hps, keys) -> RunOutput`, built on
    its first call of a shape and kept for later calls of that shape; `compile` builds both
    for one shape ahead of any call."""

    static: StaticConfig
    training: Any          # jit(batched_training(static))
    evaluation: Any        # jit(batched_evaluation(eval_part(static))), shared
    sharding: Any
    keep_samples: int
    built: dict            # input shapes -> CompiledRun, for the shapes built so far
    token: Any = ""        # code outside the package's source (code_token): None, not kept
    eval_token: Any = ""
    eval_memo: Any = ""    # ... and its in-process memo (code_token), for the shared evaluation

    def __call__(self, hps, keys) -> RunOutput:
        return self.compile(hps, keys)(hps, keys)

    def cache_size(self) -> int:
        """Call shapes this configuration's programs were built for in this process."""
        return len(self.built)

    def compile(self, hps, keys) -> "CompiledRun":
        """Both programs for the shapes of (hps, keys) (arrays or ShapeDtypeStructs), built
        once per shape in a process: traced, lowered and compiled, or, with the compilation
        cache on, loaded lowered by their configuration and compiled from JAX's cache
        (gan_jax.engine.cache). The two are built side by side in two threads (on 2 CPU cores this
        gains little: BENCHMARKS.md). The evaluation is built once per process for its
        configuration and shapes: another static configuration with the same `eval_part`
        reuses it. A later call for built shapes returns the same programs, with no time and
        no compilation of its own."""
        shapes = cache.call_shape((hps, keys))
        with _SHARED_LOCK:
            done = self.built.get(shapes)
        if done is not None:
            return done._replace(train_s=0.0, eval_s=0.0, eval_fresh=False, train_fresh=False)
        compiled = self._build(hps, keys)
        with _SHARED_LOCK:
            return self.built.setdefault(shapes, compiled)

    def evaluation_for(self, snapshots, last, keys):
        """The evaluation program compiled for these (snapshots, final snapshot, keys) shapes
        (arrays or ShapeDtypeStructs), the one the training program's outputs of that shape
        feed, shared in the process: (compiled, seconds compiling, whether this call did)."""
        args = (snapshots, last, keys)
        if self.sharding is not None:
            args = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype,
                                                               sharding=self.sharding), args)
        ecfg = config_lib.eval_part(self.static)
        key = (ecfg, self.sharding, self.keep_samples, cache.call_shape(args),
               self.eval_memo)
        return _compile_shared(key, lambda: _lower(
            self.evaluation, self.sharding, args,
            ("evaluation", ecfg, self.keep_samples), self.eval_token).compile())

    def _build(self, hps, keys) -> "CompiledRun":
        t = time.perf_counter()
        training = _lower(self.training, self.sharding, (hps, keys),
                          ("training", self.static), self.token)
        state, _, snapshots = training.out_info
        pool = concurrent.futures.ThreadPoolExecutor(1)
        try:
            evaluating = pool.submit(self.evaluation_for, snapshots,
                                     train_lib.snapshot(state), keys)
            training = training.compile()
            train_s = time.perf_counter() - t
            evaluation, eval_s, fresh = evaluating.result()
        finally:                 # an error or Ctrl-C here does not wait for the other one
            pool.shutdown(wait=False)
        return CompiledRun(training, evaluation, train_s, eval_s, fresh)


def _placement(sharding):
    """What a program's key records of its sharding: device count, axes and partitioning."""
    if sharding is None:
        return None
    return (sharding.mesh.devices.shape, sharding.mesh.axis_names, str(sharding.spec))


class _Lowered(NamedTuple):
    """A program lowered for one call shape, with its outputs' shapes (`out_info`)."""

    lowered: Any
    out_info: Any
    out_tree: Any          # None: `lowered` takes and returns the function's own pytrees

    def compile(self):
        compiled = self.lowered.compile()
        return compiled if self.out_tree is None else _Flat(compiled, self.out_tree)


class _Flat(NamedTuple):
    """A program compiled from its exported form, which takes and returns flat lists of
    arrays: called with the function's own arguments, returns its own output pytree."""

    compiled: Any
    out_tree: Any

    def __call__(self, *args):
        return jax.tree.unflatten(self.out_tree, self.compiled(*jax.tree.leaves(args)))

    def memory_analysis(self):
        return self.compiled.memory_analysis()


def _lower(jitted, sharding, args, defining, token="") -> _Lowered:
    """`jitted` lowered for `args`. With the compilation cache on, through its exported form
    (jax.export), kept under a key of `defining` (what fixes the function: its kind and
    configuration), `token` (the code it uses beyond the package's source, code_token), the
    inputs' shapes and the placement, so that a later process finds it without tracing
    (gan_jax.engine.cache). The numbers are the same either way. A token of None (code that cannot
    be followed) keeps nothing: the program is traced as it is."""
    if cache.programs_dir() is None or token is None:
        return _traced(jitted, args)
    key = cache.program_key(defining, token, _placement(sharding), cache.call_shape(args))
    found = cache.load(key, _decode)
    if found is None:
        try:
            found = _export(jitted.__wrapped__, sharding, args)
        except Exception:       # a program jax.export cannot hold is built as it is
            return _traced(jitted, args)
        cache.store(key, found, _encode)
    exported, out_tree = found
    leaves = jax.tree.leaves(args)
    lowered = _jit(exported.call, sharding).trace(*leaves).lower()
    out_info = jax.tree.unflatten(out_tree, [jax.ShapeDtypeStruct(a.shape, a.dtype)
                                             for a in exported.out_avals])
    return _Lowered(lowered, out_info, out_tree)


def _traced(jitted, args) -> _Lowered:
    traced = jitted.trace(*args)
    return _Lowered(traced.lower(), traced.out_info, None)


def _export(fn, sharding, args):
    """(jax.export.Exported of fn over the flat leaves of args, fn's output structure)."""
    in_tree = jax.tree.structure(args)
    out_tree = []

    def flat(*leaves):
        out_leaves, tree = jax.tree.flatten(fn(*jax.tree.unflatten(in_tree, leaves)))
        out_tree.append(tree)
        return out_leaves

    exported = jax.export.export(_jit(flat, sharding))(*jax.tree.leaves(args))
    return exported, out_tree[0]


MAGIC = b"gan_jax program 1\n"


def _encode(found) -> bytes:
    """An entry as data: a header line, the output structure as one JSON line, then the
    exported program's bytes (gan_jax.engine.cache: no pickle). Raises for a structure JSON cannot
    describe, and the entry is then not kept."""
    exported, out_tree = found
    desc = cache.encode_tree(out_tree)
    if desc is None:
        raise ValueError("the program's output structure cannot be kept as data")
    return MAGIC + json.dumps(desc).encode() + b"\n" + bytes(exported.serialize())


def _decode(data: bytes):
    if not data.startswith(MAGIC):
        raise ValueError("not a kept program")
    header, _, blob = data[len(MAGIC):].partition(b"\n")
    return jax.export.deserialize(bytearray(blob)), cache.decode_tree(json.loads(header))


_SHARED_LOCK = threading.Lock()
_SHARED: dict[Any, concurrent.futures.Future] = {}


def _compile_shared(key, compile_fn):
    """Compile once per key in this process, also when several threads ask at once.
    Returns (compiled, seconds spent compiling by this call, whether this call compiled)."""
    with _SHARED_LOCK:
        future = _SHARED.get(key)
        owner = future is None
        if owner:
            future = _SHARED[key] = concurrent.futures.Future()
    if not owner:
        return future.result(), 0.0, False
    t = time.perf_counter()
    try:
        compiled = compile_fn()
    except BaseException as e:
        with _SHARED_LOCK:
            del _SHARED[key]
        future.set_exception(e)
        raise
    future.set_result(compiled)
    return compiled, time.perf_counter() - t, True


def forget_compiled() -> None:
    """Forget the programs built in this process (the benchmark compiles each configuration's
    afresh)."""
    with _SHARED_LOCK:
        _SHARED.clear()
    _compiled_run.cache_clear()
    _segment_program.cache_clear()


class CompiledRun(NamedTuple):
    """A static configuration's two programs, compiled for one call shape:
    `compiled(hps, keys) -> RunOutput`."""

    training: Any
    evaluation: Any
    train_s: float         # seconds building the training program
    eval_s: float          # ... the evaluation program (0 when built before, shared)
    eval_fresh: bool       # whether this call built the evaluation program
    train_fresh: bool = True   # whether this call built the training program

    def __call__(self, hps, keys) -> RunOutput:
        return run_output(self.evaluation, *self.training(hps, keys), keys)

    @property
    def compilations(self) -> int:
        """Programs this call built (compiled, or loaded from the caches)."""
        return self.train_fresh + self.eval_fresh

    def device_bytes(self) -> int | None:
        """Bytes one device needs, from XLA's memory analysis if any: the larger of the
        training program's and, while the evaluation runs, the training's outputs plus the
        evaluation's temporaries and outputs."""
        t, e = _memory(self.training), _memory(self.evaluation)
        if t is None or e is None:
            return None
        return max(t["total"], t["output"] + e["temp"] + e["output"])


def _memory(compiled) -> dict[str, int] | None:
    try:
        m = compiled.memory_analysis()
    except (NotImplementedError, AttributeError, RuntimeError):
        return None
    if m is None:
        return None
    return {"total": int(m.temp_size_in_bytes + m.argument_size_in_bytes
                         + m.output_size_in_bytes - m.alias_size_in_bytes),
            "temp": int(m.temp_size_in_bytes), "output": int(m.output_size_in_bytes)}


def compiled_run(static: StaticConfig, sharding: jax.sharding.Sharding | None = None,
                 keep_samples: int = 0) -> Program:
    """The programs of a static configuration: `program(HParams[R], keys[R]) -> RunOutput[R]`.

    Args:
      static: the static configuration; picks the training program (its `eval_part` picks
        the evaluation program, shared by every configuration with the same).
      sharding: where the run axis lives, e.g. `NamedSharding(mesh, PartitionSpec("runs"))`
        to split runs across devices; applied to every input and output (all lead with the
        run axis). None: jit's default placement.
      keep_samples: generated samples of the final evaluation each run keeps.

    Built once per process for each configuration and for the code of the components it uses
    (`code_token`): a component registered again with other code gets programs of its own.
    """
    cache.ensure_configured()
    token, memo = code_token(static)
    return _compiled_run(static, sharding, keep_samples, memo, token)


@functools.cache
def _compiled_run(static, sharding, keep_samples, memo, token) -> Program:
    ecfg = config_lib.eval_part(static)
    eval_token, eval_memo = code_token(ecfg)
    return Program(static, _jit(batched_training(static), sharding),
                   _evaluation_program(ecfg, sharding, keep_samples, eval_memo),
                   sharding, keep_samples, {}, token, eval_token, eval_memo)


def batched_init(static: StaticConfig):
    """`vmap` of a run's initial TrainState: (HParams[R], run keys[R]) -> TrainState[R], the
    state `batched_training` starts from (train.Training.init)."""
    training = train_lib.make_training(static)

    def init(hp, key):
        return training.init(hp, train_lib.run_keys(key)[0])[0]

    return jax.vmap(init)


def batched_segment(static: StaticConfig, length: int):
    """`length` history rows of training from a state: (HParams[R], run keys[R],
    TrainState[R], start) -> (TrainState[R], history fields[R], Snapshots[R]) of rows
    start..start + length - 1, `state` being the state at row start - 1 (the initial state
    when start is 0; train.Training.resume). `start` is traced, so one program serves every
    segment of a length. Segments one after another give the numbers of `batched_training`
    (tests/test_continue.py)."""
    training = train_lib.make_training(static)

    def segment(hp, key, state, start):
        k_train = train_lib.run_keys(key)[0]
        carry = training.resume(hp, k_train, state, start)
        return training.loop(hp, k_train, carry, start, length)

    return jax.vmap(segment, in_axes=(0, 0, 0, None))


@functools.cache
def _segment_program(static: StaticConfig, length: int | None, sharding, memo):
    fn = batched_init(static) if length is None else batched_segment(static, length)
    return jax.jit(fn) if sharding is None else jax.jit(fn, out_shardings=sharding)


def segment_program(static: StaticConfig, length: int | None,
                    sharding: jax.sharding.Sharding | None = None):
    """The jitted `batched_segment(static, length)` (`batched_init(static)` for length None),
    built once per process for a configuration, length, placement and components' code."""
    return _segment_program(static, length, sharding, code_token(static)[1])


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
