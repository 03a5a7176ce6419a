"""`python -m gan_jax launch`: a sweep's shards as a job array through submitit. Bad input
(exit 2, the flag named, nothing written or submitted, nothing compiled), the sbatch script a
Slurm launch submits (a stand-in sbatch), and end to end on submitit's local executor: two
shards, one of them preempted and requeued, whose merged records and table are a single
process's."""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time

import pytest

from gan_jax.engine import programs as engine
from gan_jax.records import results
from gan_jax.commands.cli import HOST_DEVICES_FLAG, main as cli
from gan_jax.commands import launch
from gan_jax.sweep import load_sweep

from sweep_testing import (ROOT, TINY_BASE, assert_same_runs, cli_command, cli_env,
                           count_lines, records_by_id, run_cli, write_sweep)

# Imported here, once: importing submitit configures logging (logging.config.dictConfig),
# which closes the handlers that exist at that moment, pytest's own among them inside a test.
try:
    import submitit
except ImportError:                   # the bad-input tests still run; the others need it
    submitit = None
needs_submitit = pytest.mark.skipif(submitit is None, reason="needs submitit (the cluster extra)")

LOCAL = ["--cluster", "local", "--time", "10"]


@pytest.fixture
def nothing_runs(monkeypatch):
    """Fail the test if anything compiles or is submitted."""

    def refuse(*args, **kwargs):
        raise AssertionError("compiled or submitted before the input was validated")

    monkeypatch.setattr(engine, "compiled_run", refuse)
    monkeypatch.setattr(launch, "make_executor", refuse)


@pytest.fixture
def sweep_file(tmp_path):
    return write_sweep(tmp_path / "s.toml", "launched", 2, TINY_BASE, dict(lr_d=[0.02, 0.05]))


