"""The sweep file: a TOML file of a name, seeds, a [base] configuration, a [grid] and a [search].

`load_sweep(path)` reads and validates a file as a whole, before anything is compiled, and
expands it into configurations and runs: each sampled point of the [search] (if any), crossed
with each grid point (the last grid key fastest), each with every seed (seeds fastest). Every
problem of the file is collected and reported together, as one ConfigError of one line per
problem, each naming the file, the table and the key. The format is documented in
docs/sweeps.md.
"""

from __future__ import annotations

import dataclasses
import decimal
import inspect
import itertools
import math
import os
import tomllib
import unicodedata
import warnings
from typing import Any, NamedTuple

import numpy as np

from gan_jax.components import data as data_lib
from gan_jax.core import registry
from gan_jax.records import results
from gan_jax.config import (FIELD_NAMES, LIST_FIELDS, RunConfig, check_field, is_field,
                            is_float_field, make_config, tied_fields)
from gan_jax.core.errors import ConfigError, is_finite_number, is_int, suggest

SWEEP_KEYS = ("name", "seeds", "keep_samples", "plugins", "targets", "base", "grid", "search")
MAX_SEED = 2**32 - 1                # seeds become uint32 keys (engine.seed_keys)
# A sweep's runs are expanded in memory (a run is a few hundred bytes of Python objects) and
# its records fill a results file of a few KiB each: 2**22 runs is ~1 GiB of plan and ~10 GiB
# of results. Split anything larger into several sweep files.
MAX_RUNS = 2**22
# Problems found at the points (rules between fields) are listed up to this many; a rule that
# fails at one point often fails at thousands.
MAX_POINT_PROBLEMS = 10

# [search]: its settings, its samplers and the distributions a key may take.
SEARCH_SETTINGS = ("samples", "sampler", "seed", "digits")
SAMPLERS = ("random", "sobol", "halton")
DISTRIBUTIONS = ("log_uniform", "uniform", "integer", "choice")
DEFAULT_DIGITS = 4       # significant digits a sampled real number is rounded to
MAX_DIGITS = 17          # enough for any float64


class Run(NamedTuple):
    """One run of a sweep: a configuration and a seed, at a place in the sweep's run order."""

    index: int        # position in the sweep's run order (points, then seeds)
    cfg: RunConfig
    seed: int
    run_id: str       # results.run_id(cfg, seed)


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One key of a [search]: the fields it sets (several when tied), its distribution and,
    for tied fields, the ratio of each field's value to the sampled one."""

    key: str                       # as written in the file, e.g. "lr_g+lr_d"
    fields: tuple[str, ...]
    kind: str                      # one of DISTRIBUTIONS
    args: tuple[Any, ...]          # (low, high), or the choices
    ratio: tuple[float, ...]       # per field; all 1.0 unless given

    def assign(self, u: float, digits: int) -> dict[str, Any]:
        """The fields' values at a point u in [0, 1) of this dimension's unit interval."""
        if self.kind == "choice":
            value = self.args[min(int(u * len(self.args)), len(self.args) - 1)]
            return {f: value for f in self.fields}
        low, high = self.args
        if self.kind == "integer":
            value = low + min(int(u * (high - low + 1)), high - low)
            return {f: value for f in self.fields}
        if self.kind == "log_uniform":
            value = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
        else:
            value = low + u * (high - low)
        # Drawn in [low, high); rounded, never up to high (the open end of a field's range,
        # beta1's 1.0, may be a range's high). A ratio scales the rounded value exactly.
        x = _round(value, digits)
        x = x if x < high else _round_down(value, digits)
        return {f: x if r == 1.0 else _round(x * r, 15) for f, r in zip(self.fields, self.ratio)}

    def describe(self) -> str:
        """'lr_g+lr_d ~ log_uniform[0.0001, 0.01]', with the ratio when not all 1."""
        text = f"{self.key} ~ {self.kind}{list(self.args)}"
        if any(r != 1.0 for r in self.ratio):
            text += f" x ratio {list(self.ratio)}"
        return text


