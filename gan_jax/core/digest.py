"""Digests of code: what a kept program's key covers beyond the package's source.

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
import marshal
import os
import sys
import types
import warnings
from typing import Any

import jax

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
    "core.rand", "core.registry", "components.data", "components.models", "components.losses",
    "components.optim", "components.metrics", "components.methods", "config", "training.train",
    "analysis.exact"))
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
