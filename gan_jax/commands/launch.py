"""`python -m gan_jax launch FILE --out DIR --shards N --time T`: a sweep as a Slurm job array.

Task i of the array runs `python -m gan_jax sweep FILE --out DIR --shard i/N --resume`, the
same command a hand-written job array runs (docs/sweeps.md, "Job arrays"), so its records are
the ones that command writes and `table DIR` merges them. The array is submitted through
submitit (an optional dependency: `pip install 'gan_jax[cluster]'`), whose requeue hooks make
a task that is preempted or reaches its time limit come back and resume where it stopped; the
state to resume from is the shard's results file, never a pickled process. `--wait` follows
the tasks, with progress counted from the shards' records. See docs/sweeps.md, "Cluster".

Everything a user can get wrong (the flags, the sweep file, the output directory, a missing
submitit or sbatch) is checked before anything is submitted, and nothing here compiles.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

from gan_jax.records import results
from gan_jax.core.errors import ConfigError
from gan_jax.commands.sweep import (DEFAULT_MEMORY_BUDGET, parse_size, refuse_other_sweeps,
                                    recorded_runs)
from gan_jax.sweep.plan import DEFAULT_MAX_CHUNK
from gan_jax.sweep.run import DEFAULT_COMPILE_WORKERS
from gan_jax.sweep.spec import Sweep, load_sweep

CLUSTERS = ("slurm", "local")
LOGS_DIR = "logs"                    # under --out, unless --logs
DEFAULT_MAX_TIMEOUTS = 3             # requeues after reaching the time limit (submitit's default)
DEFAULT_POLL_S = 30.0                # --wait: how often the records are counted
# Slurm signals a task this long before its time limit (submitit's sbatch `--signal`); the
# task then gives its sweep up to STOP_GRACE_S to finish the chunk in flight before requeueing.
SIGNAL_DELAY_S = 90
STOP_GRACE_S = 60.0

INSTALL = "pip install 'gan_jax[cluster]' (or: pip install 'submitit>=1.5')"


def parse_time(text: str) -> int:
    """Minutes (rounded up) from a Slurm time limit: 'M', 'M:S', 'H:M:S', 'D-H', 'D-H:M',
    'D-H:M:S'."""
    m = re.fullmatch(r"\s*(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?\s*", str(text))
    if not m:
        raise ConfigError(f"--time: got {text!r}; give minutes or Slurm's [D-]H:MM:SS, "
                          "e.g. 90, 1:30:00 or 2-00:00:00")
    days, parts = m.group(1), [int(p) for p in m.groups()[1:] if p is not None]
    if days is not None:                 # D-H, D-H:M, D-H:M:S
        parts += [0] * (3 - len(parts))
        seconds = ((int(days) * 24 + parts[0]) * 60 + parts[1]) * 60 + parts[2]
    elif len(parts) == 3:                # H:M:S
        seconds = (parts[0] * 60 + parts[1]) * 60 + parts[2]
    else:                                # M or M:S
        seconds = parts[0] * 60 + (parts[1] if len(parts) == 2 else 0)
    if seconds < 60:
        raise ConfigError(f"--time: got {text!r}; must be at least 1 minute")
    return math.ceil(seconds / 60)


def _slurm_options(pairs: list[str]) -> dict[str, str]:
    """--slurm KEY=VALUE options (sbatch's long names without the dashes) as a dict."""
    out = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not re.fullmatch(r"[a-z][a-z0-9_-]*", key):
            raise ConfigError(f"--slurm: got {pair!r}; give KEY=VALUE with an sbatch option's "
                              "long name, e.g. --slurm mail-type=END")
        out[key] = value
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="sweep file (TOML; see docs/sweeps.md)")
    parser.add_argument("--out", required=True,
                        help="output directory on a file system every task can reach")
    parser.add_argument("--shards", type=int, required=True, metavar="N",
                        help="tasks in the job array; task i runs --shard i/N")
    parser.add_argument("--time", required=True, metavar="T",
                        help="each task's time limit (minutes, or [D-]H:MM:SS); a task that "
                             "reaches it is requeued and resumes")
    parser.add_argument("--partition", help="Slurm partition")
    parser.add_argument("--gpus-per-task", type=int, metavar="G", help="GPUs per task")
    parser.add_argument("--cpus-per-task", type=int, metavar="C", help="CPU cores per task")
    parser.add_argument("--mem", metavar="SIZE", help="memory per task, e.g. 16GiB")
    parser.add_argument("--account", help="Slurm account")
    parser.add_argument("--qos", help="Slurm quality of service")
    parser.add_argument("--constraint", help="Slurm node features, e.g. a100")
    parser.add_argument("--array-parallelism", type=int, metavar="K",
                        help="at most K tasks running at once")
    parser.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                        help="any other sbatch option by its long name (repeatable), e.g. "
                             "--slurm mail-type=END")
    parser.add_argument("--setup", action="append", default=[], metavar="COMMAND",
                        help="a shell line run before each task (repeatable), e.g. "
                             "'source .venv/bin/activate'")
    parser.add_argument("--max-timeouts", type=int, default=DEFAULT_MAX_TIMEOUTS, metavar="R",
                        help="requeue a task that reaches its time limit at most R times "
                             f"({DEFAULT_MAX_TIMEOUTS}); preemptions do not count")
    parser.add_argument("--logs", metavar="DIR",
                        help=f"where the tasks' logs and submitit's files go (OUT/{LOGS_DIR})")
    parser.add_argument("--cluster", choices=CLUSTERS, default="slurm",
                        help="slurm (default), or local: the tasks as processes on this "
                             "machine, all at once (to try a launch out)")
    parser.add_argument("--resume", action="store_true",
                        help="launch the shards of a sweep that OUT already holds records of "
                             "(only the shards with runs left are submitted)")
    parser.add_argument("--wait", action="store_true",
                        help="follow the tasks to the end, with progress from their records; "
                             "exit 1 if any failed")
    parser.add_argument("--poll", type=float, default=DEFAULT_POLL_S, metavar="S",
                        help=f"with --wait, count the records every S seconds ({DEFAULT_POLL_S:g})")
    sweep = parser.add_argument_group("passed to every task's sweep")
    sweep.add_argument("--memory-budget", default=DEFAULT_MEMORY_BUDGET, metavar="SIZE",
                       help=f"device memory per chunk and device ({DEFAULT_MEMORY_BUDGET})")
    sweep.add_argument("--max-chunk", type=int, default=DEFAULT_MAX_CHUNK, metavar="N",
                       help=f"at most N runs per call ({DEFAULT_MAX_CHUNK})")
    sweep.add_argument("--compile-workers", type=int, default=DEFAULT_COMPILE_WORKERS,
                       metavar="W", help=f"compilations ahead ({DEFAULT_COMPILE_WORKERS})")
    sweep.add_argument("--no-merge", action="store_true",
                       help="one program per static part (see `sweep --help`)")


