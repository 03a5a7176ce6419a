"""Sweep files, planning and execution: grid expansion, grouping, one compilation per group,
chunk- and device-independence of every run's numbers, resuming from a cut-off file."""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

from gan_jax import config, sweep
from gan_jax.engine import cache, programs as engine
from gan_jax.records import results
from gan_jax.commands import sweep as command
from gan_jax.commands.cli import main as cli
from gan_jax.config import ConfigError, make_config, merge_statics, shape_key, static_part

from sweep_testing import (ONE_DEVICE, TINY_BASE, assert_same_runs, records_by_id, run_cli,
                           write_sweep)

GRID = dict(loss=["nonsaturating", "minimax"], lr_d=[0.02, 0.05])


def make_sweep(grid=GRID, seeds=3, base=TINY_BASE, name="tiny") -> sweep.Sweep:
    return sweep.parse_sweep(dict(name=name, seeds=seeds, base=dict(base), grid=dict(grid)),
                             "test.toml")


# ----------------------------------------------------------------------------- the file


def test_grid_expands_to_the_cartesian_product_with_seeds_fastest():
    s = make_sweep(dict(lr_d=[0.01, 0.02, 0.04], loss=["hinge", "lsgan"]), seeds=[5, 7])
    assert s.grid_keys == ("lr_d", "loss")
    assert [(c.lr_d, c.loss) for c in s.configs] == [
        (0.01, "hinge"), (0.01, "lsgan"), (0.02, "hinge"), (0.02, "lsgan"),
        (0.04, "hinge"), (0.04, "lsgan")]
    runs = s.runs()
    assert s.num_runs == len(runs) == 12
    assert [r.seed for r in runs[:4]] == [5, 7, 5, 7]
    assert [r.index for r in runs] == list(range(12))
    assert len({r.run_id for r in runs}) == 12
    assert runs[0].run_id == results.run_id(s.configs[0], 5)
    # Everything not in the grid comes from [base].
    assert all(c.steps == TINY_BASE["steps"] and c.g_init == (0.15, 0.0) for c in s.configs)


def test_run_ids_hash_config_and_seed_as_designed():
    cfg = make_config(dict(TINY_BASE, loss="hinge"))
    seeds = [0, 7, 2**32 - 1]
    blobs = [json.dumps({"config": cfg.identity_dict(), "seed": s}, sort_keys=True)
             for s in seeds]
    expected = [hashlib.sha256(b.encode()).hexdigest()[:20] for b in blobs]
    assert results.run_ids(cfg, seeds) == expected
    assert [results.run_id(cfg, s) for s in seeds] == expected


def test_seed_count_and_list():
    assert make_sweep(seeds=4).seeds == (0, 1, 2, 3)
    assert make_sweep(seeds=[9, 3]).seeds == (9, 3)


def test_integer_and_float_spellings_are_the_same_run():
    a, b = make_sweep(dict(lr_d=[1])), make_sweep(dict(lr_d=[1.0]))
    assert [r.run_id for r in a.runs()] == [r.run_id for r in b.runs()]


def test_tied_grid_keys_take_values_together():
    s = make_sweep({"lr_g+lr_d": [0.01, 0.03], "loss": ["hinge", "wgan"]}, seeds=1)
    assert [(c.lr_g, c.lr_d, c.loss) for c in s.configs] == [
        (0.01, 0.01, "hinge"), (0.01, 0.01, "wgan"), (0.03, 0.03, "hinge"), (0.03, 0.03, "wgan")]
    with pytest.raises(ConfigError, match=r"\[grid\].lr_d: lr_d is already swept by "
                                          r"\[grid\].lr_g\+lr_d"):
        make_sweep({"lr_g+lr_d": [0.01], "lr_d": [0.02]})
    with pytest.raises(ConfigError, match=r"'lr_dd' is not a field \(did you mean 'lr_d'\?\)"):
        make_sweep({"lr_g+lr_dd": [0.01]})


def test_grid_points_that_conflict_are_reported_with_the_point():
    with pytest.raises(ConfigError, match=r"test.toml: \[grid\] point .*steps = 30.*log_every"):
        make_sweep(dict(steps=[20, 30], log_every=[10, 20]))


# ----------------------------------------------------------------------------- the plan


