"""The command line: `python -m gan_jax <command> [...]`, and helpers for experiment scripts.

Each command lives in its own module, which provides `add_arguments(parser)` and
`main(args) -> int`. A ConfigError prints one line on stderr and exits with status 2, no
traceback (an OutputError, a file that could not be written: status 1; Ctrl-C: 130, at
once, without waiting for compilations in flight). Several problems (a sweep file's) print a
line each. Ctrl-C is handled for the whole life of the process, its exit included
(:class:`ProcessSignals`).
Experiment scripts run through :func:`run_script` to get the same behaviour and the same
device setting as the commands.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from typing import NoReturn

from gan_jax.engine import cache
from gan_jax.core.errors import ConfigError, OutputError

# command -> (module, one-line help)
COMMANDS = {
    "reproduce-seed": ("gan_jax.commands.seed", "the seed notebook's two runs over 64 seeds, with tables"),
    "bench": ("gan_jax.commands.bench", "throughput in run-steps/s against runs per call"),
    "plot": ("gan_jax.commands.plot", "figures of a sweep's results: curves, heatmaps, samples (matplotlib)"),
    "exact": ("gan_jax.commands.exact", "exact W1, JS, KL and D* value of a closed-form generator"),
    "dirac": ("gan_jax.commands.dirac", "a training method's eigenvalues, spectral radius and verdict on the Dirac-GAN"),
    "sweep": ("gan_jax.commands.sweep", "run a sweep file's grid x seeds, grouped, chunked, sharded, resumable"),
    "launch": ("gan_jax.commands.launch", "submit a sweep's shards as a Slurm job array (submitit) that resumes after preemption; --wait follows it"),
    "confirm": ("gan_jax.commands.confirm", "re-run a finished sweep's top K points on fresh seeds: estimates free of the winner's curse"),
    "halve": ("gan_jax.commands.halve", "successive halving over a sweep's points: the best 1/eta continue to eta times the steps"),
    "table": ("gan_jax.commands.table", "per-configuration tables over seeds of a sweep's results (md, csv, LaTeX)"),
    "list": ("gan_jax.commands.listing", "every registered loss, target, family, optimiser, method and metric, with what it is"),
}
# Commands that compute nothing in their own process and start processes elsewhere (another
# node, another machine): those choose their own device count, so this one sets none that
# they would inherit.
LAUNCHERS = {"launch"}


class Parser(argparse.ArgumentParser):
    """argparse, whose own usage errors exit with status 2 and no traceback."""

    def error(self, message):
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


HOST_DEVICES_FLAG = "--xla_force_host_platform_device_count"


def use_every_core() -> None:
    """Give XLA one CPU device per available core, unless XLA_FLAGS already sets a count.

    XLA spreads one CPU program over the cores only within each operation, which for the
    step's many small operations leaves much of the machine idle; the sweep engine and the
    bench shard runs over every device (BENCHMARKS.md has the gain). A run's numbers do not
    depend on the device count. Only the CPU platform is affected, and only if set before JAX
    starts its backends (JAX reads XLA_FLAGS when it first needs a device).
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if HOST_DEVICES_FLAG in flags:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if (cores or 1) > 1:
        os.environ["XLA_FLAGS"] = f"{flags} {HOST_DEVICES_FLAG}={cores}".strip()


class ProcessSignals:
    """Ctrl-C (SIGINT) over the whole life of a `python -m gan_jax` process, its exit included.

    While the command runs, a Ctrl-C raises KeyboardInterrupt, as Python's own handler does
    (the command's handlers, such as the sweep's, take over while they are installed and put
    this one back). From the moment the command has a status (`finish`), a Ctrl-C or SIGTERM
    ends the process at once with that status and one line: the command's work is done, and
    what remains is the interpreter's exit (JAX's exit handlers, threads still compiling),
    where a KeyboardInterrupt would end in a traceback. A process that started with SIGINT
    ignored (a background job of a non-interactive shell) keeps it ignored until then.
    """

    def __init__(self):
        self.status: int | None = None
        self.installed = threading.current_thread() is threading.main_thread()
        if self.installed and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, self.handle)

    def handle(self, signum, frame) -> None:
        if self.status is None:
            raise KeyboardInterrupt
        try:
            sys.stdout.flush()
            sys.stderr.write(f"{signal.Signals(signum).name} while exiting: the command had "
                             f"finished (status {self.status}); exiting now\n")
            sys.stderr.flush()
        finally:
            os._exit(self.status)

    def finish(self, status: int) -> int:
        """The command has its status: from now on a signal ends the process with it."""
        self.status = status
        if self.installed:
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, self.handle)
        return status