class ShardTask:
    """One task of the array: `python -m gan_jax sweep FILE --out OUT --shard I/N --resume`,
    as a child process.

    submitit calls it in the task's process (a Checkpointable by its `checkpoint` method).
    When Slurm warns of the time limit or a preemption (SIGUSR2, SIGNAL_DELAY_S before),
    `checkpoint` asks the sweep to stop after the chunk in flight (SIGTERM, which the sweep
    handles), waits up to STOP_GRACE_S for it, and hands submitit the same task again, which
    it requeues: the next attempt resumes from the shard's results file. The child ignores
    SIGUSR2 (Slurm sends it to every process of the task), so only this hook acts on it.
    """

    def __init__(self, file: str, out: str, shard: tuple[int, int], sweep_args: list[str],
                 attempt: int = 1):
        self.file, self.out, self.shard = file, out, tuple(shard)
        self.sweep_args, self.attempt = list(sweep_args), attempt
        self._child: subprocess.Popen | None = None

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_child"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _child=None)

    def argv(self) -> list[str]:
        i, n = self.shard
        return [sys.executable, "-m", "gan_jax", "sweep", self.file, "--out", self.out,
                "--shard", f"{i}/{n}", "--resume", "--wait-for-lock", *self.sweep_args]

    def __call__(self) -> str:
        i, n = self.shard
        argv = self.argv()
        print(f"launch: shard {i}/{n}, attempt {self.attempt}: {shlex.join(argv)}", flush=True)
        sys.stderr.flush()

        def ignore_usr2():
            signal.signal(signal.SIGUSR2, signal.SIG_IGN)

        self._child = subprocess.Popen(argv, preexec_fn=ignore_usr2)
        # Poll rather than wait(): the signal handler below polls the child too, and a
        # handler that runs inside Popen.wait() would wait on the lock that wait() holds.
        while (status := self._child.poll()) is None:
            time.sleep(0.5)
        if status != 0:
            how = (f"was killed by {signal.Signals(-status).name}" if status < 0
                   else f"exited with status {status}")
            raise RuntimeError(f"shard {i}/{n}: the sweep {how} (attempt {self.attempt}); its "
                               f"records so far are kept in {self.out}")
        return f"shard {i}/{n}: done (attempt {self.attempt})"

    def checkpoint(self):
        """Stop the sweep after its chunk in flight and requeue this task (submitit's hook)."""
        from submitit.helpers import DelayedSubmission     # only ever called under submitit

        child = self._child
        if child is not None and child.poll() is None:
            print(f"launch: shard {self.shard[0]}/{self.shard[1]}: stopping the sweep after "
                  "its chunk in flight, then requeueing", flush=True)
            child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_S
            while child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            if child.poll() is None:        # the chunk outlasts the grace: lose it, redo it
                child.kill()
        return DelayedSubmission(ShardTask(self.file, self.out, self.shard, self.sweep_args,
                                           self.attempt + 1))