def test_runs_group_by_static_part_only():
    # lr_d and g_init are traced (one program); loss and batch_size pick the program.
    s = make_sweep(dict(lr_d=[0.01, 0.02], g_init=[[0.1, 0.0], [0.2, 0.5]],
                        loss=["nonsaturating", "wgan"], batch_size=[16, 32]), seeds=2)
    plan = sweep.plan_sweep(s, max_chunk=64, devices=ONE_DEVICE, merge_choices=False)
    assert len(plan.groups) == 4
    for g in plan.groups:
        assert len(g.runs) == g.total == 2 * 2 * 2
        assert {static_part(r.cfg) for r in g.runs} == {g.static}
        assert {(r.cfg.lr_d, r.cfg.g_init) for r in g.runs} == {
            (0.01, (0.1, 0.0)), (0.01, (0.2, 0.5)), (0.02, (0.1, 0.0)), (0.02, (0.2, 0.5))}
    assert sorted(r.index for g in plan.groups for r in g.runs) == list(range(s.num_runs))
    assert plan.labels()[0] == "loss=nonsaturating batch_size=16"
    # By default the loss is traced: one program per batch size, holding both losses.
    merged = sweep.plan_sweep(s, max_chunk=64, devices=ONE_DEVICE)
    assert [g.static.loss for g in merged.groups] == [("nonsaturating", "wgan")] * 2
    assert [g.total for g in merged.groups] == [16, 16]
    assert merged.labels() == ["loss=nonsaturating|wgan batch_size=16",
                               "loss=nonsaturating|wgan batch_size=32"]


def test_plan_skips_recorded_runs_and_takes_its_shard():
    s = make_sweep(seeds=5)                      # 2 groups x 10 runs
    runs = s.runs()
    done = {runs[0].run_id, runs[3].run_id}
    parts = [sweep.plan_sweep(s, shard=(i, 3), recorded_ids=done, devices=ONE_DEVICE)
             for i in range(3)]
    taken = [r.index for p in parts for g in p.groups for r in g.runs]
    assert sorted(taken) == [i for i in range(20) if i not in (0, 3)]
    assert sum(p.recorded for p in parts) == 2
    assert all(r.index % 3 == i for i, p in enumerate(parts) for g in p.groups for r in g.runs)


def test_chunk_size_fits_budget_cap_and_devices():
    budget = sweep.ESTIMATE_FIXED + 1000
    kw = dict(num_devices=4, memory_budget=budget, max_chunk=64)
    assert sweep.chunk_size(100, 100, **kw) == 36          # 10/device fit: 3 equal chunks
    assert sweep.estimate_chunk_bytes(100, 10) == budget
    assert sweep.chunk_size(6, 100, **kw) == 8             # no more than needed, padded
    assert sweep.chunk_size(100, 10, **kw) == 52           # the cap 64: 2 equal chunks
    assert sweep.chunk_size(32, 1, num_devices=1, memory_budget=10**9, max_chunk=28) == 16
    assert sweep.chunk_size(100, 10**6, **kw) == 8         # at least two runs per device
    assert sweep.chunk_size(100, 10, num_devices=4, memory_budget=10**9, max_chunk=6) == 8


STATIC_CHOICES = dict(loss=["nonsaturating", "hinge", "wgan"], batch_size=[16, 32])
TRACED_CHOICES = dict(lr_d=[0.01, 0.02, 0.05], lr_g=[0.01, 0.03], clip=[0.01, 0.1])


@settings(max_examples=25, deadline=None)
@given(grid=st.dictionaries(st.sampled_from(sorted({**STATIC_CHOICES, **TRACED_CHOICES})),
                            st.integers(1, 3), max_size=4),
       seeds=st.integers(1, 3), shards=st.integers(1, 4))
def test_plan_partitions_the_grid_into_static_groups(grid, seeds, shards):
    choices = {**STATIC_CHOICES, **TRACED_CHOICES}
    grid = {k: choices[k][:n] for k, n in grid.items()}
    s = make_sweep(grid, seeds=seeds)
    expected_runs = seeds * int(np.prod([len(v) for v in grid.values()]))
    # One program per shape key (the static part without the loss), holding every loss of its
    # runs; the same programs in every shard.
    keys = list(dict.fromkeys(shape_key(static_part(c)) for c in s.configs))
    plans = [sweep.plan_sweep(s, shard=(i, shards), max_chunk=8, devices=ONE_DEVICE)
             for i in range(shards)]
    for plan in plans:
        assert [shape_key(g.static) for g in plan.groups] == keys
        for g, key in zip(plan.groups, keys):
            assert g.static == merge_statics(static_part(c) for c in s.configs
                                             if shape_key(static_part(c)) == key)
        assert sum(g.total for g in plan.groups) == expected_runs
        for g in plan.groups:
            assert g.chunk_size % len(plan.devices) == 0 and 1 <= g.chunk_size <= 8
    indices = sorted(r.index for p in plans for g in p.groups for r in g.runs)
    assert indices == list(range(expected_runs))


