"""`python -m gan_jax sweep FILE --out DIR`: run a sweep file, resumably, and sum it up.

Everything a user can get wrong (the file, the flags, the output directory) is checked before
anything is compiled, and reported as a ConfigError naming the place. See docs/sweeps.md.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import sys
import threading
from typing import TextIO

import jax

from gan_jax.records import results
from gan_jax.report import tables
from gan_jax.config import CHOICE_FIELDS, eval_part
from gan_jax.core.errors import ConfigError, OutputError
from gan_jax.sweep.plan import (DEFAULT_MAX_CHUNK, ESTIMATE_MARGIN, Plan, estimate_chunk_bytes,
                                plan_sweep)
from gan_jax.sweep.run import DEFAULT_COMPILE_WORKERS, Progress, run_sweep
from gan_jax.sweep.spec import Sweep, load_sweep
from gan_jax.sweep.states import STATES_DIR, Store

DEFAULT_MEMORY_BUDGET = "1GiB"      # per device


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
    parser.add_argument("--no-merge", action="store_true",
                        help="one program per static part: runs that differ only in the loss "
                             "no longer share a program (by default they do, the loss traced)")
    parser.add_argument("--keep-states", action="store_true",
                        help="keep each chunk's final training state in OUT/states (one .npz "
                             "per chunk), so that the sweep with more steps continues its "
                             "runs instead of training them again (docs/sweeps.md)")
    parser.add_argument("--checkpoint-every", type=int, default=0, metavar="STEPS",
                        help="keep each chunk's training state at the first history row at "
                             "or after every STEPS steps, so that a killed sweep resumes "
                             "from there (--resume); one file per chunk, removed once its "
                             "records are written unless --keep-states")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument("--wait-for-lock", action="store_true",
                        help="if another process is writing the results file, wait for it "
                             "to finish instead of exiting with status 2")
    multi = parser.add_argument_group(
        "multi-host (jax.distributed; on with --distributed, explicit settings, or a cluster "
        "environment: JAX_COORDINATOR_ADDRESS, srun with several tasks, mpirun)")
    multi.add_argument("--distributed", action="store_true",
                       help="call jax.distributed.initialize() (cluster auto-detection)")
    multi.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address")
    multi.add_argument("--num-processes", type=int, metavar="P")
    multi.add_argument("--process-id", type=int, metavar="I")


def add_ranking_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of a command that ranks a sweep's points by a final metric and runs some
    of them again (confirm, halve): the metric's direction, the calls' size, the devices."""
    direction = parser.add_mutually_exclusive_group()
    direction.add_argument("--higher-is-better", action="store_true",
                           help="the metric is better higher (default: its known direction)")
    direction.add_argument("--lower-is-better", action="store_true",
                           help="the metric is better lower (default: its known direction)")
    parser.add_argument("--max-chunk", type=int, default=DEFAULT_MAX_CHUNK, metavar="N",
                        help=f"at most N runs per call ({DEFAULT_MAX_CHUNK})")
    parser.add_argument("--devices", type=int, metavar="N",
                        help="shard runs over the first N local devices (default: all)")
    parser.add_argument("--quiet", action="store_true", help="no progress display")


def ranking_direction(args: argparse.Namespace) -> bool:
    """Check the arguments of add_ranking_arguments and return whether args.metric is better
    higher (the flags, else the metric's known direction)."""
    if args.max_chunk < 1:
        raise ConfigError(f"--max-chunk: got {args.max_chunk}; must be at least 1")
    higher = (args.metric,) if args.higher_is_better else ()
    lower = (args.metric,) if args.lower_is_better else ()
    return tables.direction(args.metric, higher, lower)


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


def recorded_runs(out: str, sweep: Sweep) -> tuple[dict[str, set[str]], list[str], list[str]]:
    """Run ids recorded in each results file of `out`, problems found reading them, and a note
    per plugin component whose recorded runs ran other code than it has now
    (results.mixed_versions).

    Raises ConfigError if a file there holds another sweep's results (any line naming
    another sweep counts, well-formed record or not).
    """
    refuse_other_sweeps(out, sweep)
    recorded, problems = {}, []
    components = []
    for f in results.results_files(out):
        recs, found = results.read_records(f, fields=("run_id", "components"))
        recorded[f] = {r["run_id"] for r in recs}
        components += [r for r in recs if r.get("components")]
        problems += found
    versions = []
    if components:       # a plugin changed since these runs: say so, keep them as they are
        now = {}
        for cfg in sweep.configs:
            now.update(results.plugin_components(cfg))
        versions = results.mixed_versions(components, now)
    return recorded, problems, versions