def _shard_runs(sweep: Sweep, count: int) -> list[set[str]]:
    """Each shard's run ids (shard i takes the runs at positions i mod count, as --shard)."""
    shards = [set() for _ in range(count)]
    for r in sweep.runs():
        shards[r.index % count].add(r.run_id)
    return shards


def _recorded(out: str) -> set[str]:
    """Run ids recorded in any results file of `out`."""
    done = set()
    for f in results.results_files(out):
        recs, _ = results.read_records(f, fields=("run_id",))
        done.update(r["run_id"] for r in recs)
    return done


def _submitit():
    try:
        return importlib.import_module("submitit")
    except ImportError:
        raise ConfigError(f"launch: needs submitit, an optional dependency, which is not "
                          f"installed; install it with: {INSTALL}") from None


def _sweep_args(args: argparse.Namespace) -> list[str]:
    """The flags every task's sweep gets: the sweep options, the compile cache, the plugins."""
    out = ["--memory-budget", args.memory_budget, "--max-chunk", str(args.max_chunk),
           "--compile-workers", str(args.compile_workers)]
    if args.no_merge:
        out.append("--no-merge")
    cache = getattr(args, "compile_cache", None)
    if cache is not None:
        out += ["--compile-cache", cache if cache == "off" else os.path.abspath(cache)]
    for plugin in getattr(args, "plugin", []):
        is_file = plugin.endswith(".py") or os.sep in plugin
        out += ["--plugin", os.path.abspath(plugin) if is_file else plugin]
    return out


