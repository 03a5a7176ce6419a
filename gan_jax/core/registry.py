"""Components by protocol, registered by anyone: one live table per kind.

A *component* is an object that follows its kind's protocol (docs/extending.md): a loss
(`losses.Loss`), a target (`data.Preset`, or any object with `dim` and `sample(key, n)`), a
generator or discriminator family (`models.Family`), an optimiser (a builder of an
`optax.GradientTransformation`), a training method (`methods.MethodSpec`) or a metric
(`metrics.Metric`). The module that owns a kind
declares its table here, with the check its protocol needs, and registers its built-ins
through :func:`register`, the same call a user's plugin makes:

    import gan_jax as gj

    @gj.register("loss", "my_loss")       # or gj.register("loss", "my_loss", obj)
    def my_loss():
        return gj.Loss(d_loss=..., g_loss=...)

(as a decorator on a function of no arguments, the function's result is registered; on any
other object, the object itself.) Every reader of a kind reads its table when it runs:
configuration checks, the sweep planner, the tables, `python -m gan_jax list` and the help
texts. Nothing in the library copies a table's names, so a component registered after import
is a choice like a built-in one.

Each entry remembers where it came from (`Entry.origin`, the module that defined it) and
whether the library itself registered it (`Entry.builtin`). Compiled programs kept on disk
are keyed by the code of the components they use (`gan_jax.core.digest.component_token`), so a
plugin changed between two runs is never answered by the program of its old code.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import re
import sys
from typing import Any, Callable, NamedTuple

from gan_jax.core.errors import ConfigError, is_finite_number, is_int, suggest

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
OPTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# The kinds whose components may declare traced options (numbers every run of one program
# holds its own value of): their functions are built with the run's traced numbers. A
# target's, a family's or a metric's options are static (they may change shapes, and the
# evaluation program reads no traced number).
TRACED_OPTION_KINDS = ("loss", "method", "stabiliser", "wrapper")


class Option(NamedTuple):
    """An option a component declares for itself (`options=(Option(...), ...)` on a Loss,
    MethodSpec, Metric, Family or Preset), set in a configuration as `"<component>.<name>"`
    (`make_config({"ramargin.margin": 0.5})`, a sweep file's `"ramargin.margin" = [0.5, 1]`)
    and validated like a built-in field: `FIELD: got VALUE; RULE`.

    name: letters, digits and '_'.
    default: its value when a configuration leaves it unset; its type (bool, int, float or
      str) is the option's type (an integer given for a float option is stored as a float).
    doc: one line on what it does (`python -m gan_jax list`).
    check: None, or value -> None (allowed) or the rule it breaks, e.g. "must be in (0, 1]",
      checked after the type.
    traced: a float that runs of one compiled program each hold their own value of (a loss's,
      a method's, a stabiliser's or a wrapper's only; it reaches the component as an f32[]
      array), rather than a static value that picks the program.
    legacy: the configuration field it was before it became the component's own: run ids
      keep hashing it under that name, and configurations and records that give that field
      are read as the option (built-in components only).
    """

    name: str
    default: Any
    doc: str = ""
    check: Callable[[Any], "str | None"] | None = None
    traced: bool = False
    legacy: str | None = None

    @property
    def type(self) -> type:
        return type(self.default)

    def problem(self, value) -> str | None:
        """The rule `value` breaks, or None: the option's type, then its own check."""
        kind = self.type
        if kind is bool and not isinstance(value, bool):
            return "must be true or false"
        if kind is int and not is_int(value):
            return "must be an integer"
        if kind is float and not (is_finite_number(value) and not isinstance(value, bool)):
            return "must be a finite number"
        if kind is str and not isinstance(value, str):
            return "must be a string"
        return self.check(value) if self.check is not None else None

    def normalised(self, value):
        """A value as a configuration stores it (an integer for a float option as a float)."""
        return float(value) if self.type is float else value


def options_of(obj) -> tuple[Option, ...]:
    """The options a component declares (its `options`), () for none."""
    options = getattr(obj, "options", ())
    return tuple(options) if isinstance(options, (tuple, list)) else ()


def _options_problem(kind: str, obj) -> str | None:
    """What is wrong with a component's declared options, or None."""
    options = getattr(obj, "options", ())
    if not isinstance(options, (tuple, list)) or not all(isinstance(o, Option) for o in options):
        return "options must be a tuple of gan_jax.Option(name, default, ...)"
    if options and kind == "optimizer":
        return "an optimiser declares no options (it reads the configuration's beta1, ...)"
    names = [o.name for o in options]
    for o in options:
        if not isinstance(o.name, str) or not OPTION_NAME.match(o.name):
            return (f"option name: got {o.name!r}; must start with a letter and hold only "
                    "letters, digits and '_'")
        if names.count(o.name) > 1:
            return f"option {o.name!r} is declared twice"
        if o.type not in (bool, int, float, str):
            return (f"option {o.name!r}: its default {o.default!r} must be a bool, int, float "
                    "or str (the default's type is the option's)")
        if o.check is not None and not callable(o.check):
            return f"option {o.name!r}: check must be a function of the value"
        if o.traced and (kind not in TRACED_OPTION_KINDS or o.type is not float):
            return (f"option {o.name!r}: only a float option of a "
                    f"{', '.join(TRACED_OPTION_KINDS[:-1])} or {TRACED_OPTION_KINDS[-1]} "
                    "can be traced")
        problem = o.problem(o.default)
        if problem:
            return f"option {o.name!r}: default {o.default!r}; {problem}"
    return None


class Entry(NamedTuple):
    """A registered component: its object, one line saying what it is, where it came from."""

    obj: Any
    doc: str
    origin: str            # module that defined it (its `__module__`, or the registering one)
    builtin: bool          # registered by gan_jax itself


class Kind(NamedTuple):
    """A kind of component: its live table (name -> object), the entries behind it, the check
    an object must pass (None, or the protocol it breaks), and a line on what it is."""

    table: dict
    entries: dict
    check: Callable[[Any], "str | None"]
    doc: str
    field: str             # the configuration field that names a component of this kind


KINDS: dict[str, Kind] = {}


def declare(kind: str, check: Callable[[Any], "str | None"], doc: str, field: str) -> dict:
    """Declare a kind of component (by the module that owns its protocol); returns its table,
    the live dict every reader of the kind reads."""
    if kind in KINDS:
        raise ValueError(f"declare: kind {kind!r} is declared already")
    KINDS[kind] = Kind({}, {}, check, doc, field)
    return KINDS[kind].table


def kind_of(kind: str) -> Kind:
    if kind not in KINDS:
        raise ConfigError(f"kind: got {kind!r}; must be one of {', '.join(KINDS)}"
                          f"{suggest(str(kind), tuple(KINDS))}")
    return KINDS[kind]


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0].strip() if (text or "").strip() else ""


