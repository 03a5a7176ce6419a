"""Results are never lost or doubled, and no input ends in a traceback.

Each test reproduces one case of a hostile-user review with the fixed behaviour:
a second writer, a record without its final newline, damaged lines, Ctrl-C and SIGTERM, a full
disk, values past what the program can represent, `exact` at non-finite or extreme input, and
the smaller cases of `table`. Tests that start processes or compile are marked slow.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from gan_jax.engine import bench, programs as engine
from gan_jax.records import results
from gan_jax.commands.cli import main as cli
from gan_jax.config import make_config
from gan_jax.core.errors import ConfigError, OutputError
from gan_jax.sweep import load_sweep

from sweep_testing import (ROOT, TINY_BASE, cli_command, cli_env, count_lines,
                           foreground_cli_command, records_by_id, run_cli, write_sweep)


@pytest.fixture
def no_compile(monkeypatch):
    """Fail the test if anything asks for a compiled program."""

    def refuse(*args, **kwargs):
        raise AssertionError("compiled before the input was validated")

    monkeypatch.setattr(engine, "compiled_run", refuse)


def fake_records(sweep_file: str) -> list[dict]:
    """A record of the right shape for every run of a sweep file (no training)."""
    sweep = load_sweep(sweep_file)
    return [{"run_id": r.run_id, "sweep": sweep.name, "seed": r.seed,
             "config": r.cfg.to_dict(), "status": "ok", "diverged_at": None,
             "final": {"w1": 0.1 * (i + 1)}, "history": {"step": [0, 10, 20]},
             "versions": {}} for i, r in enumerate(sweep.runs())]


def one_line_error(err: str) -> str:
    lines = [l for l in err.splitlines() if l.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ----------------------------------------------------------------------------- 1. one writer


def _sweep_and_empty_out(tmp_path, name: str):
    """A 4-run sweep file, an empty output directory, and the results file's path there."""
    file = write_sweep(tmp_path / "s.toml", name, 4, TINY_BASE)
    out = tmp_path / "out"
    out.mkdir()
    return file, out, out / results.RESULTS_FILE


def test_second_writer_exits_2_naming_the_holder(tmp_path, capsys, no_compile):
    file, out, path = _sweep_and_empty_out(tmp_path, "locked")
    lock = results.ResultsLock(path).acquire()
    try:
        for flags in ([], ["--resume"]):
            assert cli(["sweep", file, "--out", str(out), *flags]) == 2
            err = one_line_error(capsys.readouterr().err)
            assert f"{path} is being written by pid {os.getpid()}" in err
            assert "--wait-for-lock" in err
        assert not path.exists()                   # nothing written by the refused writers
    finally:
        lock.release()
    assert not os.path.exists(f"{path}.lock")      # the holder cleans up as it releases


def test_wait_for_lock_waits_for_the_holder(tmp_path):
    path = tmp_path / results.RESULTS_FILE
    first = results.ResultsLock(path).acquire()
    waited = []
    threading.Timer(0.3, first.release).start()
    t = time.perf_counter()
    second = results.ResultsLock(path).acquire(wait=True, on_wait=waited.append)
    try:
        assert time.perf_counter() - t >= 0.25
        assert waited and f"pid {os.getpid()}" in waited[0]
        with pytest.raises(ConfigError, match="is being written by"):
            results.ResultsLock(path).acquire()        # the second holds it now
    finally:
        second.release()


