"""Targets declared in a sweep file ([targets.NAME]): Gaussian mixtures by their parameters and
point clouds read from .npy / .csv files (gan_jax.components.data.declare, docs/targets.md).

The declarations, their names, splits and errors are checked without compiling anything; one
test runs a 1-D point cloud and a 1-D mixture through a sweep (two small programs), then the
point cloud again after its file changed (a third).
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess

import jax
import numpy as np
import pytest

from gan_jax import sweep
from gan_jax.components import data, metrics
from gan_jax.engine import programs as engine
from gan_jax.core import registry
from gan_jax.records import results
from gan_jax.config import make_config
from gan_jax.core.errors import ConfigError
from gan_jax.sweep.spec import load_targets, parse_sweep

from sweep_testing import ONE_DEVICE, TINY_BASE, cli_env, cli_command, ROOT

MIXTURE = {"means": [[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]], "stds": 0.1,
           "weights": [0.5, 0.25, 0.25]}


@pytest.fixture(autouse=True)
def _forget_declared_targets():
    """Each test's declared targets are unregistered after it: a later test (of this process,
    in any file) sees the registry as it was."""
    before = set(data.TARGETS)
    yield
    for name in set(data.TARGETS) - before:
        registry.unregister("target", name)


def sweep_dict(targets: dict, base: dict | None = None, grid: dict | None = None) -> dict:
    out = {"name": "declared", "seeds": 2, "targets": targets,
           "base": {"generator": "mlp", "discriminator": "mlp", **(base or {})}}
    if grid:
        out["grid"] = grid
    return out


def parse(targets, path, base=None, grid=None):
    return parse_sweep(sweep_dict(targets, base, grid), str(path))


def cloud_file(tmp_path, points, name="cloud.npy") -> str:
    path = tmp_path / name
    np.save(path, np.asarray(points, np.float32))
    return str(path)


# ----------------------------------------------------------------------------- mixtures

def test_mixture_declared_in_a_sweep_file_is_that_mixture_under_a_digest_name(tmp_path):
    s = parse({"tri": MIXTURE}, tmp_path / "s.toml", base={"data": "tri"})
    name = s.configs[0].data
    # The digest's recipe is part of every such run's id (docs/targets.md prints this name).
    assert name == "tri.8b4fca35cbd8"
    target = data.make_target(s.configs[0])
    np.testing.assert_array_equal(target.means, MIXTURE["means"])
    np.testing.assert_array_equal(target.stds, [0.1, 0.1, 0.1])
    np.testing.assert_array_equal(target.weights, MIXTURE["weights"])
    assert data.has_modes(target) and target.dim == 2
    # The name is the distribution's: a std given per mode names the same mixture; any
    # parameter changed names another, so two mixtures under one name never share a run id.
    same = parse({"tri": {**MIXTURE, "stds": [0.1, 0.1, 0.1]}}, tmp_path / "t.toml",
                 base={"data": "tri"})
    assert same.configs[0].data == name
    for changed in ({"stds": 0.2}, {"weights": [0.25, 0.5, 0.25]},
                    {"means": [[0.0, 0.0], [3.0, 0.0], [0.0, 3.5]]}):
        other = parse({"tri": {**MIXTURE, **changed}}, tmp_path / "u.toml", base={"data": "tri"})
        assert other.configs[0].data != name, changed
        assert results.run_id(other.configs[0], 0) != results.run_id(s.configs[0], 0)
    # Equal weights by default; any dimension, 1-D from a flat list.
    one = parse({"pair": {"means": [-1.0, 1.0], "stds": [0.2, 0.3]}}, tmp_path / "v.toml",
                base={"data": "pair", "generator": "linear", "discriminator": "logistic"})
    t1 = data.make_target(one.configs[0])
    assert t1.dim == 1 and np.all(t1.weights == 0.5)


def test_declared_names_are_read_in_grid_and_search(tmp_path):
    targets = {"tri": MIXTURE, "far": {**MIXTURE, "stds": 0.5}}
    s = parse(targets, tmp_path / "s.toml", grid={"data": ["tri", "far", "ring_2d"]})
    names = [c.data for c in s.configs]
    assert names[0].startswith("tri.") and names[1].startswith("far.") and names[2] == "ring_2d"
    d = sweep_dict(targets)
    d["search"] = {"samples": 2, "data": {"choice": ["tri", "far"]}}
    searched = parse_sweep(d, str(tmp_path / "s.toml"))
    assert sorted(c.data.split(".")[0] for c in searched.configs) == ["far", "tri"]


def test_the_record_names_the_declaring_file_and_the_digest(tmp_path):
    s = parse({"tri": MIXTURE}, tmp_path / "s.toml", base={"data": "tri"})
    cfg = s.configs[0]
    comps = results.plugin_components(cfg)
    assert list(comps) == [f"target:{cfg.data}"]
    info = comps[f"target:{cfg.data}"]
    assert info["origin"] == str(tmp_path / "s.toml") and info["digest"]
    assert registry.used(cfg) and not registry.entry("target", cfg.data).builtin


def test_mode_metrics_of_a_1200_d_mixture(tmp_path):
    """Ten separated modes in 1200-D: a sample of the mixture itself finds every mode at the
    right weight. A real sample lies about sqrt(D) = 34.6 stds from its mode (a chi variable
    with 1200 degrees of freedom: sd 0.71), so a threshold of 10 stds calls none of it high
    quality and one of 40 calls all of it so: in D dimensions, hq_threshold is read against
    sqrt(D) (docs/targets.md)."""
    rng = np.random.default_rng(0)
    means = rng.uniform(-1, 1, (10, 1200))
    s = parse({"m1200": {"means": means.tolist(), "stds": 0.01}}, tmp_path / "s.toml",
              base={"data": "m1200", "latent_dim": 32})
    target = data.make_target(s.configs[0])
    x = target.sample(jax.random.key(0), 2500)
    low = metrics.mode_metrics(target, x, hq_threshold=10.0)
    high = metrics.mode_metrics(target, x, hq_threshold=40.0)
    assert int(low["modes_captured"]) == 0 and float(low["hq_fraction"]) == 0.0
    assert int(high["modes_captured"]) == 10 and float(high["hq_fraction"]) == 1.0
    # 2500 samples of 10 equal modes: the histogram's reverse KL is about (K - 1) / (2N) =
    # 0.0018 nats; 0.01 is far above its spread.
    assert float(high["reverse_kl"]) < 0.01


# ----------------------------------------------------------------------------- point clouds

def test_point_cloud_split_is_deterministic_and_partitions_the_file(tmp_path):
    x = np.arange(200, dtype=np.float32).reshape(100, 2)
    path = cloud_file(tmp_path, x)
    s = parse({"c": {"file": "cloud.npy", "holdout": 0.25}}, tmp_path / "s.toml",
              base={"data": "c", "eval_batch": 25, "history_samples": 25, "eval_samples": 25,
                    "batch_size": 8})
    t = data.make_target(s.configs[0])
    assert data.has_points(t) and not data.has_modes(t)
    assert (t.num_reference, t.num_training) == (25, 75)
    rows = np.concatenate([t.reference_points, t.training_points])
    np.testing.assert_array_equal(np.sort(rows[:, 0]), x[:, 0])   # every row, once
    assert t.provenance["sha256"] == hashlib.sha256(open(path, "rb").read()).hexdigest()
    again = data.declare("c", {"file": "cloud.npy", "holdout": 0.25}, str(tmp_path))[1]
    np.testing.assert_array_equal(again.reference_points, t.reference_points)
    # A draw is distinct reference points, another key another subset.
    a = np.asarray(t.sample(jax.random.key(0), 25))
    b = np.asarray(t.sample(jax.random.key(1), 10))
    assert sorted(map(tuple, a)) == sorted(map(tuple, t.reference_points))
    assert len(set(map(tuple, b))) == 10 and set(map(tuple, b)) <= set(map(tuple, a))
    # Another split seed is another split, and another target name.
    other = parse({"c": {"file": "cloud.npy", "holdout": 0.25, "split_seed": 1}},
                  tmp_path / "s.toml", base={"data": "c", "eval_batch": 25,
                                             "history_samples": 25, "eval_samples": 25,
                                             "batch_size": 8})
    assert other.configs[0].data != s.configs[0].data


def test_csv_reads_like_npy(tmp_path):
    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    cloud_file(tmp_path, x)
    with open(tmp_path / "cloud.csv", "w") as f:
        f.write("a,b,c\n" + "".join(",".join(repr(float(v)) for v in row) + "\n" for row in x))
    a = data.declare("c", {"file": "cloud.npy"}, str(tmp_path))[1]
    b = data.declare("c", {"file": "cloud.csv"}, str(tmp_path))[1]
    np.testing.assert_array_equal(a.reference_points, b.reference_points)
    np.testing.assert_array_equal(a.training_points, b.training_points)


def _cloud_sweep(tmp_path, grid_data):
    """A 1-D point cloud (two clumps at -2 and 2) in tmp_path/cloud.npy, and a function that
    runs a tiny sweep of it (and of a declared 1-D mixture) into a results file."""
    rng = np.random.default_rng(0)
    path = cloud_file(tmp_path, np.concatenate([rng.normal(-2, 0.3, 200),
                                                rng.normal(2, 0.3, 200)])[:, None])
    base = {**TINY_BASE, "data": "cloud", "extra_metrics": ["energy_distance"]}
    targets = {"cloud": {"file": "cloud.npy"},
               "pair": {"means": [-2.0, 2.0], "stds": 0.3}}

    def run(out):
        s = parse_sweep({"name": "cloud", "seeds": [0, 1], "targets": targets, "base": base,
                         "grid": {"data": grid_data}}, str(tmp_path / "s.toml"))
        sweep.run_sweep(sweep.plan_sweep(s, devices=ONE_DEVICE), tmp_path / out)
        recs = [json.loads(line) for line in open(tmp_path / out)]
        return s, {r["config"]["data"].split(".")[0] + str(r["seed"]): r for r in recs}
    return path, run


def sha256(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_point_cloud_trains_in_a_sweep_and_its_file_is_its_identity(tmp_path):
    """A user's .npy in a sweep with no code: the record carries the file's sha256, no mode
    metric, the metrics against held-out points; a changed file is another target name,
    run id and kept-program key (the points are constants of the program)."""
    path, run = _cloud_sweep(tmp_path, ["cloud"])
    s1, r1 = run("a.jsonl")
    cloud_name = s1.configs[0].data
    info = r1["cloud0"]["components"][f"target:{cloud_name}"]
    assert info["sha256"] == sha256(path) and info["file"] == "cloud.npy"
    assert info["points"] == 400 and info["origin"] == str(tmp_path / "s.toml")
    assert "modes_captured" not in r1["cloud0"]["final"]          # no modes, no mode metric
    for r in (r1["cloud0"], r1["cloud1"]):
        assert r["status"] == "ok" and math.isfinite(r["final"]["energy_distance"])
        assert math.isfinite(r["final"]["w1"])
    assert r1["cloud0"]["final"] != r1["cloud1"]["final"]          # seeds differ
    key1 = engine.code_token(s1.configs[0])[0]

    np.save(path, np.load(path) + np.float32(0.5))                 # the file changes
    s2 = parse_sweep({"name": "cloud", "seeds": [0, 1], "targets": {"cloud": {
        "file": "cloud.npy"}}, "base": {**TINY_BASE, "data": "cloud"}}, str(tmp_path / "s.toml"))
    cfg2 = s2.configs[0]
    assert cfg2.data != cloud_name and cfg2.data.split(".")[0] == "cloud"
    assert results.plugin_components(cfg2)[f"target:{cfg2.data}"]["sha256"] == sha256(path)
    assert results.run_id(cfg2, 0) != r1["cloud0"]["run_id"]
    assert engine.code_token(cfg2)[0] not in ("", None, key1)


@pytest.mark.slow
def test_a_changed_file_changes_the_numbers_and_nothing_else(tmp_path):
    """The same sweep before and after the file changed: the point cloud's numbers change,
    the declared mixture's (the same declaration) do not."""
    path, run = _cloud_sweep(tmp_path, ["cloud", "pair"])
    _, r1 = run("a.jsonl")
    assert r1["pair0"]["final"]["modes_captured"] in (0, 1, 2)     # a mixture has modes
    np.save(path, np.load(path) + np.float32(0.5))
    _, r2 = run("b.jsonl")
    assert r2["cloud0"]["run_id"] != r1["cloud0"]["run_id"]
    assert r2["cloud0"]["final"] != r1["cloud0"]["final"]
    assert r2["pair0"]["run_id"] == r1["pair0"]["run_id"]
    assert r2["pair0"]["final"] == r1["pair0"]["final"]


