"""Running a plan: each group compiled once, called chunk by chunk, records appended.

Compilation runs ahead in threads while a group computes; each chunk's records are appended
to the results file and fsynced as it finishes (see gan_jax.records.results), and the next chunk is
dispatched before the previous one's records are written, so the host's work overlaps the
devices'. Progress is one line on a terminal, rewritten by the host between chunks.
"""

from __future__ import annotations

import concurrent.futures
import os
import sys
import time
from typing import Callable, NamedTuple, TextIO

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding

from gan_jax.engine import programs as engine
from gan_jax.records import results
from gan_jax.training import train as train_lib
from gan_jax.config import stack_hparams, traced_part
from gan_jax.sweep.plan import Group, Plan, abstract_inputs
from gan_jax.sweep.spec import Run
from gan_jax.sweep.states import Store

DEFAULT_COMPILE_WORKERS = 2         # groups compiled ahead, in threads, while one computes
# Host memory one compilation in flight holds, about (the loss ablation's peak resident
# memory grew by 1 GiB with a second worker): compiling ahead never starts more compilations
# than the machine's available memory holds.
COMPILE_HOST_BYTES = 1 << 30


def workers_for_memory(requested: int) -> int:
    """At most `requested` compile workers, and no more than available memory holds (>= 1)."""
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):     # not every system reports it
        return max(1, requested)
    return max(1, min(requested, available // COMPILE_HOST_BYTES))


class Report(NamedTuple):
    """What a sweep did in this process."""

    path: str                  # the results file written
    done: int                  # runs recorded now
    diverged: int              # of which diverged
    skipped: int               # runs found recorded already
    compilations: int          # programs compiled: a training program per group with runs
                               # (more if shrunk), and each evaluation program not shared
    chunks: int                # calls made
    chunk_sizes: tuple[int, ...]           # per group run: runs per call
    num_devices: int
    compile_s: float           # seconds compiling, summed over the compiling threads
    compile_wait_s: float      # seconds of the wall time spent waiting for a compilation
    wall_s: float
    run_steps: int
    device_bytes: tuple[int | None, ...]   # per group run: the program's measured bytes/device
    stopped: bool = False      # `stop` asked to stop before every run was done
    continued: int = 0         # runs started from a kept state (gan_jax.sweep.states)
    steps_not_redone: int = 0  # run-steps those kept states spared (not in run_steps)
    kept_bytes: int = 0        # bytes of the last kept state file written ...
    kept_runs: int = 0         # ... and the runs it holds


def run_sweep(plan: Plan, path: str | os.PathLike, *, progress: "Progress | None" = None,
              compile_workers: int = DEFAULT_COMPILE_WORKERS,
              stop: Callable[[], bool] | None = None,
              states: "Store | None" = None, checkpoint_every: int = 0,
              record_fields: dict | None = None) -> Report:
    """Run a plan's groups and append their records to `path`, chunk by chunk.

    Each group is compiled once for its chunk size (the last chunk is padded with copies of a
    real run, whose outputs are dropped). Compilation runs ahead in `compile_workers` threads,
    so the next groups compile while this one computes, and the next chunk is dispatched
    before the previous one's records are written, so the host's work overlaps the devices'.

    `stop`, if given, is asked between chunks and while waiting (e.g. a signal handler's
    flag): once it says True, no further chunk is started, the chunk already computing is
    finished and recorded, compilations not started are cancelled, and the report has
    stopped=True. Compilations in flight are not waited for (their threads end with the
    process). An OutputError from writing records propagates; what was appended before stays.

    `states` (a gan_jax.sweep.states.Store) turns on kept training states: a run with a kept
    state it can continue from trains only the rows after it (runs continuing from the same
    row share chunks and programs), and a chunk trains in segments of history rows, each a
    program of its length: `checkpoint_every` > 0 keeps the chunk's state after the first row
    at or after every that many steps, and the store's `keep` after its last row. Records
    are the same numbers either way (docs/sweeps.md, "Guarantees").

    `record_fields`, if given, are added to every record (successive halving's "rung").
    """
    path = os.fspath(path)
    stop = stop or (lambda: False)
    sharding = engine.run_sharding(plan.devices)
    version_info = results.versions()
    progress = progress or Progress(plan, enabled=False)
    t_start = time.perf_counter()
    done = diverged = compilations = run_steps = chunks = 0
    compile_s = compile_wait_s = 0.0
    measured, sizes = [], []
    stopped = False

    def finish(chunk: list[Run], output, steps_per_run: int) -> None:
        nonlocal done, diverged, run_steps
        _await(output)
        records = _append(path, plan.sweep.name, chunk, output, version_info, record_fields)
        done += len(records)
        diverged += sum(r["status"] == "diverged" for r in records)
        run_steps += len(chunk) * steps_per_run
        progress.compiling_ahead = [i + 1 for i, f in enumerate(compiling)
                                    if i >= progress.group and f is not None and not f.done()]
        progress.update(runs_done=done, run_steps_done=run_steps,
                        compile_wait_s=compile_wait_s)

    groups = [g for g in plan.groups if g.runs]
    if states is not None:
        return _run_kept(plan, path, groups, sharding, version_info, progress, stop, states,
                         checkpoint_every, t_start, record_fields or {})
    compile_workers = workers_for_memory(compile_workers)
    pool = concurrent.futures.ThreadPoolExecutor(compile_workers)
    try:
        compiling = [pool.submit(_compile, g, sharding, plan.memory_budget,
                                 plan.sweep.keep_samples)
                     for g in groups[:compile_workers]]
        for number, group in enumerate(groups):
            if stop():
                stopped = True
                break
            if number + compile_workers < len(groups):
                compiling.append(pool.submit(_compile, groups[number + compile_workers],
                                             sharding, plan.memory_budget,
                                             plan.sweep.keep_samples))
            progress.compiling_ahead = [i + 1 for i, f in enumerate(compiling)
                                        if i > number and f is not None and not f.done()]
            progress.start_group(number + 1, compiling=not compiling[number].done())
            t = time.perf_counter()
            if not _wait_for(compiling[number], stop):
                stopped = True
                break
            compiled, size, nbytes, tries, seconds = compiling[number].result()
            compiling[number] = None                     # let the executable go with the group
            compile_wait_s += time.perf_counter() - t
            compile_s += seconds
            compilations += tries
            measured.append(nbytes)
            sizes.append(size)
            pending = None
            for start in range(0, len(group.runs), size):
                if stop():
                    stopped = True
                    break
                chunks += 1
                chunk = list(group.runs[start:start + size])
                output = compiled(*_chunk_inputs(chunk, size, sharding, group.static))
                if pending is not None:
                    finish(*pending)
                pending = (chunk, output, group.static.run_steps)
            if pending is not None:
                finish(*pending)                # the chunk computing is recorded, stop or not
            if stopped:
                break
    finally:
        # Never wait for compilations in flight: a stop or an error ends the sweep now.
        pool.shutdown(wait=False, cancel_futures=True)
        progress.close()
    return Report(path, done, diverged, plan.recorded, compilations, chunks, tuple(sizes),
                  len(plan.devices), compile_s, compile_wait_s, time.perf_counter() - t_start,
                  run_steps, tuple(measured), stopped)


def _run_kept(plan: Plan, path: str, groups: list[Group], sharding, version_info, progress,
              stop, states: Store, checkpoint_every: int, t_start: float,
              record_fields: dict) -> Report:
    """run_sweep with kept states: groups one after another, each chunk in segments."""
    done = diverged = run_steps = chunks = continued = spared = 0
    kept_bytes = kept_runs = 0
    sizes, stopped = [], False
    programs: set = set()       # (kind, static, length, chunk size) built here
    for number, group in enumerate(groups):
        program = engine.compiled_run(group.static, sharding, plan.sweep.keep_samples)
        size = group.chunk_size
        sizes.append(size)
        progress.start_group(number + 1, compiling=False)
        every = -(-checkpoint_every // group.static.log_every) if checkpoint_every else 0
        for chunk, entries in _kept_chunks(group, size, states):
            if stop():
                stopped = True
                break
            chunks += 1
            output, start, nbytes = _kept_chunk(program, group, chunk, entries, size,
                                                sharding, states, every, programs)
            records = _append(path, plan.sweep.name, chunk, output, version_info,
                              record_fields)
            if not states.keep:
                states.drop(chunk)
            if nbytes:
                kept_bytes, kept_runs = nbytes, len(chunk)
            before = 0 if start == 0 else 1 + (start - 1) * group.static.log_every
            done += len(records)
            diverged += sum(r["status"] == "diverged" for r in records)
            run_steps += len(chunk) * (group.static.run_steps - before)
            continued += len(chunk) if start else 0
            spared += len(chunk) * before
            progress.update(runs_done=done, run_steps_done=run_steps, compile_wait_s=0.0)
        if stopped:
            break
    progress.close()
    return Report(path, done, diverged, plan.recorded, len(programs),
                  chunks, tuple(sizes), len(plan.devices), 0.0, 0.0,
                  time.perf_counter() - t_start, run_steps, (None,) * len(sizes), stopped,
                  continued, spared, kept_bytes, kept_runs)


def _append(path: str, sweep: str, chunk: list[Run], output, version_info,
            record_fields) -> list[dict]:
    """A finished chunk's records (the padding runs cut off, `record_fields` added), appended
    to the results file."""
    host = jax.tree.map(lambda a: np.asarray(a)[:len(chunk)], jax.device_get(output))
    records = results.make_records(sweep, [r.cfg for r in chunk], [r.seed for r in chunk],
                                   host, version_info=version_info,
                                   ids=[r.run_id for r in chunk])
    for r in records if record_fields else ():
        r.update(record_fields)
    results.append_records(path, records)
    return records


def _kept_chunks(group: Group, size: int, states: Store):
    """A group's runs as chunks of runs that continue from the same row: (runs, kept
    entries or None), the chunks of each row in the group's order."""
    found = [states.find(r) for r in group.runs]
    states.verify({e.file for e in found if e is not None})
    by_rows: dict[int, list] = {}
    for run, e in zip(group.runs, found):
        e = e if e is not None and e.file not in states.bad else None
        by_rows.setdefault(e.rows if e else 0, []).append((run, e))
    for rows, members in by_rows.items():
        for i in range(0, len(members), size):
            part = members[i:i + size]
            yield [r for r, _ in part], ([e for _, e in part] if rows else None)


_TEMPLATES: dict = {}


def _template(static, example, rows: int):
    """One run's (TrainState, history fields, Snapshots) after `rows` rows, as shapes."""
    if static not in _TEMPLATES:
        hp, key = abstract_inputs(example)
        one = jax.tree.map(lambda s: jax.ShapeDtypeStruct((1, *s.shape), s.dtype), (hp, key))
        out = jax.eval_shape(engine.batched_training(static), *one)
        _TEMPLATES[static] = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape[1:], s.dtype),
                                          out)
    state, trained, snaps = _TEMPLATES[static]
    rows_of = lambda s: jax.ShapeDtypeStruct((rows, *s.shape[1:]), s.dtype)
    return state, jax.tree.map(rows_of, trained), jax.tree.map(rows_of, snaps)


def _kept_chunk(program, group: Group, chunk: list[Run], entries, size: int, sharding,
                states: Store, every: int, programs: set):
    """Train a chunk from its kept state (entries; None: from step 0) in segments of `every`
    rows (0: the rest in one), keeping its state as asked; returns (RunOutput on device, the
    row it started at, bytes of the last state file written or 0)."""
    static, n = group.static, group.static.num_logs
    hp, keys = _chunk_inputs(chunk, size, sharding, static)
    trained = snaps = None
    if entries is None:
        start = 0
        state = engine.segment_program(static, None, sharding)(hp, keys)
        programs.add(("init", static, size))
    else:
        start = entries[0].rows
        padded = entries + [entries[-1]] * (size - len(entries))
        try:
            state, trained, snaps = jax.device_put(
                states.load(padded, _template(static, group.example, start)), sharding)
        except ValueError:           # the state changed its fields, or the file its bytes
            return _kept_chunk(program, group, chunk, None, size, sharding, states, every,
                               programs)
    rows, nbytes = start, 0
    while rows < n:
        length = min(every, n - rows) if every else n - rows
        state, t, s = engine.segment_program(static, length, sharding)(hp, keys, state,
                                                                      np.int32(rows))
        join = lambda a, b: jnp.concatenate([a, b], axis=1)
        trained = t if trained is None else jax.tree.map(join, trained, t)
        snaps = s if snaps is None else jax.tree.map(join, snaps, s)
        programs.add(("segment", static, length, size))
        rows += length
        if (every and rows < n) or (rows == n and states.keep):
            kept = jax.tree.map(lambda a: a[:len(chunk)],
                                jax.device_get((state, trained, snaps)))
            nbytes = states.save(chunk, kept, rows)
    trained, snaps = jax.device_put((trained, snaps), sharding)
    last = train_lib.snapshot(state)
    evaluation, _, fresh = program.evaluation_for(snaps, last, keys)
    if fresh:
        programs.add(("evaluation", static, n, size))
    return engine.run_output(evaluation, state, trained, snaps, keys), start, nbytes


def _wait_for(future: concurrent.futures.Future, stop: Callable[[], bool]) -> bool:
    """Wait for a future, asking `stop` every 50 ms; False if stop said True first."""
    while True:
        try:
            future.result(timeout=0.05)
            return True
        except concurrent.futures.TimeoutError:
            if stop():
                return False


def _await(output) -> None:
    """Wait for a chunk's arrays in short sleeps, not one blocking call, so that the main
    thread stays free to run signal handlers (a second Ctrl-C must stop at once)."""
    leaves = [a for a in jax.tree.leaves(output) if hasattr(a, "is_ready")]
    pause = 0.0005
    while not all(a.is_ready() for a in leaves):
        time.sleep(pause)
        pause = min(2 * pause, 0.05)


def _compile(group: Group, sharding: NamedSharding, budget: int, keep_samples: int):
    """Compile a group's programs for its chunk size; shrink the chunk if XLA says they won't
    fit. The evaluation program is shared with earlier groups of the same `eval_part`.

    Returns (compiled, chunk size, measured bytes per device or None, programs compiled,
    seconds).
    """
    t0 = time.perf_counter()
    n_dev = sharding.mesh.size
    program = engine.compiled_run(group.static, sharding, keep_samples)
    hp, key = abstract_inputs(group.example)
    size, compilations = group.chunk_size, 0
    while True:
        batched = jax.tree.map(
            lambda s: jax.ShapeDtypeStruct((size, *s.shape), s.dtype, sharding=sharding),
            (hp, key))
        compiled = program.compile(*batched)
        compilations += compiled.compilations
        nbytes = compiled.device_bytes()
        if nbytes is None or nbytes <= budget or size <= n_dev:
            return compiled, size, nbytes, compilations, time.perf_counter() - t0
        smaller = max(n_dev, int(size * budget / nbytes) // n_dev * n_dev)
        size = smaller if smaller < size else size - n_dev


def _chunk_inputs(chunk: list[Run], size: int, sharding: NamedSharding, program):
    """(HParams, keys) of a chunk padded to `size` runs, placed on the run axis's devices."""
    padded = chunk + [chunk[-1]] * (size - len(chunk))
    hp = stack_hparams([traced_part(r.cfg, program) for r in padded])
    keys = engine.seed_keys([r.seed for r in padded])
    return jax.device_put((hp, keys), sharding)


# ----------------------------------------------------------------------------- progress


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


LINE_EVERY_S = 30.0     # a log (stderr not a terminal) gets a progress line at most this often


class Progress:
    """Progress on stderr: on a terminal one status line, rewritten by the host between chunks;
    elsewhere (a batch job's log) whole lines, one after a chunk at most every LINE_EVERY_S
    seconds, each with the runs done, the rate and the time left.

    `enabled` False is quiet (--quiet); None: on, as a terminal line or log lines by the stream.
    `lines` forces log lines (None: when the stream is not a terminal); `clock` is for tests.
    """

    def __init__(self, plan: Plan, stream: TextIO | None = None, enabled: bool | None = None,
                 lines: bool | None = None, clock: Callable[[], float] = time.perf_counter):
        self.stream = stream or sys.stderr
        tty = self.stream.isatty()
        self.enabled = True if enabled is None else enabled
        self.lines = (not tty) if lines is None else lines
        self.clock = clock
        self.last_line = clock()
        self.total = plan.todo
        self.total_steps = plan.run_steps
        self.groups = sum(bool(g.runs) for g in plan.groups)
        self.labels = [label for g, label in zip(plan.groups, plan.labels()) if g.runs]
        self.group = 0
        self.compiling_ahead: list[int] = []   # groups (1-based) compiling in the background
        self.t0 = clock()
        self.shown = False
        self.runs_done = 0          # runs recorded so far (read by a signal handler)

    def _show(self, text: str) -> None:
        if self.enabled and not self.lines:
            self.stream.write("\r\033[K" + text)
            self.stream.flush()
            self.shown = True

    def _line(self, text: str) -> None:
        """A whole line for a log, at most one per LINE_EVERY_S."""
        now = self.clock()
        if self.enabled and self.lines and now - self.last_line >= LINE_EVERY_S:
            self.stream.write(f"progress after {_duration(now - self.t0)}: {text}\n")
            self.stream.flush()
            self.last_line = now

    def start_group(self, number: int, compiling: bool = True) -> None:
        """Group `number` (1-based, among groups with runs) starts; it may wait to compile."""
        self.group = number
        if compiling:
            self._show(f"{self._running()}: compiling...{self._ahead()}")

    def _running(self) -> str:
        label = self.labels[self.group - 1] if 0 < self.group <= len(self.labels) else ""
        return f"group {self.group}/{self.groups}" + (f" ({label})" if label else "")

    def _ahead(self) -> str:
        ahead = ", ".join(map(str, self.compiling_ahead))
        return f" | compiling group {ahead} ahead" if ahead else ""

    def update(self, *, runs_done: int, run_steps_done: int, compile_wait_s: float) -> None:
        self.runs_done = runs_done
        running = max(self.clock() - self.t0 - compile_wait_s, 1e-9)
        rate = run_steps_done / running
        left = (self.total_steps - run_steps_done) / rate if rate > 0 else float("nan")
        text = (f"{self._running()} | runs {runs_done}/{self.total} "
                f"({100 * runs_done / max(self.total, 1):.0f}%) | {rate:,.0f} run-steps/s | "
                f"~{_duration(left)} left (compiles aside){self._ahead()}")
        self._show(text)
        self._line(text)

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()