@dataclasses.dataclass(frozen=True)
class Search:
    """A validated [search]: its dimensions, sampler and the points drawn, each point the
    values it gives the searched fields (in the order of the dimensions)."""

    samples: int
    sampler: str
    seed: int
    digits: int
    dims: tuple[Dimension, ...]
    points: tuple[tuple[tuple[str, Any], ...], ...]    # per point: (field, value) pairs
    draws: int = 0            # draws of the sequence that gave them (repeats skipped)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(d.key for d in self.dims)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(f for d in self.dims for f in d.fields)

    def notes(self) -> list[str]:
        """What a user should know about this search's points (printed by the dry run)."""
        notes = []
        if self.sampler == "sobol" and self.draws & (self.draws - 1):
            notes.append(f"[search]: {self.draws} Sobol points drawn, not a power of 2; a Sobol "
                         "sequence is balanced over the unit cube only at powers of 2")
        if self.draws > self.samples:
            notes.append(f"[search]: {self.draws - self.samples} of {self.draws} draws repeated "
                         f"an earlier point once rounded to {self.digits} significant digits "
                         "and were skipped")
        return notes


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A validated sweep file: its name, seeds, expanded grid and sampled search points."""

    name: str
    path: str
    seeds: tuple[int, ...]
    grid: tuple[tuple[str, tuple[Any, ...]], ...]   # (key, values) in file order
    configs: tuple[RunConfig, ...]                  # per sampled point, per grid point
    keep_samples: int = 0     # generated samples of the final evaluation kept in each record
    search: Search | None = None
    plugins: tuple[str, ...] = ()   # user modules loaded before validation (registry)

    @property
    def grid_keys(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.grid)

    @property
    def num_points(self) -> int:
        """Sampled points (1 without a [search])."""
        return len(self.search.points) if self.search is not None else 1

    @property
    def num_grid_points(self) -> int:
        return len(self.configs) // self.num_points

    @property
    def num_runs(self) -> int:
        return len(self.configs) * len(self.seeds)

    def runs(self) -> list[Run]:
        """Every run, sampled point by sampled point, grid point by grid point, seeds
        fastest."""
        out = []
        for cfg in self.configs:
            for seed, run_id in zip(self.seeds, results.run_ids(cfg, self.seeds)):
                out.append(Run(len(out), cfg, seed, run_id))
        return out


class _Problems:
    """The problems found in one sweep file, each a line 'FILE: PLACE: what; what is allowed'."""

    def __init__(self, path: str):
        self.path, self.lines = path, []

    def add(self, message: str) -> None:
        self.lines.append(f"{self.path}: {message}")

    def error(self) -> ConfigError:
        return ConfigError("\n".join(self.lines))


def _read_toml(path: str) -> dict:
    """A sweep file's TOML, or a ConfigError naming the file and what is wrong with it."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None


def load_sweep(path: str | os.PathLike) -> Sweep:
    """Read and validate a sweep file; every problem is reported, one ConfigError naming file
    and key per line."""
    path = os.fspath(path)
    data = _read_toml(path)
    return parse_sweep(data, path)