# ----------------------------------------------------------------------------- execution


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """The tiny sweep (2 groups x 6 runs) in chunks of 4, counting traces of each program."""
    traces = collections.Counter()
    real_training, real_evaluation = engine.batched_training, engine.batched_evaluation

    def counting(real, kind):
        def make(static, *args):
            program = real(static, *args)

            def counted(*inputs):
                traces[kind, static] += 1
                return program(*inputs)

            return counted
        return make

    out = tmp_path_factory.mktemp("baseline")
    forget = (engine._evaluation_program.cache_clear, engine.forget_compiled)
    for clear in forget:                        # programs built before would not be counted
        clear()
    with pytest.MonkeyPatch.context() as mp:
        # an empty directory of lowered programs, so that each program is traced here
        programs = str(tmp_path_factory.mktemp("programs"))
        mp.setattr(cache, "programs_dir", lambda: programs)
        mp.setattr(engine, "batched_training", counting(real_training, "training"))
        mp.setattr(engine, "batched_evaluation", counting(real_evaluation, "evaluation"))
        plan = sweep.plan_sweep(make_sweep(), max_chunk=4, devices=ONE_DEVICE,
                                merge_choices=False)
        report = sweep.run_sweep(plan, out / results.RESULTS_FILE)
    for clear in forget:                        # nor leave counting programs to other tests
        clear()
    return dict(dir=out, plan=plan, report=report, traces=dict(traces),
                records=records_by_id(out))


def test_one_compilation_per_group(baseline):
    """Each group compiles its training program once for its chunk shape; the two groups
    differ only in the loss, so they share one evaluation program, compiled once."""
    plan, report = baseline["plan"], baseline["report"]
    assert [g.num_chunks for g in plan.groups] == [2, 2]        # the last one padded
    assert report.compilations == 3
    (evaluated,) = {config.eval_part(g.static) for g in plan.groups}
    assert dict(baseline["traces"]) == {**{("training", g.static): 1 for g in plan.groups},
                                        ("evaluation", evaluated): 1}


def test_every_run_recorded_once_and_padding_never(baseline):
    records = baseline["records"]
    assert sorted(records) == sorted(r.run_id for r in make_sweep().runs())
    assert baseline["report"].done == 12
    for r in records.values():
        assert r["sweep"] == "tiny" and r["status"] == "ok"
        assert r["config"] == make_config({**TINY_BASE, "loss": r["config"]["loss"],
                                           "lr_d": r["config"]["lr_d"]}).to_dict()


def test_memory_estimate_bounds_what_xla_allocates(baseline):
    for g, measured in zip(baseline["plan"].groups, baseline["report"].device_bytes):
        assert measured is not None
        assert 0 < measured <= sweep.estimate_chunk_bytes(g.run_bytes, g.chunk_size)


def test_runs_that_differ_only_in_the_loss_share_one_program(baseline, tmp_path):
    # Merged (the default), the two losses are one program with the loss traced; each run's
    # record equals the one it got in its own single-loss program. The plans' chunk sizes
    # differ (4 runs per call merged, 3 apart), which alone changes float32 rounding in the
    # last place (RTOL, sweep_testing); at equal call shapes the runs are equal bit for bit
    # (tests/test_train.py::test_a_run_among_other_losses_equals_the_run_alone).
    plan = sweep.plan_sweep(make_sweep(), max_chunk=4, devices=ONE_DEVICE)
    assert len(plan.groups) == 1
    assert plan.groups[0].static.loss == ("nonsaturating", "minimax")
    assert plan.labels() == ["loss=nonsaturating|minimax"]
    engine.forget_compiled()          # no evaluation program left by another test to reuse
    report = sweep.run_sweep(plan, tmp_path / results.RESULTS_FILE)
    assert report.compilations == 2   # one training program for both losses, its evaluation
    assert_same_runs(records_by_id(tmp_path), baseline["records"])


@pytest.mark.slow   # chunk sizes 3 and 4 are compared by the merge test
def test_chunked_equals_unchunked(baseline, tmp_path):
    one_group = make_sweep(dict(GRID, loss=["nonsaturating"]))
    plan = sweep.plan_sweep(one_group, devices=ONE_DEVICE, merge_choices=False)
    assert [g.chunk_size for g in plan.groups] == [6]          # one call for all six runs
    sweep.run_sweep(plan, tmp_path / results.RESULTS_FILE)
    whole = records_by_id(tmp_path)
    assert_same_runs(whole, {k: baseline["records"][k] for k in whole})


