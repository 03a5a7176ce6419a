"""Continuing a run: a run of T steps, continued from its final state by the 2T run's program,
equals the 2T run bit for bit (the building block of extending a finished sweep's steps).

Iteration i draws from fold_in(loop key, i) and history row i from fold_in(history key, i),
so the draws a continued run needs are recomputed from (key, step), not stored; the state
(both players, optimisers, the method's and stabilisers' state, step) is all it carries.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import jax
import numpy as np
import pytest

from gan_jax.records import checkpoint, results
from gan_jax.engine import programs as engine
from gan_jax.training import train
from gan_jax.config import eval_part, make_config, stack_hparams, static_part, traced_part
from gan_jax.sweep import plan_sweep, run_sweep
from gan_jax.sweep.spec import Run, parse_sweep
from gan_jax.sweep.states import STATES_DIR, Store

from sweep_testing import (ONE_DEVICE, ROOT, TINY_BASE, cli_command, cli_env, count_lines,
                           run_cli, write_sweep)


def _leaves(tree):
    return [np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype,
                                                                        jax.dtypes.prng_key)
                       else x) for x in jax.tree.leaves(tree)]


@pytest.mark.slow     # three programs compiled
@pytest.mark.parametrize("base", [
    dict(TINY_BASE, optimizer="adam", loss="hinge", ema_beta=0.9),
])
def test_a_run_continued_from_its_final_state_equals_the_longer_run(base):
    steps, log_every = 20, 10
    short = make_config(dict(base, steps=steps, log_every=log_every))
    long = short.replace(steps=2 * steps)
    seeds = [0, 1, 2, 3]
    hp = stack_hparams([traced_part(short)] * len(seeds))
    keys = jax.vmap(lambda k: train.run_keys(k)[0])(engine.seed_keys(seeds))
    first, longer = train.make_training(static_part(short)), train.make_training(static_part(long))
    rows, _ = train._evaluators(eval_part(static_part(long)), 0)
    start = steps // log_every + 1            # the first row the short run does not have

    def whole(hp, key):
        state, history, snapshots = longer(hp, key)
        return state, history, rows(snapshots, key)

    def continued(hp, key, state):
        state, history, snapshots = longer.loop(hp, key, longer.resume(hp, key, state, start),
                                                start)
        return state, history, rows(snapshots, key, start)

    state_t, history_t, _ = jax.jit(jax.vmap(first))(hp, keys)
    state_2t, history_2t, metrics_2t = jax.jit(jax.vmap(whole))(hp, keys)
    state_c, history_c, metrics_c = jax.jit(jax.vmap(continued))(hp, keys, state_t)

    for a, b in zip(_leaves(state_2t), _leaves(state_c)):
        np.testing.assert_array_equal(a, b)
    assert int(state_c.step[0]) == 2 * steps + 1
    for name, value in history_2t.items():
        np.testing.assert_array_equal(np.asarray(value)[:, :start], history_t[name], name)
        np.testing.assert_array_equal(np.asarray(value)[:, start:], history_c[name], name)
    for name, value in metrics_2t.items():
        np.testing.assert_array_equal(np.asarray(value)[:, start:], metrics_c[name], name)


# ----------------------------------------------------------------------------- kept states


def _tree():
    return {"state": (np.arange(6, dtype=np.float32).reshape(3, 2), np.int32([1, 2, 3])),
            "key": jax.random.split(jax.random.key(0), 3)}


def test_a_kept_state_reads_back_exactly_and_a_damaged_one_is_refused(tmp_path):
    path = tmp_path / "chunk.npz"
    nbytes = checkpoint.save(path, _tree(), {"rows": 2})
    assert nbytes == os.path.getsize(path) and not [p for p in os.listdir(tmp_path)
                                                    if ".tmp" in p]
    kept = checkpoint.load(path)
    assert kept.header["rows"] == 2
    template = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), _tree())
    back = checkpoint.unflatten(template, kept, [2, 0])
    for a, b in zip(_leaves(back), _leaves(jax.tree.map(lambda x: x[np.array([2, 0])],
                                                         _tree()))):
        np.testing.assert_array_equal(a, b)
    # Another structure (a field gained): refused, never read into the wrong leaves.
    with pytest.raises(ValueError, match="arrays kept"):
        checkpoint.unflatten({**template, "more": template["key"]}, kept, [0])
    data = bytearray(path.read_bytes())
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match="unreadable"):
        checkpoint.load(cut)
    # One bit of the first array's data flipped (inside the zip: the npy bytes are stored
    # uncompressed); zip's CRC or the digest catches it.
    at = data.index(np.float32(5).tobytes())
    data[at] ^= 1
    flipped = tmp_path / "flipped.npz"
    flipped.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="CRC-32|digest|unreadable"):
        checkpoint.load(flipped)


def test_which_runs_continue_from_a_kept_state(tmp_path):
    base = dict(TINY_BASE, steps=20, log_every=10)
    run = lambda cfg, seed=0: Run(0, cfg, seed, results.run_id(cfg, seed))
    short, long = make_config(base), make_config(dict(base, steps=40))
    store = Store(str(tmp_path), keep=True)
    one = jax.tree.map(lambda x: x[:1], _tree())
    store.save([run(short)], one, rows=3)
    store = Store(str(tmp_path), keep=True)
    assert store.find(run(long)).rows == 3          # 20 -> 40 steps: continues at row 3
    assert store.find(run(long, seed=1)) is None    # another seed: another lineage
    assert store.find(run(make_config(dict(base, steps=40, lr_d=0.01)))) is None
    assert store.find(run(make_config(dict(base, steps=10)))) is None   # row 3 not in 10 steps
    noisy = dict(base, noise_std=0.1, noise_anneal=True)
    store.save([run(make_config(noisy))], one, rows=3)
    store = Store(str(tmp_path), keep=True)
    assert store.find(run(make_config(dict(noisy, steps=40)))) is None
    assert store.summary() == ["1 runs with a state kept at other steps trained from step 0: "
                               "its instance noise is annealed over the total steps"]
    assert store.find(run(make_config(noisy))).rows == 3     # the same steps: a checkpoint


def _sweep(name, seeds, steps, grid=None):
    base = dict(TINY_BASE, steps=steps, log_every=10, optimizer="adam", ema_beta=0.9)
    return parse_sweep({"name": name, "seeds": seeds, "base": base, "grid": grid or {}})


def _records(path):
    recs, problems = results.read_records(path)
    assert not problems
    return {r["run_id"]: {**r, "versions": None} for r in recs}


@pytest.mark.slow     # six programs compiled
def test_a_finished_sweep_extended_to_more_steps_equals_the_longer_sweep(tmp_path):
    grid = {"loss": ["hinge", "nonsaturating"]}
    short, long = _sweep("ext", [0, 1], 20, grid), _sweep("ext", [0, 1], 40, grid)
    plain = tmp_path / "plain.jsonl"
    run_sweep(plan_sweep(long, devices=ONE_DEVICE), plain)
    out = str(tmp_path / "kept")
    path = os.path.join(out, results.RESULTS_FILE)
    first = run_sweep(plan_sweep(short, devices=ONE_DEVICE), path, states=Store(out, True))
    assert (first.continued, first.kept_runs) == (0, 4)
    # 40 steps continue from the kept 20-step states, checkpointing every row on the way.
    again = run_sweep(plan_sweep(long, devices=ONE_DEVICE), path, states=Store(out, True),
                      checkpoint_every=10)
    assert again.continued == 4 and again.steps_not_redone == 4 * 21
    assert again.run_steps == 4 * 20                 # 41 run-steps each, 21 of them kept
    extended = {k: r for k, r in _records(path).items() if r["config"]["steps"] == 40}
    assert extended == _records(plain)               # every field, history rows included


@pytest.mark.slow     # four processes, one killed
def test_a_sweep_killed_after_a_checkpoint_resumes_from_it(tmp_path):
    base = dict(TINY_BASE, steps=40, log_every=10, optimizer="adam", ema_beta=0.9)
    file = write_sweep(tmp_path / "s.toml", "killed", [0, 1, 2], base)
    plain = run_cli("sweep", file, "--out", tmp_path / "plain", "--quiet")
    assert plain.returncode == 0, plain.stderr
    out = tmp_path / "out"
    # No kept programs: the evaluation compiles after the last row, so the kill lands while
    # the chunk's records are still to come.
    env = dict(cli_env(), GAN_JAX_CACHE="off")
    proc = subprocess.Popen(cli_command("sweep", file, "--out", out, "--quiet",
                                        "--checkpoint-every", 10), env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    states = out / STATES_DIR
    deadline = time.monotonic() + 240
    while not (states.is_dir() and [p for p in os.listdir(states) if p.endswith(".npz")
                                    and ".tmp" not in p]):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.005)
    proc.kill()                                      # SIGKILL, mid-chunk
    proc.communicate()
    assert count_lines(out / results.RESULTS_FILE) == 0
    [name] = [p for p in os.listdir(states) if p.endswith(".npz") and ".tmp" not in p]
    rows = checkpoint.header(states / name)["rows"]
    assert 1 <= rows < 5                             # a row of the five, the last not reached
    kept = 1 + (rows - 1) * 10                       # iterations done by then, per run

    damaged = tmp_path / "damaged"
    shutil.copytree(out, damaged)
    data = (damaged / STATES_DIR / name).read_bytes()
    (damaged / STATES_DIR / name).write_bytes(data[:len(data) // 2])     # cut short

    resumed = run_cli("sweep", file, "--out", out, "--quiet", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    # Nothing before the checkpoint was trained again.
    assert f"3 runs continued from kept states ({3 * kept:,} run-steps not redone)" \
        in resumed.stdout, resumed.stdout
    assert _records(out / results.RESULTS_FILE) == _records(tmp_path / "plain"
                                                            / results.RESULTS_FILE)
    assert os.listdir(states) == []                  # removed once the records are written

    again = run_cli("sweep", file, "--out", damaged, "--quiet", "--resume")
    assert again.returncode == 0, again.stderr
    assert "not used, its runs recomputed" in again.stderr, again.stderr
    assert "0 runs continued from kept states" in again.stdout, again.stdout
    assert _records(damaged / results.RESULTS_FILE) == _records(tmp_path / "plain"
                                                                / results.RESULTS_FILE)


def test_bad_checkpoint_and_halving_flags_exit_2_before_anything(tmp_path):
    file = write_sweep(tmp_path / "s.toml", "bad", [0, 1], dict(TINY_BASE, steps=20))
    out = tmp_path / "out"
    bad = run_cli("sweep", file, "--out", out, "--checkpoint-every", -5)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --checkpoint-every: got -5")
    bad = run_cli("halve", file, "--out", out, "--eta", 2, "--rungs", 3)   # 20/4: 5 steps
    assert bad.returncode == 2 and "error: --rungs: got 3;" in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr and not out.exists()