# ----------------------------------------------------------------------------- bad input

BAD_TARGETS = [
    ({"means": [[0, 0], [1]], "stds": 0.1}, "[targets.t].means: got [[0, 0], [1]]; must be a "
                                            "non-empty list of points"),
    ({"means": [[0, 0], [1, 1]], "stds": -0.1}, "[targets.t].stds: got"),
    ({"means": [[0, 0], [1, 1]], "stds": [0.1]}, "[targets.t].stds: got"),
    ({"means": [[0, 0], [1, 1]], "stds": 0.1, "weights": [0.5, 0.6]},
     "[targets.t].weights: got"),
    ({"means": [[0, 0], [0, 0]], "stds": 0.1}, "modes 0 and 1 coincide"),
    ({"means": [[0, 0], [1, 1]]}, "[targets.t].stds: missing"),
    ({"mean": [[0, 0]], "stds": 0.1}, "[targets.t].mean: unknown key (did you mean 'means'?)"),
    ({"file": "cloud.npy", "stds": 0.1}, "[targets.t].stds: unknown key; a point cloud (file) "
                                         "takes no stds"),
    ({"file": "missing.npy"}, "[targets.t].file: got"),
    ({"file": "cloud.txt"}, "must be a .npy or .csv file"),
    ({"file": "cloud.npy", "holdout": 1.5}, "[targets.t].holdout: got 1.5; must be a number in "
                                            "(0, 1)"),
    ({"file": "cloud.npy", "holdout": 0.001}, "needs at least 2 reference points"),
    ({"file": "bad.csv"}, "[targets.t].file: got"),
    ({"file": "nan.npy"}, "every value must be a finite number"),
    ("not a table", "[targets.t]: got 'not a table'; must be a table"),
]