@pytest.mark.slow
def test_sharded_over_four_devices_equals_one_device(baseline, tmp_path):
    file = write_sweep(tmp_path / "s.toml", "tiny", 3, TINY_BASE,
                       dict(GRID, loss=["nonsaturating"]))
    # At least two runs per device (sweep.chunk_size): 6 runs pad to one chunk of 8.
    proc = run_cli("sweep", file, "--out", tmp_path / "out", "--max-chunk", 4, devices=4)
    assert proc.returncode == 0, proc.stderr
    assert "1 chunks of 8 runs on 4 devices" in proc.stdout
    sharded = records_by_id(tmp_path / "out")
    assert len(sharded) == 6
    assert_same_runs(sharded, {k: baseline["records"][k] for k in sharded})


def test_resume_sets_a_truncated_tail_aside_and_finishes(baseline, tmp_path, capsys):
    file = write_sweep(tmp_path / "s.toml", "tiny", 3, TINY_BASE, GRID)
    out = tmp_path / "out"
    out.mkdir()
    lines = (baseline["dir"] / results.RESULTS_FILE).read_text().splitlines(keepends=True)
    # The second group's six records are lost, and a kill cut a line in half.
    (out / results.RESULTS_FILE).write_text("".join(lines[:6]) + lines[6][:57])
    assert cli(["sweep", file, "--out", str(out), "--max-chunk", "4", "--devices", "1", "--quiet"]) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert cli(["sweep", file, "--out", str(out), "--max-chunk", "4", "--devices", "1",
                "--resume", "--quiet"]) == 0
    captured = capsys.readouterr()
    # The cut line is moved to a side file, not deleted (docs/sweeps.md, Guarantees).
    assert "1 unusable line(s) moved to" in captured.err and "6 records kept" in captured.err
    side = [f for f in os.listdir(out) if ".damaged-" in f]
    assert len(side) == 1 and (out / side[0]).read_text() == lines[6][:57] + "\n"
    assert "6 runs recorded" in captured.out and "6 were recorded already" in captured.out
    assert_same_runs(records_by_id(out), baseline["records"])      # each exactly once
    # Resuming a finished sweep does nothing.
    assert cli(["sweep", file, "--out", str(out), "--resume", "--quiet"]) == 0
    assert "0 runs recorded" in capsys.readouterr().out
    assert len(records_by_id(out)) == 12


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys):
    file = write_sweep(tmp_path / "s.toml", "tiny", 3, TINY_BASE, GRID)
    assert cli(["sweep", file, "--dry-run", "--out", str(tmp_path / "out"),
                "--max-chunk", "4", "--devices", "1"]) == 0
    text = capsys.readouterr().out
    assert "12 runs = 4 grid points (2 loss x 2 lr_d) x 3 seeds" in text
    assert "devices: 1 x cpu" in text
    assert "loss=nonsaturating|minimax" in text          # one program, the loss traced
    assert "1 groups, 1 to compile (and 1 evaluation program(s) they share), 12 runs to do" in text
    assert "1 program(s) trace the loss" in text
    assert cli(["sweep", file, "--dry-run", "--max-chunk", "4", "--devices", "1",
                "--no-merge"]) == 0
    text = capsys.readouterr().out
    assert "loss=nonsaturating" in text and "loss=minimax" in text
    assert "2 groups, 2 to compile (and 1 evaluation program(s) they share), 12 runs to do" in text
    assert "est. memory/device" in text
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- progress


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_on_a_terminal_rewrites_one_line():
    plan = sweep.plan_sweep(make_sweep(), max_chunk=4, devices=ONE_DEVICE, merge_choices=False)
    shown = sweep.Progress(plan, stream=_Terminal())
    shown.start_group(1)
    shown.update(runs_done=4, run_steps_done=4 * 21, compile_wait_s=0.0)
    shown.close()
    text = shown.stream.getvalue()
    assert "group 1/2 (loss=nonsaturating)" in text and "runs 4/12 (33%)" in text
    assert "run-steps/s" in text
    assert "left" in text and text.endswith("\n")
    # What compiles in the background is said too.
    ahead = sweep.Progress(plan, stream=_Terminal())
    ahead.compiling_ahead = [2]
    ahead.start_group(1)
    assert "group 1/2 (loss=nonsaturating): compiling... | compiling group 2 ahead" in \
        ahead.stream.getvalue()
    hidden = sweep.Progress(plan, stream=io.StringIO())
    hidden.start_group(1)
    hidden.update(runs_done=4, run_steps_done=84, compile_wait_s=0.0)
    hidden.close()
    assert hidden.stream.getvalue() == ""
    quiet = sweep.Progress(plan, stream=_Terminal(), enabled=False)
    quiet.update(runs_done=4, run_steps_done=84, compile_wait_s=0.0)
    assert quiet.stream.getvalue() == ""


