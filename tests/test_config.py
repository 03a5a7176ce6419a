"""Bad input fails before any compilation, with a message naming field, value and rule."""

import os
import subprocess
import sys

import pytest

from gan_jax import config
from gan_jax.engine import programs as engine

BAD = [
    (dict(generator="lineer"), "generator", "did you mean 'linear'"),
    (dict(discriminator="cnn"), "discriminator", "logistic, mlp"),
    (dict(loss="wasserstein"), "loss", "nonsaturating"),
    (dict(optimizer="adamw"), "optimizer", "sgd, adam, rmsprop"),
    (dict(lr_g=0.0), "lr_g", "positive"),
    (dict(lr_d=-0.1), "lr_d", "positive"),
    (dict(batch_size=0), "batch_size", "positive integer"),
    (dict(batch_size=12.5), "batch_size", "positive integer"),
    (dict(steps=-3), "steps", "positive integer"),
    (dict(eval_samples=0), "eval_samples", "integer >= 2"),
    (dict(history_samples=1), "history_samples", "integer >= 2"),
    (dict(mmd_samples=1), "mmd_samples", "0 (no MMD) or an integer >= 2"),
    (dict(data="bimodal_1d", data_radius=2.0), "data_radius", "does not apply"),
    (dict(d_updates=0), "d_updates", "positive integer"),
    (dict(steps=100, log_every=30), "log_every", "divide steps = 100"),
    (dict(g_init=[0.1, 0.2, 0.3]), "g_init", "must have 2 values"),
    (dict(generator="piecewise", g_init=[0.1, 0.2]), "g_init", "must have 4 values"),
    (dict(d_init=[0.1]), "d_init", "must have 2 values"),
    (dict(lr_dd=0.1), "lr_dd", "did you mean 'lr_d'"),
    (dict(data="ring_2d"), "generator", "use 'mlp'"),
    (dict(update="simultaneous"), "d_updates", "must be 1"),
    (dict(beta1=1.0), "beta1", "[0, 1)"),
]


@pytest.fixture
def no_compile(monkeypatch):
    """Fail the test if anything asks for a compiled program."""

    def refuse(*args, **kwargs):
        raise AssertionError("compiled before the input was validated")

    monkeypatch.setattr(engine, "compiled_run", refuse)


@pytest.mark.parametrize("values,field,allowed", BAD)
def test_bad_config_names_field_value_and_rule(values, field, allowed, no_compile):
    with pytest.raises(config.ConfigError) as e:
        config.make_config(values)
    msg = str(e.value)
    assert msg.startswith(field + ":"), msg
    if "unknown field" not in msg:
        value = list(values.values())[-1]
        assert repr(value) in msg or str(value) in msg, msg
    assert allowed in msg, msg


def test_good_config_round_trips():
    cfg = config.make_config(dict(generator="mlp", discriminator="mlp", g_init=None, lr_d=0.1))
    assert config.make_config(cfg.to_dict()) == cfg


def test_replace_validates_and_normalises_like_make_config():
    cfg = config.make_config()
    assert cfg.replace(lr_d=1) == config.make_config(dict(lr_d=1))
    assert isinstance(cfg.replace(lr_d=1).lr_d, float)
    assert cfg.replace(g_init=[1, 2]).g_init == (1.0, 2.0)
    hash(cfg.replace(g_init=[1, 2]))                      # lists become tuples: hashable
    with pytest.raises(config.ConfigError, match="lr_d: got -1; must be a positive number"):
        cfg.replace(lr_d=-1)
    with pytest.raises(config.ConfigError, match="lr_dd: unknown field"):
        cfg.replace(lr_dd=0.1)


def test_every_field_is_declared_once_and_derived_everywhere():
    # Each field has a kind, a check and a meaning; the static and traced parts are derived
    # from those declarations, so a field added to RunConfig appears in exactly one of them.
    import dataclasses
    names = [f.name for f in dataclasses.fields(config.RunConfig)]
    for f in dataclasses.fields(config.RunConfig):
        assert f.metadata["kind"] in (config.STATIC, config.TRACED), f.name
        assert callable(f.metadata["check"]) and f.metadata["doc"], f.name
    static = [f.name for f in dataclasses.fields(config.StaticConfig)]
    assert static == [*config.STATIC_FIELDS, *config.DERIVED_STATIC]
    assert list(config.HParams._fields) == [*config.TRACED_FIELDS, *config.INDEX_FIELDS, "options"]
    assert sorted(config.STATIC_FIELDS + config.TRACED_FIELDS) == sorted(names)
    cfg = config.make_config(dict(g_init=[0.1, 0.2]))
    assert set(config.traced_part(cfg)._asdict()) | set(config.static_part(cfg).__dict__) >= \
        set(names)


