"""experiments/regenerate_docs.py: what it runs exists and matches the docs, without running it.

Running the cheap results takes minutes (the slow tests in tests/test_docs_numbers.py check the
seed's and the Dirac-GAN's tables against the pages); here only the script's own contract:
every command names a script or a subcommand that exists, every figure it would write is one
the docs show, the Dirac-GAN commands are the ones docs/methods.md lists, and it refuses bad
input and leaves docs/ alone without --write.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from experiments import regenerate_docs as rd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pages_text() -> str:
    pages = ["README.md"] + [os.path.join("docs", f) for f in os.listdir(os.path.join(ROOT, "docs"))
                             if f.endswith(".md")]
    return "".join(open(os.path.join(ROOT, p), encoding="utf-8").read() for p in pages)


def test_every_command_and_figure_exists():
    commands = {"reproduce-seed", "plot", "sweep", "confirm", "dirac", "table", "bench"}
    for name, job in rd.JOBS.items():
        for command in job.commands:
            if command[1] == "-m":
                assert command[3] in commands, (name, command)
            else:
                assert os.path.isfile(os.path.join(ROOT, command[1])), (name, command)
            for arg in command:
                if arg.endswith(".toml"):
                    assert os.path.isfile(os.path.join(ROOT, arg)), arg
        for _, dst in job.figures:
            assert os.path.isfile(os.path.join(ROOT, dst)), dst
            assert os.path.relpath(dst, "docs") in pages_text(), dst     # shown by a page
    for item in rd.LONG:
        assert item.commands and item.last_run
        for c in item.commands:
            for arg in c.split():
                if arg.endswith((".toml", ".py")):
                    assert os.path.isfile(os.path.join(ROOT, arg)), arg


def test_dirac_commands_are_read_from_docs_methods():
    text = open(os.path.join(ROOT, "docs", "methods.md"), encoding="utf-8").read()
    block = text[text.index("The rows above, each a command"):]
    listed = re.findall(r"^python -m gan_jax (dirac --method .*)$", block, flags=re.M)
    commands = rd.dirac_commands()
    assert len(commands) == len(listed) >= 16
    assert [" ".join(c) for c in commands] == listed
    assert commands[0] == ("dirac", "--method", "simultaneous", "--lr", "0.1", "--json")


def test_list_and_bad_input(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT)
    script = os.path.join(ROOT, "experiments", "regenerate_docs.py")
    done = subprocess.run([sys.executable, script, "--list"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    for name in rd.JOBS:
        assert f"{name}: " in done.stdout
    assert "loss ablation" in done.stdout and "2026-12-04" in done.stdout
    done = subprocess.run([sys.executable, script, "--out", str(tmp_path), "--only", "seeds"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert "--only: got 'seeds'; must be among seed, dirac" in done.stderr
    assert "Traceback" not in done.stderr and not list(tmp_path.iterdir())
