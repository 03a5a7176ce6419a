"""The persistent compilation cache: where it lives, how to move or stop it, and that a second
process compiles nothing the first one compiled."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import gan_jax
from gan_jax.engine import cache, programs as engine
from gan_jax.sweep import plan
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


# A process that runs one tiny configuration and reports the caches' events and its numbers.
PROGRAM = f"""
import json, jax, numpy as np
from jax import monitoring
events = []
monitoring.register_event_listener(lambda name, **kw: events.append(name))
import gan_jax
from gan_jax.engine import cache
cfg = gan_jax.make_config({TINY_BASE!r})
out = gan_jax.run_batch([cfg, cfg], [0, 1])
print(json.dumps({{"hits": events.count("/jax/compilation_cache/cache_hits"),
                  "misses": events.count("/jax/compilation_cache/cache_misses"),
                  "program_hits": events.count(cache.HIT_EVENT),
                  "program_misses": events.count(cache.MISS_EVENT),
                  "numbers": [np.asarray(v).tolist() for v in jax.tree.leaves(out)]}}))
"""


def _run_tiny(env):
    p = subprocess.run([sys.executable, "-c", PROGRAM], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_second_process_compiles_nothing_the_first_compiled(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT, **{cache.ENV: str(tmp_path / "c")})
    env.pop(cache.MIN_TIME_ENV, None)   # the default: every program stored, small ones too
    first = _run_tiny(env)
    stored = sorted((tmp_path / "c" / cache.PROGRAMS).iterdir())
    # the training and evaluation programs, kept lowered by configuration as well
    assert first["misses"] > 0 and first["program_misses"] == 2 and len(stored) == 2
    second = _run_tiny(env)
    # nothing compiled, and the two programs found by configuration, without tracing
    assert second["misses"] == 0 and second["hits"] > 0
    assert second["program_hits"] == 2 and second["program_misses"] == 0
    assert second["numbers"] == first["numbers"]
    # A damaged entry is not used: that program is traced and kept again, and XLA's code
    # still comes from JAX's cache; the numbers are the same.
    stored[0].write_bytes(stored[0].read_bytes()[:100])
    third = _run_tiny(env)
    assert third["program_hits"] == 1 and third["program_misses"] == 1
    assert third["misses"] == 0 and third["numbers"] == first["numbers"]
    assert len(list((tmp_path / "c" / cache.PROGRAMS).iterdir())) == 2


def test_program_keys_follow_what_defines_a_program():
    key = cache.program_key("training", "config A", None, ((4,), "float32"))
    assert key == cache.program_key("training", "config A", None, ((4,), "float32"))
    assert key != cache.program_key("training", "config B", None, ((4,), "float32"))
    assert key != cache.program_key("training", "config A", None, ((8,), "float32"))
    assert key != cache.program_key("training", "config A", (2,), ((4,), "float32"))
    assert key != cache.program_key("evaluation", "config A", None, ((4,), "float32"))


def test_lowered_programs_compute_the_same_numbers_and_are_found_again(monkeypatch, tmp_path):
    """A program built through its kept lowered form computes what the program traced
    directly computes, bit for bit; a second build finds it without tracing."""
    cfg = gan_jax.make_config(TINY_BASE)
    programs = tmp_path / "programs"

    def run(directory):
        monkeypatch.setattr(cache, "programs_dir", lambda: directory)
        engine.forget_compiled()
        return engine.run_batch([cfg] * 3, [0, 1, 2])

    direct = run(None)
    kept = run(str(programs))
    assert len(list(programs.iterdir())) == 2
    jax.tree.map(np.testing.assert_array_equal, kept, direct)
    traced = []
    monkeypatch.setattr(engine, "_export", lambda *a: traced.append(a))
    again = run(str(programs))
    assert traced == []
    jax.tree.map(np.testing.assert_array_equal, again, direct)

    def cannot_export(*_):
        raise ValueError("not exportable")

    # a program that jax.export cannot hold is built as it is, and not kept
    monkeypatch.setattr(engine, "_export", cannot_export)
    unkept = run(str(tmp_path / "other"))
    assert not (tmp_path / "other").exists()
    jax.tree.map(np.testing.assert_array_equal, unkept, direct)
    engine.forget_compiled()


def test_memory_estimates_are_kept(monkeypatch, tmp_path):
    """Planning a sweep again reads each group's memory estimate instead of tracing it."""
    monkeypatch.setattr(cache, "programs_dir", lambda: str(tmp_path))
    cfg = gan_jax.make_config(TINY_BASE)
    static = gan_jax.config.static_part(cfg)
    plan._estimate.cache_clear()
    first = plan.estimate_run_bytes(static, cfg)
    plan._estimate.cache_clear()

    def no_tracing(_):
        raise AssertionError("traced again")

    monkeypatch.setattr(plan, "make_run", no_tracing)
    assert plan.estimate_run_bytes(static, cfg) == first > 0
    plan._estimate.cache_clear()