HOLD_LOCK = """
import sys, time
from gan_jax.records import results
results.ResultsLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_a_holder_killed_with_sigkill_does_not_block_resume(tmp_path):
    file, out, path = _sweep_and_empty_out(tmp_path, "killed")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path)], env=cli_env(),
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    busy = run_cli("sweep", file, "--out", out, "--resume", "--quiet", devices=1)
    assert busy.returncode == 2 and f"pid {holder.pid}" in busy.stderr, busy.stderr
    holder.kill()                                       # SIGKILL: the kernel drops the flock
    holder.wait()
    assert os.path.exists(f"{path}.lock")               # left behind by the kill...
    resumed = run_cli("sweep", file, "--out", out, "--resume", "--quiet", devices=1)
    assert resumed.returncode == 0, resumed.stderr      # ...and taken over
    assert len(records_by_id(out)) == 4


@pytest.mark.slow
def test_two_sweeps_into_one_directory_never_double(tmp_path):
    file = write_sweep(tmp_path / "s.toml", "twice", 4, TINY_BASE)
    out = tmp_path / "out"
    procs = [subprocess.Popen(cli_command("sweep", file, "--out", out, "--quiet"),
                              env=cli_env(devices=1), cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    codes = sorted(p.wait(timeout=300) for p in procs)
    errs = [p.stderr.read() for p in procs]
    # One wrote; the other was refused, by the lock or (if it started after) as a rerun.
    assert codes == [0, 2], errs
    assert any("being written by" in e or "already holds" in e for e in errs), errs
    with open(out / results.RESULTS_FILE) as f:
        assert len(f.readlines()) == 4
    assert len(records_by_id(out)) == 4


# ----------------------------------------------------------------------------- 2. resume


def test_resume_keeps_a_record_without_its_final_newline(tmp_path, capsys, no_compile):
    file, out, path = _sweep_and_empty_out(tmp_path, "newline")
    text = "".join(map(results.to_line, fake_records(file)))
    path.write_text(text[:-1])                           # complete, but for the newline
    records, problems = results.read_records(path)
    assert len(records) == 4 and problems == []
    # Every run recorded: resume has nothing to compile, and keeps the last record.
    assert cli(["sweep", file, "--out", str(out), "--resume", "--quiet"]) == 0
    assert path.read_text() == text                      # the newline added, nothing cut
    assert "0 runs recorded" in capsys.readouterr().out
    assert [f for f in os.listdir(out)] == [results.RESULTS_FILE]


def test_resume_sets_damaged_lines_aside_and_deletes_nothing(tmp_path, capsys, no_compile):
    file, out, path = _sweep_and_empty_out(tmp_path, "damaged")
    good = [results.to_line(r).encode() for r in fake_records(file)]
    damage = [b"[1, 2]\n", b'{"run_id": "x", "sweep": "damaged"}\n', b"\xff\xfe\n"]
    path.write_bytes(good[0] + damage[0] + good[1] + damage[1] + good[2] + damage[2] + good[3]
                     + b'{"run_id": "cut')
    assert cli(["sweep", file, "--out", str(out), "--resume", "--quiet"]) == 0
    err = capsys.readouterr().err
    sides = [f for f in os.listdir(out) if ".damaged-" in f]
    assert len(sides) == 1 and f"moved to {out / sides[0]}" in err, err
    assert "4 unusable line(s)" in err and "4 records kept" in err
    assert path.read_bytes() == b"".join(good)
    assert (out / sides[0]).read_bytes() == b"".join(damage) + b'{"run_id": "cut\n'


# ----------------------------------------------------------------------------- 3. readers


def damaged_directory(tmp_path, with_a_directory: bool = True):
    """A results directory whose file has every kind of damage, and a results path that is a
    directory; its usable records: the loss grid of two configurations, 3 seeds each."""
    records = []
    for loss in ("hinge", "lsgan"):
        cfg = make_config(dict(loss=loss, steps=20, log_every=10))
        for seed in range(3):
            records.append({"run_id": results.run_id(cfg, seed), "sweep": "d", "seed": seed,
                            "config": cfg.to_dict(), "status": "ok", "diverged_at": None,
                            "final": {"w1": 0.5 + seed}, "versions": {},
                            "history": {"step": [0, 10, 20], "w1": [2.0, 1.0, 0.5 + seed]}})
    lines = [results.to_line(r).encode() for r in records]
    no_config = {k: v for k, v in records[0].items() if k != "config"}
    lines[1:1] = [b"[1,2]\n", json.dumps(no_config).encode() + b"\n", b"\xff\n"]
    shard = tmp_path / results.results_file_name(0, 2)
    shard.write_bytes(b"".join(lines))
    if with_a_directory:
        (tmp_path / results.results_file_name(1, 2)).mkdir()
    return shard


def test_readers_skip_damage_and_count_it_in_one_note(tmp_path):
    shard = damaged_directory(tmp_path)
    records, notes = results.load_results(tmp_path)
    assert len(records) == 6
    assert len(notes) == 1, notes
    for where in (f"{shard}:2", f"{shard}:3", f"{shard}:4", "shard-1-of-2.jsonl: cannot read"):
        assert where in notes[0], notes[0]
    assert "4 unusable lines skipped" in notes[0]


def test_table_on_a_damaged_directory(tmp_path, capsys):
    damaged_directory(tmp_path)
    assert cli(["table", str(tmp_path), "--metrics", "w1", "--format", "csv", "--out",
                str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and captured.err.count("note:") == 1
    assert "hinge,3," in captured.out and "lsgan,3," in captured.out


def test_plot_on_a_damaged_directory(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    damaged_directory(tmp_path)
    assert cli(["plot", str(tmp_path), "--curves", "w1"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("note:") == 1 and "Traceback" not in captured.err
    assert (tmp_path / "plots" / "curves.png").exists()


def test_sweep_resume_on_a_damaged_directory(tmp_path, capsys, no_compile):
    # The sweep's own results path is a directory: refused up front, in one line.
    file = write_sweep(tmp_path / "s.toml", "d", 4, TINY_BASE)
    out = tmp_path / "out"
    (out / results.RESULTS_FILE).mkdir(parents=True)
    assert cli(["sweep", file, "--out", str(out), "--resume"]) == 2
    assert "is not a regular file" in one_line_error(capsys.readouterr().err)


# ----------------------------------------------------------------------------- 4. signals


def _start_long_sweep(tmp_path, name: str):
    # 4 chunks of 2 runs, each long enough that a signal lands between chunks.
    file = write_sweep(tmp_path / f"{name}.toml", name, 8, dict(TINY_BASE, steps=4000,
                                                                 log_every=500))
    out = tmp_path / name
    proc = subprocess.Popen(cli_command("sweep", file, "--out", out, "--max-chunk", 2,
                                        "--quiet"),
                            env=cli_env(devices=1), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    return file, out, proc


@pytest.mark.slow
@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_after_the_chunk_in_flight(signum, status, tmp_path):
    file, out, proc = _start_long_sweep(tmp_path, "signalled")
    deadline = time.monotonic() + 240
    while count_lines(out / results.RESULTS_FILE) < 2 and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == status, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert f"stopped by {signal.Signals(signum).name} (between chunks)" in last
    assert "runs recorded in" in last and "--resume" in last
    recorded = len(records_by_id(out))
    assert 2 <= recorded < 8 and recorded % 2 == 0        # whole chunks only
    resumed = run_cli("sweep", file, "--out", out, "--resume", "--quiet", devices=1)
    assert resumed.returncode == 0, resumed.stderr
    assert len(records_by_id(out)) == 8


@pytest.mark.slow
def test_ctrl_c_while_waiting_for_the_lock_stops_at_once(tmp_path):
    # The handlers are in place before the lock is asked for: a Ctrl-C in the wait (or in the
    # moment the lock file exists but the lock is not yet held) ends with the one line.
    file, out, path = _sweep_and_empty_out(tmp_path, "waiting")
    lock = results.ResultsLock(path).acquire()
    proc = subprocess.Popen(cli_command("sweep", file, "--out", out, "--wait-for-lock",
                                        "--quiet"),
                            env=cli_env(devices=1), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        while not seen or "waiting for it (--wait-for-lock)" not in seen[-1]:
            seen.append(proc.stderr.readline())
            assert seen[-1], "".join(seen)          # '' : it ended without waiting
        t = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert time.monotonic() - t < 5
        assert proc.returncode == 130 and "Traceback" not in err, err
        last = err.strip().splitlines()[-1]
        assert "stopped by SIGINT (before the first chunk): 0 runs recorded" in last, err
        assert "--resume" in last
        assert not path.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        lock.release()


def _wait_for_path(path, proc, timeout: float = 60) -> None:
    """Wait until `path` exists, while `proc` still runs."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.005)


