"""Search spaces in a sweep file: sampled points drawn from the file alone, crossed with the
grid, grouped into one program per model shape, run ids like grid points, resumed and sharded
like grids; every problem of a file reported at once."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from scipy import stats as scipy_stats

from gan_jax import sweep
from gan_jax.records import results
from gan_jax.commands.cli import main as cli
from gan_jax.config import ConfigError, make_config
from gan_jax.sweep import spec

from sweep_testing import (ONE_DEVICE, ROOT, TINY_BASE, assert_same_runs, cli_command,
                           cli_env, count_lines, records_by_id, run_cli, sweep_text,
                           toml_value)

LR_SEARCH = {"samples": 64, "sampler": "sobol", "seed": 7,
             "lr_g+lr_d": {"log_uniform": [1e-4, 1e-1]}}


def make_search(search=LR_SEARCH, grid=None, seeds=4, base=TINY_BASE, name="search"):
    data = dict(name=name, seeds=seeds, base=dict(base), search=dict(search))
    if grid is not None:
        data["grid"] = dict(grid)
    return sweep.parse_sweep(data, "s.toml")


def search_text(search=LR_SEARCH, grid=None, seeds=4, base=TINY_BASE, name="search") -> str:
    """A sweep file's text with a [search] table (inline tables for the distributions)."""
    def value(v):
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        return toml_value(v)
    text = sweep_text(name, seeds, base, grid)
    return text + "\n[search]\n" + "".join(f'"{k}" = {value(v)}\n' for k, v in search.items())


# ----------------------------------------------------------------------------- the points


def test_a_tied_log_uniform_search_crossed_with_a_grid_is_one_program():
    s = make_search(grid=dict(loss=["nonsaturating", "hinge"]))
    assert (s.num_points, s.num_grid_points, len(s.seeds)) == (64, 2, 4)
    assert s.num_runs == len(s.runs()) == 512
    # Sampled point slowest, then grid point, then seeds.
    assert [c.loss for c in s.configs[:4]] == ["nonsaturating", "hinge"] * 2
    assert s.configs[0].lr_g == s.configs[1].lr_g != s.configs[2].lr_g
    lrs = np.array([c.lr_g for c in s.configs[::2]])
    assert all(c.lr_g == c.lr_d for c in s.configs)
    assert len(set(lrs)) == 64 and lrs.min() >= 1e-4 and lrs.max() < 1e-1
    # Log-uniform and a scrambled Sobol sequence: 64 points (a power of 2) put exactly 8 in
    # each eighth of the log range.
    bins = np.floor((np.log10(lrs) + 4) / 3 * 8).astype(int)
    assert np.bincount(bins, minlength=8).tolist() == [8] * 8
    # The learning rates are traced: every run, both losses, is one program.
    plan = sweep.plan_sweep(s, devices=ONE_DEVICE, max_chunk=512)
    assert len(plan.groups) == 1 and plan.groups[0].total == 512
    assert plan.groups[0].static.loss == ("nonsaturating", "hinge")
    assert len({r.run_id for r in plan.groups[0].runs}) == 512


def test_points_are_the_same_when_the_file_is_loaded_twice(tmp_path):
    file = tmp_path / "s.toml"
    file.write_text(search_text(grid=dict(loss=["nonsaturating", "hinge"])))
    np.random.seed(123)                         # no global state reaches the points
    a = sweep.load_sweep(file)
    np.random.seed(456)
    np.random.random(1000)
    b = sweep.load_sweep(file)
    assert a.configs == b.configs
    assert [r.run_id for r in a.runs()] == [r.run_id for r in b.runs()]
    assert a.configs == make_search(grid=dict(loss=["nonsaturating", "hinge"])).configs


