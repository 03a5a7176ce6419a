"""Figures: `python -m gan_jax plot DIR` writes valid PNGs of the expected size; bad input exits 2."""

import struct
import sys

import jax
import numpy as np
import pytest

from gan_jax.commands import cli
from gan_jax import config
from gan_jax.components import data
from gan_jax.engine import programs as engine
from gan_jax.report import plots
from gan_jax.records import results
from test_metrics import TINY_2D, TINY_2D_SAMPLES

DPI = 50   # small files; every layout constant times 50 is a whole number of pixels

TINY_1D = dict(data="bimodal_1d", generator="linear", discriminator="logistic", steps=20,
               log_every=10)


def png_size(path) -> tuple[int, int]:
    """(width, height) of a PNG file, checking its signature and header chunk."""
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def px(inches: float) -> int:
    return round(inches * DPI)


def write_results(directory, base: dict, points: list[dict], seeds: list[int]) -> list[dict]:
    cfgs, run_seeds = [], []
    for point in points:
        for seed in seeds:
            cfgs.append(config.make_config({**base, **point}))
            run_seeds.append(seed)
    records = []
    for i in range(0, len(cfgs), 2):   # batches of 2, as tests/test_metrics.py: one program
        out = engine.run_batch(cfgs[i:i + 2], run_seeds[i:i + 2], keep_samples=TINY_2D_SAMPLES)
        records += results.make_records("test", cfgs[i:i + 2], run_seeds[i:i + 2], out)
    results.append_records(directory / results.RESULTS_FILE, records)
    return records


@pytest.fixture(scope="module")
def sweep_2d(tmp_path_factory):
    """A 2 x 2 grid over (lr_g, lr_d) x 2 seeds of the tiny 2-D run: one compiled program."""
    directory = tmp_path_factory.mktemp("sweep_2d")
    points = [dict(lr_g=g, lr_d=d) for g in (1e-3, 3e-3) for d in (1e-3, 2e-3)]
    records = write_results(directory, TINY_2D, points, [0, 1])
    return directory, records


def run_cli(*argv) -> int:
    return cli.main(["plot", *map(str, argv), "--dpi", str(DPI)])


def test_curves_by_default(sweep_2d, capsys):
    directory, _ = sweep_2d
    assert run_cli(directory) == 0
    path = directory / "plots" / "curves.png"
    assert capsys.readouterr().out.split() == [str(path)]
    # 3 metrics (rows) x 1 column, and the legend's strip.
    assert png_size(path) == (px(plots.CURVE_PANEL[0] + plots.LEGEND_WIDTH),
                              px(3 * plots.CURVE_PANEL[1]))


def test_heatmap_and_its_cells(sweep_2d, tmp_path):
    directory, records = sweep_2d
    assert run_cli(directory, "--out", tmp_path, "--heatmap", "lr_g", "lr_d", "hq_fraction") == 0
    path = tmp_path / "heatmap_hq_fraction_lr_g_lr_d.png"
    assert png_size(path) == (px(plots.HEATMAP_PANEL[0]), px(plots.HEATMAP_PANEL[1]))
    xs, ys, value, _, count, runs = plots.heatmap_cells(records, "lr_g", "lr_d", "hq_fraction")
    assert xs == [1e-3, 3e-3] and ys == [1e-3, 2e-3]
    np.testing.assert_array_equal(count, 2)
    np.testing.assert_array_equal(runs, 2)
    want = np.mean([r["final"]["hq_fraction"] for r in records
                    if r["config"]["lr_g"] == 3e-3 and r["config"]["lr_d"] == 1e-3])
    np.testing.assert_allclose(value[0, 1], want)


