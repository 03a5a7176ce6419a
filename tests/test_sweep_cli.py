"""The sweep command end to end: bad input (exit 2, the place named, nothing written, nothing
compiled), a sweep killed with SIGKILL and resumed, job-array shards and multi-host processes."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from gan_jax.engine import programs as engine
from gan_jax.records import results
from gan_jax.commands.cli import main as cli

from sweep_testing import (ROOT, TINY_BASE, assert_same_runs, cli_command, cli_env,
                           count_lines, records_by_id, run_cli, sweep_text, write_sweep)

GOOD = sweep_text("bad-input", 2, TINY_BASE, dict(lr_d=[0.02, 0.05]))

# (sweep file text, what the message must say)
BAD_FILES = {
    "not_toml": ('name = "x"\nseeds = [1, 2\n', ["not valid TOML"]),
    "unknown_top_key": (GOOD.replace("name =", "nmae ="),
                        ["nmae: unknown key", "did you mean 'name'?"]),
    "unknown_base_key": (GOOD.replace("steps =", "stepz ="),
                         ["[base].stepz: unknown field", "did you mean 'steps'?"]),
    "wrong_type_base": (GOOD.replace("batch_size = 16", 'batch_size = "16"'),
                        ["[base].batch_size: got '16'", "positive integer"]),
    "wrong_type_grid": (GOOD.replace("lr_d = [0.02, 0.05]", 'lr_d = [0.02, "fast"]'),
                        ["[grid].lr_d[1]", "got 'fast'", "positive number"]),
    "wrong_type_seeds": (GOOD.replace("seeds = 2", 'seeds = "many"'),
                         ["seeds: got 'many'"]),
    "empty_grid_list": (GOOD.replace("lr_d = [0.02, 0.05]", "lr_d = []"),
                        ["[grid].lr_d: empty list"]),
    "seeds_below_one": (GOOD.replace("seeds = 2", "seeds = 0"),
                        ["seeds: got 0", "at least 1"]),
    "grid_key_missing": (GOOD.replace("lr_d = [0.02, 0.05]", "lr_dd = [0.02, 0.05]"),
                         ["[grid].lr_dd: 'lr_dd' is not a field", "did you mean 'lr_d'?"]),
    "grid_not_a_list": (GOOD.replace("lr_d = [0.02, 0.05]", "lr_d = 0.02"),
                        ["[grid].lr_d: got 0.02", "must be a list"]),
}


@pytest.fixture
def no_compile(monkeypatch):
    """Fail the test if anything asks for a compiled program."""

    def refuse(*args, **kwargs):
        raise AssertionError("compiled before the input was validated")

    monkeypatch.setattr(engine, "compiled_run", refuse)


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_sweep_file(case, tmp_path, capsys, no_compile):
    text, expected = BAD_FILES[case]
    file = tmp_path / "bad.toml"
    file.write_text(text)
    out = tmp_path / "out"
    assert cli(["sweep", str(file), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert str(file) in err
    for piece in expected:
        assert piece in err, err
    assert not out.exists()


def test_bad_input_exits_2_without_traceback_in_a_real_process(tmp_path):
    file = tmp_path / "bad.toml"
    file.write_text(BAD_FILES["unknown_base_key"][0])
    proc = run_cli("sweep", file, "--out", tmp_path / "out")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "did you mean 'steps'?" in proc.stderr
    assert proc.stdout == "" and not (tmp_path / "out").exists()


def test_directory_of_another_sweep_is_refused_untouched(tmp_path, capsys, no_compile):
    file = write_sweep(tmp_path / "s.toml", "mine", 2, TINY_BASE)
    out = tmp_path / "out"
    out.mkdir()
    theirs = '{"run_id": "abc", "sweep": "theirs", "seed": 0}\n'
    (out / results.RESULTS_FILE).write_text(theirs)
    assert cli(["sweep", file, "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "holds results of sweep 'theirs', not 'mine'" in err and "results.jsonl" in err
    assert os.listdir(out) == [results.RESULTS_FILE]
    assert (out / results.RESULTS_FILE).read_text() == theirs


@pytest.mark.parametrize("where", ["a_file", "under_a_file"])
def test_unwritable_output_directory(where, tmp_path, capsys, no_compile):
    file = write_sweep(tmp_path / "s.toml", "mine", 2, TINY_BASE)
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    out = blocker if where == "a_file" else blocker / "out"
    assert cli(["sweep", file, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --out: ") and str(out) in err
    assert blocker.read_text() == "not a directory"


@pytest.mark.parametrize("flags, expected", [
    (["--memory-budget", "lots"], "--memory-budget: got 'lots'"),
    (["--shard", "4/4"], "--shard: got '4/4'"),
    (["--max-chunk", "0"], "--max-chunk: got 0"),
    (["--devices", "100000"], "--devices: got 100000"),
    (["--devices", "0"], "--devices: got 0"),
    ([], "--out: missing"),
])
def test_bad_flags(flags, expected, tmp_path, capsys, no_compile):
    file = write_sweep(tmp_path / "s.toml", "mine", 2, TINY_BASE)
    out = ["--out", str(tmp_path / "out")] if flags else []
    assert cli(["sweep", file, *out, *flags]) == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- kill -9, shards

# One group, 16 runs in chunks of 2: long enough per chunk that a kill lands mid-sweep.
KILLABLE = dict(TINY_BASE, steps=4000, log_every=500)


@pytest.fixture(scope="module")
def killable(tmp_path_factory):
    """The sweep file, a shared compilation cache, and the uninterrupted sweep's records."""
    base = tmp_path_factory.mktemp("killable")
    file = write_sweep(base / "killable.toml", "killable", 16, KILLABLE)
    cache = str(base / "jax-cache")
    proc = run_cli("sweep", file, "--out", base / "whole", "--max-chunk", 2, "--quiet",
                   devices=1, cache_dir=cache)
    assert proc.returncode == 0, proc.stderr
    whole = records_by_id(base / "whole")
    assert len(whole) == 16
    return dict(file=file, cache=cache, whole=whole)


