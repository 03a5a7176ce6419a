"""The results record: one JSON object per finished run, appended to OUT/results.jsonl.

Format (docs/records.md): run_id, sweep, seed, config (every field), status ("ok" or
"diverged"), diverged_at (iteration or null), final (metrics), history (lists per log row),
versions. Non-finite numbers are written as null, so every line is standard JSON.

This module writes records, reads them back (a whole directory, shards merged), and selects and
groups them by configuration keys: tables and figures read records through it and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from typing import Any, Iterable

import numpy as np

from gan_jax import exact
from gan_jax.config import RunConfig, static_part, tied_fields
from gan_jax.errors import ConfigError, suggest

RESULTS_FILE = "results.jsonl"


def run_id(cfg: RunConfig, seed: int) -> str:
    """A stable hash of a run's configuration and seed (independent of sweep, order, chunk)."""
    return run_ids(cfg, [seed])[0]


def run_ids(cfg: RunConfig, seeds) -> list[str]:
    """`run_id(cfg, seed)` for each seed, serialising the configuration once.

    The hashed text is `json.dumps({"config": cfg.to_dict(), "seed": seed}, sort_keys=True)`,
    assembled from the configuration's JSON so that 100,000 seeds do not serialise it 100,000
    times.
    """
    config = json.dumps(cfg.to_dict(), sort_keys=True)
    return [hashlib.sha256(f'{{"config": {config}, "seed": {int(seed)}}}'.encode())
            .hexdigest()[:20] for seed in seeds]


def versions() -> dict[str, str]:
    import jax
    from importlib import metadata
    try:
        own = metadata.version("gan_jax")
    except metadata.PackageNotFoundError:
        own = "unknown"
    return {"gan_jax": own, "jax": jax.__version__}