def test_samples_read_from_records_or_rerun(sweep_2d, tmp_path, capsys, monkeypatch):
    directory, records = sweep_2d
    # The fixture's records kept TINY_2D_SAMPLES samples each: plot draws them, runs nothing.
    real_rerun = engine.rerun

    def refuse(*args, **kwargs):
        raise AssertionError("re-ran a run whose record holds its samples")

    monkeypatch.setattr(engine, "rerun", refuse)
    assert run_cli(directory, "--out", tmp_path, "--samples", "--seeds", 1,
                   "--where", "lr_d=0.001", "--num-samples", TINY_2D_SAMPLES) == 0
    path = tmp_path / "samples__lr_d=0.001.png"
    # Two configurations (lr_g) with lr_d = 0.001, seed 1 each: one row of two panels.
    assert png_size(path) == (px(2 * plots.SAMPLE_PANEL[0]), px(plots.SAMPLE_PANEL[1]))
    assert "differ" not in capsys.readouterr().err
    chosen = [r for r in records if r["seed"] == 1 and r["config"]["lr_d"] == 1e-3]
    kept = plots.recorded_samples(chosen, TINY_2D_SAMPLES)
    # Records without samples are run again (engine.rerun): the same run, the same samples.
    monkeypatch.setattr(engine, "rerun", real_rerun)
    bare = [{k: v for k, v in r.items() if k != "samples"} for r in chosen]
    for record, a, b in zip(chosen, kept, plots.recorded_samples(bare, TINY_2D_SAMPLES)):
        assert b["matches"], record["final"]
        assert a["samples"].shape == b["samples"].shape == (TINY_2D_SAMPLES, 2)
        np.testing.assert_allclose(a["samples"], b["samples"], rtol=1e-6, atol=1e-7)
        assert a["matches"] and a["diverged_at"] == -1


def test_critic_maps_rerun_the_records_and_draw_one_panel_each(sweep_2d, tmp_path, capsys):
    directory, records = sweep_2d
    assert run_cli(directory, "--out", tmp_path, "--critic", "--seeds", 1,
                   "--where", "lr_d=0.001", "--num-samples", TINY_2D_SAMPLES) == 0
    path = tmp_path / "critic__lr_d=0.001.png"
    assert png_size(path) == (px(2 * plots.SAMPLE_PANEL[0]), px(plots.SAMPLE_PANEL[1] + 0.3))
    assert "differ" not in capsys.readouterr().err
    chosen = [r for r in records if r["seed"] == 1 and r["config"]["lr_d"] == 1e-3]
    for record, m in zip(chosen, plots.critic_maps(chosen, TINY_2D_SAMPLES, points=32)):
        # The re-run is the recorded run: its final metrics and kept samples are the record's.
        assert m["matches"] and m["diverged_at"] == -1
        np.testing.assert_allclose(m["samples"], np.asarray(record["samples"], np.float32),
                                   rtol=1e-6, atol=1e-7)
        assert m["values"].shape == (32, 32) and np.all(np.isfinite(m["values"]))
        assert np.ptp(m["values"]) > 0
        # The grid holds every real and generated sample but the outermost percent or so.
        for x in (m["real"], m["samples"]):
            inside = ((x[:, 0] >= m["xs"][0]) & (x[:, 0] <= m["xs"][-1])
                      & (x[:, 1] >= m["ys"][0]) & (x[:, 1] <= m["ys"][-1]))
            assert inside.mean() >= 0.9


def test_critic_maps_refuse_a_1d_target_before_running(tmp_path, capsys, monkeypatch):
    cfg = config.make_config(TINY_1D)
    record = dict(run_id="r0", sweep="by-hand", seed=0, config=cfg.to_dict(), status="ok",
                  final=dict(w1=0.5), history=dict(step=[0, 10, 20], w1=[2.0, 1.0, 0.5]))
    results.append_records(tmp_path / results.RESULTS_FILE, [record])
    monkeypatch.setattr(engine, "rerun", lambda *a, **k: pytest.fail("ran before refusing"))
    assert run_cli(tmp_path, "--critic", "--out", tmp_path / "figs") == 2
    err = capsys.readouterr().err
    assert "data = 'bimodal_1d'" in err and "need a 2-D target" in err and "Traceback" not in err
    assert not list((tmp_path / "figs").iterdir())