def origin(obj) -> str:
    """The module that defined a component: a function's or class's own, else that of the
    first function it holds (a Loss's d_loss, a Family's build, a target's sample)."""
    if isinstance(obj, type) or callable(obj) and hasattr(obj, "__code__"):
        return obj.__module__
    for attr in ("build", "d_loss", "fn", "sample"):
        module = getattr(getattr(obj, attr, None), "__module__", None)
        if module:
            return module
    return type(obj).__module__


def register(kind: str, name: str, obj: Any = None, *, doc: str | None = None,
             replace: bool = False, declared_in: str | None = None):
    """Register `obj` as the component `name` of `kind`; with `obj` omitted, a decorator.

    Args:
      kind: "loss", "target", "generator", "discriminator", "optimizer", "method" or
        "metric" (`kinds()`).
      name: the name a configuration gives it (letters, digits, '_', '.', '-'; a letter
        first).
      obj: the component, which must follow the kind's protocol (docs/extending.md). As a
        decorator on a function of no arguments, the function's result; on anything else, the
        object itself.
      doc: one line on what it is (default: the first line of the object's docstring).
      replace: allow replacing a built-in component of that name. A component registered
        outside the library may be registered again under its name (a notebook cell run
        twice); the programs kept on disk follow its code (gan_jax.engine.cache).
      declared_in: the file that declared the component, when the library registers it on a
        user's behalf (a target declared in a sweep file's [targets]): its origin, and it
        counts as the user's, not a built-in, so its records and kept programs carry its
        digest (`used`).

    Returns:
      `obj` (as a decorator, the decorated object), so a registration can stand where it is
      defined.

    Raises:
      ConfigError: an unknown kind, a malformed name, an object that breaks the protocol, or
        a built-in name without `replace=True`.
    """
    if obj is None:
        def decorator(target):
            made = target() if callable(target) and _no_arguments(target) else target
            register(kind, name, made, doc=doc or _first_line(getattr(target, "__doc__", None)),
                     replace=replace)
            return target
        return decorator
    k = kind_of(kind)
    if not isinstance(name, str) or not NAME.match(name):
        raise ConfigError(f"name: got {name!r}; must start with a letter and hold only letters, "
                          "digits, '_', '.' and '-'")
    problem = k.check(obj) or _options_problem(kind, obj)
    if problem:
        raise ConfigError(f"{kind} {name!r}: {problem}")
    old = k.entries.get(name)
    builtin = declared_in is None and _registering_from_library()
    if not builtin and any(o.legacy for o in options_of(obj)):
        raise ConfigError(f"{kind} {name!r}: an option's `legacy` field name is for the "
                          "library's own components; leave it None")
    if old is not None and old.builtin and not builtin and not replace:
        raise ConfigError(f"{kind} {name!r}: a built-in {kind} has that name; choose another "
                          "name, or pass replace=True to replace it")
    k.entries[name] = Entry(obj, doc if doc is not None else _first_line(
        getattr(obj, "doc", None) or type(obj).__doc__ if not callable(obj) else obj.__doc__),
        declared_in or origin(obj), builtin)
    k.table[name] = obj
    return obj