def refuse_other_sweeps(out: str, sweep: Sweep) -> None:
    """Raise ConfigError if a results file in `out` names another sweep (on any line that is
    a JSON object naming one, well-formed record or not)."""
    for f in results.results_files(out):
        others = sorted(results.sweep_names(f) - {sweep.name})
        if others:
            raise ConfigError(f"--out: {f} holds results of sweep {others[0]!r}, not "
                              f"{sweep.name!r} ({sweep.path}); choose another directory")


def prepare_out(out: str, sweep: Sweep, file_name: str, *, resume: bool,
                wait_for_lock: bool = False
                ) -> tuple[str, set[str], list[str], results.ResultsLock]:
    """Check an output directory before any compute, create it if needed, and take the lock
    of this process's results file (one writer per file).

    Returns (results path, run ids recorded there, notes for the user, the lock, held).
    Raises ConfigError for a directory that cannot be written, that holds another sweep's
    results, that another process is writing, or that holds this sweep's results without
    --resume. With --resume, lines that are not whole records (a write cut short by a kill, a
    damaged line) are moved to a side file, never deleted, so that appended records start on a
    fresh line.
    """
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"--out: {out!r} exists and is not a directory")
    path = os.path.join(out, file_name)
    if os.path.exists(path) and not os.path.isfile(path):
        raise ConfigError(f"--out: {path} is not a regular file (a results file is expected "
                          "there); move it away")
    refuse_other_sweeps(out, sweep)             # touch nothing of another sweep's
    try:
        results.ensure_writable_dir(out)
    except OSError as e:
        raise ConfigError(f"--out: cannot write to {out!r}: {e.strerror}") from None

    def waiting(holder: str) -> None:
        print(f"note: {path} is being written by {holder}; waiting for it (--wait-for-lock)",
              file=sys.stderr, flush=True)

    lock = results.ResultsLock(path).acquire(wait=wait_for_lock, on_wait=waiting)
    try:
        # Read again under the lock: the holder we waited for may have added records.
        recorded, notes, versions = recorded_runs(out, sweep)
        own = recorded.get(path, set())
        if own and not resume:
            raise ConfigError(f"--out: {path} already holds {len(own)} results of sweep "
                              f"{sweep.name!r}; pass --resume to finish it, or choose another "
                              "directory")
        if not resume:
            return path, set(), results.summarize_problems(notes), lock
        repaired = results.repair(path)
        if repaired:
            notes = [n for n in notes if not n.startswith(f"{path}:")] + [repaired]
        return (path, set().union(*recorded.values()),
                results.summarize_problems(notes) + versions, lock)
    except BaseException:
        lock.release()
        raise


