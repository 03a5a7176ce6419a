"""Bad input fails before any compilation, with a message naming field, value and rule."""

import subprocess
import sys

import pytest

from gan_jax import config, engine

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
    (dict(eval_samples=0), "eval_samples", "positive integer"),
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


@pytest.mark.parametrize("values,field,allowed", BAD)
def test_bad_config_names_field_value_and_rule(values, field, allowed):
    before = engine.compiled_run.cache_info().currsize
    with pytest.raises(config.ConfigError) as e:
        config.make_config(values)
    msg = str(e.value)
    assert msg.startswith(field + ":"), msg
    if "unknown field" not in msg:
        value = list(values.values())[-1]
        assert repr(value) in msg or str(value) in msg, msg
    assert allowed in msg, msg
    assert engine.compiled_run.cache_info().currsize == before     # nothing compiled


def test_good_config_round_trips():
    cfg = config.make_config(dict(generator="mlp", discriminator="mlp", g_init=None, lr_d=0.1))
    assert config.make_config(cfg.to_dict()) == cfg


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "gan_jax", *args], capture_output=True, text=True)


@pytest.mark.parametrize("args,needle", [
    (["reproduce-seed", "--out", "/proc/no/such/dir"], "--out"),
    (["reproduce-seed", "--out", "/tmp/x", "--seeds", "0"], "--seeds: got 0"),
    (["reproduce-seed"], "--out"),
    (["no-such-command"], "invalid choice"),
])
def test_cli_bad_input_exits_2_without_traceback(args, needle):
    p = _cli(*args)
    assert p.returncode == 2, p.stderr
    assert needle in p.stderr
    assert "Traceback" not in p.stderr
