"""gan_jax.records.results.to_dataframe: one row per run, config and final metrics as columns."""

import math

import numpy as np
import pytest

from gan_jax.records import results
from test_tables import make_records

pd = pytest.importorskip("pandas")


def test_runs_frame_columns_and_rows(tmp_path):
    records = make_records()
    records[0]["history"] = {"step": [0, 10, 20], "w1": [1.0, None, 0.5],
                             "mode_balance": [0.1, 0.2, 0.3]}
    results.append_records(tmp_path / results.RESULTS_FILE, records)
    runs, history = results.to_dataframe(tmp_path, history=True)
    keys = [k for k in records[0]["config"] if k != "options"]     # none set: no column
    assert list(runs.columns) == ["run_id", "sweep", "seed", "status", "diverged_at", *keys,
                                  "w1", "mode_balance"]
    assert len(runs) == len(records) == 20
    assert list(runs["run_id"]) == [r["run_id"] for r in records]
    diverged = runs[runs["status"] == "diverged"]
    assert len(diverged) == 1 and diverged["diverged_at"].iloc[0] == 7
    assert runs["diverged_at"].isna().sum() == 19 and str(runs["diverged_at"].dtype) == "Int64"
    assert math.isnan(diverged["w1"].iloc[0])                      # null -> NaN
    hinge = runs[(runs["loss"] == "hinge") & (runs["lr_d"] == 0.01)]
    np.testing.assert_allclose(hinge["w1"], [r["final"]["w1"] for r in records[:5]])
    assert list(history.columns) == ["run_id", "step", "metric", "value"]
    assert len(history) == 6 and set(history["run_id"]) == {records[0]["run_id"]}
    w1 = history[history["metric"] == "w1"]
    assert list(w1["step"]) == [0, 10, 20] and np.isnan(w1["value"].iloc[1])
    assert results.to_dataframe(records).equals(runs)               # records in, same frame


def test_a_metric_named_like_a_config_field_is_prefixed():
    records = make_records()[:2]
    for r in records:
        r["final"]["loss"] = 1.0
    runs = results.to_dataframe(records)
    assert "final_loss" in runs.columns and runs["loss"].iloc[0] == "hinge"


def test_without_pandas_a_clear_error(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "pandas", None)   # import pandas fails
    with pytest.raises(results.ConfigError, match=r"pip install 'gan_jax\[frames\]'"):
        results.to_dataframe(make_records())


def _seed_records():
    """reproduce-seed's records (its two configurations over the shared seeds), as it writes
    them: list-valued history entries g_params, d_params and update_eigs included."""
    from gan_jax.analysis import seed_repro
    from shared_runs import SEED_SEEDS, seed_run
    return [r for name, cfg in seed_repro.SEED_CONFIGS.items()
            for r in results.make_records(seed_repro.SWEEP, [cfg] * len(SEED_SEEDS),
                                          list(SEED_SEEDS), seed_run(name))]


def test_history_frame_of_reproduce_seeds_records(tmp_path):
    records = _seed_records()
    results.append_records(tmp_path / results.RESULTS_FILE, records)
    runs, history = results.to_dataframe(tmp_path, history=True)
    assert len(runs) == len(records) and list(history.columns) == ["run_id", "step", "metric",
                                                                    "value"]
    piecewise = next(r for r in records if r["config"]["generator"] == "piecewise")
    rows = history[history["run_id"] == piecewise["run_id"]]
    steps = piecewise["history"]["step"]
    # One row per element of a list: the piecewise generator's four parameters, by index.
    for i in range(4):
        got = rows[rows["metric"] == f"g_params[{i}]"]
        assert list(got["step"]) == steps
        np.testing.assert_array_equal(got["value"], [row[i] for row in
                                                     piecewise["history"]["g_params"]])
    eigs = piecewise["history"]["update_eigs"]
    re_im = rows[rows["metric"] == "update_eigs[1][1]"]["value"].to_numpy()
    np.testing.assert_array_equal(re_im, [results.number(row[1][1]) for row in eigs])
    w1 = rows[rows["metric"] == "w1"]["value"].to_numpy()
    np.testing.assert_array_equal(w1, piecewise["history"]["w1"])
    # Every number of every history entry is one row.
    def count(v):
        return sum(map(count, v)) if isinstance(v, list) else 1
    assert len(history) == sum(count(v) for r in records for k, vs in r["history"].items()
                               if k != "step" for v in vs)
    wide = history.pivot_table(index=["run_id", "step"], columns="metric", values="value")
    assert {"g_params[0]", "d_params[1]", "w1"} <= set(wide.columns)
    assert results.history_frame(records).equals(history)


@pytest.mark.slow
def test_frames_of_a_small_loss_ablation(tmp_path):
    # The loss ablation's families in small: piecewise and MLP generators against the logistic
    # and MLP discriminators, tied rates: runs with and without g_params, d_params and
    # update_eigs (6 parameters or fewer in all) in one directory.
    from gan_jax.commands.cli import main as cli
    from sweep_testing import sweep_text
    base = dict(data="bimodal_1d", optimizer="adam", steps=20, log_every=10, batch_size=16,
                eval_batch=32, history_samples=32, eval_samples=64, g_width=8, g_depth=1,
                d_width=8, d_depth=1, mmd_samples=0)
    grid = {"generator": ["piecewise", "mlp"], "discriminator": ["logistic", "mlp"]}
    file = tmp_path / "abl.toml"
    file.write_text(sweep_text("small-ablation", 2, base, grid)
                    + '"lr_g+lr_d" = [0.001, 0.01]\n')
    out = tmp_path / "out"
    assert cli(["sweep", str(file), "--out", str(out), "--quiet", "--devices", "1"]) == 0
    records, _ = results.load_results(out)
    runs, history = results.to_dataframe(out, history=True)
    assert len(runs) == len(records) == 2 * 2 * 2 * 2
    names = set(history["metric"])
    assert {"g_params[0]", "g_params[3]", "d_params[1]", "update_eigs[0][0]", "w1"} <= names
    for r in records:                        # each run's rows: every number of its history
        mine = history[history["run_id"] == r["run_id"]]
        hist = r["history"]
        assert len(mine) == sum(np.size(np.asarray(v, dtype=float))
                                for k, vs in hist.items() if k != "step" for v in vs)
        if "g_params" not in hist:
            assert not any(n.startswith("g_params[") for n in mine["metric"])
