"""JAX's persistent compilation cache, on by default, in a per-user directory.

It is set up by the commands (`python -m gan_jax`, the experiment scripts) and by the engine
when it first builds a program (`ensure_configured`), not by importing the package: `import
gan_jax` leaves `jax.config` as it was, and a process that set JAX's cache itself keeps it.

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

Programs by configuration. JAX finds an entry by the lowered program, so a filled cache still
costs tracing and lowering: 1-2 s per program in Python, most of what a rerun waits for. The
engine's programs are therefore also kept lowered, under `DIR/programs`, keyed by what
defines them without tracing: their configuration, the shapes and placement of their inputs,
and `fingerprint()` (this package's source, the versions of jax, jaxlib, optax and chex, the
XLA flags, JAX's numerics flags, the devices' kind and count), so that any change to one of
those reads none of the old entries. An entry is a `jax.export` serialization of the lowered
program (StableHLO) and the structure of its outputs; calling it lowers a small wrapper, and
XLA's compiled code comes from JAX's cache as above, or from the compiler; the numbers are
those of the program traced directly, bit for bit. The sweep planner keeps each group's memory
estimate there too, which it would otherwise trace the group for. An entry is written whole
under a temporary name and renamed into place; one that cannot be read is made again and
replaced. An entry is data only: the exported program's bytes and a plain (JSON) description
of its output's structure, read without pickle, so a kept entry cannot run Python code (JAX's
own entries are XLA executables: keep the directory one you trust, as for any compiler cache).

Code outside the package is keyed by its digest (`gan_jax.core.digest`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import pathlib
import sys
import tempfile
from typing import Any, Callable

import jax

from gan_jax.core.digest import LIBRARIES

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
            _STATE["configured"] = True
            return os.environ["JAX_COMPILATION_CACHE_DIR"]
        if setting is None:
            setting = default_dir()
    _STATE["configured"] = True
    if setting.strip().lower() in OFF:
        jax.config.update("jax_enable_compilation_cache", False)
        return None
    path = os.path.abspath(os.path.expanduser(setting))
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", path)
    if MIN_TIME_ENV not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return path


_STATE = {"configured": False}


def ensure_configured() -> None:
    """Configure the cache the environment's way (:func:`configure`) unless that was done
    already, or the process set JAX's cache directory itself: the engine calls this when it
    first builds a program, so importing the package changes no JAX setting."""
    if _STATE["configured"]:
        return
    _STATE["configured"] = True
    if jax.config.jax_compilation_cache_dir or not jax.config.jax_enable_compilation_cache:
        return       # the process's own choice, left as it is
    configure()


# ----------------------------------------------------------------------------- programs

PROGRAMS = "programs"       # subdirectory of the cache directory
HIT_EVENT = "/gan_jax/program_cache/hits"   # jax.monitoring events, one per entry looked up
MISS_EVENT = "/gan_jax/program_cache/misses"
# JAX flags that change what a traced program computes.
_NUMERICS_FLAGS = ("jax_enable_x64", "jax_threefry_partitionable", "jax_default_prng_impl",
                   "jax_default_matmul_precision", "jax_numpy_dtype_promotion",
                   "jax_numpy_rank_promotion", "jax_enable_custom_prng")


def programs_dir() -> str | None:
    """Where programs are kept by configuration: None while JAX's cache is off, and in a
    computation of several processes (whose programs span hosts)."""
    if not jax.config.jax_enable_compilation_cache or not jax.config.jax_compilation_cache_dir:
        return None
    if jax.process_count() > 1:
        return None
    return os.path.join(jax.config.jax_compilation_cache_dir, PROGRAMS)


@functools.cache
def _source_digest() -> str:
    h = hashlib.sha256()
    root = pathlib.Path(__file__).resolve().parent.parent      # the package
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def fingerprint() -> str:
    """Everything besides a program's configuration and inputs that its lowered program
    depends on (module docstring)."""
    versions = []
    for dist in LIBRARIES:
        try:
            versions.append((dist, importlib.metadata.version(dist)))
        except importlib.metadata.PackageNotFoundError:
            versions.append((dist, None))
    flags = [(name, str(getattr(jax.config, name, None))) for name in _NUMERICS_FLAGS]
    devices = sorted({(d.platform, d.device_kind) for d in jax.devices()})
    return repr((_source_digest(), versions, os.environ.get("XLA_FLAGS", ""), flags, devices,
                 jax.device_count()))


def call_shape(tree) -> tuple:
    """What identifies the inputs of a call for a key: their structure, shapes and dtypes
    (arrays or ShapeDtypeStructs)."""
    return (str(jax.tree.structure(tree)),
            tuple((tuple(x.shape), str(x.dtype)) for x in jax.tree.leaves(tree)))


def program_key(*parts) -> str:
    """The key of a program defined by `parts` (reprs that fix it: its kind, configuration,
    input shapes and placement) under this process's fingerprint."""
    return hashlib.sha256(repr((fingerprint(), parts)).encode()).hexdigest()


