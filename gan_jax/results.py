"""The results record: one JSON object per finished run, appended to OUT/results.jsonl.

Format (see DESIGN.md): run_id, sweep, seed, config (every field), status ("ok" or
"diverged"), diverged_at (iteration or null), final (metrics), history (lists per log row),
versions. Non-finite numbers are written as null, so every line is standard JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from typing import Any, Iterable

import numpy as np

from gan_jax.config import RunConfig

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
    records = []
    for i, (cfg, seed) in enumerate(zip(cfgs, seeds)):
        final = {k: np.asarray(v)[i] for k, v in output.final.items()}
        div = int(diverged_at[i])
        nonfinite = not all(np.all(np.isfinite(v)) for v in final.values())
        if cfg not in config_dicts:
            config_dicts[cfg] = cfg.to_dict()
        records.append({
            "run_id": ids[i] if ids is not None else run_id(cfg, seed),
            "sweep": sweep,
            "seed": int(seed),
            "config": config_dicts[cfg],
            "status": "diverged" if div >= 0 or nonfinite else "ok",
            "diverged_at": div if div >= 0 else None,
            "final": _clean(final),
            "history": _clean({k: np.asarray(v)[i] for k, v in output.history.items()}),
            "versions": version_info,
        })
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
