"""The results record: one JSON object per finished run, appended to OUT/results.jsonl.

Format (docs/records.md): run_id, sweep, seed, config (every field), status ("ok" or
"diverged"), diverged_at (iteration or null), final (metrics), history (lists per log row),
versions. Non-finite numbers are written as null, so every line is standard JSON.

This module writes records, reads them back (a whole directory, shards merged), and selects and
groups them by configuration keys: tables and figures read records through it and nothing else.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import socket
import math
import os
import time
from typing import Any, BinaryIO, Callable, Iterable

import numpy as np

from gan_jax.analysis import exact
from gan_jax.core import registry
from gan_jax.config import (ADDED_JSON_DEFAULTS, RunConfig, legacy_options, static_part,
                            tied_fields)
from gan_jax.core.errors import ConfigError, OutputError, suggest

RESULTS_FILE = "results.jsonl"


def run_id(cfg: RunConfig, seed: int) -> str:
    """A stable hash of a run's configuration and seed (independent of sweep, order, chunk)."""
    return run_ids(cfg, [seed])[0]


def run_ids(cfg: RunConfig, seeds) -> list[str]:
    """`run_id(cfg, seed)` for each seed, serialising the configuration once.

    The hashed text is `json.dumps({"config": cfg.identity_dict(), "seed": seed},
    sort_keys=True)` (identity_dict: every field, except fields added later at their defaults),
    assembled from the configuration's JSON so that 100,000 seeds do not serialise it 100,000
    times.
    """
    config = json.dumps(cfg.identity_dict(), sort_keys=True)
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
    if arr.dtype.kind in "iub":
        return arr.tolist()
    return _round(arr.tolist())      # nested lists of Python floats: one conversion per array


def _round(v):
    if isinstance(v, list):
        return [_round(u) for u in v]
    v = float(v)
    return float(f"{v:.7g}") if math.isfinite(v) else None


def make_records(sweep: str, cfgs: list[RunConfig], seeds: list[int], output,
                 *, version_info: dict[str, str] | None = None,
                 ids: list[str] | None = None) -> list[dict]:
    """One record per run from a batched RunOutput (NumPy arrays with a leading run axis).

    `ids`, if given, are the runs' run_id values, already computed by the caller.
    """
    version_info = version_info or versions()
    diverged_at = np.asarray(output.state.diverged_at)
    history = spectral_history(output.history)
    config_dicts: dict[RunConfig, dict] = {}     # runs of a batch share few configurations
    gap: dict[RunConfig, bool] = {}
    components: dict[RunConfig, dict] = {}
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
            "history": _clean({k: np.asarray(v)[i] for k, v in history.items()
                               if k != "d_gap" or gap[cfg]}),
            "versions": version_info,
        })
        if output.samples is not None:
            records[-1]["samples"] = _clean(np.asarray(output.samples)[i])
        if cfg not in components:
            components[cfg] = plugin_components(cfg)
        if components[cfg]:
            records[-1]["components"] = components[cfg]
    return records


def mixed_versions(records, current: dict[str, dict] | None = None) -> list[str]:
    """One note per plugin component whose records name more than one version of its code
    (digest), or another version than `current` ("kind:name" -> {"digest": ...}, e.g. what
    the plugins loaded now give): runs of different code pooled under one name."""
    seen: dict[str, dict[str, int]] = {}
    for r in records:
        for name, info in (r.get("components") or {}).items():
            counts = seen.setdefault(name, {})
            counts[info.get("digest")] = counts.get(info.get("digest"), 0) + 1
    notes = []
    for name, counts in sorted(seen.items()):
        now = (current or {}).get(name, {}).get("digest")
        versions = ", ".join(f"{str(d)[:12]} ({n} runs)" for d, n in counts.items())
        if len(counts) > 1:
            notes.append(f"{name}: these records hold {len(counts)} versions of its code "
                         f"({versions}); runs of different code are pooled under one name")
        elif now is not None and now not in counts:
            notes.append(f"{name}: its code now ({now[:12]}) is not the code of its recorded "
                         f"runs ({versions}); those runs are kept as they were")
    return notes