def make_executor(args: argparse.Namespace, submitit, logs: str, minutes: int, name: str):
    """submitit's executor for --cluster, with the task's resources set."""
    if args.cluster == "local":
        executor = submitit.LocalExecutor(folder=logs, max_num_timeout=args.max_timeouts)
        executor.update_parameters(timeout_min=minutes, gpus_per_node=args.gpus_per_task or 0,
                                   setup=args.setup)
        return executor
    executor = submitit.SlurmExecutor(folder=logs, max_num_timeout=args.max_timeouts)
    params = dict(job_name=name, time=minutes, nodes=1, ntasks_per_node=1,
                  signal_delay_s=SIGNAL_DELAY_S, partition=args.partition,
                  gpus_per_task=args.gpus_per_task, cpus_per_task=args.cpus_per_task,
                  account=args.account, qos=args.qos, constraint=args.constraint,
                  array_parallelism=args.array_parallelism, setup=args.setup or None,
                  additional_parameters=_slurm_options(args.slurm) or None)
    if args.mem is not None:
        params["mem"] = f"{max(1, math.ceil(parse_size(args.mem, '--mem') / 2**20))}M"
    executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
    return executor


def _check_flags(args: argparse.Namespace) -> int:
    """Every flag's rule, before the sweep file is read; returns the time limit in minutes."""
    if args.shards < 1:
        raise ConfigError(f"--shards: got {args.shards}; must be at least 1")
    minutes = parse_time(args.time)
    parse_size(args.memory_budget)
    if args.mem is not None:
        parse_size(args.mem, "--mem")
    for flag, value, low in (("--max-chunk", args.max_chunk, 1),
                             ("--compile-workers", args.compile_workers, 1),
                             ("--gpus-per-task", args.gpus_per_task, 0),
                             ("--cpus-per-task", args.cpus_per_task, 1),
                             ("--array-parallelism", args.array_parallelism, 1),
                             ("--max-timeouts", args.max_timeouts, 0)):
        if value is not None and value < low:
            raise ConfigError(f"{flag}: got {value}; must be at least {low}")
    if not args.poll > 0:
        raise ConfigError(f"--poll: got {args.poll}; must be a positive number of seconds")
    _slurm_options(args.slurm)
    missing = [c for c in ("sbatch", "srun") if shutil.which(c) is None]
    if args.cluster == "slurm" and missing:
        raise ConfigError(f"--cluster: slurm: no {' or '.join(missing)} on PATH; launch from "
                          "a Slurm login node, or --cluster local to run the shards as "
                          "processes here")
    return minutes