def print_plan(plan: Plan, stream: TextIO | None = None) -> None:
    """The plan, for --dry-run: groups, runs, chunks, devices, estimated memory."""
    stream = stream or sys.stdout
    sweep = plan.sweep
    n_dev = len(plan.devices)
    kinds = sorted({d.platform for d in plan.devices})
    grid = " x ".join(f"{len(v)} {k}" for k, v in sweep.grid) or "no grid"
    sampled, drawn = "", []
    if sweep.search is not None:
        search = sweep.search
        sampled = (f"{sweep.num_points} sampled points ({', '.join(search.keys)}; "
                   f"{search.sampler}, seed {search.seed}) x ")
        drawn = [f"search: {'; '.join(d.describe() for d in search.dims)}; {search.samples} "
                 f"points of {search.draws} draws, {search.digits} significant digits"]
    lines = [
        f"sweep {sweep.name!r} ({sweep.path}): {sweep.num_runs} runs = {sampled}"
        f"{sweep.num_grid_points} grid points ({grid}) x {len(sweep.seeds)} seeds",
        *drawn,
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
    # Groups with the same evaluation (config.eval_part) and chunk size share its program.
    evaluations = len({(eval_part(g.static), g.chunk_size) for g in plan.groups if g.runs})
    traced = sum(any(len(getattr(g.static, f)) > 1 for f in CHOICE_FIELDS) for g in plan.groups)
    lines += ["", f"total: {len(plan.groups)} groups, {compiles} to compile (and {evaluations} "
              f"evaluation program(s) they share), {plan.todo} runs to "
              f"do ({plan.recorded} already recorded), {plan.run_steps:,} run-steps; "
              f"{traced} program(s) trace the {'/'.join(CHOICE_FIELDS)} (a|b: each run's own)"]
    stream.write("\n".join(lines) + "\n")


def main(args: argparse.Namespace) -> int:
    budget = parse_size(args.memory_budget)
    if args.max_chunk < 1:
        raise ConfigError(f"--max-chunk: got {args.max_chunk}; must be at least 1")
    if args.checkpoint_every < 0:
        raise ConfigError(f"--checkpoint-every: got {args.checkpoint_every}; must be a number "
                          "of steps >= 1 (or 0: no checkpoints)")
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
    devices = chosen_devices(args.devices)

    recorded, notes, path, lock = set(), [], None, None
    if args.dry_run and args.out:               # show what is left; write nothing
        by_file, notes, versions = recorded_runs(args.out, sweep)
        notes = results.summarize_problems(notes) + versions
        recorded = set().union(*by_file.values()) if args.resume else set()
    stopper = None
    try:
        if args.out and not args.dry_run:
            # Handlers first, then the lock: a signal at any moment from here stops cleanly.
            name = results.results_file_name(index, count)
            stopper = _Stopper(args, os.path.join(args.out, name))
            path, recorded, notes, lock = prepare_out(args.out, sweep, name,
                                                      resume=args.resume,
                                                      wait_for_lock=args.wait_for_lock)
            stopper.holding = True
        for note in (sweep.search.notes() if sweep.search is not None else []) + notes:
            print(f"note: {note}", file=sys.stderr)
        plan = plan_sweep(sweep, devices=devices, memory_budget=budget,
                          max_chunk=args.max_chunk, shard=(index, count),
                          recorded_ids=recorded, merge_choices=not args.no_merge)
        too_big = oversized_groups(plan)
        if args.dry_run:
            print_plan(plan)
            for line in too_big:
                print(f"warning: {line}")
            return 0
        if too_big:
            raise ConfigError(f"--memory-budget: {too_big[0]}")
        return _run(args, plan, path, stopper)
    finally:
        if stopper is not None:
            stopper.restore()
        if lock is not None:
            lock.release()


def oversized_groups(plan: Plan) -> list[str]:
    """A line per group whose smallest chunk (two runs per device) cannot fit the budget.

    The jaxpr's live arrays alone (the estimate without its margin) are a floor on what a
    chunk needs, so such a group cannot run under this budget.
    """
    out = []
    for i, (g, label) in enumerate(zip(plan.groups, plan.labels()), start=1):
        if not g.runs:
            continue
        floor = g.run_bytes // ESTIMATE_MARGIN * 2
        if floor > plan.memory_budget:
            out.append(f"group {i} ({label}): its smallest chunk (2 runs per device) needs at "
                       f"least {fmt_bytes(floor)} per device, over the budget of "
                       f"{fmt_bytes(plan.memory_budget)}; shrink the sizes of the "
                       "configuration (widths, batch or sample counts) or raise --memory-budget")
    return out


def chosen_devices(count: int | None) -> list:
    """This process's local devices, or the first `count` of them (--devices)."""
    devices = jax.local_devices()
    if count is not None:
        if not 1 <= count <= len(devices):
            raise ConfigError(f"--devices: got {count}; this process has "
                              f"{len(devices)} local device(s)")
        devices = devices[:count]
    return devices


def resume_command(args: argparse.Namespace) -> str:
    """The command line that resumes this sweep."""
    parts = ["python -m gan_jax sweep", shlex.quote(args.file), "--out", shlex.quote(args.out),
             "--resume"]
    if args.shard != "0/1":
        parts += ["--shard", shlex.quote(args.shard)]
    return " ".join(parts)


class _Stopper:
    """SIGINT/SIGTERM handlers for a process that writes a results file, installed before it
    asks for the file's lock. Until the lock is held (`holding`), a signal stops at once:
    nothing is in flight, and a wait for another writer's lock ends. Once it is held, the
    first signal asks the sweep to stop after the chunk in flight is recorded, a second stops
    at once. Either way the process ends with one line (runs recorded, the command that
    resumes) and status 128 + the first signal."""

    def __init__(self, args: argparse.Namespace, path: str):
        self.args, self.path = args, path
        self.received: list[int] = []
        self.holding = False
        self.progress: Progress | None = None
        self.recorded_before = 0
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.signal(signum, self.handle)

    def restore(self) -> None:
        for signum, old in self.previous.items():
            signal.signal(signum, old)
        self.previous = {}

    def stop_requested(self) -> bool:
        return bool(self.received)

    def line(self, how: str) -> str:
        done = self.progress.runs_done if self.progress is not None else 0
        before = f" ({self.recorded_before} before)" if self.progress is not None else ""
        return (f"stopped by {signal.Signals(self.received[0]).name} ({how}): {done} runs "
                f"recorded in {self.path} this time{before}; resume with: "
                f"{resume_command(self.args)}")

    def exit(self, how: str) -> None:
        if self.progress is not None:
            self.progress.close()
        sys.stdout.flush()
        sys.stderr.write(self.line(how) + "\n")
        sys.stderr.flush()
        # Compilations in flight would hold the interpreter's exit until they finish.
        os._exit(128 + self.received[0])

    def handle(self, signum, frame) -> None:
        if self.received:                       # the second signal: stop at once
            self.exit("at once")
        self.received.append(signum)
        if not self.holding:                    # nothing started yet: stop at once
            self.exit("before the first chunk")
        if self.progress is not None:
            self.progress.close()
        what = ("finishing the chunk in flight, then stopping" if self.progress is not None
                else "stopping before the first chunk")
        sys.stderr.write(f"{signal.Signals(signum).name}: {what} (Ctrl-C again to stop at "
                         "once)\n")
        sys.stderr.flush()


def _run(args: argparse.Namespace, plan: Plan, path: str, stopper: _Stopper) -> int:
    """Run the plan; a signal (see _Stopper) ends it between chunks."""
    sweep = plan.sweep
    progress = Progress(plan, enabled=False if args.quiet else None)
    stopper.progress, stopper.recorded_before = progress, plan.recorded
    store = None
    if (args.keep_states or args.checkpoint_every
            or os.path.isdir(os.path.join(args.out, STATES_DIR))):
        store = Store(args.out, keep=args.keep_states)
    try:
        report = run_sweep(plan, path, progress=progress, compile_workers=args.compile_workers,
                           stop=stopper.stop_requested, states=store,
                           checkpoint_every=args.checkpoint_every)
    except OutputError as e:
        raise OutputError(f"{e}; {progress.runs_done} runs recorded in {path} this time; "
                          f"once there is room, resume with: {resume_command(args)}") from None
    for note in (store.summary() if store is not None else []):
        print(f"note: {note}", file=sys.stderr)
    if report.stopped:
        stopper.exit("between chunks")
    rate = report.run_steps / max(report.wall_s - report.compile_wait_s, 1e-9)
    measured = [b for b in report.device_bytes if b is not None]
    sizes = "/".join(map(str, sorted(set(report.chunk_sizes)))) or "0"
    print(f"sweep {sweep.name!r}: {report.done} runs recorded in {report.path} "
          f"({report.diverged} diverged; {report.skipped} were recorded already); "
          f"{report.chunks} chunks of {sizes} runs on {report.num_devices} devices; "
          + (f"{report.compilations} compilations ({report.compile_s:.1f} s, "
             f"{report.compile_wait_s:.1f} s of it waited for); wall {report.wall_s:.1f} s; "
             f"{rate:,.0f} run-steps/s outside compile waits" if store is None else
             # kept states: programs built on their first call, inside the wall time
             f"{report.compilations} programs built; wall {report.wall_s:.1f} s, "
             f"compilations included")
          + (f"; largest chunk {fmt_bytes(max(measured))}/device (XLA)" if measured else "")
          + (f"; {report.continued} runs continued from kept states ({report.steps_not_redone:,} "
             "run-steps not redone)" if store is not None else "")
          + (f"; kept states {fmt_bytes(report.kept_bytes / report.kept_runs)}/run"
             if report.kept_runs else ""))
    return 0