def load_targets(path: str | os.PathLike) -> dict[str, str]:
    """Load a sweep file's plugins and register the targets it declares, checking nothing
    else of it: what `table`, `plot` and the other commands need to read its records
    (`--plugin FILE.toml`). Returns NAME -> NAME.DIGEST."""
    path = os.fspath(path)
    data = _read_toml(path)
    base = os.path.dirname(os.path.abspath(path))
    try:
        if "plugins" in data:
            registry.load_plugins(data["plugins"], base)
        return data_lib.register_declared(data.get("targets", {}), base, path)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def parse_sweep(data: dict[str, Any], path: str = "<sweep>") -> Sweep:
    """Validate a parsed sweep file as a whole and expand it (no compilation).

    Every problem of the file is collected: the keys and values of each table, then, once
    those are all valid, the rules between fields at each point (up to MAX_POINT_PROBLEMS of
    those). The ConfigError raised holds one line per problem.
    """
    problems = _Problems(path)
    fail = problems.add

    if "plugins" in data:
        # User modules that register components, loaded before anything else is checked
        # (the rest of the file names them); paths relative to the sweep file's folder
        # (docs/extending.md). A plugin that fails to load stops here.
        try:
            registry.load_plugins(data["plugins"], os.path.dirname(os.path.abspath(path)))
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
    if "targets" in data:
        # Targets declared in the file: registered under NAME.DIGEST, and every `data = NAME`
        # of the file reads as that name (data.register_declared). A target that cannot be
        # made stops here: the rest of the file names it.
        try:
            names = data_lib.register_declared(data["targets"],
                                               os.path.dirname(os.path.abspath(path)), path)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
        data = _renamed(data, names)
    unknown = [key for key in data if key not in SWEEP_KEYS]
    meant = set()                     # required keys an unknown key was likely meant to be
    for key in unknown:
        hint = (" (run settings go under [base], lists to sweep under [grid])"
                if key in FIELD_NAMES else suggest(key, SWEEP_KEYS))
        meant |= {k for k in ("name", "seeds") if hint == f" (did you mean {k!r}?)"}
        fail(f"{key}: unknown key{hint}; allowed: name, seeds, keep_samples, plugins, "
             "[targets], [base], [grid], [search]")
    name = data.get("name")
    if name is None:
        if "name" not in meant:
            fail('name: missing; give the sweep a name, e.g. name = "lr-study"')
    elif not isinstance(name, str) or not name.strip():
        fail(f"name: got {name!r}; must be a non-empty string")
    elif any(unicodedata.category(c).startswith("C") for c in name):
        fail(f"name: got {name!r}; must not contain control characters (it heads tables and "
             "names files)")
    seeds = _parse_seeds(data.get("seeds"), fail, "seeds" in meant)
    keep = data.get("keep_samples", 0)
    if not is_int(keep) or keep < 0:
        fail(f"keep_samples: got {keep!r}; must be an integer >= 0 (generated samples kept "
             "in each record)")
        keep = None

    valid = len(problems.lines)       # problems so far do not stop the points' checks
    base = data.get("base", {})
    if not isinstance(base, dict):
        fail(f"base: got {base!r}; must be a table ([base])")
    else:
        _check_base(base, fail)

    grids = data.get("grid", {})
    tables = grids if isinstance(grids, list) else [grids]
    merged: dict[str, list] = {}               # key -> its values over every table
    swept: dict[str, str] = {}                 # field -> where it is swept (grids joined)
    if not tables or not all(isinstance(t, dict) for t in tables):
        fail(f"grid: got {grids!r}; must be a table ([grid]) of lists, or several "
             "([[grid]] tables, whose grids are joined)")
        tables = []
    for n, grid in enumerate(tables):
        where = "[grid]" if len(tables) == 1 else f"[[grid]] {n + 1}"
        fields = _check_grid(grid, where, fail)
        for field, key in fields.items():
            swept.setdefault(field, f"{where}.{key}")
        for key, values in grid.items():
            if isinstance(values, list):
                merged.setdefault(key, [])
                merged[key] += [v for v in values if v not in merged[key]]

    search = None
    if "search" in data:
        # Runs per sampled point, known before anything is drawn.
        per_point = (max(len(seeds), 1) * sum(
            math.prod(len(v) if isinstance(v, list) else 1 for v in t.values()) for t in tables))
        search = _parse_search(data["search"], swept, problems, max(per_point, 1))

    if len(problems.lines) > valid:            # values are wrong: the points are not checked
        raise problems.error()

    n_seeds = len(seeds) if seeds else 1
    points = search.points if search is not None else ((),)
    grid_points = [math.prod(len(t[k]) for k in t) for t in tables]
    total = len(points) * sum(grid_points) * n_seeds
    if total > MAX_RUNS:
        sampled = f"{len(points):,} sampled points x " if search is not None else ""
        fail(f"seeds: {sampled}{sum(grid_points):,} grid points x {n_seeds:,} seeds = "
             f"{total:,} runs; at most {MAX_RUNS:,} runs per sweep file (split the sweep into "
             "several files)")
        raise problems.error()

    assigns = []               # every grid point: (table, keys, values, the fields it sets)
    for n, grid in enumerate(tables):
        where = "[grid]" if len(tables) == 1 else f"[[grid]] {n + 1}"
        keys = list(grid)
        for combo in itertools.product(*(grid[k] for k in keys)):
            assigns.append((where, keys, combo, {f: v for k, value in zip(keys, combo)
                                                 for f, v in _assign(k, value).items()}))
    configs: list[RunConfig] = []
    seen: set[RunConfig] = set()
    point_problems = 0

    def point_problem(message: str) -> None:
        nonlocal point_problems
        point_problems += 1
        if point_problems <= MAX_POINT_PROBLEMS:
            fail(message)

    for i, point in enumerate(points):
        sampled = f"[search] point {i} {_show(point)}, " if search is not None else ""
        for where, keys, combo, values in assigns:
            try:
                cfg = make_config({**base, **values, **dict(point)})
            except ConfigError as e:
                at = ", ".join(f"{k} = {v!r}" for k, v in zip(keys, combo))
                point_problem(f"{sampled}{where} point {{{at}}}: {e}")
                continue
            if cfg in seen:
                # Only grid tables can repeat a point: sampled points differ in what they set.
                point_problem(f"{where}: the point {_point(cfg, base)} is also in an earlier "
                              "grid; it would run twice under the same run id")
                continue
            seen.add(cfg)
            configs.append(cfg)
    if point_problems > MAX_POINT_PROBLEMS:
        fail(f"... and {point_problems - MAX_POINT_PROBLEMS:,} more points with problems "
             f"({point_problems:,} of {len(points) * len(assigns):,})")
    if keep is not None and configs:
        too_many = [c for c in configs if keep > c.eval_samples]
        if too_many:
            fail(f"keep_samples: got {keep}; must be at most eval_samples = "
                 f"{too_many[0].eval_samples} (the samples kept are the final evaluation's)")
    if problems.lines:
        raise problems.error()
    return Sweep(name, path, seeds, tuple((k, tuple(v)) for k, v in merged.items()),
                 tuple(configs), keep, search, tuple(data.get("plugins", ())))