@pytest.mark.parametrize("spec, message", BAD_TARGETS)
def test_bad_declarations_name_the_field_value_and_rule(tmp_path, spec, message):
    cloud_file(tmp_path, np.zeros((10, 2)) + np.arange(10)[:, None])
    cloud_file(tmp_path, np.full((10, 2), np.nan), "nan.npy")
    (tmp_path / "bad.csv").write_text("1,2\nx,y\nz,w\n")
    with pytest.raises(ConfigError) as e:
        parse({"t": spec}, tmp_path / "s.toml", base={"data": "t"})
    assert message in str(e.value) and str(e.value).startswith(str(tmp_path / "s.toml"))


def test_bad_uses_of_a_point_cloud_are_refused_before_compiling(tmp_path):
    cloud_file(tmp_path, np.random.default_rng(0).normal(size=(100, 2)))
    t = {"c": {"file": "cloud.npy"}}
    small = {"eval_batch": 20, "history_samples": 20, "eval_samples": 20, "batch_size": 8}
    cases = [({**small, "dataset_size": 50}, "dataset_size: got 50; must be 0 with data = "),
             ({**small, "eval_samples": 21}, "eval_samples: got 21; must be at most 20, the "
                                             "held-out reference points"),
             ({**small, "batch_size": 64}, "one step reads 128 real samples"),
             ({**small, "extra_metrics": ["precision_k3"]}, None)]
    for base, message in cases:
        if message is None:
            parse(t, tmp_path / "s.toml", base={"data": "c", **base})     # allowed
            continue
        with pytest.raises(ConfigError) as e:
            parse(t, tmp_path / "s.toml", base={"data": "c", **base})
        assert message in str(e.value), (base, str(e.value))
    # A metric that needs modes is refused for a point cloud, as for any target without.
    name = parse(t, tmp_path / "s.toml", base={"data": "c", **small}).configs[0].data
    registry.register("metric", "modal_test", metrics.Metric(lambda r, f: 0.0, needs=("modes",)))
    try:
        with pytest.raises(ConfigError, match="'modal_test' needs a target with modes; this "
                                              "one has none"):
            make_config({"data": name, "generator": "mlp", "discriminator": "mlp", **small,
                         "extra_metrics": ["modal_test"]})
    finally:
        registry.unregister("metric", "modal_test")


