"""A researcher's own components beside the library's, without editing it: registered from a
file of their own (examples/my_components.py), swept from a sweep file's `plugins`, tabled with
paired statistics; and programs kept on disk that always follow the components' code."""

import json
import pathlib
import shutil
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gan_jax as gj
from gan_jax.core import digest
from gan_jax.records import results
from gan_jax.training import train as train_lib
from gan_jax.engine import cache, programs as engine
from gan_jax.commands import cli
from gan_jax.core import registry
from sweep_testing import ROOT

EXAMPLE = pathlib.Path(ROOT) / "examples" / "my_components.py"
SMALL = dict(generator="mlp", discriminator="mlp", g_width=8, g_depth=1, d_width=8, d_depth=1,
             steps=20, log_every=10, batch_size=16, d_updates=1, eval_batch=32,
             history_samples=32, eval_samples=64, mmd_samples=0, optimizer="adam",
             lr_g=1e-3, lr_d=1e-3)


@pytest.fixture
def clean_registry():
    """Leave the registries as they were: a plugin's components are the test's own."""
    saved = {k: (dict(v.table), dict(v.entries)) for k, v in registry.KINDS.items()}
    yield
    for kind, (table, entries) in saved.items():
        registry.KINDS[kind].table.clear()
        registry.KINDS[kind].table.update(table)
        registry.KINDS[kind].entries.clear()
        registry.KINDS[kind].entries.update(entries)
    engine.forget_compiled()


@pytest.fixture
def kept_programs(monkeypatch, tmp_path):
    """Programs kept by configuration in a fresh directory (the default cache's path)."""
    directory = tmp_path / "programs"
    monkeypatch.setattr(cache, "programs_dir", lambda: str(directory))
    engine.forget_compiled()
    return directory


def _toml(values: dict) -> str:
    return "\n".join(f"{k} = {json.dumps(v)}" for k, v in values.items())


def test_own_loss_target_and_metric_swept_beside_builtins_and_compared(tmp_path, capsys,
                                                                     clean_registry):
    shutil.copy(EXAMPLE, tmp_path / "my_components.py")
    (tmp_path / "mine.toml").write_text(textwrap.dedent("""\
        name = "mine"
        seeds = [0, 1, 2, 3]
        plugins = ["my_components.py"]
        [base]
        data = "swiss_roll"
        extra_metrics = ["energy"]
        """) + _toml(SMALL) + textwrap.dedent("""
        [[grid]]
        loss = ["nonsaturating", "ralsgan"]
        [[grid]]
        loss = ["nonsaturating"]
        update = ["hamiltonian"]
        """))
    out = tmp_path / "out"
    assert cli.main(["sweep", str(tmp_path / "mine.toml"), "--out", str(out), "--quiet"]) == 0
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(records) == 12 and {r["config"]["loss"] for r in records} == {"nonsaturating",
                                                                             "ralsgan"}
    assert sum(r["config"]["update"] == "hamiltonian" for r in records) == 4
    for r in records:
        assert np.isfinite(r["final"]["energy"]) and r["final"]["energy"] > 0
        # a target without modes: no mode metric is recorded, never a meaningless number
        assert "modes_captured" not in r["final"] and "sliced_w1" in r["final"]
        # the record names the plugin components it used, with a digest of their code
        assert r["components"]["target:swiss_roll"]["digest"]
        assert ("loss:ralsgan" in r["components"]) == (r["config"]["loss"] == "ralsgan")
    capsys.readouterr()
    # the library's analyses take the method too: the Dirac-GAN, by its direction
    from gan_jax.analysis import dirac
    a = dirac.analyze(dirac.Options("hamiltonian", lr=0.1))
    assert a.flow == "converges" and a.verdict == "converges"
    assert cli.main(["table", str(out), "--by", "loss", "--metrics", "energy",
                     "--compare", "loss=ralsgan,nonsaturating",
                     "--plugin", str(tmp_path / "my_components.py")]) == 0
    text = capsys.readouterr().out
    assert "ralsgan − nonsaturating" in text or "ralsgan - nonsaturating" in text
    assert "| energy | 4 |" in text           # four seeds, paired (update = alternating)


