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

Code outside the package. The package's source is in the fingerprint; a component registered
from elsewhere (a plugin file, a notebook cell) is not, so a program that uses one is keyed by
that component's code as well (:func:`component_token`: its functions' bytecode, constants,
closures and the globals they read, followed into the user's own functions and modules). The
same holds for a module of this package patched at run time (a function or constant replaced
after import): the replacement's code enters the key. Where a component's code cannot be
followed (an object of a kind the digest does not know), its programs are not kept by
configuration: they are traced each time (JAX's own cache still holds their compiled code, keyed
by the program itself), and a warning says so once per component.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import marshal
import os
import pathlib
import sys
import tempfile
import types
import warnings
from typing import Any, Callable

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
    root = pathlib.Path(__file__).resolve().parent
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


# Distributions whose versions are in the fingerprint: code of theirs that a component calls
# is identified by its name (module and qualified name) alone.
LIBRARIES = ("jax", "jaxlib", "optax", "chex", "numpy", "scipy")
_LIBRARY_MODULES = ("jax", "jaxlib", "optax", "chex", "numpy", "scipy", "ml_dtypes",
                    "opt_einsum", "builtins", "math", "cmath", "functools", "operator",
                    "itertools", "typing", "collections", "dataclasses", "enum", "abc",
                    "numbers", "types", "warnings", "re")
_MAX_NODES = 20_000     # objects one digest may visit before it gives up


class _Unfollowable(Exception):
    """A component's code cannot be digested (an object of an unknown kind)."""


def _is_library(module: str | None) -> bool:
    return bool(module) and module.split(".")[0] in _LIBRARY_MODULES


def _own(module: str | None) -> bool:
    return bool(module) and module.split(".")[0] == "gan_jax"


class _Digest:
    """The digest of an object's code and data, following functions into the globals and
    closures they read (module docstring, "Code outside the package")."""

    def __init__(self):
        self.h = hashlib.sha256()
        self.seen: dict[int, int] = {}
        self.keep: list = []         # objects visited, alive until the digest is done

    def put(self, *parts):
        for p in parts:
            self.h.update(repr(p).encode() + b"\0")

    def feed(self, obj) -> None:
        if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
            return self.put(type(obj).__name__, obj)
        if id(obj) in self.seen:
            return self.put("seen", self.seen[id(obj)])
        if len(self.seen) >= _MAX_NODES:
            raise _Unfollowable(f"more than {_MAX_NODES} objects")
        self.seen[id(obj)] = len(self.seen)
        self.keep.append(obj)
        if isinstance(obj, (tuple, list, set, frozenset)):
            self.put(type(obj).__name__, len(obj))
            items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
            if type(obj) not in (tuple, list, set, frozenset):
                self.feed(type(obj))
            for x in items:
                self.feed(x)
            return None
        if isinstance(obj, dict):
            self.put("dict", len(obj))
            for k in sorted(obj, key=repr):
                self.feed(k)
                self.feed(obj[k])
            return None
        if hasattr(obj, "__array__") and hasattr(obj, "dtype") and hasattr(obj, "shape"):
            import numpy as np
            if jax.dtypes.issubdtype(obj.dtype, jax.dtypes.prng_key):   # a typed key
                self.put("key", str(jax.random.key_impl(obj)))
                obj = jax.random.key_data(obj)
            a = np.asarray(obj)
            return self.put("array", str(a.dtype), a.shape, hashlib.sha256(a.tobytes()).hexdigest())
        if isinstance(obj, types.ModuleType):
            return self.module(obj)
        if isinstance(obj, types.FunctionType):
            return self.function(obj)
        if isinstance(obj, types.MethodType):
            self.put("method")
            self.feed(obj.__func__)
            return self.feed(obj.__self__)
        if isinstance(obj, types.CodeType):
            return self.code(obj, {})
        if isinstance(obj, functools.partial):
            self.put("partial")
            return self.feed((obj.func, obj.args, obj.keywords))
        if isinstance(obj, type):
            return self.cls(obj)
        if isinstance(obj, (types.BuiltinFunctionType, types.BuiltinMethodType)) or \
                _is_library(getattr(obj, "__module__", None)) and callable(obj):
            return self.put("named", getattr(obj, "__module__", None),
                            getattr(obj, "__qualname__", getattr(obj, "__name__", repr(obj))))
        # An instance: its class and its state.
        self.feed(type(obj))
        if hasattr(obj, "__dict__"):
            return self.feed(dict(vars(obj)))
        if _is_library(type(obj).__module__):      # e.g. a dtype: its repr says what it is
            return self.put("library object", repr(obj))
        raise _Unfollowable(f"an object of type {type(obj).__module__}."
                            f"{type(obj).__qualname__}")

    def module(self, mod) -> None:
        name = mod.__name__
        if _is_library(name) or _own(name):
            return self.put("module", name)      # versions / the package source: fingerprint
        path = getattr(mod, "__file__", None)
        if path and os.path.isfile(path):
            with open(path, "rb") as f:
                return self.put("module", name, hashlib.sha256(f.read()).hexdigest())
        raise _Unfollowable(f"module {name} has no source file")

    def cls(self, c) -> None:
        if _is_library(c.__module__):
            return self.put("class", c.__module__, c.__qualname__)
        if _own(c.__module__) and _unpatched(c.__module__, c.__qualname__, c):
            return self.put("class", c.__module__, c.__qualname__)
        self.put("class", c.__qualname__, [b.__qualname__ for b in c.__mro__])
        for k, v in sorted(vars(c).items()):
            if k not in ("__dict__", "__weakref__", "__module__", "__doc__") and \
                    not isinstance(v, (types.GetSetDescriptorType, types.MemberDescriptorType)):
                self.put(k)
                self.feed(v)

    def function(self, fn) -> None:
        module = fn.__module__
        if _is_library(module):
            return self.put("named", module, fn.__qualname__)
        if _own(module) and _unpatched(module, fn.__qualname__, fn):
            return self.put("own", module, fn.__qualname__)
        self.put("function", fn.__qualname__)     # where it is defined does not matter
        self.code(fn.__code__, fn.__globals__)
        self.feed(fn.__defaults__)
        self.feed(fn.__kwdefaults__)
        for cell in fn.__closure__ or ():
            try:
                self.feed(cell.cell_contents)
            except ValueError:         # an empty cell
                self.put("empty cell")

    def code(self, code, globals_: dict) -> None:
        # The bytecode, constants and names, without the file name and line numbers.
        self.put(hashlib.sha256(marshal.dumps(_bare(code))).hexdigest())
        for name in _names(code):
            if name in globals_:
                self.put("global", name)
                self.feed(globals_[name])