def plugin_components(cfg) -> dict[str, dict]:
    """The components registered from outside the library that a run uses, "kind:name" ->
    {"origin": module, "digest": of its code (gan_jax.core.digest.code_digest), or None}: a table
    can then tell two versions of a plugin apart under one name. Empty for the library's own.

    A component declared in a file (a sweep file's [targets]) has that file as its origin, and
    what its `provenance` dict says of it joins the entry (a point cloud's file and sha256)."""
    from gan_jax.core import digest, registry
    out = {}
    for kind, name, obj in registry.used(cfg):
        entry = registry.KINDS[kind].entries.get(name)
        # An entry replaced without register() has no Entry of its own: read the object.
        own = entry is not None and entry.obj is obj
        out[f"{kind}:{name}"] = {"origin": entry.origin if own else registry.origin(obj),
                                 "digest": digest.code_digest(obj),
                                 **(getattr(obj, "provenance", None) or {})}
    return out


def spectral_history(history: dict) -> dict:
    """History with each row's update Jacobian (`update_jacobian`, f32[runs, rows, n, n], from
    train) replaced by its eigenvalues, `update_eigs` ([re, im] pairs, by decreasing modulus),
    and their largest modulus, `update_radius`: below 1 the step contracts locally."""
    if "update_jacobian" not in history:
        return history
    out = dict(history)
    jac = np.asarray(out.pop("update_jacobian"), np.float64)
    finite = np.all(np.isfinite(jac), axis=(-2, -1))
    eigs = np.linalg.eigvals(np.where(finite[..., None, None], jac, 0.0))
    eigs = np.take_along_axis(eigs, np.argsort(-np.abs(eigs), axis=-1, kind="stable"), -1)
    pairs = np.stack([eigs.real, eigs.imag], axis=-1)
    out["update_eigs"] = np.where(finite[..., None, None], pairs, np.nan)
    out["update_radius"] = np.where(finite, np.abs(eigs[..., 0]), np.nan)
    return out


def to_line(record: dict) -> str:
    return json.dumps(record, separators=(",", ":")) + "\n"


def append_records(path: str | os.PathLike, records: Iterable[dict]) -> None:
    """Append records as whole JSON lines in one write, then fsync: a finished chunk is never
    lost, and a failed write leaves nothing half-written.

    On any OSError (a full disk, a quota, an I/O error) the file is cut back to its size before
    the write, and OutputError names the file and the error.
    """
    data = "".join(map(to_line, records)).encode("utf-8")
    if not data:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    except OSError as e:
        raise OutputError(f"{path}: cannot open for appending: {e.strerror or e}") from None
    try:
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError as e:
            try:
                os.ftruncate(fd, size)
                os.fsync(fd)
                left = "the file was cut back to its previous end"
            except OSError:
                left = "the file could not be cut back; --resume sets the partial line aside"
            raise OutputError(f"{path}: cannot append {len(data)} bytes: "
                              f"{e.strerror or e}; {left}") from None
    finally:
        os.close(fd)


# A record's keys and their JSON types (docs/records.md); anything else on a line is damage.
RECORD_SHAPE: dict[str, type | tuple[type, ...]] = {
    "run_id": str, "sweep": str, "seed": int, "config": dict, "status": str,
    "final": dict, "history": dict,
}