def test_a_plugin_loss_with_an_option_of_its_own(tmp_path, capsys, clean_registry):
    # The example's margin_hinge declares a traced option, margin: validated like a field,
    # listed, swept from a sweep file in one program, and given to the loss at build time.
    shutil.copy(EXAMPLE, tmp_path / "my_components.py")
    assert cli.main(["list", "loss", "--plugin", str(tmp_path / "my_components.py")]) == 0
    assert ("option `margin_hinge.margin` (float, traced, default 1.0): the discriminator's "
            "margin m") in capsys.readouterr().out
    base = dict(SMALL, data="ring_2d", loss="margin_hinge")
    with pytest.raises(gj.ConfigError, match=r"margin_hinge.margin: got -1; must be a positive"):
        gj.make_config({**base, "margin_hinge.margin": -1})
    with pytest.raises(gj.ConfigError, match=r"margin_hinge.margin: got 'wide'; must be a fin"):
        gj.make_config({**base, "margin_hinge.margin": "wide"})
    with pytest.raises(gj.ConfigError, match=r"margin_hinge.margin: got 2.0; applies only to "
                                             r"loss = 'margin_hinge', not loss = 'hinge'"):
        gj.make_config({**base, "loss": "hinge", "margin_hinge.margin": 2})
    with pytest.raises(gj.ConfigError, match=r"margin_hinge.marign: unknown option \(did you "
                                             r"mean 'margin_hinge.margin'\?\)"):
        gj.make_config({**base, "margin_hinge.marign": 2})
    with pytest.raises(gj.ConfigError, match="only a float option of a loss, method, "
                                             "stabiliser or wrapper can be traced"):
        gj.register("metric", "bad", gj.Metric(lambda r, f: 0.0, options=(
            gj.Option("k", 1.0, traced=True),)))
    # At its default the option is not part of the run: same configuration, same run id.
    plain = gj.make_config(base)
    assert gj.make_config({**base, "margin_hinge.margin": 1}) == plain
    wide = gj.make_config({**base, "margin_hinge.margin": 2})
    assert wide.options == (("margin_hinge.margin", 2.0),)
    assert wide.to_dict()["options"] == {"margin_hinge.margin": 2.0}
    assert gj.make_config(wide.to_dict()) == wide
    assert results.run_id(wide, 0) != results.run_id(plain, 0)
    # Traced: both margins are one program, each run holding its own value.
    assert gj.static_part(wide) == gj.static_part(plain)
    assert float(gj.traced_part(wide).options[0]) == 2.0

    (tmp_path / "margin.toml").write_text(textwrap.dedent("""\
        name = "margin"
        seeds = [0, 1]
        plugins = ["my_components.py"]
        [base]
        """) + _toml(base) + textwrap.dedent("""
        [grid]
        "margin_hinge.margin" = [1.0, 2.0]
        """))
    out = tmp_path / "out"
    assert cli.main(["sweep", str(tmp_path / "margin.toml"), "--out", str(out), "--quiet"]) == 0
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    margins = [r["config"]["options"].get("margin_hinge.margin", 1.0) for r in records]
    assert sorted(margins) == [1.0, 1.0, 2.0, 2.0]
    # The option reaches the loss: the small discriminator's logits lie in (-1, 1), where each
    # hinge term is linear, so margin 2's loss is margin 1's plus 2 on the same draws.
    by = {(r["seed"], r["config"]["options"].get("margin_hinge.margin", 1.0)): r
          for r in records}
    for seed in (0, 1):
        np.testing.assert_allclose(np.asarray(by[seed, 2.0]["history"]["loss_d"]),
                                   np.asarray(by[seed, 1.0]["history"]["loss_d"]) + 2,
                                   rtol=0, atol=1e-5)
    # Tables group by an option like a field (its default where a run leaves it unset).
    capsys.readouterr()
    assert cli.main(["table", str(out), "--by", "margin_hinge.margin", "--metrics", "sliced_w1",
                     "--plugin", str(tmp_path / "my_components.py")]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| margin_hinge.margin | runs |")
    assert [r.split("|")[1:3] for r in rows[1:]] == [[" 1 ", " 2 "], [" 2 ", " 2 "]]


def test_a_plugin_stabiliser_wraps_the_game_and_sweeps_in_one_program(tmp_path, capsys,
                                                                      clean_registry):
    # The example's drift term (Karras et al. 2018) is a game stabiliser with a traced option:
    # named in `stabilisers`, validated, listed, its term in the discriminator's objective,
    # both of its values one program, and named in every record that used it.
    shutil.copy(EXAMPLE, tmp_path / "my_components.py")
    assert cli.main(["list", "stabiliser", "--plugin", str(tmp_path / "my_components.py")]) == 0
    listing = capsys.readouterr().out
    assert "drift" in listing and "option `drift.eps` (float, traced, default 0.001)" in listing
    base = dict(SMALL, data="ring_2d", loss="wgan_gp", stabilisers=["drift"])
    with pytest.raises(gj.ConfigError, match=r"drift.eps: got -1; must be a non-negative"):
        gj.make_config({**base, "drift.eps": -1})
    with pytest.raises(gj.ConfigError, match=r"drift.eps: got 0.5; applies only to "
                                             r"stabilisers = 'drift', not stabilisers = \[\]"):
        gj.make_config({**base, "stabilisers": [], "drift.eps": 0.5})
    with pytest.raises(gj.ConfigError, match=r"stabilisers: got \['spectral_norm'\]; "
                                             r"'spectral_norm' is a built-in switched on by its "
                                             r"own field, spectral_norm"):
        gj.make_config({**base, "stabilisers": ["spectral_norm"]})
    cfg = gj.make_config({**base, "drift.eps": 0.5})
    plain = gj.make_config({**base, "stabilisers": []})
    assert gj.static_part(cfg) == gj.static_part(gj.make_config(base))   # eps is traced
    assert gj.static_part(cfg) != gj.static_part(plain)
    # The term: the game's discriminator loss is the plain game's plus eps E[D(real)^2].
    static, hp = gj.static_part(cfg), gj.traced_part(cfg)
    parts = train_lib.make_parts(static)
    g = parts.generator.init(jax.random.key(1))
    d = parts.discriminator.init(jax.random.key(2))
    batch = train_lib.history_batch(static, parts, train_lib.eval_draws(
        parts, jax.random.key(3), 32), jax.random.key(4))
    with_drift = train_lib.make_game(static, parts, hp).d_loss(g, d, batch)
    without = train_lib.make_game(gj.static_part(plain), parts, gj.traced_part(plain)).d_loss(
        g, d, batch)
    term = 0.5 * jnp.mean(parts.discriminator.apply(d, batch.real_ND) ** 2)
    np.testing.assert_allclose(with_drift, without + term, rtol=1e-5)

    (tmp_path / "drift.toml").write_text(textwrap.dedent("""\
        name = "drift"
        seeds = [0, 1]
        plugins = ["my_components.py"]
        [base]
        """) + _toml({**base, "steps": 10, "log_every": 10}) + textwrap.dedent("""
        [grid]
        "drift.eps" = [0.001, 10.0]
        """))
    out = tmp_path / "out"
    assert cli.main(["sweep", str(tmp_path / "drift.toml"), "--out", str(out), "--quiet"]) == 0
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all(r["config"]["stabilisers"] == ["drift"] for r in records)
    assert all(r["components"]["stabiliser:drift"]["digest"] for r in records)
    by = {(r["seed"], r["config"]["options"].get("drift.eps", 0.001)): r for r in records}
    for seed in (0, 1):          # the option reaches the term: a heavy drift moves the run
        assert by[seed, 10.0]["final"]["sliced_w1"] != by[seed, 0.001]["final"]["sliced_w1"]


def test_a_plugin_stabiliser_goes_through_the_builtins_door(clean_registry):
    # The Nagarajan-Kolter term registered as a plugin's stabiliser (its eta a traced option,
    # g_real so the generator's batches hold real samples) trains to the built-in's numbers,
    # bit for bit: the same wrapper, the same draws, the same place among the stabilisers.
    gj.register("stabiliser", "my_nk", gj.Stabiliser(
        wrap=lambda static, hp, game, view: gj.methods.nagarajan_kolter(
            game, gj.option_values(static, "stabiliser", "my_nk", hp)["eta"]),
        options=(gj.Option("eta", 0.0, "the term's weight", traced=True),), g_real=True))
    with pytest.raises(gj.ConfigError, match="g_real: got 1; must be True or False"):
        gj.register("stabiliser", "bad", gj.Stabiliser(wrap=lambda *a: a[2], g_real=1))
    base = dict(SMALL, data="ring_2d", steps=6, log_every=3)
    builtin = gj.make_config({**base, "nk_eta": 0.5})
    plugin = gj.make_config({**base, "stabilisers": ["my_nk"], "my_nk.eta": 0.5})
    a, b = (engine.run_batch([cfg] * 2, [0, 1]) for cfg in (builtin, plugin))
    for k in ("sliced_w1", "modes_captured"):
        np.testing.assert_array_equal(np.asarray(a.final[k]), np.asarray(b.final[k]))
    np.testing.assert_array_equal(np.asarray(a.history["loss_g"]), np.asarray(b.history["loss_g"]))


def test_a_plugin_wrapper_of_the_method_goes_through_the_builtins_door(clean_registry):
    # Lookahead-minimax registered as a plugin's wrapper (k a static option, alpha a traced
    # one) trains to the built-in's numbers bit for bit. (A plugin's wrapper applies after
    # the built-ins: with the average on, it would wrap the average, not sit inside it.)
    gj.register("wrapper", "my_lookahead", gj.Wrapper(
        lambda static, hp, method, track: gj.methods.lookahead(
            method, *gj.option_values(static, "wrapper", "my_lookahead", hp).values()),
        options=(gj.Option("k", 5, "steps between synchronisations"),
                 gj.Option("alpha", 0.5, "the slow weights' step", traced=True))))
    with pytest.raises(gj.ConfigError, match=r"wrappers: got \['ema'\]; 'ema' is a built-in "
                                             r"switched on by its own field, ema_beta"):
        gj.make_config(dict(SMALL, wrappers=["ema"]))
    base = dict(SMALL, data="ring_2d", steps=6, log_every=3)
    builtin = gj.make_config({**base, "lookahead_k": 3, "lookahead_alpha": 0.3})
    plugin = gj.make_config({**base, "wrappers": ["my_lookahead"], "my_lookahead.k": 3,
                             "my_lookahead.alpha": 0.3})
    a, b = (engine.run_batch([cfg] * 2, [0, 1]) for cfg in (builtin, plugin))
    for k in ("sliced_w1", "modes_captured"):
        np.testing.assert_array_equal(np.asarray(a.final[k]), np.asarray(b.final[k]))
    assert not np.array_equal(np.asarray(a.final["sliced_w1"]), np.asarray(
        engine.run_batch([gj.make_config(base)] * 2, [0, 1]).final["sliced_w1"]))


class _Point:
    """A 1-D target: every sample at `at`."""

    dim = 1

    def __init__(self, at):
        self.at = at

    def sample(self, key, n):
        return jnp.full((n, 1), self.at)


def test_options_of_a_target_a_family_and_a_metric_reach_them(clean_registry):
    # Static options of the kinds the evaluation reads: a Preset's build, a family's
    # build(cfg) (registry.option) and a metric's fn each get their own value.
    gj.register("target", "point", gj.Preset(_Point, 1, has_std=False, options=(
        gj.Option("at", 0.0, "where the samples sit"),)))
    gj.register("generator", "const", gj.Family(
        lambda cfg: gj.Model(lambda key: jnp.zeros((1,)),
                             lambda p, z: p + registry.option(cfg, "const.offset") + 0 * z),
        lambda cfg: 1, one_d=True, options=(gj.Option("offset", 0.0, "added to G"),)))
    gj.register("metric", "scaled_mean", gj.Metric(
        lambda real, fake, scale: scale * jnp.mean(fake - real),
        options=(gj.Option("scale", 1.0, "a factor"),)))
    cfg = gj.make_config({"data": "point", "generator": "const", "extra_metrics": ["scaled_mean"],
                          "point.at": 2, "const.offset": 0.5, "scaled_mean.scale": 3.0,
                          "update": "sga", "sga.scaled": True, "d_updates": 1})
    static = gj.static_part(cfg)
    ecfg = gj.config.eval_part(static)
    # The evaluation's program holds its components' options, not the method's.
    assert dict(ecfg.options) == {"point.at": 2.0, "const.offset": 0.5,
                                  "scaled_mean.scale": 3.0}
    parts = train_lib.make_parts(static)
    real = parts.target.sample(jax.random.key(0), 4)
    fake = train_lib.generate(parts, jnp.zeros((1,)), jnp.ones((4, 1)))
    np.testing.assert_array_equal(real, 2.0)
    np.testing.assert_array_equal(fake, 0.5)
    metrics = train_lib.sample_metrics(ecfg, parts, real, fake)
    np.testing.assert_allclose(metrics["scaled_mean"], 3.0 * (0.5 - 2.0))


def test_registered_names_are_choices_everywhere_at_once(clean_registry):
    with pytest.raises(gj.ConfigError, match="loss: got 'mine'; must be one of"):
        gj.make_config(dict(loss="mine"))
    gj.register("loss", "mine", gj.Loss(gj.losses.hinge_d_loss, gj.losses.hinge_g_loss))
    assert gj.make_config(dict(loss="mine")).loss == "mine"
    with pytest.raises(gj.ConfigError, match="built-in loss has that name"):
        gj.register("loss", "hinge", gj.Loss(gj.losses.hinge_d_loss, gj.losses.hinge_g_loss))
    with pytest.raises(gj.ConfigError, match="loss 'bad': must be a gan_jax.Loss"):
        gj.register("loss", "bad", lambda real, fake: 0.0)
    with pytest.raises(gj.ConfigError, match="a target needs `dim`"):
        gj.register("target", "bad", object())


def test_mode_metrics_and_registered_metrics_refused_where_undefined(clean_registry):
    gj.load_plugins([str(EXAMPLE)])
    gj.register("metric", "modal", gj.Metric(lambda r, f: 0.0 * r.sum(), needs=("modes",)))
    with pytest.raises(gj.ConfigError, match="extra_metrics.*'modal' needs a target with modes"):
        gj.make_config(dict(SMALL, data="swiss_roll", extra_metrics=["modal"]))
    with pytest.raises(gj.ConfigError, match="extra_metrics.*'nope' is not one"):
        gj.make_config(dict(extra_metrics=["nope"]))
    with pytest.raises(gj.ConfigError, match="data_std.*takes no options"):
        gj.make_config(dict(SMALL, data="swiss_roll", data_std=0.1))


PLUGIN = '''
import jax.numpy as jnp
import gan_jax as gj

SCALE = {scale}

def d_loss(real, fake):
    return jnp.mean(jnp.square(real - 1.0)) + jnp.mean(jnp.square(fake))

def g_loss(fake):
    return SCALE * jnp.mean(jnp.square(fake - 1.0))

gj.register("loss", "plugin_ls", gj.Loss(d_loss, g_loss))
'''


def test_a_changed_plugin_never_gets_its_old_program(tmp_path, clean_registry, kept_programs):
    path = tmp_path / "plugin.py"
    cfg = dict(loss="plugin_ls", steps=20, log_every=10, batch_size=16, eval_batch=32,
               history_samples=32, eval_samples=64, mmd_samples=0)

    def run(scale):
        path.write_text(PLUGIN.format(scale=scale))
        gj.load_plugins([str(path)])
        engine.forget_compiled()       # a new process: only the kept programs remain
        return gj.run_batch([gj.make_config(cfg)] * 2, [0, 1])

    first = run(1.0)
    assert len(list(kept_programs.iterdir())) == 2
    again = run(1.0)                   # the same code: found by configuration, same numbers
    jax.tree.map(np.testing.assert_array_equal, again, first)
    assert len(list(kept_programs.iterdir())) == 2
    changed = run(3.0)                 # the same name, other code: its own program
    assert len(list(kept_programs.iterdir())) == 3    # a training program of its own
    assert not np.allclose(changed.final["w1"], first.final["w1"])
    engine.forget_compiled()
    with pytest.MonkeyPatch.context() as m:        # ... and the numbers of the new code
        m.setattr(cache, "programs_dir", lambda: None)
        direct = gj.run_batch([gj.make_config(cfg)] * 2, [0, 1])
    jax.tree.map(np.testing.assert_array_equal, changed, direct)


def test_a_target_patched_at_run_time_gets_new_numbers(monkeypatch, kept_programs):
    cfg = gj.make_config(dict(SMALL, data="ring_2d"))
    before = gj.run_batch([cfg] * 2, [0, 1])
    shifted = gj.data.ring_2d(radius=3.0)
    monkeypatch.setitem(gj.data.TARGETS, "ring_2d",
                        gj.Preset(lambda **kw: shifted, 2, has_radius=True))
    engine.forget_compiled()
    after = gj.run_batch([cfg] * 2, [0, 1])
    assert not np.allclose(after.final["sliced_w1"], before.final["sliced_w1"])
    # a module's function replaced at run time is keyed too
    monkeypatch.undo()
    monkeypatch.setattr(cache, "programs_dir", lambda: str(kept_programs))
    original = gj.metrics.sliced_w1
    monkeypatch.setattr(gj.metrics, "sliced_w1", lambda *a: 2.0 * original(*a))
    engine.forget_compiled()
    doubled = gj.run_batch([cfg] * 2, [0, 1])
    np.testing.assert_allclose(doubled.final["sliced_w1"], 2 * before.final["sliced_w1"],
                               rtol=1e-6)
    engine.forget_compiled()


def test_code_that_cannot_be_followed_is_not_kept(tmp_path, clean_registry, kept_programs):
    class Opaque:          # __slots__, no __dict__: the digest cannot read its state
        __slots__ = ("dim", "scale")

        def __init__(self):
            self.dim, self.scale = 1, 2.0

        def sample(self, key, n):
            return self.scale * jax.random.normal(key, (n, 1))

    gj.register("target", "opaque", Opaque())
    with pytest.warns(UserWarning, match="cannot be followed"):
        out = gj.run_batch([gj.make_config(dict(SMALL, generator="linear",
                                                discriminator="logistic", data="opaque"))] * 2,
                           [0, 1])
    assert np.all(np.isfinite(out.final["w1"]))
    assert not kept_programs.exists() or len(list(kept_programs.iterdir())) <= 1


def test_kept_entries_are_data_not_pickles(kept_programs):
    cfg = gj.make_config(dict(SMALL, generator="linear", discriminator="logistic"))
    gj.run_batch([cfg] * 2, [0, 1])
    for entry in kept_programs.iterdir():
        head = entry.read_bytes()[:40]
        assert head.startswith(engine.MAGIC) and not head.startswith(b"\x80")
    engine.forget_compiled()


def test_importing_the_package_leaves_jax_config_alone():
    import subprocess
    import sys
    code = ("import jax; before = {k: getattr(jax.config, k) for k in ("
            "'jax_enable_compilation_cache', 'jax_compilation_cache_dir', "
            "'jax_persistent_cache_min_compile_time_secs')}; import gan_jax; "
            "after = {k: getattr(jax.config, k) for k in before}; print(before == after)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)
    assert p.stdout.strip() == "True", p.stderr


def test_components_given_as_objects_are_named_by_their_code(clean_registry):
    import jax.numpy as jnp

    def make():
        return gj.Loss(lambda r, f: jnp.mean(f) - jnp.mean(r), lambda f: -jnp.mean(f))

    a, b = gj.make_config(dict(loss=make())), gj.make_config(dict(loss=make()))
    assert a.loss == b.loss and a.loss.startswith("loss-") and a.loss in gj.LOSSES
    other = gj.make_config(dict(loss=gj.Loss(lambda r, f: jnp.mean(f) - jnp.mean(r),
                                             lambda f: -2.0 * jnp.mean(f))))
    assert other.loss != a.loss


def test_the_population_game_refuses_what_it_leaves_out():
    cfg = gj.make_config(dict(generator="mlp", discriminator="mlp", spectral_norm=True))
    with pytest.raises(gj.ConfigError, match="spectral_norm: got True; the population game "
                                             "has no form of the stabiliser"):
        gj.population_game(cfg)


def test_a_digest_follows_helpers_globals_and_closures(tmp_path):
    import importlib.util
    import sys

    def load(source, name):
        path = tmp_path / f"{name}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    base = "SCALE = {s}\ndef helper(x):\n    return {h} * x\ndef loss(x):\n    return SCALE * helper(x)\n"
    a = digest.code_digest(load(base.format(s=1.0, h=2.0), "dg_a").loss)
    assert a == digest.code_digest(load(base.format(s=1.0, h=2.0), "dg_b").loss)
    assert a != digest.code_digest(load(base.format(s=3.0, h=2.0), "dg_c").loss)   # a constant
    assert a != digest.code_digest(load(base.format(s=1.0, h=5.0), "dg_d").loss)   # a helper
    key0, key1 = jax.random.key(0), jax.random.key(1)
    with_key = lambda k: (lambda x: jax.random.normal(k, x.shape))             # noqa: E731
    assert digest.code_digest(with_key(key0)) != digest.code_digest(with_key(key1))
    assert digest.code_digest(with_key(key0)) == digest.code_digest(with_key(key0))


def test_register_as_a_decorator(clean_registry):
    import jax.numpy as jnp

    @gj.register("loss", "deco_hinge")
    def deco_hinge():
        """a hinge loss made by a factory"""
        return gj.Loss(gj.losses.hinge_d_loss, gj.losses.hinge_g_loss)

    @gj.register("target", "deco_point")
    class Point:                       # a class of no arguments: its instance is registered
        dim = 1

        def sample(self, key, n):
            return jnp.zeros((n, 1)) + 0.5

    assert isinstance(gj.LOSSES["deco_hinge"], gj.Loss) and callable(deco_hinge)
    assert registry.entry("loss", "deco_hinge").doc == "a hinge loss made by a factory"
    assert isinstance(gj.data.TARGETS["deco_point"], Point)
    gj.unregister("loss", "deco_hinge")
    assert "deco_hinge" not in gj.LOSSES
    with pytest.raises(gj.ConfigError, match="cannot be removed"):
        gj.unregister("loss", "hinge")


def test_two_versions_of_a_plugin_under_one_name_are_never_pooled_without_a_note(
        tmp_path, capsys, clean_registry):
    plugin = tmp_path / "plugin.py"
    base = dict(steps=20, log_every=10, batch_size=16, eval_batch=32, history_samples=32,
                eval_samples=64, mmd_samples=0)

    def sweep(scale, seeds):
        plugin.write_text(PLUGIN.format(scale=scale))
        (tmp_path / "s.toml").write_text(
            f'name = "v"\nseeds = {seeds}\nplugins = ["plugin.py"]\n[base]\n' + _toml(base)
            + '\n[grid]\nloss = ["plugin_ls"]\n')
        capsys.readouterr()
        assert cli.main(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out"),
                         "--quiet", "--resume"]) == 0
        return capsys.readouterr().err

    assert "versions of its code" not in sweep(1.0, [0, 1])
    err = sweep(3.0, [0, 1, 2])          # the code changed: the two recorded runs say so
    assert "loss:plugin_ls: its code now" in err and "(2 runs)" in err
    assert cli.main(["table", str(tmp_path / "out"), "--by", "loss", "--metrics", "w1"]) == 0
    assert "loss:plugin_ls: these records hold 2 versions of its code" in capsys.readouterr().err
