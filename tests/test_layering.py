"""The package's import graph: foundations import nothing above them, no circles, and nothing
imports the command line. Read from the source (every import, function-local ones too)."""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "gan_jax"

# Each module's layer; a module may import only modules of lower layers. The packages
# (gan_jax/core, components, training, engine, records, report, analysis, sweep, commands)
# group the layers; their own __init__ files import nothing but, for sweep, its parts.
PACKAGES = ["core", "components", "training", "engine", "records", "report", "analysis",
            "commands"]
LAYERS = [
    PACKAGES + ["core.errors"],
    ["core.rand", "core.digest", "core.registry", "report.stats"],
    ["engine.cache"],
    ["components.data"],
    ["components.models", "components.losses", "components.metrics", "components.toy_targets"],
    ["components.methods"],
    ["components.optim", "components.stabilisers"],
    ["config", "training.gradcheck"],
    ["analysis.exact"],
    ["records.results", "presets"],
    ["records.checkpoint"],
    ["training.train"],
    ["engine.programs", "analysis.stability"],
    ["sweep.spec", "report.tables"],
    ["sweep.plan"],
    ["sweep.states"],
    ["sweep.run"],
    ["sweep", "report.plots", "analysis.seed_repro", "engine.bench", "analysis.dirac",
     "sweep.confirm"],
    ["sweep.halving"],
    # the command line: every argparse and `main`; nothing below imports it
    ["commands.listing", "commands.exact", "commands.dirac", "commands.table", "commands.plot",
     "commands.bench", "commands.seed", "commands.sweep"],
    ["commands.confirm", "commands.launch", "commands.halve"],
    ["commands.cli"],
    ["__main__", "__init__"],
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}
FOUNDATIONS = ("core.errors", "core.registry", "core.rand", "core.digest", "components.data",
               "components.models", "components.losses", "components.optim",
               "components.metrics", "components.methods", "components.toy_targets",
               "components.stabilisers")


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


def modules() -> dict[str, pathlib.Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported_top_level(path: pathlib.Path) -> set[str]:
    """Every module a file imports, by its top-level name."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def graph() -> dict[str, set[str]]:
    return {m: imports_of(p) - {m} for m, p in modules().items()}


def test_every_module_has_a_layer():
    assert sorted(graph()) == sorted(LAYER)


def test_modules_import_only_lower_layers():
    bad = [f"{m} imports {d}" for m, deps in graph().items() for d in deps
           if m != "__init__" and LAYER[d] >= LAYER[m]]
    assert not bad, bad


def test_foundations_import_only_foundations_and_nothing_imports_the_command_line():
    g = graph()
    for m in FOUNDATIONS:
        assert g[m] - set(PACKAGES) <= set(FOUNDATIONS), (m, g[m] - set(FOUNDATIONS))
    importers = [f"{m} imports {d}" for m, deps in g.items() for d in deps
                 if d.startswith("commands") and not m.startswith("commands")
                 and m != "__main__"]
    assert not importers, importers


def test_only_commands_parse_arguments():
    """Library modules hold no argparse: every command's arguments live in gan_jax/commands."""
    users = [m for m, p in modules().items() if not m.startswith("commands")
             and "argparse" in imported_top_level(p)]
    assert not users, users


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
