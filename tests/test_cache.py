"""The persistent compilation cache: where it lives, how to move or stop it, and that a second
process compiles nothing the first one compiled."""

import json
import subprocess
import sys

import jax
import pytest

from gan_jax import cache
from sweep_testing import ROOT, TINY_BASE


@pytest.fixture
def restore_cache_config():
    enabled = jax.config.jax_enable_compilation_cache
    directory = jax.config.jax_compilation_cache_dir
    min_time = jax.config.jax_persistent_cache_min_compile_time_secs
    yield
    jax.config.update("jax_enable_compilation_cache", enabled)
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", min_time)


def test_setting_environment_and_default(monkeypatch, tmp_path, restore_cache_config):
    monkeypatch.delenv(cache.ENV, raising=False)
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.delenv(cache.MIN_TIME_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    assert cache.configure() == str(tmp_path / "xdg" / "gan_jax" / "xla")
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / "xdg" / "gan_jax" / "xla")
    # every program is stored, not only those that took JAX's default second to compile
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 0.0
    monkeypatch.setenv(cache.MIN_TIME_ENV, "2")
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 2.0)
    cache.configure(str(tmp_path / "mine"))
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 2.0   # the user's choice
    monkeypatch.setenv(cache.ENV, str(tmp_path / "mine"))
    assert cache.configure() == str(tmp_path / "mine")
    monkeypatch.setenv(cache.ENV, "off")
    assert cache.configure() is None and not jax.config.jax_enable_compilation_cache
    assert cache.configure(str(tmp_path / "flag")) == str(tmp_path / "flag")
    assert jax.config.jax_enable_compilation_cache


# A process that runs one tiny configuration and reports JAX's cache events.
PROGRAM = f"""
import json, jax
from jax import monitoring
events = []
monitoring.register_event_listener(lambda name, **kw: events.append(name))
import gan_jax
cfg = gan_jax.make_config({TINY_BASE!r})
gan_jax.run_batch([cfg, cfg], [0, 1])
print(json.dumps({{"hits": events.count("/jax/compilation_cache/cache_hits"),
                  "misses": events.count("/jax/compilation_cache/cache_misses")}}))
"""


@pytest.mark.slow
def test_a_second_process_compiles_nothing_the_first_compiled(tmp_path):
    env = dict(__import__("os").environ, PYTHONPATH=ROOT, **{cache.ENV: str(tmp_path / "c")})
    env.pop(cache.MIN_TIME_ENV, None)   # the default: every program stored, small ones too
    runs = []
    for _ in range(2):
        p = subprocess.run([sys.executable, "-c", PROGRAM], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        runs.append(json.loads(p.stdout.strip().splitlines()[-1]))
    first, second = runs
    assert first["misses"] > 0
    assert second["misses"] == 0 and second["hits"] >= first["misses"]