def test_1d_figures_from_records(tmp_path):
    # A 1-D record written by hand (no training): histograms over the exact density, and the
    # 1-D default curves (w1, mode_balance).
    cfg = config.make_config(TINY_1D)
    # Every key a record must have (results.RECORD_SHAPE): readers skip anything less.
    record = dict(run_id="r0", sweep="by-hand", seed=0, config=cfg.to_dict(), status="ok",
                  final=dict(w1=0.5, mode_balance=0.9),
                  history=dict(step=[0, 10, 20], w1=[2.0, 1.0, 0.5], mode_balance=[0, 0.5, 0.9]))
    results.append_records(tmp_path / results.RESULTS_FILE,
                           [record, {**record, "run_id": "r1", "seed": 1}])
    assert run_cli(tmp_path) == 0
    assert png_size(tmp_path / "plots" / "curves.png") == (
        px(plots.CURVE_PANEL[0] + plots.LEGEND_WIDTH), px(2 * plots.CURVE_PANEL[1]))
    target = data.make_target(cfg)
    drawn = [dict(samples=np.asarray(target.sample(jax.random.key(0), 500)) * 0.8,
                  target=target)]
    path = plots.plot_samples([record], drawn, str(tmp_path / "samples.png"), dpi=DPI)
    assert png_size(path) == (px(plots.SAMPLE_PANEL[0]), px(plots.SAMPLE_PANEL[1]))


def test_diverged_runs_leave_gaps_not_errors(tmp_path):
    # Non-finite numbers are stored as null: cells and curve points without a finite value.
    cfg = config.make_config(dict(TINY_2D, loss="hinge")).to_dict()
    records = [dict(seed=seed, config={**cfg, "lr_g": lr}, final=dict(modes_captured=final),
                    history=dict(step=[0, 10, 20], modes_captured=[1, None, final]))
               for lr, final in ((1e-3, None), (2e-3, 3)) for seed in (0, 1)]
    records[3]["final"]["modes_captured"] = None          # one of two seeds diverged
    xs, ys, value, _, count, runs = plots.heatmap_cells(records, "lr_g", "loss",
                                                        "modes_captured")
    np.testing.assert_array_equal(count, [[0, 1]])
    np.testing.assert_array_equal(runs, [[2, 2]])
    assert np.isnan(value[0, 0]) and value[0, 1] == 3
    path = plots.plot_heatmap(records, "lr_g", "loss", "modes_captured",
                              str(tmp_path / "h.png"), dpi=DPI)
    assert png_size(path) == (px(plots.HEATMAP_PANEL[0]), px(plots.HEATMAP_PANEL[1]))
    path = plots.plot_curves(records, ["modes_captured"], str(tmp_path / "c.png"), dpi=DPI)
    assert png_size(path) == (px(plots.CURVE_PANEL[0] + plots.LEGEND_WIDTH),
                              px(plots.CURVE_PANEL[1]))


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("argv,message", [
    (["--heatmap", "lr_g", "lr_x"], "'lr_x' is not a config key (did you mean 'lr_g'?)"),
    (["--heatmap", "lr_g", "lr_d", "modes"], "'modes' is not a final metric"),
    (["--heatmap", "lr_g"], "give X Y [METRIC]"),
    (["--curves", "w2"], "'w2' is not a history metric"),
    (["--where", "los=hinge"], "'los' is not a config key (did you mean 'loss'?)"),
    (["--where", "loss=hinge"], "no record has loss='hinge'"),
    (["--where", "loss"], "must be KEY=VALUE"),
    (["--samples", "--seeds", "7"], "has no run with seed 7"),
    (["--facet", "nope", "--curves"], "'nope' is not a config key"),
    (["--max-runs", "0"], "--max-runs: got 0"),
    (["--search"], "no key takes 8 or more numeric values"),          # a 2 x 2 grid
    (["--search", "w9"], "'w9' is not a final metric"),
    (["--sampled", "lr_g"], "--sampled: only with --search"),
    (["--search", "--sampled", "lr_x"], "'lr_x' is not a config key"),
    (["--search", "--sampled", "loss"], "must be a numeric key that varies"),
])
def test_bad_arguments_exit_2_with_a_message(sweep_2d, tmp_path, capsys, argv, message):
    directory, _ = sweep_2d
    assert run_cli(directory, "--out", tmp_path, *argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())   # nothing written