def _call(command, args, process: ProcessSignals | None = None) -> int:
    """Run a command: bad input exits 2, a failed write 1, Ctrl-C 130, each as one line.

    With `process` (the command is the whole process), its signal handlers take over for the
    process's exit as soon as the status is known.
    """
    finish = process.finish if process is not None else int
    try:
        return finish(int(command(args) or 0))
    except OutputError as e:
        finish(1)
        print(f"error: {e}", file=sys.stderr)
        return 1
    except ConfigError as e:         # several problems (a sweep file's): one line each
        finish(2)
        for line in str(e).splitlines() or [""]:
            print(f"error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        finish(130)
        print("error: interrupted (Ctrl-C)", file=sys.stderr)
        return 130
    except OSError as e:             # a file the command itself chose; name it, no traceback
        finish(1)
        where = f"{e.filename}: " if e.filename else ""
        print(f"error: {where}{e.strerror or e}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None, process: ProcessSignals | None = None) -> int:
    """Run one command; returns its exit status. `process`: the command is the process
    (`run_process`), whose signals are handled up to its exit."""
    argv = sys.argv[1:] if argv is None else list(argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    if chosen not in LAUNCHERS:
        use_every_core()
    parser = Parser(prog="python -m gan_jax", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    # Import only the chosen command's module: importing one may touch JAX's backends, and
    # `sweep` must be able to start jax.distributed before anything does.
    module = None
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        command_parser.add_argument(
            "--compile-cache", metavar="DIR|off", default=None,
            help=f"where compiled programs are kept across runs (default: ${cache.ENV}, else "
                 f"{cache.default_dir()}); off: no cache")
        command_parser.add_argument(
            "--plugin", action="append", default=[], metavar="MODULE|FILE.py|FILE.toml",
            help="import a module that registers components (gan_jax.register) before the "
                 "command runs, or read a sweep file's plugins and [targets] (FILE.toml); may "
                 "be repeated (docs/extending.md)")
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(command_parser)
    args = parser.parse_args(argv)
    cache.configure(args.compile_cache)    # None: the environment's choice (gan_jax.engine.cache)

    def command(args):
        # A sweep file given as a plugin: its plugins, and the targets it declares.
        files = [p for p in args.plugin if p.endswith(".toml")]
        modules = [p for p in args.plugin if not p.endswith(".toml")]
        if modules:
            from gan_jax.core import registry
            registry.load_plugins(modules, os.getcwd(), where="--plugin")
        if files:
            from gan_jax.sweep.spec import load_targets
            for path in files:
                load_targets(path)
        return module.main(args)

    return _call(command, args, process)


def run_process(argv: list[str] | None = None) -> NoReturn:
    """`python -m gan_jax`: one command as the whole process, Ctrl-C handled to its very end
    (ProcessSignals)."""
    process = ProcessSignals()
    try:
        status = main(argv, process)
    except KeyboardInterrupt:        # before the command started (parsing the arguments)
        status = process.finish(130)
        print("error: interrupted (Ctrl-C)", file=sys.stderr)
    except SystemExit as e:          # --help, or a usage error (Parser.error)
        if e.code is None or isinstance(e.code, int):
            status = process.finish(e.code or 0)
        else:
            status = process.finish(1)
            print(e.code, file=sys.stderr)
    exit_process(status)


def exit_process(status: int) -> NoReturn:
    """End the process with `status`; after Ctrl-C (130) at once, since threads still
    compiling would otherwise hold the interpreter's exit until they finish."""
    if status == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


def run_script(doc: str, add_arguments, command) -> NoReturn:
    """Run an experiment script as a command: its arguments, ConfigError -> exit 2."""
    use_every_core()
    cache.configure()
    process = ProcessSignals()
    parser = Parser(description=doc.splitlines()[0])
    add_arguments(parser)
    exit_process(_call(command, parser.parse_args(), process))


def sweep_then_tables(doc: str, sweep_file: str, default_out: str, write_tables,
                      argv: list[str] | None = None) -> int:
    """An experiment script's main: run (or resume) `sweep_file` into --out, then
    `write_tables(out) -> path`; `--tables-only` skips the sweep. Unknown arguments go to the
    sweep command (e.g. --quiet)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", default=default_out)
    parser.add_argument("--tables-only", action="store_true",
                        help="only (re)write the tables of results already in --out")
    args, sweep_flags = parser.parse_known_args(argv)
    if not args.tables_only:
        status = main(["sweep", sweep_file, "--out", args.out, "--resume", *sweep_flags])
        if status:
            return status
    print(f"\nwrote {write_tables(args.out)}", file=sys.stderr)
    return 0
