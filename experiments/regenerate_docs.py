"""Regenerate the cheap tables and figures of README.md and docs/; list the long ones.

    PYTHONPATH=. python experiments/regenerate_docs.py --out out/docs [--only seed,dirac] [--write]
    PYTHONPATH=. python experiments/regenerate_docs.py --list

Each cheap result is made by the command the docs name for it, run as its own process into
OUT/NAME (its printed output in OUT/NAME/log.txt), so what this script writes is what a reader
who runs that command gets:

  seed           docs/seed.md's tables: `python -m gan_jax reproduce-seed` (64 seeds; about
                 25 s on 2 cores, 3 s with the compile cache filled)
  dirac          docs/exact.md section 8, the Dirac-GAN table and figure:
                 `experiments/dirac_gan.py` (under a minute)
  dirac_methods  docs/methods.md's Dirac-GAN rows: its `python -m gan_jax dirac ... --json`
                 commands (about 4 s each)
  lr_search      docs/sweeps.md's search figure and its `confirm` table:
                 `sweep experiments/lr_search.toml`, `plot --search`, `confirm --top 5 --seeds
                 16` (about a minute)
  exact          docs/exact.md's exact-analysis tables and saturation figure:
                 `experiments/exact_analysis.py` (about 4 minutes on 2 cores)

All five took 376 s on a busy 2-core machine (seed 13 s, dirac 25 s, dirac_methods 102 s,
lr_search 22 s with a filled compile cache, exact 214 s).

Nothing under docs/ changes unless `--write` is given; then each regenerated figure is copied
over the one the docs show (docs/figures/...). Tables are left in OUT for a reader to compare
with the page: the pages interpret their numbers in prose, which a script cannot rewrite.
The slow tests in tests/test_docs_numbers.py check docs/seed.md's table and docs/exact.md's
Dirac-GAN table against the current code to their printed digits.

The long results (the loss ablation, the methods ablation, mode collapse, the reproductions)
take from 10 minutes to hours on a CPU; `--list` (and every run of this script) prints each
with the command that makes it and the date the docs say it was last run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from typing import NamedTuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from gan_jax.commands.cli import run_script  # noqa: E402
from gan_jax.core.errors import ConfigError  # noqa: E402

PY = [sys.executable]
GJ = PY + ["-m", "gan_jax"]


class Job(NamedTuple):
    """A cheap result: the commands that make it (OUT for its output directory) and the
    figures it makes, each (file under OUT, the docs' copy)."""

    pages: str
    commands: tuple[tuple[str, ...], ...]
    figures: tuple[tuple[str, str], ...] = ()
    tables: tuple[str, ...] = ()


def dirac_commands(page: str = os.path.join(ROOT, "docs", "methods.md")) -> tuple[tuple[str, ...], ...]:
    """The `python -m gan_jax dirac ...` commands docs/methods.md lists under "The rows above,
    each a command", read from the page, so the page and this script cannot drift apart."""
    import re
    import shlex
    text = open(page, encoding="utf-8").read()
    block = text[text.index("The rows above, each a command"):]
    block = block[block.index("```"):]
    block = block[:block.index("```", 3)]
    return tuple(tuple(shlex.split(line)[3:]) for line in block.splitlines()
                 if re.match(r"python -m gan_jax dirac ", line))


JOBS: dict[str, Job] = {
    "seed": Job("docs/seed.md (the 64-seed table), README (the seed's W1)",
                ((*GJ, "reproduce-seed", "--out", "{out}"),),
                tables=("report.md",)),
    "dirac": Job("docs/exact.md, section 8 (table and figure)",
                 ((*PY, "experiments/dirac_gan.py", "--out", "{out}"),),
                 figures=(("dirac_gan.png", "docs/figures/dirac_gan.png"),),
                 tables=("dirac_gan.md",)),
    "dirac_methods": Job("docs/methods.md, the Dirac-GAN rows of every method",
                         tuple((*GJ, *args) for args in dirac_commands())),
    "lr_search": Job("docs/sweeps.md, the search figure and the confirm table",
                     ((*GJ, "sweep", "experiments/lr_search.toml", "--out", "{out}"),
                      (*GJ, "plot", "{out}", "--search", "--out", "{out}/plots"),
                      (*GJ, "confirm", "experiments/lr_search.toml", "--out", "{out}",
                       "--top", "5", "--seeds", "16")),
                     figures=(("plots/search_w1.png", "docs/figures/lr_search_w1.png"),),
                     tables=("confirm/confirm.md",)),
    "exact": Job("docs/exact.md, sections 1-7 (tables and the saturation figure)",
                 ((*PY, "experiments/exact_analysis.py", "--out", "{out}"),),
                 figures=(("saturation.png", "docs/figures/saturation.png"),),
                 tables=("report.md",)),
}


class Long(NamedTuple):
    """A long result: where the docs show it, the commands, the cost and date they state."""

    name: str
    pages: str
    commands: tuple[str, ...]
    last_run: str


LONG = (
    Long("loss ablation", "docs/loss_ablation.md; README's paired table",
         ("PYTHONPATH=. python experiments/loss_ablation.py --out results/loss_ablation",),
         "2026-12-04 (the page; its sweep took 176 s wall on 2 cores, with the tables a few "
         "minutes)"),
    Long("methods ablation", "docs/methods.md (tables and figures/methods_curves.png)",
         ("PYTHONPATH=. python experiments/methods_ablation.py --out runs/methods_ablation",),
         "2026-11-28, its extragradient_past rows 2026-12-04 (the page; 1,403 s wall on 2 "
         "cores)"),
    Long("every method on the seed's runs", "docs/methods.md (the exact W1 gap table)",
         ("PYTHONPATH=. python experiments/methods_seed.py --out runs/methods_seed",),
         "not dated on the page; its table dates from 2026-11-28"),
    Long("mode collapse in 2-D", "docs/mode_collapse.md",
         ("python -m gan_jax sweep experiments/mode_collapse_2d.toml --out runs/mode_collapse_2d",
          "python -m gan_jax table runs/mode_collapse_2d --metrics "
          "modes_captured,hq_fraction,reverse_kl --success \"modes_captured>=7\" "
          "--compare loss=minimax,hinge"),
         "2026-11-27 (the page; 676 s wall on 2 cores)"),
    Long("PacGAN's table, CPU-sized", "docs/reproductions.md",
         ("python -m gan_jax sweep experiments/pacgan_2d.toml --out runs/pacgan_2d",
          "PYTHONPATH=. python experiments/reproductions.py pacgan runs/pacgan_2d"),
         "not dated on the page; 699 s wall on 2 cores, written 2026-11-28"),
    Long("VEEGAN's rows, CPU-sized", "docs/reproductions.md",
         ("python -m gan_jax sweep experiments/veegan_2d.toml --out runs/veegan_2d",
          "PYTHONPATH=. python experiments/reproductions.py veegan runs/veegan_2d"),
         "not dated on the page; 657 s wall on 2 cores, written 2026-11-28"),
    Long("VEEGAN's 1200-D rows, CPU-sized", "docs/reproductions.md",
         ("python -m gan_jax sweep experiments/veegan_1200d.toml --out runs/veegan_1200d",
          "PYTHONPATH=. python experiments/reproductions.py veegan_1200d runs/veegan_1200d"),
         "2026-12-04 (the page; 872 s wall on 2 shared cores)"),
    Long("Nagarajan-Kolter on the ring, CPU-sized", "docs/reproductions.md",
         ("python -m gan_jax sweep experiments/nagarajan_kolter_ring.toml "
          "--out runs/nagarajan_kolter_ring",
          "python -m gan_jax table runs/nagarajan_kolter_ring --by update,nk_eta "
          "--metrics modes_captured,hq_fraction,reverse_kl --interval bootstrap"),
         "not dated on the page; 804 s wall on 2 cores, written 2026-11-28"),
    Long("WGAN-GP's toy experiment, CPU-sized", "docs/reproductions.md (section 5, table "
         "and figures/wgan_gp_toy_critic.png)",
         ("python -m gan_jax sweep experiments/wgan_gp_toy.toml --out runs/wgan_gp_toy",
          "python -m gan_jax table runs/wgan_gp_toy --by data --metrics "
          "precision_k3,recall_k3,coverage_k5,energy_distance,modes_captured,hq_fraction,"
          "reverse_kl",
          "python -m gan_jax plot runs/wgan_gp_toy --critic --seeds 0 --num-samples 500"),
         "2026-12-04 (the page; its wall time on 2 shared cores is there)"),
    Long("mode collapse on targets without modes", "docs/new_targets.md",
         ("python -m gan_jax sweep experiments/new_targets_study.toml "
          "--out runs/new_targets_study",
          "python -m gan_jax table runs/new_targets_study --by data,update,loss --metrics "
          "precision_k3,recall_k3,coverage_k5"),
         "2026-12-04 (the page says which of its groups were run)"),
    Long("the reproductions at full budget", "docs/reproductions.md",
         ("python -m gan_jax sweep experiments/pacgan_2d_full.toml --out runs/pacgan_2d_full",
          "python -m gan_jax sweep experiments/veegan_2d_full.toml --out runs/veegan_2d_full",
          "python -m gan_jax sweep experiments/nagarajan_kolter_ring_full.toml "
          "--out runs/nagarajan_kolter_ring_full",
          "python -m gan_jax sweep experiments/wgan_gp_toy_full.toml "
          "--out runs/wgan_gp_toy_full --memory-budget 16GiB"),
         "never run (each needs a GPU; the page gives estimates)"),
    Long("throughput", "BENCHMARKS.md",
         ("python -m gan_jax bench --json bench.json",),
         "2026-11-27 to 2026-11-29 (the page, by section; machine-specific)"),
)


def long_list() -> str:
    lines = ["Long results (not run here; the command, and when the docs say they last ran):"]
    for item in LONG:
        lines.append(f"- {item.name} ({item.pages}); last run: {item.last_run}")
        lines += [f"    {c}" for c in item.commands]
    return "\n".join(lines)


def shown(command) -> str:
    """A command as a reader would type it (python, not this interpreter's path)."""
    return " ".join("python" if a == sys.executable else a for a in command)


def run_job(name: str, job: Job, out: str) -> tuple[float, list[str]]:
    """Run a job's commands in the repository root, output under out/NAME; returns the wall
    seconds and the files it made that the docs show."""
    where = os.path.join(out, name)
    os.makedirs(where, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    start = time.perf_counter()
    with open(os.path.join(where, "log.txt"), "w", encoding="utf-8") as log:
        for i, command in enumerate(job.commands):
            argv = [a.replace("{out}", where) for a in command]
            log.write(f"$ {shown(argv)}\n")
            log.flush()
            done = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
            log.write(done.stdout)
            if name == "dirac_methods":
                with open(os.path.join(where, f"{i:02d}.json"), "w", encoding="utf-8") as f:
                    f.write(done.stdout)
            if done.returncode != 0:
                raise ConfigError(f"{name}: {' '.join(command)} exited {done.returncode}; "
                                  f"its output: {os.path.join(where, 'log.txt')}")
    made = [os.path.join(where, f) for f, _ in job.figures] + \
        [os.path.join(where, t) for t in job.tables]
    return time.perf_counter() - start, made


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", help="output directory (one folder per result)")
    parser.add_argument("--only", help=f"comma-separated results to make (default all: "
                                       f"{', '.join(JOBS)})")
    parser.add_argument("--write", action="store_true",
                        help="copy the regenerated figures over the ones under docs/figures")
    parser.add_argument("--list", action="store_true",
                        help="only list the results, cheap and long, with their commands")


def main(args: argparse.Namespace) -> int:
    names = list(JOBS) if args.only is None else [n.strip() for n in args.only.split(",")]
    for n in names:
        if n not in JOBS:
            raise ConfigError(f"--only: got {n!r}; must be among {', '.join(JOBS)}")
    if args.list:
        for n, job in JOBS.items():
            print(f"{n}: {job.pages}")
            print("\n".join(f"    {shown(c)}" for c in job.commands))
        print(long_list())
        return 0
    if not args.out:
        raise ConfigError("--out: missing; give a directory for the regenerated results")
    os.makedirs(args.out, exist_ok=True)
    made: dict[str, list[str]] = {}
    for n in names:
        seconds, files = run_job(n, JOBS[n], args.out)
        made[n] = files
        print(f"{n}: {seconds:.0f} s -> {os.path.join(args.out, n)} ({JOBS[n].pages})",
              flush=True)
        for f in files:
            print(f"    {f}")
    if args.write:
        for n in names:
            for src, dst in JOBS[n].figures:
                shutil.copyfile(os.path.join(args.out, n, src), os.path.join(ROOT, dst))
                print(f"wrote {dst}")
    else:
        figures = [dst for n in names for _, dst in JOBS[n].figures]
        if figures:
            print(f"docs unchanged ({', '.join(figures)} would be replaced with --write)")
    print(long_list())
    return 0


if __name__ == "__main__":
    run_script(__doc__, add_arguments, main)