def _bare(code):
    """A code object without where it stands (file, line numbers), nested ones too, so that a
    function moved within its file keeps its digest."""
    consts = tuple(_bare(c) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_filename="", co_firstlineno=1, co_linetable=b"", co_consts=consts)


def _names(code) -> list[str]:
    out = list(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            out += _names(c)
    return sorted(set(out))


def _unpatched(module: str, qualname: str, obj) -> bool:
    """Whether `obj` is what the package's module defines under that name (its source is in
    the fingerprint)."""
    mod = sys.modules.get(module)
    found = mod
    for part in qualname.split("."):
        found = getattr(found, part, None)
        if found is None:
            return False
    return found is obj


def code_digest(obj) -> str | None:
    """A digest of an object's code and data (the functions it holds, the globals and
    closures they read, followed into the user's own code), or None where it cannot be
    followed."""
    d = _Digest()
    try:
        d.feed(obj)
    except (_Unfollowable, RecursionError) as e:
        return _refuse(obj, str(e))
    except Exception as e:        # an object that breaks while being read: not followed
        return _refuse(obj, f"{type(e).__name__}: {e}")
    return d.h.hexdigest()


_WARNED: set[str] = set()


def _refuse(obj, why: str) -> None:
    label = getattr(obj, "__qualname__", type(obj).__qualname__)
    if label not in _WARNED:
        _WARNED.add(label)
        warnings.warn(f"gan_jax: the code of {label} cannot be followed ({why}); programs "
                      "that use it are traced each time instead of kept by configuration",
                      stacklevel=3)
    return None


# The package's modules whose code is traced into programs: a patch of one of them changes
# what a program computes. (Patching the engine, the cache or the sweep changes how programs
# are built or run, not their numbers.)
TRACED_MODULES = tuple(f"gan_jax.{m}" for m in (
    "rand", "data", "models", "losses", "optim", "metrics", "methods", "config", "train",
    "exact", "registry"))
# What those modules hold at import (seal), to find what is patched later.
_SEALED: dict[str, dict[str, int]] = {}


def seal() -> None:
    """Remember what each module of TRACED_MODULES binds, so that a later replacement (a
    patched function or constant) is seen by :func:`patched`. Called once by
    gan_jax/__init__.py after the package is imported."""
    for name in TRACED_MODULES:
        mod = sys.modules.get(name)
        if isinstance(mod, types.ModuleType) and name not in _SEALED:
            _SEALED[name] = dict(_bindings(mod))


def _bindings(mod):
    """(name, value) of a module's bindings, and of the attributes of the classes it
    defines (as "Class.attr"), without dunders."""
    for k, v in list(vars(mod).items()):
        if k.startswith("__"):
            continue
        yield k, (id(v), v)
        if isinstance(v, type) and v.__module__ == mod.__name__:
            for a, w in list(vars(v).items()):
                if not a.startswith("__"):
                    yield f"{k}.{a}", (id(w), w)


def patched() -> list[tuple[str, str, Any]]:
    """(module, name, value) of every binding of the package's modules (and of their classes'
    attributes) that differs from what it was when sealed."""
    out = []
    for name, sealed in _SEALED.items():
        mod = sys.modules.get(name)
        if mod is None:
            continue
        for k, (ident, value) in _bindings(mod):
            if k not in sealed or sealed[k][0] != ident:
                out.append((name, k, value))
    return out


def component_token(components) -> str | None:
    """The part of a program's key that covers code outside the package's source: the digests
    of `components` ((kind, name, object) of components registered from outside the package)
    and of every patched binding of its modules. "" when there is none; None where some code
    cannot be followed (then the program is not kept by configuration)."""
    parts = []
    for kind, name, obj in components:
        digest = code_digest(obj)
        if digest is None:
            return None
        parts.append((kind, name, digest))
    for module, name, value in patched():
        if isinstance(value, (types.ModuleType,)) and value.__name__.startswith("gan_jax"):
            continue
        digest = code_digest(value)
        if digest is None:
            return None
        parts.append(("patched", module, name, digest))
    return hashlib.sha256(repr(parts).encode()).hexdigest() if parts else ""


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