@pytest.mark.slow
def test_a_second_ctrl_c_stops_at_once_even_while_compiling(tmp_path):
    file, out, proc = _start_long_sweep(tmp_path, "twice")
    _wait_for_path(out / f"{results.RESULTS_FILE}.lock", proc)   # past the checks
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    t = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - t < 5, "the second Ctrl-C waited for compilation"
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "runs recorded" in err and "--resume" in err


# `python -m gan_jax` in the foreground (sweep_testing.FOREGROUND) with one more exit handler,
# registered first so that it runs last, after JAX's: it marks that the process is exiting and
# takes a minute, so a Ctrl-C lands in the exit handlers every time.
SLOW_EXIT = ("import atexit, runpy, signal, sys, time; "
             "signal.signal(signal.SIGINT, signal.default_int_handler); "
             "marker = sys.argv.pop(1); "
             "atexit.register(lambda: (open(marker, 'w').close(), time.sleep(60))); "
             "runpy.run_module('gan_jax', run_name='__main__', alter_sys=True)")


@pytest.mark.slow
def test_ctrl_c_while_the_process_exits_ends_it_at_once_without_a_traceback(tmp_path):
    # A finished sweep's process runs JAX's exit handlers; a Ctrl-C there used to end in a
    # KeyboardInterrupt traceback from them. The handlers cover the exit now: the process
    # ends at once, with the command's status and one line.
    file = write_sweep(tmp_path / "s.toml", "exiting", 2, TINY_BASE)
    marker, out = tmp_path / "exiting", tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_EXIT, str(marker), "sweep", str(file),
                             "--out", str(out), "--quiet"],
                            env=cli_env(devices=1), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_path(marker, proc, timeout=240)
        t = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, err = proc.communicate(timeout=30)
        assert time.monotonic() - t < 5, "the exit handlers ran on"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().splitlines()[-1] == ("SIGINT while exiting: the command had finished "
                                            "(status 0); exiting now")
    assert "2 runs recorded" in stdout and len(records_by_id(out)) == 2