# The issue's search as a file of its own (64 tied log-uniform points x 2 losses x 4 seeds),
# and what it gives: its 64 learning rates and its 512 run ids, each hashed (sha256 of the
# list's repr, of the ids joined by spaces), as computed on the development machine. Another
# machine must give the same: the points depend on the file alone, the run ids on the points.
ISSUE_SEARCH = """name = "search"
seeds = 4

[base]
steps = 20
log_every = 10
batch_size = 16
d_updates = 1
eval_batch = 32
history_samples = 32
eval_samples = 64
g_init = [0.15, 0.0]
d_init = [0.25, 0.0]
mmd_samples = 0

[grid]
loss = ["nonsaturating", "hinge"]

[search]
samples = 64
sampler = "sobol"
seed = 7
"lr_g+lr_d" = { log_uniform = [0.0001, 0.1] }
"""
ISSUE_LRS_SHA256 = "ba623824b121cf50666103e71cbc59bf3a8235d45a9aa41d50c3a950b88ea293"
ISSUE_RUN_IDS_SHA256 = "ab6db23c2242f17ee537e862e6815a3abe061a6f7a9013847a149ae10c17ecf6"
PRINT_POINTS = ("import json, sys; from gan_jax import sweep; s = sweep.load_sweep(sys.argv[1]); "
                "print(json.dumps([[c.lr_g for c in s.configs[::2]], [r.run_id for r in s.runs()]]))")


