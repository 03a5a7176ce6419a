"""Helpers shared by the sweep and table tests: tiny sweep files, the CLI, record comparison."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import numpy as np

from gan_jax.records import results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Small enough to compile and run fast; one discriminator step keeps the program short.
TINY_BASE = dict(steps=20, log_every=10, batch_size=16, d_updates=1, eval_batch=32,
                 history_samples=32, eval_samples=64, g_init=[0.15, 0.0], d_init=[0.25, 0.0],
                 mmd_samples=0)                 # the sweep tests check no MMD: a smaller program

# Planning and sweeps in tests use one device, whatever the machine or XLA_FLAGS give.
ONE_DEVICE = tuple(jax.local_devices()[:1])

# Records round floats to 7 significant digits; runs are computed run by run (vmap), so a
# run's numbers do not depend on its chunk, chunk size or device. On XLA:CPU they come out
# bit-identical; the tolerance only allows floating-point rounding.
RTOL, ATOL = 1e-5, 1e-6


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def sweep_text(name: str, seeds, base: dict, grid: dict | None = None) -> str:
    lines = [f"name = {toml_value(name)}", f"seeds = {toml_value(seeds)}", "", "[base]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in base.items()]
    if grid:
        lines += ["", "[grid]"] + [f"{k} = {toml_value(v)}" for k, v in grid.items()]
    return "\n".join(lines) + "\n"


def write_sweep(path, name: str, seeds, base: dict, grid: dict | None = None) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write(sweep_text(name, seeds, base, grid))
    return str(path)


def cli_env(devices: int | None = None, cache_dir: str | None = None) -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT)
    if devices is not None:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    if cache_dir is not None:
        # Subprocesses compiling the same program share it through JAX's persistent cache.
        env["JAX_COMPILATION_CACHE_DIR"] = cache_dir
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    return env


def cli_command(*args) -> list[str]:
    return [sys.executable, "-m", "gan_jax", *map(str, args)]


# `python -m gan_jax` with Python's Ctrl-C handler installed, as in a terminal's foreground
# job. A process started in the background by a non-interactive shell (a CI job run with `&`)
# inherits SIGINT ignored, and Python then leaves it ignored; a test that sends Ctrl-C to a
# command relying on Python's handler (not the sweep, which installs its own) starts it so.
FOREGROUND = ("import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
              "runpy.run_module('gan_jax', run_name='__main__', alter_sys=True)")


def foreground_cli_command(*args) -> list[str]:
    return [sys.executable, "-c", FOREGROUND, *map(str, args)]


def run_cli(*args, devices: int | None = None, cache_dir: str | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cli_command(*args), env=cli_env(devices, cache_dir), cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def count_lines(path) -> int:
    """Newlines in a file (0 if it does not exist yet): the records a sweep has appended."""
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def records_by_id(directory) -> dict[str, dict]:
    """Every record in a directory's results files, by run id; fails on a doubled run."""
    out = {}
    for path in results.results_files(directory):
        recs, problems = results.read_records(path)
        assert not problems, problems
        for r in recs:
            assert r["run_id"] not in out, f"run {r['run_id']} recorded twice"
            out[r["run_id"]] = r
    return out


def _numbers(tree):
    if isinstance(tree, dict):
        return {k: _numbers(v) for k, v in tree.items()}
    return np.asarray(tree, dtype=float)


def assert_same_runs(a: dict[str, dict], b: dict[str, dict]) -> None:
    """Same run ids, and each run's final metrics and history equal within RTOL/ATOL."""
    assert sorted(a) == sorted(b)
    for run_id, ra in a.items():
        rb = b[run_id]
        assert (ra["seed"], ra["config"], ra["status"]) == (rb["seed"], rb["config"], rb["status"])
        for part in ("final", "history"):
            xa, xb = _numbers(ra[part]), _numbers(rb[part])
            assert xa.keys() == xb.keys()
            for k in xa:
                np.testing.assert_allclose(xa[k], xb[k], rtol=RTOL, atol=ATOL,
                                           err_msg=f"{run_id} {part}.{k}")