@pytest.mark.slow
def test_killed_and_resumed_equals_uninterrupted(killable, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(
        cli_command("sweep", killable["file"], "--out", out, "--max-chunk", 2, "--quiet"),
        env=cli_env(devices=1, cache_dir=killable["cache"]), cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while count_lines(out / results.RESULTS_FILE) < 2 and proc.poll() is None:
        assert time.monotonic() < deadline, "no chunk finished in time"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the sweep ended before it could be killed"
    assert 2 <= count_lines(out / results.RESULTS_FILE) < 16

    resumed = run_cli("sweep", killable["file"], "--out", out, "--max-chunk", 2, "--resume",
                      "--quiet", devices=1, cache_dir=killable["cache"])
    assert resumed.returncode == 0, resumed.stderr
    assert count_lines(out / results.RESULTS_FILE) == 16       # every run once, file valid JSONL
    assert_same_runs(records_by_id(out), killable["whole"])


@pytest.mark.slow
def test_job_array_shards_merge_in_the_table(killable, tmp_path):
    out = tmp_path / "out"
    for i in range(2):
        proc = run_cli("sweep", killable["file"], "--out", out, "--shard", f"{i}/2",
                       "--max-chunk", 2, "--quiet", devices=1, cache_dir=killable["cache"])
        assert proc.returncode == 0, proc.stderr
        assert "8 runs recorded" in proc.stdout
    assert sorted(os.listdir(out)) == ["results.shard-0-of-2.jsonl",
                                       "results.shard-1-of-2.jsonl"]
    assert_same_runs(records_by_id(out), killable["whole"])
    assert cli(["table", str(out), "--metrics", "w1", "--out", str(out)]) == 0
    assert "| 16 | 0 |" in (out / "summary.md").read_text()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_multi_host_processes_split_the_runs(killable, tmp_path):
    out, port = tmp_path / "out", _free_port()
    procs = [subprocess.Popen(
        cli_command("sweep", killable["file"], "--out", out, "--max-chunk", 2, "--quiet",
                    "--coordinator", f"localhost:{port}", "--num-processes", 2,
                    "--process-id", i),
        env=cli_env(devices=1, cache_dir=killable["cache"]), cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True) for i in range(2)]
    for p in procs:
        stdout, stderr = p.communicate(timeout=600)
        assert p.returncode == 0, stderr
        assert "8 runs recorded" in stdout
    assert sorted(os.listdir(out)) == ["results.shard-0-of-2.jsonl",
                                       "results.shard-1-of-2.jsonl"]
    assert_same_runs(records_by_id(out), killable["whole"])


@pytest.mark.slow
def test_memory_stays_flat_for_a_large_sweep(tmp_path):
    """A scaled-down experiments/memory_100k.py: 20,000 runs in chunks under 4 GiB resident."""
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "experiments", "memory_100k.py"), "--seeds", "20000",
         "--out", str(tmp_path)], env=cli_env(), cwd=ROOT, capture_output=True, text=True,
        timeout=3600)
    assert proc.returncode == 0, proc.stderr
    peak = float(re.search(r"peak resident memory ([\d.]+) GiB", proc.stdout).group(1))
    assert peak < 4.0
    assert len(records_by_id(tmp_path)) == 20000