def test_a_directory_without_results_exits_2(tmp_path, capsys):
    assert run_cli(tmp_path) == 2
    assert "no results" in capsys.readouterr().err
    assert run_cli(tmp_path / "missing") == 2
    assert "no such directory" in capsys.readouterr().err


def test_without_matplotlib_plot_exits_2(sweep_2d, monkeypatch, capsys):
    directory, _ = sweep_2d
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # import matplotlib -> ImportError
    assert run_cli(directory) == 2
    assert "pip install 'gan_jax[plot]'" in capsys.readouterr().err


def synthetic_records(spread: float):
    """loss x lr_d x 5 seeds of records (no training): the 4 cells' w1 from 0.05 up to
    0.05 * spread."""
    from test_tables import make_records
    records = make_records()
    for i, r in enumerate(records):
        if r["status"] == "ok":
            r["final"]["w1"] = 0.05 * spread ** ((i // 5) / 3) * (1 + 0.01 * r["seed"])
    return records


def test_profile_png_size_and_lines(tmp_path, capsys):
    records = synthetic_records(10.0)
    results.append_records(tmp_path / results.RESULTS_FILE, records)
    assert run_cli(tmp_path, "--profile", "w1") == 0
    path = tmp_path / "plots" / "profile_w1.png"
    assert capsys.readouterr().out.split() == [str(path)]
    assert png_size(path) == (px(plots.PROFILE_PANEL[0] + plots.LEGEND_WIDTH),
                              px(plots.PROFILE_PANEL[1]))
    values = plots.profile_values(records, "w1", higher_is_better=False)
    assert len(values) == 4 and values["loss=lsgan, lr_d=0.1"][-1] == np.inf   # diverged: worst
    taus, scale = plots.profile_taus(values)
    assert scale == "linear" and taus.size == plots.PROFILE_TAUS
    assert run_cli(tmp_path, "--profile", "fake_mean") == 2          # no known direction
    assert "--higher-is-better fake_mean" in capsys.readouterr().err


def test_heatmap_goes_logarithmic_beyond_two_decades(tmp_path, monkeypatch):
    assert plots.color_scale([0.05, 1.0, 4.9]) == "linear"              # < 100x
    assert plots.color_scale([0.05, 1.0, 5.1]) == "log"                 # > 100x
    assert plots.color_scale([-1.0, 1.0, 500.0]) == "linear"            # not all positive
    assert plots.color_scale([1e-3, 1.0], fixed=True) == "linear"       # a [0, 1] metric
    labels = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: labels.append(
        [a.get_ylabel() for a in fig.axes if a.get_label() == "<colorbar>"]) or path)
    for spread in (10.0, 1e4):
        plots.plot_heatmap(synthetic_records(spread), "lr_d", "loss", "w1", str(tmp_path / "h"),
                           dpi=DPI)
    assert labels == [["w1 (mean)"], ["w1 (mean, log scale)"]]
    taus, scale = plots.profile_taus({"a": [0.05, 50.0], "b": [np.inf]})
    assert scale == "log" and taus[0] == pytest.approx(0.05) and taus[-1] == pytest.approx(50)


def ablation_records(seeds=2):
    """generator x discriminator x loss x tied rate, like the loss ablation, written by hand (no
    training): w1 curves spanning four decades, one diverged run."""
    out = []
    for g in ("linear", "mlp", "piecewise"):
        for d in ("logistic", "mlp"):
            for j, loss in enumerate(("hinge", "lsgan", "minimax", "nonsaturating", "wgan",
                                      "wgan_gp")):
                for lr in (0.001, 0.003, 0.01):
                    cfg = config.make_config(dict(generator=g, discriminator=d, loss=loss,
                                                  lr_g=lr, lr_d=lr, steps=20, log_every=10))
                    for s in range(seeds):
                        top = 0.1 * 10 ** (j * 0.8)
                        out.append(dict(
                            run_id=f"{g}{d}{loss}{lr}{s}", sweep="abl", seed=s,
                            config=cfg.to_dict(), status="ok", diverged_at=None,
                            final=dict(w1=top * (1 + s)),
                            history=dict(step=[0, 10, 20], w1=[1.0, top, top * (1 + s)])))
    out[0].update(status="diverged", diverged_at=5)
    out[0]["final"]["w1"] = None
    out[0]["history"]["w1"] = [1.0, None, None]
    return out


def test_many_configurations_get_facets_at_most_8_lines_and_a_pooled_rate(tmp_path,
                                                                          monkeypatch):
    records = ablation_records()
    assert plots.tied_keys(records, ["loss", "lr_g", "lr_d"]) == ("loss", "lr_g+lr_d")
    lay = plots.layout(records)
    assert lay == plots.Layout(("generator", "discriminator"), ("loss",), ("lr_g+lr_d",))
    # Without pooling 108 lines; the MLP generator alone: discriminator x rate, 6 losses each.
    mlp = [r for r in records if r["config"]["generator"] == "mlp"]
    assert plots.layout(mlp) == plots.Layout(("discriminator", "lr_g+lr_d"), ("loss",), ())
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or path)
    plots.plot_curves(records, ["w1"], str(tmp_path / "c.png"), dpi=DPI)
    fig = figures.pop()
    assert tuple(fig.get_size_inches()) == pytest.approx(
        (2 * plots.CURVE_PANEL[0] + plots.LEGEND_WIDTH, 3 * plots.CURVE_PANEL[1]))
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == 6 and all(len(ax.get_lines()) <= plots.MAX_LINES for ax in panels)
    assert "each line pools the runs of every lr_g+lr_d" in fig._suptitle.get_text()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        f"loss={loss}" for loss in ("hinge", "lsgan", "minimax", "nonsaturating", "wgan",
                                    "wgan_gp")]
    assert all(ax.get_yscale() == "log" for ax in panels)         # 0.1 to 400: four decades
    first = panels[0]
    assert first.get_title() == "generator=linear, discriminator=logistic · n=6 per line"
    assert "diverged: loss=hinge: 1/6" in " ".join(t.get_text() for t in first.texts)
    plots.plot_profile(records, "w1", str(tmp_path / "p.png"), higher_is_better=False, dpi=DPI)
    fig = figures.pop()
    assert len([ax for ax in fig.axes if ax.get_title()]) == 6
    assert "pools the runs of every lr_g+lr_d" in fig._suptitle.get_text()


