"""gan_jax.results.to_dataframe: one row per run, config and final metrics as columns."""

import math

import numpy as np
import pytest

from gan_jax import results
from test_tables import make_records

pd = pytest.importorskip("pandas")


def test_runs_frame_columns_and_rows(tmp_path):
    records = make_records()
    records[0]["history"] = {"step": [0, 10, 20], "w1": [1.0, None, 0.5],
                             "mode_balance": [0.1, 0.2, 0.3]}
    results.append_records(tmp_path / results.RESULTS_FILE, records)
    runs, history = results.to_dataframe(tmp_path, history=True)
    keys = list(records[0]["config"])
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