def test_progress_in_a_log_is_whole_lines_at_most_every_30_s():
    plan = sweep.plan_sweep(make_sweep(), max_chunk=4, devices=ONE_DEVICE, merge_choices=False)
    now = [0.0]
    log = sweep.Progress(plan, stream=io.StringIO(), clock=lambda: now[0])
    assert log.enabled and log.lines                     # not a terminal: lines, not rewrites
    log.start_group(1)
    for runs, t in ((4, 10.0), (8, 31.0), (12, 45.0)):   # a chunk ends at 10 s, 31 s, 45 s
        now[0] = t
        log.update(runs_done=runs, run_steps_done=runs * 21, compile_wait_s=1.0)
    log.close()
    lines = log.stream.getvalue().splitlines(keepends=True)
    assert len(lines) == 1 and lines[0].endswith("\n") and "\r" not in lines[0]
    assert lines[0].startswith("progress after 31s: group 1/2 (loss=nonsaturating) | runs 8/12 "
                               "(67%) | 6 run-steps/s | ~15s left")   # 168 steps in 30 s, 84 to go
    now[0] = 62.0
    log.update(runs_done=12, run_steps_done=252, compile_wait_s=1.0)
    assert len(log.stream.getvalue().splitlines()) == 2                 # 31 s after the last


def test_a_sweep_logs_progress_lines_to_a_stderr_that_is_not_a_terminal(baseline, tmp_path,
                                                                        capsys, monkeypatch):
    from gan_jax.sweep import run
    monkeypatch.setattr(run, "LINE_EVERY_S", 0.0)        # every chunk, to see them in a test
    file = write_sweep(tmp_path / "s.toml", "tiny", 3, TINY_BASE, GRID)
    assert cli(["sweep", file, "--out", str(tmp_path / "out"), "--max-chunk", "4",
                "--devices", "1"]) == 0
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.startswith("progress after")]
    assert len(lines) == 3 and "runs 12/12 (100%)" in lines[-1] and "\r" not in err
    assert cli(["sweep", file, "--out", str(tmp_path / "again"), "--max-chunk", "4",
                "--devices", "1", "--quiet"]) == 0
    assert "progress" not in capsys.readouterr().err                # --quiet: nothing


def test_compile_workers_never_exceed_what_memory_holds(monkeypatch):
    from gan_jax.sweep import run
    pages = {"SC_PAGE_SIZE": 4096, "SC_AVPHYS_PAGES": 3 * run.COMPILE_HOST_BYTES // 4096}
    monkeypatch.setattr(run.os, "sysconf", lambda name: pages[name])
    assert run.workers_for_memory(8) == 3 and run.workers_for_memory(2) == 2
    pages["SC_AVPHYS_PAGES"] = 10
    assert run.workers_for_memory(4) == 1


def test_parse_size_and_shard():
    assert command.parse_size("1GiB") == 1 << 30
    assert command.parse_size("512MB") == 512 << 20
    assert command.parse_size("2048") == 2048
    assert command.parse_shard("3/16") == (3, 16)
    for bad in ("16/16", "1/0", "x", "-1/4"):
        with pytest.raises(ConfigError, match="--shard"):
            command.parse_shard(bad)
    with pytest.raises(ConfigError, match="--memory-budget"):
        command.parse_size("lots")


def test_several_grid_tables_join_their_points():
    # [[grid]] tables: a method's own coefficient swept only where it means something.
    s = sweep.parse_sweep({"name": "u", "seeds": 1, "base": dict(TINY_BASE, d_updates=1),
                           "grid": [{"update": ["alternating", "simultaneous"]},
                                    {"update": ["consensus"], "consensus_gamma": [1.0, 10]}]})
    assert [(c.update, dict(c.options).get("consensus.gamma", 10.0)) for c in s.configs] == [
        ("alternating", 10.0), ("simultaneous", 10.0), ("consensus", 1.0), ("consensus", 10.0)]
    assert dict(s.grid)["update"] == ("alternating", "simultaneous", "consensus")
    with pytest.raises(ConfigError, match=r"\[\[grid\]\] 2: the point .*also in an earlier"):
        sweep.parse_sweep({"name": "u", "seeds": 1, "base": TINY_BASE,
                           "grid": [{"lr_d": [0.1, 0.2]}, {"lr_d": [0.2]}]})