def test_registries_are_what_configuration_accepts():
    from gan_jax.components import data, losses, models, optim
    for field, registry in (("data", data.TARGETS), ("generator", models.GENERATORS),
                            ("discriminator", models.DISCRIMINATORS),
                            ("loss", losses.LOSSES), ("optimizer", optim.OPTIMIZERS),
                            ("activation", models.ACTIVATIONS)):
        values = {"data": "ring_2d", "generator": "mlp", "discriminator": "mlp"}
        for name in registry:
            # (a target's own floor on hq_threshold, data.Preset.min_hq_threshold, taken)
            extra = {**values, "hq_threshold": max(3.0, data.preset(name).min_hq_threshold)} \
                if field == "data" else {}
            if field == "generator" and models.GENERATORS[name].one_d or \
                    field == "discriminator" and models.DISCRIMINATORS[name].one_d:
                extra = {}
            assert getattr(config.make_config({**extra, field: name}), field) == name
        with pytest.raises(config.ConfigError, match=f"{field}: got 'nope'"):
            config.make_config({field: "nope"})


@pytest.mark.parametrize("cfg", [dict(), dict(generator="piecewise"),
                                 dict(data="ring_2d", generator="mlp", discriminator="mlp",
                                      latent_dim=3, g_width=7, d_depth=3)])
def test_parameter_counts_are_the_families_own(cfg):
    import jax
    from gan_jax.components import models
    cfg = config.make_config(cfg)
    for role in ("generator", "discriminator"):
        shapes = jax.eval_shape(models.make_model(cfg, role).init, jax.random.key(0))
        assert models.num_params(cfg, role) == sum(x.size for x in jax.tree.leaves(shapes))


@pytest.mark.slow   # a process of its own (a fresh JAX), about a second and a half
def test_validation_starts_no_jax_backend():
    # Importing the package and validating (also a bad value) must leave JAX's backends
    # unstarted, so a device setting made afterwards (XLA_FLAGS, jax.distributed) still works.
    code = ("import gan_jax\nfrom gan_jax import config, presets\n"
            "from jax._src import xla_bridge\n"
            "config.make_config(dict(generator='piecewise', g_init=[0, 1, 2, 3]))\n"
            "try:\n    config.make_config(dict(g_init=[1.0]))\nexcept config.ConfigError:\n"
            "    pass\nassert not xla_bridge._backends, xla_bridge._backends\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "gan_jax", *args], capture_output=True, text=True)


BAD_CLI = [
    (["reproduce-seed", "--out", "/proc/no/such/dir"], "--out"),
    (["reproduce-seed", "--out", "/tmp/x", "--seeds", "0"], "--seeds: got 0"),
    (["reproduce-seed"], "--out"),
    (["no-such-command"], "invalid choice"),
]


# Each case in a process of its own (a second each, mostly importing JAX): the default run
# starts one, -m slow all four; every case also runs in-process below.
@pytest.mark.parametrize("args,needle", [
    BAD_CLI[0], *(pytest.param(*case, marks=pytest.mark.slow) for case in BAD_CLI[1:])])
def test_cli_bad_input_exits_2_without_traceback(args, needle):
    p = _cli(*args)
    assert p.returncode == 2, p.stderr
    assert needle in p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize("args,needle", BAD_CLI)
def test_cli_bad_input_exits_2_in_process(args, needle, capsys, monkeypatch, no_compile):
    from gan_jax.commands import cli
    # cli.main gives XLA one device per core through XLA_FLAGS (for processes it starts):
    # restored after the test, so later subprocesses see the environment they had.
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
    try:
        status = cli.main(args)
    except SystemExit as e:        # argparse's usage errors
        status = e.code
    err = capsys.readouterr().err
    assert status == 2, err
    assert needle in err and "Traceback" not in err


def test_conventions_table_lists_every_field_by_its_kind():
    # docs/conventions.md's table of static and traced fields is checked against the one
    # declaration, so a new field cannot be documented under the wrong kind or forgotten.
    import pathlib
    import re
    text = (pathlib.Path(__file__).parents[1] / "docs" / "conventions.md").read_text()
    rows = {line.split("|")[1].strip(): set(re.findall(r"`(\w+)`", line.split("|")[2]))
            for line in text.splitlines() if line.startswith(("| static |", "| traced |",
                                                              "| static facts"))}
    assert set(config.STATIC_FIELDS) <= rows["static"]
    assert set(config.TRACED_FIELDS) <= rows["traced"]
    assert set(config.DERIVED_STATIC) <= rows["static facts of traced fields"]
    assert not (rows["static"] - set(config.STATIC_FIELDS))


def test_readme_configuration_table_names_every_field():
    import pathlib
    import re
    text = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("| `")]
    named = {n for line in table for n in re.findall(r"`(\w+)`", line.split("|")[1])}
    assert set(config.FIELD_NAMES) <= named, set(config.FIELD_NAMES) - named