def record_problem(record: Any) -> str | None:
    """What makes a parsed line unusable as a record, or None for a record of the right shape."""
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not a record"
    for key, kind in RECORD_SHAPE.items():
        if key not in record:
            return f"a record without {key!r}"
        value = record[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            return f"{key!r} is {json.dumps(value)[:40]}, not {kind.__name__}"
    for name, value in record["final"].items():
        if value is not None and not (isinstance(value, (int, float, list))
                                      and not isinstance(value, bool)):
            return f"final {name!r} is {json.dumps(value)[:40]}, not a number"
    for name, value in record["history"].items():
        if not isinstance(value, list):
            return f"history {name!r} is {json.dumps(value)[:40]}, not a list"
    return None


def scan_lines(path: str | os.PathLike):
    """Each non-blank line of a results file: (line number, raw bytes, record, problem).

    `record` is the parsed record when the line holds a whole record (its final newline may be
    missing: a record that parses is complete), else None and `problem` says why. Raises
    OSError if the file cannot be read (a directory, no permission).
    """
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                yield n, raw, None, "not UTF-8 text"
                continue
            except (ValueError, RecursionError):
                yield n, raw, None, ("truncated last line (an interrupted write)"
                                     if not raw.endswith(b"\n") else "not JSON")
                continue
            problem = record_problem(record)
            yield n, raw, (None if problem else record), problem


def read_records(path: str | os.PathLike,
                 fields: tuple[str, ...] | None = None) -> tuple[list[dict], list[str]]:
    """All usable records of a results file, and one problem per line that was skipped.

    A line is kept when it parses as a whole record (a JSON object with the record's keys and
    types, see RECORD_SHAPE), whether or not its newline follows. Anything else (a line cut
    short by a kill, bytes that are not UTF-8, a JSON value that is not a record) is skipped
    and reported as `FILE:LINE: why`. Nothing here raises on a file's contents: a file that
    cannot be read at all (a directory, no permission) is one problem.

    Args:
      path: a results file; a missing file has no records.
      fields: keep only these keys of each record (e.g. ("run_id", "sweep") to check a large
        file for resuming without holding its histories); None keeps every key.
    """
    records, problems = [], []
    if not os.path.lexists(path):
        return records, problems
    try:
        for n, _, record, problem in scan_lines(path):
            if record is None:
                problems.append(f"{path}:{n}: {problem}")
                continue
            if isinstance(record.get("config"), dict):   # written before a field was added
                record["config"] = {**record["config"], **{
                    k: v for k, v in ADDED_JSON_DEFAULTS.items() if k not in record["config"]}}
            if fields is not None:
                record = {k: record.get(k) for k in fields}
            records.append(record)
    except OSError as e:
        problems.append(f"{path}: cannot read: {e.strerror or e}")
    return records, problems


def sweep_names(path: str | os.PathLike) -> set[str]:
    """The sweep names found in a results file, on any line that is a JSON object naming one,
    well-formed record or not (to refuse mixing sweeps before anything is written)."""
    names = set()
    try:
        with open(path, "rb") as f:
            for raw in f:
                try:
                    value = json.loads(raw.decode("utf-8"))
                except (ValueError, RecursionError):
                    continue
                if isinstance(value, dict) and isinstance(value.get("sweep"), str):
                    names.add(value["sweep"])
    except OSError:
        pass
    return names


def summarize_problems(problems: list[str], limit: int = 5) -> list[str]:
    """Per-line problems as one note: how many lines were skipped, and where (FILE:LINE)."""
    if len(problems) <= 1:
        return list(problems)
    shown = "; ".join(problems[:limit])
    more = f"; and {len(problems) - limit} more" if len(problems) > limit else ""
    return [f"{len(problems)} unusable lines skipped: {shown}{more}"]


def repair(path: str | os.PathLike) -> str | None:
    """Make a results file safe to append to, deleting nothing; returns a note, or None.

    Every line that is not a whole record goes to a side file, PATH.damaged-TIMESTAMP, and the
    file is rewritten (atomically) with the records alone. A last record without its final
    newline is kept and the newline added. Call it while holding the file's lock.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        return None
    damaged, count, last = [], 0, b"\n"
    for n, raw, record, problem in scan_lines(path):
        if record is None:
            damaged.append((n, raw, problem))
        else:
            count += 1
        last = raw
    if not damaged:
        if not last.endswith(b"\n"):
            with open(path, "ab") as f:
                f.write(b"\n")
                f.flush()
                os.fsync(f.fileno())
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    side = f"{path}.damaged-{stamp}"
    k = 1
    while os.path.exists(side):
        side, k = f"{path}.damaged-{stamp}-{k}", k + 1
    try:
        with open(side, "xb") as f:
            for _, raw, _ in damaged:
                f.write(raw if raw.endswith(b"\n") else raw + b"\n")
            f.flush()
            os.fsync(f.fileno())
        tmp = f"{path}.tmp{os.getpid()}"
        with open(path, "rb") as src, open(tmp, "wb") as dst:
            bad = {n for n, _, _ in damaged}
            for n, raw in enumerate(src, start=1):
                if n in bad or not raw.strip():
                    continue
                dst.write(raw if raw.endswith(b"\n") else raw + b"\n")
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise OutputError(f"{path}: cannot set damaged lines aside: {e.strerror or e}; "
                          "the file is unchanged") from None
    where = ", ".join(f"line {n} ({p})" for n, _, p in damaged[:3])
    more = f" and {len(damaged) - 3} more" if len(damaged) > 3 else ""
    return (f"{path}: {len(damaged)} unusable line(s) moved to {side} ({where}{more}); "
            f"{count} records kept; the runs of moved lines will be done again")


# ----------------------------------------------------------------------------- the lock


class ResultsLock:
    """One writer per results file: an advisory flock on PATH.lock, held until released or
    until the process ends (the kernel releases it on any exit, kill -9 included).

    The lock file holds the holder's pid, host and start time, so a second writer can name
    it. The holder removes it as it releases; a process that took the lock on a file since
    removed sees that and locks the new one, so two holders never overlap.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = f"{os.fspath(path)}.lock"
        self.fd: int | None = None

    def holder(self) -> str:
        try:
            with open(self.path, encoding="utf-8", errors="replace") as f:
                text = f.read().strip()
        except OSError:
            text = ""
        return text or "another process"

    def acquire(self, wait: bool = False, on_wait=None) -> "ResultsLock":
        """Take the lock; raise ConfigError naming the holder if it is held (unless `wait`,
        then block until it is free, after calling on_wait(holder) once)."""
        while True:
            fd = self._lock(wait, on_wait)
            # The holder removes the lock file as it releases: a lock taken on a file that
            # is no longer at self.path is no lock; take the new one.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except OSError:
                same = False
            if same:
                break
            os.close(fd)
            on_wait = None
        try:
            started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
            info = f"pid {os.getpid()} on {socket.gethostname()} since {started}\n"
            os.ftruncate(fd, 0)
            os.pwrite(fd, info.encode(), 0)
        except OSError:
            pass                           # the holder's name is a courtesy, not the lock
        self.fd = fd
        return self

    def _lock(self, wait: bool, on_wait) -> int:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise OutputError(f"{self.path}: cannot create the lock file: "
                              f"{e.strerror or e}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    raise ConfigError(
                        f"--out: {self.path[:-5]} is being written by {self.holder()}; one "
                        "writer per results file: wait for it to finish (or pass "
                        "--wait-for-lock), or give each job its own --shard") from None
                if on_wait is not None:
                    on_wait(self.holder())
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as e:
                raise OutputError(f"{self.path}: cannot lock: {e.strerror or e} (the file "
                                  "system may not support flock; see docs/sweeps.md)") from None
        except BaseException:
            os.close(fd)
            raise
        return fd

    def release(self) -> None:
        """Remove the lock file and release the lock (a kill releases it too, leaving the
        file, which the next holder takes over)."""
        if self.fd is not None:
            try:
                os.remove(self.path)
            except OSError:
                pass
            os.close(self.fd)           # closing the last descriptor releases the flock
            self.fd = None

    def __enter__(self):
        return self.acquire() if self.fd is None else self

    def __exit__(self, *exc):
        self.release()


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


def ensure_writable_dir(directory: str | os.PathLike) -> None:
    """Create a directory if needed and check that a file can be written in it, before any
    work whose output goes there; raises OSError."""
    os.makedirs(directory, exist_ok=True)
    probe = os.path.join(directory, f".write-test-{os.getpid()}")
    with open(probe, "w") as f:
        f.write("ok")
    os.remove(probe)


def write_atomic(path: str | os.PathLike, contents: "str | Callable[[BinaryIO], None]") -> None:
    """Write a file so that readers see the old or the new contents, never a mix: a text, or
    what `contents(f)` writes to the binary file f (a kept state's arrays).

    On failure (a full disk, a read-only directory) the temporary file is removed, the old
    contents stay, and OSError propagates.
    """
    tmp = f"{path}.tmp{os.getpid()}"
    text = isinstance(contents, str)
    try:
        with open(tmp, "w" if text else "wb", encoding="utf-8" if text else None) as f:
            if text:
                f.write(contents)
            else:
                contents(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


# ----------------------------------------------------------------------------- reading


def load_results(directory: str | os.PathLike) -> tuple[list[dict], list[str]]:
    """Every usable record of a directory's results files (shards merged), and notes.

    Lines that are not whole records are skipped and counted in one note (FILE:LINE each); a
    run recorded twice (e.g. by two job-array tasks given overlapping shards) counts once, and
    that is one note too. Nothing in the files' contents raises.

    Raises:
      ConfigError: if the directory holds no results file or no usable record.
    """
    if not os.path.isdir(directory):
        what = "not a directory" if os.path.exists(directory) else "no such directory"
        raise ConfigError(f"{directory}: {what}")
    try:
        files = results_files(directory)
    except OSError as e:
        raise ConfigError(f"{directory}: cannot list: {e.strerror or e}") from None
    if not files:
        raise ConfigError(f"{directory}: no results files (results.jsonl or "
                          "results.shard-*.jsonl); run `python -m gan_jax sweep FILE --out "
                          f"{directory}` first")
    records, problems, doubled, seen = [], [], [], set()
    for path in files:
        recs, probs = read_records(path)
        problems += probs
        for r in recs:
            if r["run_id"] in seen:
                doubled.append(f"{path}: run {r['run_id']}")
                continue
            seen.add(r["run_id"])
            records.append(r)
    notes = summarize_problems(problems)
    if doubled:
        notes.append(f"{len(doubled)} run(s) recorded twice; counted once: "
                     + "; ".join(doubled[:3]) + ("; ..." if len(doubled) > 3 else ""))
    if not records:
        raise ConfigError(f"{directory}: the results files hold no usable records"
                          + (f" ({notes[0]})" if notes else ""))
    return records, notes


# ----------------------------------------------------------------------------- keys and groups
# A key names a configuration field, or several tied by '+' as in a sweep file's grid
# ("lr_g+lr_d"): its value in a record is the fields' common value, or a tuple if they differ.


def last_rungs(records: list[dict]) -> list[dict]:
    """Records without those a later rung of successive halving continued (gan_jax.sweep.
    halving): of the records with a `rung` that share a sweep, a seed and a configuration
    apart from `steps`, only the highest rung's; records without a rung stay as they are."""
    def lineage(r):
        config = {k: v for k, v in r["config"].items() if k != "steps"}
        return r["sweep"], r["seed"], json.dumps(config, sort_keys=True)

    last: dict[tuple, int] = {}
    for r in records:
        if "rung" in r:
            key = lineage(r)
            last[key] = max(last.get(key, r["rung"]), r["rung"])
    return [r for r in records if "rung" not in r or r["rung"] == last[lineage(r)]]


def hashable(value: Any) -> Any:
    """A hashable form of a record's value (lists become tuples)."""
    return tuple(hashable(v) for v in value) if isinstance(value, list) else value


def same(a: Any, b: Any) -> bool:
    """Equal values, 1 and 1.0 alike."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) \
            and not isinstance(a, bool) and not isinstance(b, bool):
        return float(a) == float(b)
    return a == b


def config_value(record: dict, field: str) -> Any:
    """A record's value of a configuration key: a field, or a component's option
    ("<component>.<option>", held in its `options` table; its declared default where the
    record's configuration names that component and leaves it unset, None otherwise)."""
    config = record["config"]
    if field in config:
        return config[field]
    options = config.get("options") or {}
    if field in options:
        return options[field]
    moved = legacy_options().get(field)      # a field that became an option, asked by its name
    if moved is not None:
        return config_value(record, moved)
    found = registry.declared_options().get(field)
    if found is not None:
        named = config.get(registry.KINDS[found.kind].field)
        if named == found.component or isinstance(named, list) and found.component in named:
            # a record written before the option moved holds it under its field's name
            legacy = found.option.legacy
            return config[legacy] if legacy and legacy in config else found.option.default
    return None


def key_value(record: dict, key: str) -> Any:
    """The value of a key in a record's configuration (hashable)."""
    values = [hashable(config_value(record, f)) for f in tied_fields(key)]
    if all(same(v, values[0]) for v in values):
        return values[0]
    return tuple(values)


def final_metrics(records: list[dict]) -> list[str]:
    """Every final metric the records hold, in the order first met."""
    return list(dict.fromkeys(m for r in records for m in r.get("final", {})))


def config_keys(records: list[dict]) -> list[str]:
    """The configuration fields the records have, in the order of the first record, with the
    `options` table's keys ("<component>.<option>") in its place."""
    return list(dict.fromkeys(o for r in records for k in r["config"]
                              for o in (_option_keys(records) if k == "options" else (k,))))


def _option_keys(records: list[dict]) -> list[str]:
    return sorted({k for r in records for k in (r["config"].get("options") or {})})


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
        first = hashable(config_value(records[0], k))
        if any(not same(hashable(config_value(r, k)), first) for r in records):
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
    """Records grouped by their values of the keys, groups in sorted order of those values,
    each group's records in order of seed, then run id: whatever order the records were read
    in (one file, merged shards, a resumed sweep), a table's bootstrap resamples the same
    values in the same places."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        value = tuple(key_value(r, k) for k in keys)
        match = next((g for g in groups if all(map(same, g, value))), value)
        groups.setdefault(match, []).append(r)
    return {k: sorted(groups[k], key=_record_order)
            for k in sorted(groups, key=lambda v: tuple(map(sort_key, v)))}


def _record_order(record: dict) -> tuple:
    seed = record.get("seed")
    return (0, seed, str(record.get("run_id"))) if isinstance(seed, int) else \
        (1, 0, str(record.get("run_id")))


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
    tuples; the `options` table as one column per option set in any run, under its key,
    "<component>.<option>"), then every final metric under its own name (w1, mode_balance, ...; null, i.e.
    non-finite, as NaN). Names are not prefixed, so `df.groupby("loss")["w1"].median()` reads
    as the table does; a final metric whose name is also a run or configuration column (none
    today) is prefixed `final_`. Diverged runs are rows like any other: filter on `status`.

    Args:
      source: a sweep's output directory (read with `load_results`, shards merged) or a list
        of records.
      history: also return the training history in long format (`history_frame`).

    Returns:
      runs, or (runs, history) with history=True: a DataFrame with columns run_id, step,
      metric, value, one row per run x log row x number of a history metric (list-valued
      entries such as g_params one row per element, g_params[0], g_params[1], ...).

    Raises:
      ConfigError: pandas is not installed, or the directory holds no records.
    """
    pd = _pandas()
    records = source if isinstance(source, list) else load_results(source)[0]
    keys = config_keys(records)
    metrics = final_metrics(records)
    taken = set(RUN_COLUMNS) | set(keys)
    names = {m: f"final_{m}" if m in taken else m for m in metrics}
    rows = []
    for r in records:
        row = {c: r.get(c) for c in RUN_COLUMNS}
        row.update({k: hashable(config_value(r, k)) for k in keys})
        row.update({names[m]: number(r.get("final", {}).get(m)) for m in metrics})
        rows.append(row)
    runs = pd.DataFrame(rows, columns=[*RUN_COLUMNS, *keys, *names.values()])
    runs["diverged_at"] = runs["diverged_at"].astype("Int64")
    if not history:
        return runs
    return runs, history_frame(records)


def _entries(name: str, value: Any):
    """(column name, number) of one history entry: a list-valued entry (g_params, d_params,
    update_eigs, ...) as one number per element, indexed like Python, g_params[0] or
    update_eigs[1][0]; a number as itself."""
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _entries(f"{name}[{i}]", v)
    else:
        yield name, number(value)


def history_frame(source):
    """The training histories in long format: columns run_id, step, metric, value (needs pandas).

    One row per run x log row x number: a scalar history metric (w1, loss_d, ...) is one row
    under its own name; a list-valued one is one row per element, named like a Python index:
    g_params[0] and g_params[1] for the linear generator's (a, b), d_params[0], and
    update_eigs[i][0], update_eigs[i][1] for the real and imaginary part of the i-th eigenvalue.
    `df[df.metric.str.startswith("g_params[")]` selects one list; `df.pivot_table(index=
    ["run_id", "step"], columns="metric", values="value")` gives one column per number. Null
    values (non-finite) as NaN.
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
                for name, x in _entries(m, v):
                    ids.append(r.get("run_id"))
                    steps.append(s)
                    names.append(name)
                    values.append(x)
    return pd.DataFrame({"run_id": ids, "step": pd.array(steps, dtype="Int64"),
                         "metric": names, "value": np.asarray(values, float)})