def _clean(x: Any) -> Any:
    """NumPy values to JSON: floats rounded to float32 precision, non-finite as None."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    arr = np.asarray(x)
    if arr.ndim > 0:
        return [_clean(v) for v in arr]
    if arr.dtype.kind in "iub":
        return arr.item()
    v = float(arr)
    return float(f"{v:.7g}") if math.isfinite(v) else None


def make_records(sweep: str, cfgs: list[RunConfig], seeds: list[int], output,
                 *, version_info: dict[str, str] | None = None,
                 ids: list[str] | None = None) -> list[dict]:
    """One record per run from a batched RunOutput (NumPy arrays with a leading run axis).

    `ids`, if given, are the runs' run_id values, already computed by the caller.
    """
    version_info = version_info or versions()
    diverged_at = np.asarray(output.state.diverged_at)
    config_dicts: dict[RunConfig, dict] = {}     # runs of a batch share few configurations
    gap: dict[RunConfig, bool] = {}
    records = []
    for i, (cfg, seed) in enumerate(zip(cfgs, seeds)):
        final = {k: np.asarray(v)[i] for k, v in output.final.items()}
        div = int(diverged_at[i])
        nonfinite = not all(np.all(np.isfinite(v)) for v in final.values())
        if cfg not in config_dicts:
            config_dicts[cfg] = cfg.to_dict()
            # A program of several losses records d_gap for all its runs; a run keeps it only
            # if its own configuration defines it, so its record is the same in any program.
            gap[cfg] = exact.records_d_gap(static_part(cfg))
        records.append({
            "run_id": ids[i] if ids is not None else run_id(cfg, seed),
            "sweep": sweep,
            "seed": int(seed),
            "config": config_dicts[cfg],
            "status": "diverged" if div >= 0 or nonfinite else "ok",
            "diverged_at": div if div >= 0 else None,
            "final": _clean(final),
            "history": _clean({k: np.asarray(v)[i] for k, v in output.history.items()
                               if k != "d_gap" or gap[cfg]}),
            "versions": version_info,
        })
        if output.samples is not None:
            records[-1]["samples"] = _clean(np.asarray(output.samples)[i])
    return records


def to_line(record: dict) -> str:
    return json.dumps(record, separators=(",", ":")) + "\n"


def append_records(path: str | os.PathLike, records: Iterable[dict]) -> None:
    """Append records as JSON lines, then flush and fsync: a finished chunk is never lost."""
    lines = "".join(map(to_line, records))
    with open(path, "a", encoding="utf-8") as f:
        f.write(lines)
        f.flush()
        os.fsync(f.fileno())


def read_records(path: str | os.PathLike,
                 fields: tuple[str, ...] | None = None) -> tuple[list[dict], list[str]]:
    """All complete records of a results file, and a list of problems found.

    A last line without its newline was cut short by a kill: it is skipped and reported, not
    fatal (`cut_partial_tail` removes it before more records are appended). A malformed line
    elsewhere is reported too.

    Args:
      path: a results file; a missing file has no records.
      fields: keep only these keys of each record (e.g. ("run_id", "sweep") to check a large
        file for resuming without holding its histories); None keeps every key.
    """
    records, problems = [], []
    if not os.path.exists(path):
        return records, problems
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.endswith("\n"):
                problems.append(f"{path}:{n}: truncated last line (an interrupted write) skipped")
                break
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                problems.append(f"{path}:{n}: malformed line skipped")
                continue
            if fields is not None:
                record = {k: record.get(k) for k in fields}
            records.append(record)
    return records, problems


def cut_partial_tail(path: str | os.PathLike) -> int:
    """Cut a results file after its last newline, so appends start on a fresh line.

    Returns the number of bytes removed (0 when the file ends cleanly or does not exist).
    """
    if not os.path.exists(path):
        return 0
    with open(path, "r+b") as f:
        end = pos = f.seek(0, os.SEEK_END)
        while pos > 0:
            step = min(pos, 1 << 16)
            f.seek(pos - step)
            newline = f.read(step).rfind(b"\n")
            if newline >= 0:
                pos = pos - step + newline + 1
                break
            pos -= step
        if pos < end:
            f.truncate(pos)
            f.flush()
            os.fsync(f.fileno())
    return end - pos


def results_file_name(index: int = 0, count: int = 1) -> str:
    """The results file of shard `index` of `count`: results.jsonl when the sweep is unsplit."""
    if count == 1:
        return RESULTS_FILE
    return f"results.shard-{index:0{len(str(count - 1))}d}-of-{count}.jsonl"


def results_files(directory: str | os.PathLike) -> list[str]:
    """Every results file in a directory (the unsplit one and those of shards), sorted."""
    if not os.path.isdir(directory):
        return []
    names = sorted(n for n in os.listdir(directory)
                   if n == RESULTS_FILE or (n.startswith("results.shard-") and n.endswith(".jsonl")))
    return [os.path.join(directory, n) for n in names]


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write a file so that readers see the old or the new contents, never a mix."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- reading


def load_results(directory: str | os.PathLike) -> tuple[list[dict], list[str]]:
    """Every record of a directory's results files (shards merged), and the problems found.

    A run recorded twice (e.g. by two job-array tasks given overlapping shards) counts once.

    Raises:
      ConfigError: if the directory holds no results file or no complete record.
    """
    if not os.path.isdir(directory):
        raise ConfigError(f"{directory}: no such directory")
    files = results_files(directory)
    if not files:
        raise ConfigError(f"{directory}: no results files (results.jsonl or "
                          "results.shard-*.jsonl); run `python -m gan_jax sweep FILE --out "
                          f"{directory}` first")
    records, problems, seen = [], [], set()
    for path in files:
        recs, probs = read_records(path)
        problems += probs
        for r in recs:
            if r.get("run_id") in seen:
                problems.append(f"{path}: run {r.get('run_id')} recorded twice; counted once")
                continue
            seen.add(r.get("run_id"))
            records.append(r)
    if not records:
        raise ConfigError(f"{directory}: the results files hold no complete records")
    return records, problems


# ----------------------------------------------------------------------------- keys and groups
# A key names a configuration field, or several tied by '+' as in a sweep file's grid
# ("lr_g+lr_d"): its value in a record is the fields' common value, or a tuple if they differ.


def hashable(value: Any) -> Any:
    """A hashable form of a record's value (lists become tuples)."""
    return tuple(hashable(v) for v in value) if isinstance(value, list) else value


def same(a: Any, b: Any) -> bool:
    """Equal values, 1 and 1.0 alike."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) \
            and not isinstance(a, bool) and not isinstance(b, bool):
        return float(a) == float(b)
    return a == b


def key_value(record: dict, key: str) -> Any:
    """The value of a key in a record's configuration (hashable)."""
    values = [hashable(record["config"].get(f)) for f in tied_fields(key)]
    if all(same(v, values[0]) for v in values):
        return values[0]
    return tuple(values)


def config_keys(records: list[dict]) -> list[str]:
    """The configuration fields the records have, in the order of the first record."""
    return list(dict.fromkeys(k for r in records for k in r["config"]))


def check_keys(records: list[dict], keys, what: str) -> None:
    """Raise ConfigError unless every key (tied keys too) names a field of the records."""
    known = config_keys(records)
    for key in keys:
        for field in tied_fields(key):
            if field not in known:
                raise ConfigError(f"{what}: {field!r} is not a config key"
                                  f"{suggest(field, known)}; keys: {', '.join(known)}")