def test_heatmap_over_a_tied_key_is_one_panel_per_other_combination(tmp_path, monkeypatch):
    records = ablation_records(seeds=1)
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or path)
    plots.plot_heatmap(records, "loss", "lr_d", "w1", str(tmp_path / "h.png"), dpi=DPI)
    fig = figures.pop()
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and ax.axison]
    assert len(panels) == 6                                   # not 18 one-row strips
    assert tuple(fig.get_size_inches()) == pytest.approx(
        (2 * plots.HEATMAP_PANEL[0], 3 * plots.HEATMAP_PANEL[1]))
    assert {ax.get_ylabel() for ax in panels} == {"lr_g+lr_d"}
    assert panels[0].get_title().replace("\n", " ") == (
        "generator=linear, discriminator=logistic · 1 of 18 runs diverged")    # wrapped to fit


def test_keys_that_move_together_count_as_their_combinations():
    # reproduce-seed's two configurations differ in generator, steps, rates and g_init at once:
    # 2 lines, not 2^5 combinations to split into panels.
    records = []
    for g, steps, lr, init in (("linear", 320, 0.04, [0.15, 0.0]),
                               ("piecewise", 400, 0.02, [0.35, -1.8, 0.35, 1.8])):
        cfg = config.make_config(dict(generator=g, steps=steps, lr_g=lr, g_init=init,
                                      log_every=40))
        records += [dict(seed=s, config=cfg.to_dict(), status="ok", final=dict(w1=1.0),
                         history=dict(step=[0, 40], w1=[1.0, 1.0])) for s in range(2)]
    lay = plots.layout(records)
    assert lay.facets == () and lay.pooled == () and set(lay.lines) >= {"generator", "steps"}
    assert plots._grid(records, lay.facets) == (1, 1)


