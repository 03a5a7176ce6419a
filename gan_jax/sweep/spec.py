"""The sweep file: a TOML file of a name, seeds, a [base] configuration and a [grid].

`load_sweep(path)` reads and validates a file as a whole, before anything is compiled, and
expands its grid into configurations (the last grid key fastest) and runs (each grid point's
seeds fastest). Every problem is a ConfigError naming the file, the table and the key. The
format is documented in docs/sweeps.md.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import tomllib
import unicodedata
from typing import Any, NamedTuple

from gan_jax import registry, results
from gan_jax.config import FIELD_NAMES, RunConfig, check_field, make_config, tied_fields
from gan_jax.errors import ConfigError, is_int, suggest

SWEEP_KEYS = ("name", "seeds", "keep_samples", "plugins", "base", "grid")
MAX_SEED = 2**32 - 1                # seeds become uint32 keys (engine.seed_keys)
# A sweep's runs are expanded in memory (a run is a few hundred bytes of Python objects) and
# its records fill a results file of a few KiB each: 2**22 runs is ~1 GiB of plan and ~10 GiB
# of results. Split anything larger into several sweep files.
MAX_RUNS = 2**22


class Run(NamedTuple):
    """One run of a sweep: a configuration and a seed, at a place in the sweep's run order."""

    index: int        # position in the sweep's run order (grid points, then seeds)
    cfg: RunConfig
    seed: int
    run_id: str       # results.run_id(cfg, seed)


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A validated sweep file: its name, seeds and expanded grid."""

    name: str
    path: str
    seeds: tuple[int, ...]
    grid: tuple[tuple[str, tuple[Any, ...]], ...]   # (key, values) in file order
    configs: tuple[RunConfig, ...]                  # one per grid point, last key fastest
    keep_samples: int = 0     # generated samples of the final evaluation kept in each record
    plugins: tuple[str, ...] = ()   # user modules loaded before validation (registry)

    @property
    def grid_keys(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.grid)

    @property
    def num_runs(self) -> int:
        return len(self.configs) * len(self.seeds)

    def runs(self) -> list[Run]:
        """Every run, grid point by grid point, seeds fastest."""
        out = []
        for cfg in self.configs:
            for seed, run_id in zip(self.seeds, results.run_ids(cfg, self.seeds)):
                out.append(Run(len(out), cfg, seed, run_id))
        return out


def load_sweep(path: str | os.PathLike) -> Sweep:
    """Read and validate a sweep file; every problem is a ConfigError naming file and key."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    return parse_sweep(data, path)


def parse_sweep(data: dict[str, Any], path: str = "<sweep>") -> Sweep:
    """Validate a parsed sweep file as a whole and expand its grid (no compilation)."""

    def fail(message: str) -> ConfigError:
        return ConfigError(f"{path}: {message}")

    for key in data:
        if key not in SWEEP_KEYS:
            hint = (" (run settings go under [base], lists to sweep under [grid])"
                    if key in FIELD_NAMES else suggest(key, SWEEP_KEYS))
            raise fail(f"{key}: unknown key{hint}; allowed: name, seeds, keep_samples, "
                       "plugins, [base], [grid]")
    if "plugins" in data:
        # User modules that register components, loaded before any configuration is
        # checked; paths relative to the sweep file's folder (docs/extending.md).
        try:
            registry.load_plugins(data["plugins"], os.path.dirname(os.path.abspath(path)))
        except ConfigError as e:
            raise fail(str(e)) from None
    name = data.get("name")
    if name is None:
        raise fail('name: missing; give the sweep a name, e.g. name = "lr-study"')
    if not isinstance(name, str) or not name.strip():
        raise fail(f"name: got {name!r}; must be a non-empty string")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise fail(f"name: got {name!r}; must not contain control characters (it heads "
                   "tables and names files)")
    seeds = _parse_seeds(data.get("seeds"), fail)
    keep = data.get("keep_samples", 0)
    if not is_int(keep) or keep < 0:
        raise fail(f"keep_samples: got {keep!r}; must be an integer >= 0 (generated samples "
                   "kept in each record)")

    base = data.get("base", {})
    if not isinstance(base, dict):
        raise fail(f"base: got {base!r}; must be a table ([base])")
    try:
        make_config(base, where="[base]")
    except ConfigError as e:
        raise fail(str(e)) from None

    grids = data.get("grid", {})
    tables = grids if isinstance(grids, list) else [grids]
    if not tables or not all(isinstance(t, dict) for t in tables):
        raise fail(f"grid: got {grids!r}; must be a table ([grid]) of lists, or several "
                   "([[grid]] tables, whose grids are joined)")
    configs: list[RunConfig] = []
    merged: dict[str, list] = {}                 # key -> its values over every table
    for n, grid in enumerate(tables):
        where = "[grid]" if len(tables) == 1 else f"[[grid]] {n + 1}"
        for cfg in _expand(grid, base, seeds, where, fail):
            if cfg in configs:
                raise fail(f"{where}: the point {_point(cfg, base)} is also in an earlier "
                           "grid; it would run twice under the same run id")
            configs.append(cfg)
        for key, values in grid.items():
            merged.setdefault(key, [])
            merged[key] += [v for v in values if v not in merged[key]]
    if len(configs) * len(seeds) > MAX_RUNS:
        raise fail(f"seeds: {len(configs):,} grid points x {len(seeds):,} seeds = "
                   f"{len(configs) * len(seeds):,} runs; at most {MAX_RUNS:,} runs per sweep "
                   "file (split the sweep into several files)")
    too_many = [c for c in configs if keep > c.eval_samples]
    if too_many:
        raise fail(f"keep_samples: got {keep}; must be at most eval_samples = "
                   f"{too_many[0].eval_samples} (the samples kept are the final evaluation's)")
    return Sweep(name, path, seeds, tuple((k, tuple(v)) for k, v in merged.items()),
                 tuple(configs), keep, tuple(data.get("plugins", ())))