def main(args: argparse.Namespace) -> int:
    minutes = _check_flags(args)
    sweep = load_sweep(args.file)
    total = sweep.num_runs
    if args.shards > total:
        raise ConfigError(f"--shards: got {args.shards}; the sweep {sweep.name!r} has "
                          f"{total} runs, so at most {total} shards")
    out = os.path.abspath(args.out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"--out: {out!r} exists and is not a directory")
    refuse_other_sweeps(out, sweep)
    shard_ids = _shard_runs(sweep, args.shards)
    wanted = set().union(*shard_ids)
    done = _recorded(out) & wanted
    if done and not args.resume:
        raise ConfigError(f"--out: {out} already holds {len(done)} results of sweep "
                          f"{sweep.name!r}; pass --resume to finish it, or choose another "
                          "directory")
    if args.resume:                       # what the tasks' own --resume will say, said now
        _, problems, versions = recorded_runs(out, sweep)
        for note in results.summarize_problems(problems) + versions:
            print(f"note: {note}", file=sys.stderr)
    todo = [i for i, ids in enumerate(shard_ids) if ids - done]
    if not todo:
        print(f"launch: nothing to do: all {total} runs of sweep {sweep.name!r} are recorded "
              f"in {out}; tables: python -m gan_jax table {shlex.quote(args.out)}")
        return 0
    submitit = _submitit()
    logs = os.path.abspath(args.logs or os.path.join(out, LOGS_DIR))
    for flag, directory in (("--out", out), ("--logs", logs)):
        try:
            results.ensure_writable_dir(directory)
        except OSError as e:
            raise ConfigError(f"{flag}: cannot write to {directory!r}: {e.strerror}") from None

    file = os.path.abspath(args.file)
    # sbatch reads its #SBATCH lines as words: a sweep name's spaces would split the option.
    name = "gan_jax-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", sweep.name)
    executor = make_executor(args, submitit, logs, minutes, name)
    tasks = [ShardTask(file, out, (i, args.shards), _sweep_args(args)) for i in todo]
    try:
        jobs = executor.submit_array(tasks)
    except (RuntimeError, OSError) as e:   # sbatch said no (a partition, an account, a limit)
        why = next((l for l in str(e).splitlines() if l.strip()), type(e).__name__)
        raise ConfigError(f"--cluster: {args.cluster}: the job array was refused: {why}") from None
    by_job = list(zip(todo, jobs))
    finished = args.shards - len(todo)
    skipped = f"; {_count(finished, 'shard')} already finished" if finished else ""
    print(f"launch: sweep {sweep.name!r}, {total} runs ({len(done)} recorded) in "
          f"{_count(args.shards, 'shard')}: submitted {_count(len(jobs), 'task')} to "
          f"{args.cluster}{skipped}")
    for i, job in by_job:
        print(f"  shard {i}/{args.shards}: job {job.job_id}")
    print(f"logs: {logs}")
    if not args.wait:
        print(f"when they are done: python -m gan_jax table {shlex.quote(args.out)}")
        return 0
    return wait(by_job, args, sweep, out, shard_ids)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _progress_line(by_job, recorded: int, total: int, started: float) -> str:
    ended = sum(job.done() for _, job in by_job)
    waiting = sum(not job.done() and str(job.state).upper() == "PENDING" for _, job in by_job)
    elapsed = int(time.monotonic() - started)
    return (f"launch after {elapsed // 60}m{elapsed % 60:02d}s: {ended}/{len(by_job)} tasks "
            f"ended, {len(by_job) - ended - waiting} running, {waiting} pending | runs "
            f"{recorded}/{total} recorded ({100 * recorded // max(total, 1)}%)")


def wait(by_job, args: argparse.Namespace, sweep: Sweep, out: str,
         shard_ids: list[set[str]]) -> int:
    """Follow the tasks to their end; progress from the records, one line at each change."""
    wanted = set().union(*shard_ids)
    started, last = time.monotonic(), None
    try:
        while True:
            finished = all(job.done() for _, job in by_job)
            line = _progress_line(by_job, len(_recorded(out) & wanted), len(wanted), started)
            if line.split(": ", 1)[1] != last:
                print(line, file=sys.stderr, flush=True)
                last = line.split(": ", 1)[1]
            if finished:
                break
            time.sleep(args.poll)
    except KeyboardInterrupt:
        print("note: stopped waiting; the tasks keep running (jobs "
              f"{', '.join(str(job.job_id) for _, job in by_job)})", file=sys.stderr)
        raise
    failed = []
    for i, job in by_job:
        try:
            problem = job.exception()
        except Exception as e:           # no result at all: the task was killed outright
            problem = e
        if problem is not None:
            # submitit's message holds the task's traceback between two rules of dashes; its
            # last line is the error itself.
            parts = str(problem).split("-" * 22 + "\n")
            trace = parts[1] if len(parts) > 2 else str(problem)
            lines = [l.strip() for l in trace.splitlines() if l.strip()]
            last = lines[-1] if lines else type(problem).__name__
            failed.append(f"shard {i}/{args.shards} (job {job.job_id}) failed: {last[:300]}; "
                          f"its log: {job.paths.stderr}")
    recorded = len(_recorded(out) & wanted)
    if failed or recorded < len(wanted):
        for line in failed:
            print(f"error: {line}", file=sys.stderr)
        print(f"error: {recorded} of {len(wanted)} runs recorded in {out}; the same launch "
              "command with --resume runs the rest", file=sys.stderr)
        return 1
    print(f"launch: sweep {sweep.name!r}: all {len(by_job)} tasks finished, {recorded} runs "
          f"recorded in {out}; tables: python -m gan_jax table {shlex.quote(args.out)}")
    return 0