# ----------------------------------------------------------------------------- searches

def search_records(points=16, seeds=3, losses=("hinge", "nonsaturating")):
    """A [search] over the tied rate (log-uniform) and beta1 (uniform), crossed with a loss
    grid, written by hand (no training): w1 is V-shaped in log10(rate) around 10^-2.5, twice
    as steep for the second loss, and seed 0 diverges above rate 0.05."""
    rng = np.random.default_rng(0)
    rates = np.round(10 ** rng.uniform(-4, -1, points), 6)
    betas = np.round(rng.uniform(0, 0.9, points), 4)
    out = []
    for lr, beta in zip(rates, betas):
        for j, loss in enumerate(losses):
            cfg = config.make_config(dict(loss=loss, lr_g=float(lr), lr_d=float(lr),
                                          beta1=float(beta), optimizer="adam", steps=20,
                                          log_every=10))
            for s in range(seeds):
                w1 = 0.1 + abs(np.log10(lr) + 2.5) * (1 + j) + 0.05 * s
                diverged = bool(lr > 0.05 and s == 0)
                out.append(dict(run_id=f"{lr}{loss}{s}", sweep="search", seed=s,
                                config=cfg.to_dict(), status="diverged" if diverged else "ok",
                                diverged_at=3 if diverged else None,
                                final=dict(w1=None if diverged else float(w1)),
                                history=dict(step=[0, 10, 20], w1=[1.0, 1.0, float(w1)])))
    return out


def test_sampled_keys_and_their_axes():
    records = search_records()
    assert plots.sampled_keys(records) == ("lr_g+lr_d", "beta1")       # loss: not a number
    assert plots.sampled_keys(records[:7 * 6]) == ()                   # 7 points: too few
    assert plots.sampled_keys(ablation_records()) == ()                # a grid of 3 rates
    rng = np.random.default_rng(1)
    assert plots.log_spaced(10 ** rng.uniform(-4, -1, 32))             # log-uniform draws
    assert plots.log_spaced(10 ** np.linspace(-3, -2, 32))              # one decade too
    assert plots.log_spaced([1e-3, 3e-3, 1e-2, 3e-2, 1e-1])            # a geometric grid
    assert not plots.log_spaced(rng.uniform(1e-3, 1.0, 32))            # uniform over 3 decades
    assert not plots.log_spaced(rng.uniform(0.0, 0.9, 32))
    assert not plots.log_spaced([0.0, 1e-3, 1e-2, 1e-1])               # not all positive


