"""`python -m gan_jax list [KIND]`: every registered component, kind by kind."""

from __future__ import annotations

import sys

from gan_jax.core.registry import kind_of, KINDS, options_of


def add_arguments(parser) -> None:
    parser.add_argument("kind", nargs="?", default=None,
                        help="only this kind (loss, target, generator, discriminator, "
                             "optimizer, method, metric)")


def main(args) -> int:
    """`python -m gan_jax list [KIND]`: every registered component, kind by kind, with the
    configuration field that names it, what it is and where it comes from."""
    import gan_jax  # noqa: F401  (every built-in kind is declared and registered)
    chosen = [args.kind] if args.kind else list(KINDS)
    for kind in chosen:
        k = kind_of(kind)
        print(f"{kind} (field `{k.field}`): {k.doc}")
        width = max((len(n) for n in k.entries), default=0)
        for name, e in k.entries.items():
            where = "" if e.builtin else f"  [{_where(e.origin)}]"
            print(f"  {name:<{width}}  {e.doc}{where}")
            for o in options_of(e.obj):
                part = "traced" if o.traced else "static"
                print(f"  {'':<{width}}    option `{name}.{o.name}` ({o.type.__name__}, {part}, "
                      f"default {o.default!r}): {o.doc}")
        if not k.entries:
            print("  (none registered)")
        print()
    return 0


def _where(origin: str) -> str:
    """A plugin file's path (its module name is made from the path), else the module name."""
    module = sys.modules.get(origin)
    path = getattr(module, "__file__", None)
    return path if origin.startswith("plugin_") and path else origin