def test_a_name_of_a_registered_target_cannot_be_declared(tmp_path):
    with pytest.raises(ConfigError, match=r"\[targets\.ring_2d\]: a target of that name is "
                                          "registered already"):
        parse({"ring_2d": MIXTURE}, tmp_path / "s.toml")


def test_cli_reports_a_bad_declaration_in_one_line_and_exits_2(tmp_path):
    (tmp_path / "s.toml").write_text('name = "x"\nseeds = 1\n[targets.t]\nmeans = [[0, 0]]\n'
                                     'stds = 0\n[base]\ndata = "t"\n')
    p = subprocess.run(cli_command("sweep", tmp_path / "s.toml", "--dry-run"), env=cli_env(),
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "[targets.t].stds: got" in p.stderr and "every std must be a positive number" in p.stderr


def test_tables_read_declared_targets_from_the_sweep_file(tmp_path):
    (tmp_path / "s.toml").write_text('name = "x"\nseeds = 1\n[targets.t]\nmeans = [[0, 0], '
                                     '[1, 1]]\nstds = 0.1\n[base]\ndata = "t"\n')
    names = load_targets(tmp_path / "s.toml")
    assert list(names) == ["t"] and names["t"] in data.TARGETS
    with pytest.raises(ConfigError, match=r"--plugin FILE\.toml"):
        make_config({"data": "t.0123456789ab"})