def test_search_figure_and_its_rank_correlations(tmp_path, monkeypatch, capsys):
    scipy_stats = pytest.importorskip("scipy.stats")
    records = search_records()
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or path)
    path, rows = plots.plot_search(records, "w1", str(tmp_path / "s.png"), dpi=DPI)
    fig = figures.pop()
    # Reference: Spearman's rho (scipy) of the rate with each point's median over its 3 seeds,
    # a diverged run as +inf (w1: lower is better).
    for loss in ("hinge", "nonsaturating"):
        points = {}
        for r in records:
            if r["config"]["loss"] == loss:
                w1 = r["final"]["w1"]
                points.setdefault(r["config"]["lr_g"], []).append(np.inf if w1 is None else w1)
        x = list(points)
        ref = scipy_stats.spearmanr(x, [np.median(v) for v in points.values()])
        row = next(r for r in rows if r["key"] == "lr_g+lr_d" and r["group"] == f"loss={loss}")
        assert (row["rho"], row["p"]) == pytest.approx((ref.statistic, ref.pvalue), rel=1e-9)
        assert row["points"] == 16 and row["failed"] == 2
    panels = [ax for ax in fig.axes if ax.axison]
    assert len(panels) == 2
    assert [ax.get_xscale() for ax in panels] == ["log", "linear"]
    assert [ax.get_xlabel() for ax in panels] == ["lr_g+lr_d (log scale)", "beta1"]
    assert "loss=hinge: ρ = " in panels[0].get_title()
    # Each panel, per loss: 48 runs less 2 diverged as dots, 16 medians, 2 crosses (failed).
    offsets = [len(c.get_offsets()) for c in panels[0].collections]
    assert sorted(offsets) == [2, 2, 16, 16, 46, 46]
    legend = [" ".join(t.get_text().split()) for t in fig.legends[0].get_texts()]
    assert legend[0].startswith("loss=hinge: median") and legend[2:4] == [
        "one run", "binned median of the points"]
    assert legend[-1].endswith("on the worse edge: 4")
    assert "32 configurations (sampled point × grid point) × 3 seeds" in \
        fig._suptitle.get_text().replace("\n", " ")
    assert tuple(fig.get_size_inches()) == pytest.approx(
        (2 * plots.SEARCH_PANEL[0] + plots.LEGEND_WIDTH, plots.SEARCH_PANEL[1]))
    # The command: the PNG and the printed table, one row per key and loss.
    monkeypatch.undo()
    for r in records:
        r["final"]["score"] = r["final"]["w1"]          # a metric of no known direction
    results.append_records(tmp_path / results.RESULTS_FILE, records)
    assert run_cli(tmp_path, "--search") == 0
    out = capsys.readouterr().out.splitlines()
    png = tmp_path / "plots" / "search_w1.png"
    assert out[-1] == str(png) and png_size(png) == (
        px(2 * plots.SEARCH_PANEL[0] + plots.LEGEND_WIDTH), px(plots.SEARCH_PANEL[1]))
    assert "| lr_g+lr_d | loss=hinge | 16 | 2 |" in "\n".join(out)
    assert sum(line.startswith("| beta1 |") for line in out) == 2
    # A metric without a known direction cannot rank failed runs: say so, exit 2.
    assert run_cli(tmp_path, "--search", "score") == 2
    assert "--higher-is-better score" in capsys.readouterr().err
    assert run_cli(tmp_path, "--search", "score", "--lower-is-better") == 0


def test_samples_of_targets_without_modes_are_drawn_over_a_real_sample(tmp_path):
    # A swiss roll (2-D) and a 1-D target without modes or density have no mode centres to
    # mark: the panel shows a real sample of the target instead, and nothing reads `means`.
    import matplotlib.image

    class Line1D:
        dim = 1

        def sample(self, key, n):
            return jax.random.uniform(key, (n, 1), minval=-1.0, maxval=1.0)

    roll = data.make_target(config.make_config(dict(TINY_2D, data="ffjord_swissroll")))
    assert not data.has_modes(roll) and not data.has_modes(Line1D())
    for name, target in (("roll", roll), ("line", Line1D())):
        x = np.asarray(target.sample(jax.random.key(1), 400)) * 0.9
        record = dict(seed=0, config=dict(data=name), final={})
        path = plots.plot_samples([record], [dict(samples=x, target=target)],
                                  str(tmp_path / f"{name}.png"), dpi=DPI)
        assert png_size(path) == (px(plots.SAMPLE_PANEL[0]), px(plots.SAMPLE_PANEL[1]))
        image = matplotlib.image.imread(path)[..., :3]
        # The real sample (red points in 2-D, a black step histogram in 1-D) and the
        # generated one (blue) are both on the panel.
        real = (image[..., 0] - image[..., 2] > 0.15 if target.dim == 2
                else image.max(axis=-1) < 0.3)
        blue = image[..., 2] - image[..., 0] > 0.15
        assert real.sum() > 20 and blue.sum() > 20, (name, real.sum(), blue.sum())