@pytest.mark.parametrize("flags, expected", [
    (["--shards", "0", *LOCAL], "--shards: got 0; must be at least 1"),
    (["--shards", "-3", *LOCAL], "--shards: got -3; must be at least 1"),
    (["--shards", "5", *LOCAL], "--shards: got 5; the sweep 'launched' has 4 runs, so at most 4"),
    (["--shards", "2", "--cluster", "local", "--time", "0:30"],
     "--time: got '0:30'; must be at least 1 minute"),
    (["--shards", "2", "--cluster", "local", "--time", "soon"], "--time: got 'soon'; give minutes"),
    (["--shards", "2", *LOCAL, "--slurm", "mail-type"], "--slurm: got 'mail-type'; give KEY=VALUE"),
    (["--shards", "2", *LOCAL, "--gpus-per-task", "-1"], "--gpus-per-task: got -1"),
    (["--shards", "2", *LOCAL, "--memory-budget", "lots"], "--memory-budget: got 'lots'"),
    (["--shards", "2", *LOCAL, "--poll", "0"], "--poll: got 0.0"),
])
def test_bad_flags(flags, expected, sweep_file, tmp_path, capsys, nothing_runs):
    out = tmp_path / "out"
    assert cli(["launch", sweep_file, "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and expected in err, err
    assert not out.exists()


def test_missing_sweep_file_and_missing_submitit(tmp_path, capsys, monkeypatch, nothing_runs):
    out = tmp_path / "out"
    missing = tmp_path / "missing.toml"
    assert cli(["launch", str(missing), "--out", str(out), "--shards", "2", *LOCAL]) == 2
    assert capsys.readouterr().err == f"error: {missing}: no such file\n"
    monkeypatch.setitem(sys.modules, "submitit", None)        # import submitit fails
    file = write_sweep(tmp_path / "s.toml", "launched", 2, TINY_BASE)
    assert cli(["launch", file, "--out", str(out), "--shards", "2", *LOCAL]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "launch: needs submitit" in err
    assert "pip install 'gan_jax[cluster]'" in err
    assert not out.exists()


@needs_submitit
def test_slurm_without_sbatch_and_a_directory_of_this_sweep_without_resume(
        sweep_file, tmp_path, capsys, monkeypatch, nothing_runs):
    out = tmp_path / "out"
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    assert cli(["launch", sweep_file, "--out", str(out), "--shards", "2", "--time", "10"]) == 2
    assert "--cluster: slurm: no sbatch or srun on PATH" in capsys.readouterr().err
    out.mkdir()
    record = records_line("launched", sweep_file)
    (out / results.RESULTS_FILE).write_text(record)
    assert cli(["launch", sweep_file, "--out", str(out), "--shards", "2", *LOCAL]) == 2
    assert "already holds 1 results of sweep 'launched'; pass --resume" in capsys.readouterr().err
    assert sorted(os.listdir(out)) == [results.RESULTS_FILE]


def records_line(name: str, file: str, index: int = 0) -> str:
    """One well-formed record of the sweep's run at `index` (its numbers do not matter here)."""
    run = load_sweep(file).runs()[index]
    return json.dumps(dict(run_id=run.run_id, sweep=name, seed=run.seed,
                           config=run.cfg.to_dict(), status="ok", final={}, history={})) + "\n"


def test_bad_input_exits_2_without_traceback_in_a_real_process(tmp_path):
    proc = run_cli("launch", tmp_path / "missing.toml", "--out", tmp_path / "out", "--shards",
                   2, *LOCAL)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("error: ") and "missing.toml: no such file" in proc.stderr
    # submitit absent: a package of that name that cannot be imported comes first on the path.
    hidden = tmp_path / "hidden" / "submitit"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('No module named submitit')\n")
    file = write_sweep(tmp_path / "s.toml", "launched", 2, TINY_BASE)
    env = dict(cli_env(), PYTHONPATH=f"{hidden.parent}{os.pathsep}{ROOT}")
    proc = subprocess.run(cli_command("launch", file, "--out", tmp_path / "out", "--shards", 2,
                                      *LOCAL), env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and "pip install 'gan_jax[cluster]'" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_time_limits_in_slurm_formats():
    assert [launch.parse_time(t) for t in ("90", "1:30", "1:30:00", "2-0", "1-01:00",
                                           "0-0:59:01")] == [90, 2, 90, 2880, 1500, 60]


# ----------------------------------------------------------------------------- Slurm


@needs_submitit
def test_a_slurm_launch_submits_one_array_whose_tasks_run_the_shards(tmp_path, capsys,
                                                                     monkeypatch):
    """A stand-in sbatch keeps the script it is given: the array, the flags, the tasks."""
    sweep_file = write_sweep(tmp_path / "s.toml", "loss ablation", 2, TINY_BASE,
                             dict(lr_d=[0.02, 0.05]))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text(f'#!/bin/sh\ncp "$1" {tmp_path}/script.sh\necho "Submitted batch job 4242"\n')
    sbatch.chmod(0o755)
    (bin_dir / "srun").symlink_to("/bin/false")       # only ever called inside the job
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    out = tmp_path / "out"
    assert cli(["launch", sweep_file, "--out", str(out), "--shards", "2", "--time", "1:30:00",
                "--partition", "gpu", "--gpus-per-task", "1", "--cpus-per-task", "4",
                "--mem", "16GiB", "--slurm", "mail-type=END", "--setup", "module load cuda",
                "--max-chunk", "64", "--compile-cache", str(tmp_path / "cache")]) == 0
    # The launcher sets no device count, which the tasks would inherit from the login node.
    assert HOST_DEVICES_FLAG not in os.environ.get("XLA_FLAGS", "")
    printed = capsys.readouterr().out
    assert "submitted 2 tasks to slurm" in printed
    assert "shard 0/2: job 4242_0" in printed and "shard 1/2: job 4242_1" in printed
    script = (tmp_path / "script.sh").read_text()
    for line in ("#SBATCH --array=0-1", "#SBATCH --partition=gpu", "#SBATCH --time=90",
                 "#SBATCH --gpus-per-task=1", "#SBATCH --cpus-per-task=4",
                 "#SBATCH --mem=16384M", "#SBATCH --mail-type=END", "#SBATCH --signal=USR2@90",
                 "#SBATCH --job-name=gan_jax-loss_ablation", "#SBATCH --ntasks-per-node=1",
                 "module load cuda"):
        assert line in script, (line, script)
    assert f"--output={out}/logs/" in script
    tasks = []
    for i in range(2):
        with open(out / "logs" / f"4242_{i}_submitted.pkl", "rb") as f:
            tasks.append(pickle.load(f).function)
    for i, task in enumerate(tasks):
        argv = task.argv()
        assert argv[1:5] == ["-m", "gan_jax", "sweep", os.path.abspath(sweep_file)]
        assert argv[argv.index("--out") + 1] == str(out)
        assert argv[argv.index("--shard") + 1] == f"{i}/2" and "--resume" in argv
        assert argv[argv.index("--max-chunk") + 1] == "64"
        assert argv[argv.index("--compile-cache") + 1] == str(tmp_path / "cache")
        # The requeued task is the same shard's, next attempt.
        again = task.checkpoint().function
        assert (again.shard, again.argv(), again.attempt) == (task.shard, argv, 2)


@needs_submitit
def test_a_resumed_launch_submits_only_the_shards_with_runs_left(sweep_file, tmp_path, capsys,
                                                                 monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text('#!/bin/sh\necho "Submitted batch job 77"\n')
    sbatch.chmod(0o755)
    (bin_dir / "srun").symlink_to("/bin/false")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "out"
    out.mkdir()
    # Shard 0 of 2 takes runs 0 and 2 of the 4: both recorded, shard 1 has none.
    (out / results.results_file_name(0, 2)).write_text(
        records_line("launched", sweep_file, 0) + records_line("launched", sweep_file, 2))
    assert cli(["launch", sweep_file, "--out", str(out), "--shards", "2", "--time", "10",
                "--resume"]) == 0
    printed = capsys.readouterr().out
    assert "4 runs (2 recorded) in 2 shards: submitted 1 task to slurm; 1 shard already " \
           "finished" in printed
    assert "shard 1/2: job 77" in printed and "shard 0/2" not in printed
    with open(out / "logs" / "77_submitted.pkl", "rb") as f:
        task = pickle.load(f).function
    assert task.shard == (1, 2) and task.argv()[task.argv().index("--shard") + 1] == "1/2"


@needs_submitit
def test_an_array_that_slurm_refuses_is_one_error(sweep_file, tmp_path, capsys, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text("#!/bin/sh\necho 'sbatch: error: invalid partition specified: nope' >&2\n"
                      "exit 1\n")
    sbatch.chmod(0o755)
    (bin_dir / "srun").symlink_to("/bin/false")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert cli(["launch", sweep_file, "--out", str(tmp_path / "out"), "--shards", "2",
                "--time", "10", "--partition", "nope"]) == 2
    assert ("error: --cluster: slurm: the job array was refused: sbatch: error: invalid "
            "partition specified: nope\n") in capsys.readouterr().err


# ----------------------------------------------------------------------------- end to end


@pytest.mark.slow
@needs_submitit
def test_failed_tasks_are_named_with_their_logs_and_the_launch_exits_1(sweep_file, tmp_path):
    """Each shard's results file is a directory: every task's sweep refuses it (status 2)."""
    out = tmp_path / "out"
    for i in range(2):
        (out / results.results_file_name(i, 2)).mkdir(parents=True)
    proc = run_cli("launch", sweep_file, "--out", out, "--shards", 2, *LOCAL, "--wait",
                   "--poll", 0.5, devices=1)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    errors = [l for l in proc.stderr.splitlines() if l.startswith("error: ")]
    assert len(errors) == 3, proc.stderr
    for i, line in enumerate(errors[:2]):
        assert line.startswith(f"error: shard {i}/2 (job ") and "the sweep exited with status 2" in line
        log = line.rsplit("its log: ", 1)[1]
        assert "is not a regular file" in open(log).read()
    assert errors[2] == (f"error: 0 of 4 runs recorded in {out}; the same launch command with "
                         "--resume runs the rest")


# 16 runs in chunks of 2: each shard has 4 chunks left after its first, so a preemption
# signalled once the first is recorded lands mid-shard.
LONG = dict(TINY_BASE, steps=20000, log_every=5000)


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.slow
@needs_submitit
@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="finds the task by /proc")
def test_local_launch_preempted_and_requeued_equals_one_process(tmp_path):
    file = write_sweep(tmp_path / "s.toml", "launched", 8, LONG, dict(lr_d=[0.02, 0.05]))
    cache = str(tmp_path / "jax-cache")
    whole = run_cli("sweep", file, "--out", tmp_path / "whole", "--max-chunk", 2, "--quiet",
                    devices=1, cache_dir=cache)
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "out"
    launcher = subprocess.Popen(
        cli_command("launch", file, "--out", out, "--shards", 2, "--cluster", "local",
                    "--time", 30, "--wait", "--poll", 0.5, "--max-chunk", 2),
        env=cli_env(devices=1, cache_dir=cache), cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    # Once shard 0 has recorded its first chunk, signal its task as Slurm does before a
    # preemption or the time limit (SIGUSR2 to the task's process, the sweep's parent).
    shard0 = out / results.results_file_name(0, 2)
    deadline = time.monotonic() + 240
    while count_lines(shard0) < 2 and launcher.poll() is None:
        assert time.monotonic() < deadline, "no chunk finished in time"
        time.sleep(0.02)
    sweep_pid = int((out / (shard0.name + ".lock")).read_text().split()[1])
    os.kill(_parent(sweep_pid), signal.SIGUSR2)
    stdout, stderr = launcher.communicate(timeout=300)
    assert launcher.returncode == 0, stderr
    assert "all 2 tasks finished, 16 runs recorded" in stdout
    assert "runs 16/16 recorded (100%)" in stderr
    # The task stopped its sweep after the chunk in flight, was requeued, and resumed.
    job = re.search(r"shard 0/2: job (\S+)", stdout).group(1)
    log = (out / "logs" / f"{job}_0_log.out").read_text()
    first, second = log.split("attempt 2:", 1)
    assert "stopped by SIGTERM (between chunks)" in (out / "logs" / f"{job}_0_log.err").read_text()
    assert "Requeued job" in first
    resumed = re.search(r"(\d+) runs recorded .*; (\d+) were recorded already", second)
    assert int(resumed.group(1)) >= 1 and int(resumed.group(2)) >= 2
    assert int(resumed.group(1)) + int(resumed.group(2)) == 8
    # Merged, the shards' records are the single process's: same run ids, same numbers.
    assert_same_runs(records_by_id(out), records_by_id(tmp_path / "whole"))
    # `table` of the merged shards is the single process's, to the last digit: each cell's
    # records are taken in seed order whatever order the files were read in, so the
    # bootstrap resamples the same values in the same places.
    tables = [run_cli("table", d, "--format", "csv") for d in (out, tmp_path / "whole")]
    assert all(t.returncode == 0 for t in tables), [t.stderr for t in tables]
    merged, single = (_csv(t.stdout) for t in tables)
    assert len(merged) == len(single) == 2 and [r["runs"] for r in single] == ["8", "8"]
    assert merged == single