def _json_loads(data: bytes):
    return json.loads(data.decode())


def _json_dumps(value) -> bytes:
    return json.dumps(value).encode()


def load(key: str, decode: Callable[[bytes], Any] = _json_loads):
    """`decode` of the entry kept under `key` (default: JSON), or None when there is none or
    it cannot be read or decoded (a damaged entry is made again by the caller). Entries are
    data: nothing read here is unpickled."""
    directory = programs_dir()
    if directory is None:
        return None
    try:
        with open(os.path.join(directory, key), "rb") as f:
            value = decode(f.read())
    except Exception:    # none, damaged, or written by another version: made again
        jax.monitoring.record_event(MISS_EVENT)
        return None
    jax.monitoring.record_event(HIT_EVENT)
    return value


def store(key: str, value, encode: Callable[[Any], bytes] = _json_dumps) -> None:
    """Keep `encode(value)` under `key`, whole or not at all: a value that cannot be encoded,
    or a directory that cannot be written, is skipped."""
    directory = programs_dir()
    if directory is None:
        return
    try:
        data = encode(value)
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, os.path.join(directory, key))
        except BaseException:
            os.unlink(tmp)
            raise
    except Exception:
        return


# ----------------------------------------------------------------------------- tree structures

def encode_tree(treedef) -> Any:
    """A JSON-ready description of a pytree structure (tuples, lists, dicts, None, and
    NamedTuples by module and name), or None for a structure holding other node types."""
    skeleton = jax.tree.unflatten(treedef, [0] * treedef.num_leaves)

    def enc(node):
        if node is None:
            return {"t": "none"}
        if type(node) is int and node == 0:
            return {"t": "leaf"}
        if type(node) in (tuple, list):
            return {"t": type(node).__name__, "c": [enc(x) for x in node]}
        if type(node) is dict:
            keys = list(node)
            if not all(isinstance(k, str) for k in keys):
                raise ValueError("dict keys")
            return {"t": "dict", "k": keys, "c": [enc(node[k]) for k in keys]}
        if isinstance(node, tuple) and hasattr(type(node), "_fields"):
            return {"t": "nt", "m": type(node).__module__, "q": type(node).__qualname__,
                    "c": [enc(x) for x in node]}
        raise ValueError(type(node).__name__)

    try:
        return enc(skeleton)
    except ValueError:
        return None


def decode_tree(desc) -> Any:
    """The pytree structure `encode_tree` described. A NamedTuple is looked up among the
    modules already imported (nothing is imported or run); ValueError if one is missing."""
    def dec(d):
        t = d["t"]
        if t == "none":
            return None
        if t == "leaf":
            return 0
        if t in ("tuple", "list"):
            items = [dec(x) for x in d["c"]]
            return tuple(items) if t == "tuple" else items
        if t == "dict":
            return {k: dec(x) for k, x in zip(d["k"], d["c"])}
        if t == "nt":
            cls = sys.modules.get(d["m"])
            for part in d["q"].split("."):
                cls = getattr(cls, part, None)
            if not (isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields")):
                raise ValueError(f"no NamedTuple {d['m']}.{d['q']} is loaded")
            return cls(*(dec(x) for x in d["c"]))
        raise ValueError(f"unknown node {t!r}")

    return jax.tree.structure(dec(desc))