def _no_arguments(fn) -> bool:
    try:
        return not any(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY,
                                                           p.POSITIONAL_OR_KEYWORD)
                       for p in inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False


def _registering_from_library() -> bool:
    """Whether the code calling `register` is gan_jax's own (a built-in's registration)."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    name = str(frame.f_globals.get("__name__", "")) if frame is not None else ""
    return name == "gan_jax" or name.startswith("gan_jax.")


def unregister(kind: str, name: str) -> None:
    """Remove a component (tests, notebooks); a built-in one cannot be removed."""
    k = kind_of(kind)
    entry = k.entries.get(name)
    if entry is None:
        raise ConfigError(f"{kind}: got {name!r}; no such {kind} is registered")
    if entry.builtin:
        raise ConfigError(f"{kind} {name!r}: a built-in {kind} cannot be removed")
    del k.entries[name], k.table[name]


def table(kind: str) -> dict:
    """The live table of a kind: name -> component."""
    return kind_of(kind).table


def entry(kind: str, name: str) -> Entry:
    return kind_of(kind).entries[name]


def kinds() -> tuple[str, ...]:
    return tuple(KINDS)


def describe() -> list[tuple[str, str, str, str, bool]]:
    """(kind, name, doc, origin, builtin) of every registered component, kind by kind in
    declaration order, each kind's in registration order."""
    return [(kind, name, e.doc, e.origin, e.builtin)
            for kind, k in KINDS.items() for name, e in k.entries.items()]


def used(cfg) -> list[tuple[str, str, Any]]:
    """(kind, name, object) of every component that `cfg` (a RunConfig, StaticConfig or
    EvalConfig) names and that was registered from outside the library: the code a compiled
    program uses beyond the package's own source (gan_jax.core.digest.component_token)."""
    out = []
    for kind, k in KINDS.items():
        value = getattr(cfg, k.field, None)
        for name in value if isinstance(value, tuple) else (value,):
            if name not in k.table:
                continue
            obj, e = k.table[name], k.entries.get(name)
            # A table entry replaced without register() (a patch) counts as the user's.
            if e is None or obj is not e.obj or not e.builtin:
                out.append((kind, name, obj))
    return out


class Declared(NamedTuple):
    """An option of a component a configuration names: its key ("<component>.<option>"),
    the component's kind and name, and the declaration."""

    key: str
    kind: str
    component: str
    option: Option


