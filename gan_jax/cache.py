"""JAX's persistent compilation cache, on by default, in a per-user directory.

A compiled program is stored on disk under a key that hashes the program, the compiler's
version, the device kind and count and the XLA flags, so a rerun, a `--resume`, a job-array
shard, `reproduce-seed` and the test suite all load what an earlier process compiled instead
of compiling it again.

Where it lives, first match wins:

* `GAN_JAX_CACHE=DIR` (environment) or `--compile-cache DIR` (command line): that directory;
  `off` (or `0`, `none`, `false`) turns the cache off;
* JAX's own `JAX_COMPILATION_CACHE_DIR`, if set: left as it is;
* otherwise `$XDG_CACHE_HOME/gan_jax/xla`, by default `~/.cache/gan_jax/xla`.

Sharing. Several processes, and hosts on a shared file system, may use one directory: entries
are content-addressed, so a process never loads another program than the one it asked for; an
entry is only ever added, never changed; and an entry left incomplete by a process killed while
writing it fails to decompress when read, after which JAX warns and compiles the program again.
The cache grows without bound; delete the directory to empty it.

What is stored. Every program, however fast it compiled: JAX by default stores only programs
that took a second or more, which leaves the many small programs of a command (drawing keys,
stacking hyperparameters, the tables' reductions) and of the test suite to be compiled again
by every process. `JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`, if set, is left in charge.
"""

from __future__ import annotations

import os

import jax

ENV = "GAN_JAX_CACHE"
OFF = ("off", "0", "none", "false", "")
MIN_TIME_ENV = "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"


def default_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "gan_jax", "xla")


def configure(setting: str | None = None) -> str | None:
    """Point JAX's persistent compilation cache at its directory, or turn it off.

    Args:
      setting: a directory, or "off"; None: the environment's choice (module docstring).

    Returns:
      The cache directory in use, or None when the cache is off. Call it before the first
      compilation; later compilations follow a new setting too.
    """
    if setting is None:
        setting = os.environ.get(ENV)
        if setting is None and os.environ.get("JAX_COMPILATION_CACHE_DIR"):
            return os.environ["JAX_COMPILATION_CACHE_DIR"]
        if setting is None:
            setting = default_dir()
    if setting.strip().lower() in OFF:
        jax.config.update("jax_enable_compilation_cache", False)
        return None
    path = os.path.abspath(os.path.expanduser(setting))
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", path)
    if MIN_TIME_ENV not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return path