@pytest.mark.slow
def test_ctrl_c_stops_another_command_without_waiting_for_its_compilations(tmp_path):
    # reproduce-seed compiles its two programs in threads; Ctrl-C ends the process with the
    # one line at once instead of when they finish (cli.exit_process).
    out = tmp_path / "seed"
    proc = subprocess.Popen(foreground_cli_command("reproduce-seed", "--out", out, "--seeds", 8,
                                                   "--compile-cache", "off"),
                            env=cli_env(devices=1), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_path(out, proc)                   # its checks are done: compiling now
        time.sleep(0.5)
        t = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert time.monotonic() - t < 5, "Ctrl-C waited for the compilations"
        assert proc.returncode == 130 and "Traceback" not in err, err
        assert err.strip().splitlines()[-1] == "error: interrupted (Ctrl-C)"
        assert not (out / results.RESULTS_FILE).exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ----------------------------------------------------------------------------- 5. full disk


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_failed_append_leaves_nothing_half_written(tmp_path, monkeypatch):
    path = tmp_path / results.RESULTS_FILE
    records = fake_records(write_sweep(tmp_path / "s.toml", "full", 4, TINY_BASE))
    results.append_records(path, records[:2])
    before = path.read_bytes()
    real_write = os.write

    def half_then_full(fd, data):                 # half the bytes land, then the disk is full
        if len(data) > 10:
            real_write(fd, bytes(data[:len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(results.os, "write", half_then_full)
    with pytest.raises(OutputError, match=f"{path}: cannot append .*No space left"):
        results.append_records(path, records[2:])
    monkeypatch.undo()
    assert path.read_bytes() == before           # cut back to the previous end
    results.append_records(path, records[2:])
    assert len(results.read_records(path)[0]) == 4


def test_a_failed_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "summary.md"
    path.write_text("old")
    monkeypatch.setattr(results.os, "fsync", _no_space)
    with pytest.raises(OSError):
        results.write_atomic(path, "new")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["summary.md"]


@pytest.mark.slow
def test_sweep_on_a_full_disk_says_one_line_and_resumes(tmp_path, monkeypatch, capsys):
    file = write_sweep(tmp_path / "s.toml", "full", 4, TINY_BASE)
    out = tmp_path / "out"
    real = results.append_records
    calls = []

    def full_after_one(path, records):
        calls.append(1)
        if len(calls) > 1:
            raise OutputError(f"{path}: cannot append 1 bytes: No space left on device; the "
                              "file was cut back to its previous end")
        real(path, records)

    monkeypatch.setattr(results, "append_records", full_after_one)
    assert cli(["sweep", file, "--out", str(out), "--max-chunk", "2", "--devices", "1",
                "--quiet"]) == 1
    err = one_line_error(capsys.readouterr().err)
    assert "No space left" in err and "2 runs recorded" in err and "--resume" in err
    monkeypatch.undo()
    assert cli(["sweep", file, "--out", str(out), "--max-chunk", "2", "--devices", "1",
                "--resume", "--quiet"]) == 0
    assert len(records_by_id(out)) == 4


def test_table_into_a_full_or_read_only_directory_prints_the_table(tmp_path, monkeypatch,
                                                                    capsys):
    damaged_directory(tmp_path, with_a_directory=False)
    monkeypatch.setattr(results, "write_atomic", _no_space)
    assert cli(["table", str(tmp_path), "--metrics", "w1", "--format", "csv", "--out",
                str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "hinge,3," in captured.out
    assert "warning:" in captured.err and "cannot write summary.md" in captured.err


@pytest.mark.parametrize("where", ["a_file", "under_a_file", "full"])
def test_plot_into_an_unwritable_place(where, tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    damaged_directory(tmp_path, with_a_directory=False)
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    target = {"a_file": blocker, "under_a_file": blocker / "plots",
              "full": tmp_path / "figures"}[where]
    if where == "full":
        from matplotlib.figure import Figure
        monkeypatch.setattr(Figure, "savefig", _no_space)
    status = cli(["plot", str(tmp_path), "--curves", "w1", "--out", str(target)])
    assert status == (2 if where == "a_file" else 1)
    assert str(target) in one_line_error(capsys.readouterr().err)
    if where == "full":
        assert os.listdir(target) == []                      # no half-written PNG


def test_bench_json_naming_a_directory_fails_before_the_benchmark(tmp_path, monkeypatch,
                                                                   capsys):
    monkeypatch.setattr(bench, "matmul_rate", _no_space)     # the benchmark must not start
    assert cli(["bench", "--json", str(tmp_path)]) == 2
    assert "--json:" in one_line_error(capsys.readouterr().err)


def test_bench_unknown_method_fails_before_the_benchmark(monkeypatch, capsys):
    monkeypatch.setattr(bench, "matmul_rate", _no_space)
    assert cli(["bench", "--methods", "consensus,leapfrog"]) == 2
    err = one_line_error(capsys.readouterr().err)
    assert "--methods" in err and "leapfrog" in err and "extragradient" in err


def test_bench_method_variants_take_one_discriminator_step():
    cfg = bench.method_variant(bench.BENCH_CONFIGS["mlp_2x64"], "lookahead")
    assert (cfg.update, cfg.d_updates, cfg.lookahead_k) == ("alternating", 1, 5)
    assert bench.method_variant(cfg.replace(lookahead_k=0), "sga").update == "sga"


# ----------------------------------------------------------------------------- 6. bounds


@pytest.mark.parametrize("key, value, field", [
    ("steps", 9223372036854775800, "steps"),
    ("batch_size", 10**9, "batch_size"),
    ("d_updates", 10**12, "d_updates"),
    ("latent_dim", 10**9, "latent_dim"),
    ("eval_samples", 2**63 - 1, "eval_samples"),
    ("num_projections", 10**12, "num_projections"),
    ("hq_threshold", 1e308, "hq_threshold"),
    ("g_width", 10**12, "g_width"),
])
def test_values_past_what_the_program_can_represent(key, value, field, tmp_path, capsys,
                                                    no_compile):
    base = dict(TINY_BASE, generator="mlp", discriminator="mlp", g_init=None, d_init=None)
    base.pop("g_init"), base.pop("d_init")
    base[key] = value
    file = write_sweep(tmp_path / "s.toml", "big", 2, base)
    for flags in (["--dry-run"], ["--out", str(tmp_path / "out")]):
        assert cli(["sweep", file, *flags]) == 2
        err = one_line_error(capsys.readouterr().err)
        assert f"{field}: got" in err and "must be" in err, err
    assert not (tmp_path / "out").exists()


def test_too_many_seeds_is_refused_before_expanding(tmp_path, capsys):
    file = write_sweep(tmp_path / "s.toml", "many", 4294967296, TINY_BASE)
    assert cli(["sweep", file, "--dry-run"]) == 2
    assert "seeds: got 4294967296" in one_line_error(capsys.readouterr().err)


def test_plan_whose_smallest_chunk_exceeds_the_budget(tmp_path, capsys, no_compile):
    base = dict(TINY_BASE, generator="mlp", discriminator="mlp", g_width=512)
    base.pop("g_init"), base.pop("d_init")
    file = write_sweep(tmp_path / "s.toml", "wide", 2, base)
    assert cli(["sweep", file, "--dry-run", "--devices", "1", "--memory-budget", "64KiB"]) == 0
    assert "warning: group 1" in capsys.readouterr().out
    out = tmp_path / "out"
    assert cli(["sweep", file, "--out", str(out), "--devices", "1",
                "--memory-budget", "64KiB"]) == 2
    assert "smallest chunk" in one_line_error(capsys.readouterr().err)
    assert not os.path.exists(out / results.RESULTS_FILE)


def test_reproduce_seed_and_plot_bounds(tmp_path, capsys):
    out = tmp_path / "seed"
    assert cli(["reproduce-seed", "--seeds", "99999999999", "--out", str(out)]) == 2
    assert "--seeds: got 99999999999" in one_line_error(capsys.readouterr().err)
    assert not out.exists()
    pytest.importorskip("matplotlib")
    damaged_directory(tmp_path, with_a_directory=False)
    assert cli(["plot", str(tmp_path), "--dpi", "100000"]) == 2
    assert "--dpi: got 100000" in one_line_error(capsys.readouterr().err)


# ----------------------------------------------------------------------------- 7. exact


@pytest.mark.parametrize("theta, std, status, expected", [
    (["nan", "0"], None, 2, "--theta: got nan; must be a finite number"),
    (["inf", "0"], None, 2, "--theta: got inf; must be a finite number"),
    (["1e30", "0"], None, 1, "not computable in float32"),
    (["1", "0"], "1e-30", 1, "not computable in float32"),
])
def test_exact_never_answers_nan(theta, std, status, expected, capsys):
    args = ["exact", "--generator", "linear", "--theta", *theta]
    if std:
        args += ["--data-std", std]
    assert cli(args) == status
    captured = capsys.readouterr()
    assert expected in captured.out + captured.err
    assert "nan" not in captured.out.lower().replace("not computable", "")


# ----------------------------------------------------------------------------- 8. smaller


def test_table_notes_a_directory_that_mixes_sweeps(tmp_path, capsys):
    shard = damaged_directory(tmp_path, with_a_directory=False)
    other = json.loads(shard.read_bytes().splitlines()[0])
    other.update(sweep="other", run_id="another")
    results.append_records(tmp_path / results.results_file_name(1, 2), [other])
    assert cli(["table", str(tmp_path), "--metrics", "w1"]) == 0
    err = capsys.readouterr().err
    assert "holds 2 sweeps: 'd' (6 runs), 'other' (1 runs)" in err


def test_control_characters_in_a_sweep_name_are_refused(tmp_path, capsys):
    file = tmp_path / "s.toml"
    file.write_text('name = "two\\nlines"\nseeds = 2\n')
    assert cli(["sweep", str(file), "--dry-run"]) == 2
    assert "control characters" in one_line_error(capsys.readouterr().err)