def declared_options(cfg=None) -> dict[str, Declared]:
    """key -> Declared of the options of every component `cfg` names (a RunConfig,
    StaticConfig or EvalConfig; a field it lacks names nothing), or of every registered
    component when `cfg` is None; keys in kind order, then the components' and their
    options' declaration order.

    Raises:
      ConfigError: two components named together declare the same key (a generator and a
        discriminator family of one name, say).
    """
    out: dict[str, Declared] = {}
    for kind, k in KINDS.items():
        if cfg is None:
            names = tuple(k.table)
        else:
            value = getattr(cfg, k.field, None)
            names = value if isinstance(value, (tuple, list)) else (value,)
        for name in names:
            if not isinstance(name, str):
                continue
            for o in options_of(k.table.get(name)):
                key = f"{name}.{o.name}"
                if key in out and cfg is not None and out[key].kind != kind:
                    raise ConfigError(f"{key}: the {out[key].kind} and the {kind} {name!r} "
                                      "both declare this option; rename one of them")
                out.setdefault(key, Declared(key, kind, name, o))
    return out


def option(cfg, key: str):
    """The value of the option `key` ("<component>.<option>") in `cfg` (a RunConfig,
    StaticConfig or EvalConfig): its own, else the declared default. What a family's
    `build(cfg)` reads its options by; a static option only (traced ones are numbers of the
    run, gan_jax.config.option_values)."""
    values = dict(getattr(cfg, "options", ()))
    if key in values:
        return values[key]
    found = declared_options(cfg).get(key)
    if found is None:
        raise ConfigError(f"{key}: no component this configuration names declares it")
    if found.option.traced:
        raise ValueError(f"{key}: a traced option reaches its component as a number of the "
                         "run (gan_jax.config.option_values), not from the configuration")
    return found.option.default


# ----------------------------------------------------------------------------- plugins

def load_plugins(specs, base: str = ".", where: str = "plugins") -> list[str]:
    """Import user modules that register components, before a configuration is checked.

    Args:
      specs: module names ("mypkg.targets", imported as usual) or paths to `.py` files
        (relative to `base`, e.g. the sweep file's folder). A file is imported under a module
        name made from its absolute path, once per content: loading it again after it changed
        runs it again (a component registered again replaces its earlier code).
      where: the field named in messages ("plugins" in a sweep file, "--plugin" on the
        command line).

    Returns:
      The module names imported.

    Raises:
      ConfigError: naming the entry that is not a list of strings, a file that does not exist,
        or a module that fails to import (with its error).
    """
    if isinstance(specs, str) or not isinstance(specs, (list, tuple)) or \
            not all(isinstance(x, str) and x.strip() for x in specs):
        raise ConfigError(f"{where}: got {specs!r}; must be a list of module names or .py paths")
    loaded = []
    for spec in specs:
        is_file = spec.endswith(".py") or os.sep in spec or "/" in spec
        try:
            if is_file:
                path = os.path.abspath(os.path.join(base, os.path.expanduser(spec)))
                if not os.path.isfile(path):
                    raise ConfigError(f"{where}: got {spec!r}; no such file ({path})")
                with open(path, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()[:16]
                name = "plugin_" + hashlib.sha256(path.encode()).hexdigest()[:12]
                old = sys.modules.get(name)
                if old is None or getattr(old, "__plugin_digest__", None) != digest:
                    module_spec = importlib.util.spec_from_file_location(name, path)
                    module = importlib.util.module_from_spec(module_spec)
                    module.__plugin_digest__ = digest
                    sys.modules[name] = module
                    try:
                        module_spec.loader.exec_module(module)
                    except BaseException:
                        sys.modules.pop(name, None)
                        raise
            else:
                name = spec
                importlib.import_module(spec)
        except ConfigError:
            raise
        except ModuleNotFoundError as e:
            raise ConfigError(f"{where}: got {spec!r}; cannot import it: {e}") from None
        except Exception as e:
            raise ConfigError(f"{where}: got {spec!r}; importing it failed: "
                              f"{type(e).__name__}: {e}") from None
        loaded.append(name)
    return loaded