def varying_keys(records: list[dict], exclude=()) -> tuple[str, ...]:
    """The configuration keys whose value differs between records, in configuration order."""
    out = []
    for k in config_keys(records):
        if k in exclude:
            continue
        first = hashable(records[0]["config"].get(k))
        if any(not same(hashable(r["config"].get(k)), first) for r in records):
            out.append(k)
    return tuple(out)


def sort_key(value: Any) -> tuple:
    """Order for mixed configuration values: missing, then numbers, strings, sequences."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, (int, float)):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (3, str(value))


def group_records(records: list[dict], keys) -> dict[tuple, list[dict]]:
    """Records grouped by their values of the keys, groups in sorted order of those values."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        value = tuple(key_value(r, k) for k in keys)
        match = next((g for g in groups if all(map(same, g, value))), value)
        groups.setdefault(match, []).append(r)
    return {k: groups[k] for k in sorted(groups, key=lambda v: tuple(map(sort_key, v)))}


def select(records: list[dict], where: dict[str, Any]) -> list[dict]:
    """The records whose configuration has every `key: value` of where."""
    check_keys(records, where, "--where")
    chosen = [r for r in records
              if all(same(key_value(r, k), hashable(v)) for k, v in where.items())]
    if not chosen:
        shown = ", ".join(f"{k}={v!r}" for k, v in where.items())
        raise ConfigError(f"--where: no record has {shown}")
    return chosen


def number(value: Any) -> float:
    """A record's number as a float (null -> nan)."""
    return float("nan") if value is None else float(value)


# ----------------------------------------------------------------------------- data frames

RUN_COLUMNS = ("run_id", "sweep", "seed", "status", "diverged_at")


def _pandas():
    try:
        import pandas
    except ImportError:
        raise ConfigError("to_dataframe needs pandas, an optional dependency: "
                          "pip install 'gan_jax[frames]' (or pip install pandas)") from None
    return pandas


def to_dataframe(source, history: bool = False):
    """The runs of a sweep as a pandas DataFrame, one row per run (needs pandas).

    Columns: run_id, sweep, seed, status, diverged_at (nullable integer: the iteration, or
    <NA>), then every configuration field under its own name (loss, lr_g, ...; list values as
    tuples), then every final metric under its own name (w1, mode_balance, ...; null, i.e.
    non-finite, as NaN). Names are not prefixed, so `df.groupby("loss")["w1"].median()` reads
    as the table does; a final metric whose name is also a run or configuration column (none
    today) is prefixed `final_`. Diverged runs are rows like any other: filter on `status`.

    Args:
      source: a sweep's output directory (read with `load_results`, shards merged) or a list
        of records.
      history: also return the training history in long format.

    Returns:
      runs, or (runs, history) with history=True: a DataFrame with columns run_id, step,
      metric, value, one row per run x log row x history metric.

    Raises:
      ConfigError: pandas is not installed, or the directory holds no records.
    """
    pd = _pandas()
    records = source if isinstance(source, list) else load_results(source)[0]
    keys = config_keys(records)
    metrics = list(dict.fromkeys(m for r in records for m in r.get("final", {})))
    taken = set(RUN_COLUMNS) | set(keys)
    names = {m: f"final_{m}" if m in taken else m for m in metrics}
    rows = []
    for r in records:
        row = {c: r.get(c) for c in RUN_COLUMNS}
        row.update({k: hashable(r["config"].get(k)) for k in keys})
        row.update({names[m]: number(r.get("final", {}).get(m)) for m in metrics})
        rows.append(row)
    runs = pd.DataFrame(rows, columns=[*RUN_COLUMNS, *keys, *names.values()])
    runs["diverged_at"] = runs["diverged_at"].astype("Int64")
    if not history:
        return runs
    return runs, history_frame(records)


def history_frame(source):
    """The training histories in long format: columns run_id, step, metric, value (needs pandas).

    One row per run x log row x history metric; null values (non-finite) as NaN.
    """
    pd = _pandas()
    records = source if isinstance(source, list) else load_results(source)[0]
    ids, steps, names, values = [], [], [], []
    for r in records:
        hist = r.get("history") or {}
        step = hist.get("step") or []
        for m, series in hist.items():
            if m == "step" or series is None:
                continue
            for s, v in zip(step, series):
                ids.append(r.get("run_id"))
                steps.append(s)
                names.append(m)
                values.append(number(v))
    return pd.DataFrame({"run_id": ids, "step": pd.array(steps, dtype="Int64"),
                         "metric": names, "value": np.asarray(values, float)})