def _renamed(data: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """The sweep file with each `data` value that names a declared target (in [base], a
    [grid] list, a [search] choice) replaced by the name it is registered under."""
    def rename(value):
        return names.get(value, value) if isinstance(value, str) else value

    def names_data(key) -> bool:
        return isinstance(key, str) and "data" in tied_fields(key)

    out = dict(data)
    if isinstance(out.get("base"), dict) and "data" in out["base"]:
        out["base"] = {**out["base"], "data": rename(out["base"]["data"])}
    if "grid" in out:
        grids = out["grid"]
        renamed = [{k: [rename(v) for v in vs] if names_data(k) and isinstance(vs, list)
                    else vs for k, vs in t.items()} if isinstance(t, dict) else t
                   for t in (grids if isinstance(grids, list) else [grids])]
        out["grid"] = renamed if isinstance(grids, list) else renamed[0]
    search = out.get("search")
    if isinstance(search, dict):
        out["search"] = {k: {**v, "choice": [rename(c) for c in v["choice"]]}
                         if names_data(k) and isinstance(v, dict)
                         and isinstance(v.get("choice"), list) else v
                         for k, v in search.items()}
    return out


def _check_base(base: dict, fail) -> None:
    """Each [base] field by its own rule (all reported), then the rules between them."""
    found = False
    for key, value in base.items():
        try:
            check_field(key, value)
        except ConfigError as e:
            fail(f"[base].{e}")
            found = True
    if not found:
        try:
            make_config(base, where="[base]")
        except ConfigError as e:
            fail(str(e))


def _point(cfg: RunConfig, base: dict) -> str:
    """A grid point, as the fields where it differs from [base]."""
    plain = make_config(base).to_dict()
    return "{" + ", ".join(f"{k} = {v!r}" for k, v in cfg.to_dict().items()
                           if v != plain[k]) + "}"


def _show(point) -> str:
    return "{" + ", ".join(f"{k} = {v!r}" for k, v in point) + "}"


def _check_grid(grid: dict, where: str, fail) -> dict[str, str]:
    """Check one grid table's keys and values (every problem reported); returns the fields it
    sweeps, each with the key that sets it."""
    swept: dict[str, str] = {}                   # field -> the grid key that sets it
    for key, values in grid.items():
        ok = True
        for field in tied_fields(key):
            if not is_field(field):
                hint = ("; seeds are set by the top-level `seeds`" if field in ("seed", "seeds")
                        else suggest(field, FIELD_NAMES))
                fail(f"{where}.{key}: {field!r} is not a field{hint}; a grid may sweep any "
                     f"[base] field: {', '.join(FIELD_NAMES)}")
                ok = False
            elif field in swept:
                fail(f"{where}.{key}: {field} is already swept by {where}.{swept[field]}")
            else:
                swept[field] = key
        if not isinstance(values, list):
            fail(f"{where}.{key}: got {values!r}; must be a list of values to sweep")
            continue
        if not values:
            fail(f"{where}.{key}: empty list; give at least one value")
            continue
        if not ok:
            continue
        seen = []
        for i, value in enumerate(values):
            try:                     # each value by its field's own rule; combinations later
                normal = [check_field(f, value) for f in tied_fields(key)][0]
            except ConfigError as e:
                fail(f"{where}.{key}[{i}]: {e}")
                continue
            if normal in seen:
                fail(f"{where}.{key}[{i}]: {value!r} appears twice; each grid point would run "
                     "twice under the same run id")
            seen.append(normal)
    return swept


def _assign(grid_key: str, value: Any) -> dict[str, Any]:
    return {field: value for field in tied_fields(grid_key)}


def _parse_seeds(value: Any, fail, meant: bool = False) -> tuple[int, ...]:
    """The seeds, or () after reporting what is wrong with them."""
    if value is None:
        if not meant:
            fail("seeds: missing; give a count (seeds = 16) or a list (seeds = [0, 1, 2])")
        return ()
    if is_int(value):
        if value < 1:
            fail(f"seeds: got {value}; a count must be at least 1")
        elif value > MAX_RUNS:
            fail(f"seeds: got {value}; at most {MAX_RUNS:,} runs per sweep file (split the "
                 "sweep into several files)")
        else:
            return tuple(range(value))
        return ()
    if isinstance(value, list):
        if not value:
            fail("seeds: empty list; give at least one seed")
            return ()
        if len(value) > MAX_RUNS:
            fail(f"seeds: {len(value):,} seeds; at most {MAX_RUNS:,} runs per sweep file")
            return ()
        bad = False
        for i, seed in enumerate(value):
            if not is_int(seed) or not 0 <= seed <= MAX_SEED:
                fail(f"seeds[{i}]: got {seed!r}; a seed is an integer in [0, 2**32)")
                bad = True
        if bad:
            return ()
        if len(set(value)) != len(value):
            dup = next(s for s in value if value.count(s) > 1)
            fail(f"seeds: {dup} appears twice; each run would be done twice")
            return ()
        return tuple(value)
    fail(f"seeds: got {value!r}; must be a count (an integer >= 1) or a list of seeds")
    return ()


# ----------------------------------------------------------------------------- [search]


def _round(x: float, digits: int) -> float:
    """x to `digits` significant digits, as the float that decimal reads back as: the value a
    table shows is the value the run used, and a last-place difference in exp or log on
    another machine does not change a point."""
    return float(f"{x:.{digits}g}")


def _round_down(x: float, digits: int) -> float:
    """x to `digits` significant digits, rounded towards minus infinity."""
    d = decimal.Decimal(x)
    step = decimal.Decimal(1).scaleb(d.adjusted() - digits + 1)
    return float(d.quantize(step, rounding=decimal.ROUND_FLOOR))


def _parse_search(table: Any, swept: dict[str, str], problems: _Problems,
                  per_point: int) -> Search | None:
    """Validate [search] (every problem reported) and draw its points, each of which is
    `per_point` runs; None after a problem."""
    fail = problems.add
    if not isinstance(table, dict):
        fail(f"search: got {table!r}; must be a table ([search]) of settings and keys to "
             "sample")
        return None
    before = len(problems.lines)
    samples = table.get("samples")
    if samples is None:
        fail("[search].samples: missing; give the number of points to sample, e.g. "
             "samples = 64")
    elif not is_int(samples) or not 1 <= samples <= MAX_RUNS:
        fail(f"[search].samples: got {samples!r}; must be an integer in [1, {MAX_RUNS:,}] "
             "(points to sample)")
    elif samples * per_point > MAX_RUNS:
        fail(f"[search].samples: got {samples:,}; x {per_point:,} runs per point (grid points "
             f"x seeds) = {samples * per_point:,} runs, at most {MAX_RUNS:,} runs per sweep "
             "file (split the sweep into several files)")
    sampler = table.get("sampler", "random")
    if sampler not in SAMPLERS:
        fail(f"[search].sampler: got {sampler!r}; must be one of {', '.join(SAMPLERS)}"
             f"{suggest(str(sampler), SAMPLERS)}")
    seed = table.get("seed", 0)
    if not is_int(seed) or seed < 0:
        fail(f"[search].seed: got {seed!r}; must be an integer >= 0 (it fixes the points "
             "sampled)")
    digits = table.get("digits", DEFAULT_DIGITS)
    if not is_int(digits) or not 1 <= digits <= MAX_DIGITS:
        fail(f"[search].digits: got {digits!r}; must be an integer in [1, {MAX_DIGITS}] "
             "(significant digits of each sampled number)")

    dims = []
    searched: dict[str, str] = {}
    for key, spec in table.items():
        if key in SEARCH_SETTINGS:
            continue
        dim = _parse_dimension(key, spec, swept, searched, fail)
        if dim is not None:
            dims.append(dim)
    if not dims and len(problems.lines) == before:
        fail("[search]: no key to sample; give at least one, e.g. "
             '"lr_g+lr_d" = { log_uniform = [1e-4, 1e-2] }')
    if len(problems.lines) > before:
        return None

    drawn, draws = _draw(dims, sampler, samples, seed, digits)
    if len(drawn) < samples:
        fail(f"[search]: {len(drawn)} distinct points in the first {draws:,} draws, not "
             f"samples = {samples}; the searched keys take few distinct values (integer or "
             "choice keys, or few digits): sample fewer points, raise digits, or sweep such "
             "keys in [grid]")
        return None
    bad = 0
    for i, point in enumerate(drawn):
        for field, value in point:
            try:
                check_field(field, value)
            except ConfigError as e:
                bad += 1
                if bad <= MAX_POINT_PROBLEMS:
                    fail(f"[search] point {i} {_show(point)}: {e}")
                break
    if bad > MAX_POINT_PROBLEMS:
        fail(f"... and {bad - MAX_POINT_PROBLEMS:,} more sampled points with problems "
             f"({bad:,} of {samples:,})")
    if bad:
        return None
    return Search(samples, sampler, seed, digits, tuple(dims), tuple(drawn), draws)


def _draw(dims, sampler: str, samples: int, seed: int, digits: int):
    """The first `samples` distinct points of the sampler's sequence (a point drawn again
    after rounding is skipped), and how many draws that took. Sequences are drawn longer
    while repeats leave too few, up to 16 x samples + 1024 draws."""
    most = 16 * samples + 1024
    n = samples
    while True:
        unit = _unit_points(sampler, n, len(dims), seed)
        seen, points = set(), []
        for used, u in enumerate(unit, start=1):
            point = tuple(pair for d, x in zip(dims, u)
                          for pair in d.assign(float(x), digits).items())
            if point not in seen:
                seen.add(point)
                points.append(point)
                if len(points) == samples:
                    return points, used
        if n >= most:
            return points, n
        n = min(2 * n, most)


def _parse_dimension(key: str, spec: Any, swept: dict[str, str], searched: dict[str, str],
                     fail) -> Dimension | None:
    """One [search] key: its fields, its distribution and ratio (every problem reported)."""
    where = f"[search].{key}"
    fields = tied_fields(key)
    ok = True
    for field in fields:
        if not is_field(field):
            hint = ("; seeds are set by the top-level `seeds`" if field in ("seed", "seeds")
                    else suggest(field, FIELD_NAMES + SEARCH_SETTINGS))
            fail(f"{where}: {field!r} is not a field{hint}; a search may sample any [base] "
                 f"field, beside its settings {', '.join(SEARCH_SETTINGS)}")
            ok = False
        elif field in swept:
            fail(f"{where}: {field} is already swept by {swept[field]}; a field is either "
                 "sampled or swept on the grid")
            ok = False
        elif field in searched:
            fail(f"{where}: {field} is already sampled by [search].{searched[field]}")
            ok = False
        else:
            searched[field] = key
    example = ("e.g. { log_uniform = [1e-4, 1e-2] }, { uniform = [0.0, 0.9] }, "
               "{ integer = [1, 5] } or { choice = [\"relu\", \"tanh\"] }")
    if not isinstance(spec, dict):
        fail(f"{where}: got {spec!r}; must be a distribution, {example}")
        return None
    kinds = [k for k in spec if k in DISTRIBUTIONS]
    for k in spec:
        if k not in DISTRIBUTIONS and k != "ratio":
            fail(f"{where}: unknown key {k!r}{suggest(k, DISTRIBUTIONS + ('ratio',))}; a "
                 f"distribution is one of {', '.join(DISTRIBUTIONS)} (and a ratio for tied "
                 "keys)")
            ok = False
    if len(kinds) != 1:
        if len(kinds) > 1:
            fail(f"{where}: got {', '.join(kinds)}; give exactly one distribution")
        elif ok:
            fail(f"{where}: got {spec!r}; must be a distribution, {example}")
        return None
    kind = kinds[0]
    args = spec[kind]
    at = f"{where}.{kind}"
    if not ok:
        return None

    if kind == "choice":
        if not isinstance(args, list) or not args:
            fail(f"{at}: got {args!r}; must be a non-empty list of values to choose from")
            return None
        seen = []
        for i, value in enumerate(args):
            try:
                normal = [check_field(f, value) for f in fields][0]
            except ConfigError as e:
                fail(f"{at}[{i}]: {e}")
                ok = False
                continue
            if normal in seen:
                fail(f"{at}[{i}]: {value!r} appears twice; each choice must differ")
                ok = False
            seen.append(normal)
        args = tuple(seen)
    else:
        if not (isinstance(args, list) and len(args) == 2):
            fail(f"{at}: got {args!r}; must be [low, high]")
            return None
        lists = [f for f in fields if f in LIST_FIELDS]
        if lists:
            fail(f"{at}: {lists[0]} is a list of numbers; sample it with choice = [[...], ...]")
            return None
        reals = kind in ("log_uniform", "uniform")
        ints = [f for f in fields if not is_float_field(f)]
        if reals and ints:
            fail(f"{at}: {ints[0]} takes integers or names, not real numbers; use integer = "
                 "[low, high] or choice = [...]")
            return None
        for i, value in enumerate(args):
            if not (is_int(value) if kind == "integer" else is_finite_number(value)):
                fail(f"{at}[{i}]: got {value!r}; must be "
                     + ("an integer" if kind == "integer" else "a finite number"))
                ok = False
                continue
            for f in fields:
                try:
                    check_field(f, value)
                except ConfigError as e:
                    # A real range's high is never drawn: it may be the open end of the
                    # field's range (beta1 = { uniform = [0.9, 1.0] }).
                    if i == 1 and reals and _allows(f, math.nextafter(float(value), -math.inf)):
                        continue
                    fail(f"{at}[{i}]: {e}")
                    ok = False
                    break
        if not ok:
            return None
        low, high = args
        if not low < high:
            fail(f"{at}: got {args!r}; must be [low, high] with low < high (a single value "
                 "belongs in [base])")
            return None
        if kind == "log_uniform" and low <= 0:
            fail(f"{at}: got {args!r}; a log-uniform range must be positive")
            return None
        args = (float(low), float(high)) if reals else (int(low), int(high))

    ratio = spec.get("ratio")
    if ratio is None:
        ratio = (1.0,) * len(fields)
    elif kind not in ("log_uniform", "uniform"):
        fail(f"{where}.ratio: a ratio scales real numbers; it applies to log_uniform or "
             f"uniform, not {kind}")
        return None
    elif (not isinstance(ratio, list) or len(ratio) != len(fields)
          or not all(is_finite_number(r) and r > 0 for r in ratio)):
        fail(f"{where}.ratio: got {ratio!r}; must be a list of {len(fields)} positive numbers, "
             f"one per field of {key} (each field takes the sampled value times its own)")
        return None
    else:
        ratio = tuple(float(r) for r in ratio)
    if not ok:
        return None
    return Dimension(key, tuple(fields), kind, tuple(args), ratio)


def _allows(field: str, value: Any) -> bool:
    try:
        check_field(field, value)
        return True
    except ConfigError:
        return False


def _unit_points(sampler: str, n: int, d: int, seed: int) -> np.ndarray:
    """n points of the unit cube [0, 1)^d, from the file's seed alone (never a global state).

    "random": NumPy's PCG64 stream of `seed`, row by row; "sobol" and "halton": SciPy's
    scrambled sequences, scrambled by that stream. Either way the first n points of a larger
    n are the same points, so raising `samples` keeps every earlier point and run id.
    """
    stream = np.random.Generator(np.random.PCG64(seed))
    if sampler == "random":
        return stream.random((n, d))
    from scipy.stats import qmc          # imported only by sweeps that use it

    kind = qmc.Sobol if sampler == "sobol" else qmc.Halton
    # SciPy takes the generator as `rng` from 1.15 and as `seed` before.
    name = "rng" if "rng" in inspect.signature(kind).parameters else "seed"
    engine = kind(d, scramble=True, **{name: stream})
    with warnings.catch_warnings():    # Sobol's note on powers of 2: see Search.notes
        warnings.simplefilter("ignore", UserWarning)
        return engine.random(n)