def _point(cfg: RunConfig, base: dict) -> str:
    """A grid point, as the fields where it differs from [base]."""
    plain = make_config(base).to_dict()
    return "{" + ", ".join(f"{k} = {v!r}" for k, v in cfg.to_dict().items()
                           if v != plain[k]) + "}"


def _expand(grid: dict, base: dict, seeds, where: str, fail) -> list[RunConfig]:
    """The configurations of one grid table (the last key fastest), each value checked."""
    swept: dict[str, str] = {}                   # field -> the grid key that sets it
    for key, values in grid.items():
        for field in tied_fields(key):
            if field not in FIELD_NAMES:
                hint = ("; seeds are set by the top-level `seeds`" if field in ("seed", "seeds")
                        else suggest(field, FIELD_NAMES))
                raise fail(f"{where}.{key}: {field!r} is not a field{hint}; a grid may sweep "
                           f"any [base] field: {', '.join(FIELD_NAMES)}")
            if field in swept:
                raise fail(f"{where}.{key}: {field} is already swept by {where}.{swept[field]}")
            swept[field] = key
        if not isinstance(values, list):
            raise fail(f"{where}.{key}: got {values!r}; must be a list of values to sweep")
        if not values:
            raise fail(f"{where}.{key}: empty list; give at least one value")
        seen = []
        for i, value in enumerate(values):
            try:                     # each value by its field's own rule; combinations below
                normal = [check_field(f, value) for f in tied_fields(key)][0]
            except ConfigError as e:
                raise fail(f"{where}.{key}[{i}]: {e}") from None
            if normal in seen:
                raise fail(f"{where}.{key}[{i}]: {value!r} appears twice; each grid point "
                           "would run twice under the same run id")
            seen.append(normal)

    keys = list(grid)
    points = math.prod(len(grid[k]) for k in keys)
    if points * len(seeds) > MAX_RUNS:
        raise fail(f"seeds: {points:,} grid points x {len(seeds):,} seeds = "
                   f"{points * len(seeds):,} runs; at most {MAX_RUNS:,} runs per sweep file "
                   "(split the sweep into several files)")
    configs = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        try:
            configs.append(make_config({**base, **{f: v for k, value in zip(keys, combo)
                                                   for f, v in _assign(k, value).items()}}))
        except ConfigError as e:
            point = ", ".join(f"{k} = {v!r}" for k, v in zip(keys, combo))
            raise fail(f"{where} point {{{point}}}: {e}") from None
    return configs


def _assign(grid_key: str, value: Any) -> dict[str, Any]:
    return {field: value for field in tied_fields(grid_key)}


def _parse_seeds(value: Any, fail) -> tuple[int, ...]:
    if value is None:
        raise fail("seeds: missing; give a count (seeds = 16) or a list (seeds = [0, 1, 2])")
    if is_int(value):
        if value < 1:
            raise fail(f"seeds: got {value}; a count must be at least 1")
        if value > MAX_RUNS:
            raise fail(f"seeds: got {value}; at most {MAX_RUNS:,} runs per sweep file (split "
                       "the sweep into several files)")
        return tuple(range(value))
    if isinstance(value, list):
        if not value:
            raise fail("seeds: empty list; give at least one seed")
        if len(value) > MAX_RUNS:
            raise fail(f"seeds: {len(value):,} seeds; at most {MAX_RUNS:,} runs per sweep file")
        for i, seed in enumerate(value):
            if not is_int(seed) or not 0 <= seed <= MAX_SEED:
                raise fail(f"seeds[{i}]: got {seed!r}; a seed is an integer in [0, 2**32)")
        if len(set(value)) != len(value):
            dup = next(s for s in value if value.count(s) > 1)
            raise fail(f"seeds: {dup} appears twice; each run would be done twice")
        return tuple(value)
    raise fail(f"seeds: got {value!r}; must be a count (an integer >= 1) or a list of seeds")