def test_the_issues_search_gives_the_same_points_in_another_process_and_on_any_machine(tmp_path):
    file = tmp_path / "s.toml"
    file.write_text(ISSUE_SEARCH)
    s = sweep.load_sweep(file)
    lrs, ids = [c.lr_g for c in s.configs[::2]], [r.run_id for r in s.runs()]
    assert (len(lrs), len(ids)) == (64, 512) and s.configs == make_search(
        grid=dict(loss=["nonsaturating", "hinge"])).configs
    assert hashlib.sha256(repr(lrs).encode()).hexdigest() == ISSUE_LRS_SHA256, lrs[:4]
    assert hashlib.sha256(" ".join(ids).encode()).hexdigest() == ISSUE_RUN_IDS_SHA256
    # A fresh process with another hash seed and device count reads the same points.
    env = dict(cli_env(devices=3), PYTHONHASHSEED="12345")
    other = subprocess.run([sys.executable, "-c", PRINT_POINTS, str(file)], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert other.returncode == 0, other.stderr
    assert json.loads(other.stdout) == [lrs, ids]


# The first points of each sampler for one file (10**(-4 + 2u), u the sampler's first draws,
# computed apart): the same on any machine. NumPy's PCG64 and
# SciPy's scrambled sequences fix them; should either change its stream, this test says so
# (the points, and so the run ids, of every earlier search would change).
PINNED = {
    "random": [0.0001484, 0.0002976, 0.004005],
    "sobol": [0.0001684, 0.005676, 0.001582],
    "halton": [0.0005099, 0.005099, 0.0001613],
}


@pytest.mark.parametrize("sampler", spec.SAMPLERS)
def test_points_are_pinned_by_the_file_alone(sampler):
    s = make_search(dict(LR_SEARCH, sampler=sampler, samples=8, seed=3,
                         **{"lr_g+lr_d": {"log_uniform": [1e-4, 1e-2]}}), seeds=1)
    assert [c.lr_g for c in s.configs[:3]] == PINNED[sampler]
    other = make_search(dict(LR_SEARCH, sampler=sampler, samples=8, seed=4,
                             **{"lr_g+lr_d": {"log_uniform": [1e-4, 1e-2]}}), seeds=1)
    assert other.configs != s.configs


@pytest.mark.parametrize("sampler", spec.SAMPLERS)
def test_more_samples_keep_every_earlier_point_and_run_id(sampler):
    small = make_search(dict(LR_SEARCH, sampler=sampler, samples=16), seeds=2)
    large = make_search(dict(LR_SEARCH, sampler=sampler, samples=64), seeds=2)
    assert large.configs[:16] == small.configs
    assert large.runs()[:32] == small.runs()      # same indices too: shards stay put


def test_random_log_uniform_draws_are_log_uniform():
    s = make_search(dict(samples=400, sampler="random", seed=11,
                         lr_d={"log_uniform": [1e-5, 1.0]}), seeds=1)
    u = (np.log10([c.lr_d for c in s.configs]) + 5) / 5
    # A fixed seed: a deterministic check that the draws follow the distribution.
    assert scipy_stats.kstest(u, "uniform").pvalue > 0.01


def test_ratio_integer_and_choice_distributions():
    s = make_search({"samples": 32, "sampler": "halton", "seed": 1, "digits": 3,
                     "lr_g+lr_d": {"log_uniform": [1e-4, 1e-2], "ratio": [1, 4]},
                     "beta1": {"uniform": [0.5, 1.0]},
                     "d_updates": {"integer": [1, 3]},
                     "loss": {"choice": ["hinge", "lsgan"]}},
                    base=dict(TINY_BASE, optimizer="adam"), seeds=1)
    for c in s.configs:
        # The sampled value rounded to 3 digits; lr_d exactly 4 times it, as decimals go.
        assert float(f"{c.lr_g:.3g}") == c.lr_g and c.lr_d == float(f"{4 * c.lr_g:.15g}")
        assert 0.5 <= c.beta1 < 1.0               # beta1's range is [0, 1): 1.0 never drawn
    assert {c.d_updates for c in s.configs} == {1, 2, 3}
    assert {c.loss for c in s.configs} == {"hinge", "lsgan"}
    # Static fields sampled split programs as a grid over them would.
    plan = sweep.plan_sweep(s, devices=ONE_DEVICE, max_chunk=64)
    assert len(plan.groups) == 3                  # d_updates 1, 2, 3; both losses traced


def test_a_sampled_point_is_the_run_a_grid_would_make():
    searched = make_search({"samples": 2, "sampler": "sobol",
                            "loss": {"choice": ["hinge", "lsgan"]}}, seeds=3)
    gridded = sweep.parse_sweep(dict(name="search", seeds=3, base=dict(TINY_BASE),
                                     grid=dict(loss=["hinge", "lsgan"])), "g.toml")
    assert sorted(r.run_id for r in searched.runs()) == sorted(r.run_id for r in gridded.runs())
    cfg = make_config(dict(TINY_BASE, loss="hinge"))
    assert results.run_id(cfg, 2) in {r.run_id for r in searched.runs()}


def test_shards_and_resume_partition_a_search():
    s = make_search(dict(LR_SEARCH, samples=8), grid=dict(loss=["hinge", "lsgan"]), seeds=2)
    runs = s.runs()
    done = {runs[1].run_id, runs[6].run_id, runs[30].run_id}
    parts = [sweep.plan_sweep(s, shard=(i, 3), recorded_ids=done, devices=ONE_DEVICE)
             for i in range(3)]
    assert all(len(p.groups) == 1 for p in parts)
    taken = sorted(r.index for p in parts for g in p.groups for r in g.runs)
    assert taken == [i for i in range(32) if i not in (1, 6, 30)]


def test_dry_run_says_sampled_points_times_grid_points_times_seeds(tmp_path, capsys):
    file = tmp_path / "s.toml"
    file.write_text(search_text(grid=dict(loss=["nonsaturating", "hinge"])))
    assert cli(["sweep", str(file), "--dry-run", "--devices", "1"]) == 0
    text = capsys.readouterr().out
    assert ("512 runs = 64 sampled points (lr_g+lr_d; sobol, seed 7) x 2 grid points "
            "(2 loss) x 4 seeds") in text
    assert ("search: lr_g+lr_d ~ log_uniform[0.0001, 0.1]; 64 points of 64 draws, 4 "
            "significant digits") in text
    assert "total: 1 groups" in text
    file.write_text(search_text(dict(LR_SEARCH, samples=48)))
    assert cli(["sweep", str(file), "--dry-run", "--devices", "1"]) == 0
    captured = capsys.readouterr()
    assert "48 sampled points" in captured.out and "1 grid points (no grid)" in captured.out
    assert "48 Sobol points drawn, not a power of 2" in captured.err


# ----------------------------------------------------------------------------- problems


def test_every_problem_of_a_file_is_reported_at_once():
    data = dict(name="bad", seeds=0, keep_samples=-1,
                base=dict(TINY_BASE, stepz=20, lr_g=-1.0),
                grid=dict(loss=["nonsaturating", "hingee"], lr_d=[]),
                search={"samples": 0, "sampler": "sobbol",
                        "beta1": {"uniform": [0.0, 1.5]},
                        "steps": {"log_uniform": [10, 100]},
                        "d_updates": {"integer": [1, 3], "ratio": [2]},
                        "activation": {"choice": ["relu", "relu"]},
                        "lr_d": {"log_uniform": [1e-4, 1e-2]}})
    with pytest.raises(ConfigError) as e:
        sweep.parse_sweep(data, "bad.toml")
    lines = str(e.value).splitlines()
    expected = [
        "seeds: got 0; a count must be at least 1",
        "keep_samples: got -1",
        "[base].stepz: unknown field (did you mean 'steps'?)",
        "[base].lr_g: got -1.0; must be a positive number",
        "[grid].loss[1]: loss: got 'hingee'",
        "[grid].lr_d: empty list",
        "[search].samples: got 0",
        "[search].sampler: got 'sobbol'; must be one of random, sobol, halton (did you mean",
        "[search].beta1.uniform[1]: beta1: got 1.5",
        "[search].steps.log_uniform: steps takes integers or names, not real numbers",
        "[search].d_updates.ratio: a ratio scales real numbers",
        "[search].activation.choice[1]: 'relu' appears twice",
        "[search].lr_d: lr_d is already swept by [grid].lr_d",
    ]
    assert len(lines) == len(expected), lines
    for line, piece in zip(lines, expected):
        assert line.startswith("bad.toml: ") and piece in line, (line, piece)


def test_problems_at_points_are_listed_up_to_a_bound():
    # Neither sampled log_every divides steps = 20: every point fails the same rule.
    with pytest.raises(ConfigError) as e:
        make_search({"samples": 40, "sampler": "sobol", "log_every": {"choice": [3, 7]},
                     "lr_d": {"log_uniform": [1e-4, 1e-2]}}, seeds=1)
    lines = str(e.value).splitlines()
    assert len(lines) == spec.MAX_POINT_PROBLEMS + 1
    assert all("must divide steps = 20 exactly" in l for l in lines[:-1])
    assert lines[0].startswith("s.toml: [search] point ")
    assert lines[-1].startswith("s.toml: ... and ") and "of 40)" in lines[-1]


def test_repeated_points_are_skipped_and_too_few_distinct_ones_refused():
    s = make_search({"samples": 3, "sampler": "random", "d_updates": {"integer": [1, 3]}},
                    seeds=1)
    assert sorted(c.d_updates for c in s.configs) == [1, 2, 3]
    assert s.search.draws > 3 and "repeated an earlier point" in s.search.notes()[0]
    with pytest.raises(ConfigError, match=r"\[search\]: 3 distinct points in the first 1,152 "
                                          r"draws, not samples = 8"):
        make_search({"samples": 8, "d_updates": {"integer": [1, 3]}}, seeds=1)
    # Rounded to 3 digits, one decade holds 900 values: 200 points drawn repeat some.
    s = make_search({"samples": 200, "digits": 3, "lr_d": {"log_uniform": [0.01, 0.1]}},
                    seeds=1)
    assert len({c.lr_d for c in s.configs}) == 200 and s.search.draws > 200


@pytest.mark.parametrize("search, message", [
    ({"lr_d": {"log_uniform": [1e-4, 1e-2]}}, r"\[search\].samples: missing"),
    ({"samples": 4, "lr_d": 0.01}, r"\[search\].lr_d: got 0.01; must be a distribution"),
    ({"samples": 4, "lr_d": {"loguniform": [1e-4, 1]}},
     r"unknown key 'loguniform' \(did you mean 'log_uniform'\?\)"),
    ({"samples": 4, "lr_d": {"uniform": [1e-2, 1e-4]}}, r"low < high"),
    ({"samples": 4, "lr_d": {"uniform": [0.0, 1.0]}}, r"uniform\[0\]: lr_d: got 0.0"),
    ({"samples": 4, "lr_d": {"uniform": [0.1, 1.0], "log_uniform": [0.1, 1.0]}},
     r"exactly one distribution"),
    ({"samples": 4, "g_init": {"uniform": [0.0, 1.0]}}, r"g_init is a list of numbers"),
    ({"samples": 4, "lr_g+lr_d": {"uniform": [0.1, 1.0], "ratio": [1.0]}},
     r"ratio: got \[1.0\]; must be a list of 2 positive numbers"),
    ({"samples": 4, "seeds": {"choice": [1, 2]}}, r"seeds are set by the top-level `seeds`"),
    ({"samples": 4}, r"\[search\]: no key to sample"),
    ({"samples": 4, "digits": 0, "lr_d": {"uniform": [0.1, 1.0]}}, r"digits: got 0"),
])
def test_bad_search_tables(search, message):
    with pytest.raises(ConfigError, match=message):
        make_search(search, seeds=1)


def test_the_command_prints_every_problem_on_its_own_line(tmp_path, capsys):
    file = tmp_path / "bad.toml"
    file.write_text(search_text({"samples": 0, "lr_d": {"uniform": [1.0, 0.5]}}, seeds=0))
    out = tmp_path / "out"
    assert cli(["sweep", str(file), "--out", str(out)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(line.startswith(f"error: {file}: ") for line in err)
    assert not out.exists()


# ----------------------------------------------------------------------------- running


def test_a_search_runs_records_its_points_and_resumes(tmp_path, capsys):
    file = tmp_path / "s.toml"
    file.write_text(search_text(dict(LR_SEARCH, samples=4), seeds=2))
    out = tmp_path / "out"
    flags = ["--max-chunk", "4", "--devices", "1", "--quiet"]
    assert cli(["sweep", str(file), "--out", str(out), *flags]) == 0
    whole = records_by_id(out)
    s = sweep.load_sweep(file)
    assert sorted(whole) == sorted(r.run_id for r in s.runs())
    for r in s.runs():
        assert whole[r.run_id]["config"] == r.cfg.to_dict()
    # Lose the second chunk and resume: the same records, each once.
    lines = (out / results.RESULTS_FILE).read_text().splitlines(keepends=True)
    (out / results.RESULTS_FILE).write_text("".join(lines[:4]))
    assert cli(["sweep", str(file), "--out", str(out), "--resume", *flags]) == 0
    assert "4 runs recorded" in capsys.readouterr().out
    assert_same_runs(records_by_id(out), whole)


@pytest.mark.slow
def test_a_search_killed_and_resumed_equals_uninterrupted(tmp_path):
    """The issue's search (64 log-uniform tied points x 4 seeds x 2 losses), killed with
    SIGKILL after its first chunk and resumed."""
    file = tmp_path / "s.toml"
    file.write_text(search_text(grid=dict(loss=["nonsaturating", "hinge"]),
                                base=dict(TINY_BASE, steps=400, log_every=200)))
    cache = str(tmp_path / "jax-cache")
    flags = ["--max-chunk", 64, "--quiet"]
    whole = run_cli("sweep", file, "--out", tmp_path / "whole", *flags, devices=1,
                    cache_dir=cache)
    assert whole.returncode == 0, whole.stderr
    assert "8 chunks of 64 runs" in whole.stdout and "2 compilations" in whole.stdout
    out = tmp_path / "out"
    proc = subprocess.Popen(cli_command("sweep", file, "--out", out, *flags),
                            env=cli_env(devices=1, cache_dir=cache), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while count_lines(out / results.RESULTS_FILE) < 64 and proc.poll() is None:
        assert time.monotonic() < deadline, "no chunk finished in time"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the sweep ended before it could be killed"
    assert 64 <= count_lines(out / results.RESULTS_FILE) < 512
    resumed = run_cli("sweep", file, "--out", out, "--resume", *flags, devices=1,
                      cache_dir=cache)
    assert resumed.returncode == 0, resumed.stderr
    assert count_lines(out / results.RESULTS_FILE) == 512
    assert_same_runs(records_by_id(out), records_by_id(tmp_path / "whole"))


def test_too_many_runs_are_refused_before_anything_is_drawn():
    with pytest.raises(ConfigError, match=r"\[search\].samples: got 2,000,000; x 4 runs per "
                                          r"point .* = 8,000,000 runs, at most 4,194,304"):
        make_search(dict(LR_SEARCH, samples=2_000_000), grid=dict(loss=["hinge", "lsgan"]),
                    seeds=2)
