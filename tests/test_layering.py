"""The package's import graph: foundations import nothing above them, no circles, and nothing
imports the command line. Read from the source (every import, function-local ones too)."""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "gan_jax"

# Each module's layer; a module may import only modules of lower layers.
LAYERS = [
    ["errors"],
    ["rand", "stats", "cache", "registry"],
    ["data"],
    ["models", "losses", "metrics", "toy_targets"],
    ["methods"],
    ["optim"],
    ["config", "gradcheck"],
    ["exact"],
    ["results", "presets", "checkpoint"],
    ["train"],
    ["engine", "stability"],
    ["sweep.spec", "tables"],
    ["sweep.plan"],
    ["sweep.states"],
    ["sweep.run"],
    ["sweep", "plots", "seed_repro", "bench", "dirac"],
    ["sweep.command"],
    ["sweep.confirm"],
    ["sweep.halving"],
    ["cli"],
    ["__main__", "__init__"],
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}
FOUNDATIONS = ("errors", "registry", "rand", "data", "models", "losses", "optim", "metrics", "methods",
               "toy_targets")


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: pathlib.Path) -> set[str]:
    """The package modules a file imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name.startswith("gan_jax."):
                rest = name[len("gan_jax."):]
                while rest and rest not in LAYER:
                    rest = rest.rpartition(".")[0]
                if rest:
                    found.add(rest)
        if isinstance(node, ast.ImportFrom) and node.module == "gan_jax":
            found.update(a.name for a in node.names if a.name in LAYER)
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) - {module_name(p)} for p in PACKAGE.rglob("*.py")}


def test_every_module_has_a_layer():
    assert sorted(graph()) == sorted(LAYER)


def test_modules_import_only_lower_layers():
    bad = [f"{m} imports {d}" for m, deps in graph().items() for d in deps
           if m != "__init__" and LAYER[d] >= LAYER[m]]
    assert not bad, bad


def test_foundations_import_only_foundations_and_nothing_imports_the_command_line():
    g = graph()
    for m in FOUNDATIONS:
        assert g[m] <= set(FOUNDATIONS), (m, g[m] - set(FOUNDATIONS))
    importers = [m for m, deps in g.items() if "cli" in deps and m != "__main__"]
    assert not importers, importers


def test_no_circles():
    g = graph()
    state = {}

    def visit(m, path):
        if state.get(m) == "done":
            return
        assert state.get(m) != "open", " -> ".join(path + [m])
        state[m] = "open"
        for d in g.get(m, ()):
            visit(d, path + [m])
        state[m] = "done"

    for m in g:
        visit(m, [])
