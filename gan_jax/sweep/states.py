"""A sweep's kept training states: OUT/states/, one `.npz` per chunk (gan_jax.records.checkpoint).

A chunk's file holds its runs' training at a history row: the TrainState and the rows so far
(their training fields and generators). It is written when a chunk checkpoints mid-way
(`--checkpoint-every`) and, with `--keep-states`, when the chunk finishes; each write replaces
the chunk's previous one, so a chunk has at most one file. Without `--keep-states` the file is
removed once the chunk's records are written.

A run continues from a kept state of its *lineage* (checkpoint.lineage: the same
configuration apart from `steps`, and the same seed) when `continuable` says so: the state's
row is one of the run's rows, and the training does not read the total number of steps. It
then trains only the rows after the kept one, and its record equals the one of a run trained
from step 0 in chunks of the same size (docs/sweeps.md, "Guarantees").
"""

from __future__ import annotations

import hashlib
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.records import checkpoint
from gan_jax.engine import programs as engine
from gan_jax.config import RunConfig, static_part
from gan_jax.sweep.plan import abstract_inputs
from gan_jax.sweep.spec import Run

STATES_DIR = "states"


def continuable(cfg: RunConfig) -> str | None:
    """Why a run of this configuration cannot continue from a state kept by a run of another
    number of steps, or None if it can. A state at a row is the same in runs of any length
    when nothing in training reads the total: instance noise annealed over the steps reads it
    (train.make_game); nothing else does."""
    if cfg.noise_anneal and cfg.noise_std > 0:
        return "its instance noise is annealed over the total steps"
    return None


class Entry(NamedTuple):
    """Where a run's kept state is: a file, the run's position in it, and the rows done."""

    file: str
    position: int
    rows: int         # history rows done (the state is the one after row rows - 1)
    steps: int        # the kept run's configured steps
    run_id: str       # the kept run's id


def chunk_name(runs: list[Run]) -> str:
    """A chunk's file name: the hash of its runs' ids (a resumed sweep's chunk of the same
    runs finds and replaces its file)."""
    text = "\n".join(r.run_id for r in runs)
    return hashlib.sha256(text.encode()).hexdigest()[:20] + checkpoint.SUFFIX


class Store:
    """The kept states of one output directory: an index of every file's runs by lineage,
    read from the files' headers, and the notes worth telling (files not used, and why)."""

    def __init__(self, out: str, keep: bool):
        self.dir = os.path.join(out, STATES_DIR)
        self.keep = keep                   # keep each chunk's final state (--keep-states)
        self.notes: list[str] = []
        self.index: dict[str, list[Entry]] = {}
        self.bad: set[str] = set()
        self.checked: set[str] = set()
        self.identities: dict = {}
        self.refused: dict[str, int] = {}      # reason -> runs whose kept state was not used
        if not os.path.isdir(self.dir):
            return
        for name in sorted(os.listdir(self.dir)):
            path = os.path.join(self.dir, name)
            if not name.endswith(checkpoint.SUFFIX) or ".tmp" in name:
                continue
            try:
                head = checkpoint.header(path)
            except ValueError as e:
                self.set_aside(path, str(e))
                continue
            for pos, (rid, lin) in enumerate(zip(head["run_ids"], head["lineages"])):
                self.index.setdefault(lin, []).append(
                    Entry(path, pos, int(head["rows"]), int(head["steps"]), rid))

    def summary(self) -> list[str]:
        """The notes, with one line per reason a run's kept state at other steps was not
        continued (a sweep of many runs gets one line, not one per run)."""
        return self.notes + [f"{n} runs with a state kept at other steps trained from step 0: "
                             f"{why}" for why, n in self.refused.items()]

    def lineage(self, run: Run) -> str:
        if run.cfg not in self.identities:     # runs of a sweep share few configurations
            self.identities[run.cfg] = run.cfg.identity_dict()
        return checkpoint.lineage(self.identities[run.cfg], run.seed)

    def set_aside(self, path: str, why: str) -> None:
        """Use nothing of this file (damaged, or not the current state's structure)."""
        self.bad.add(path)
        self.notes.append(f"kept state {path} not used, its runs recomputed: {why}")

    def find(self, run: Run) -> Entry | None:
        """The kept state this run continues from: of its lineage, at one of its rows, the
        most rows done; None to start at step 0 (a note says why when a state was kept but
        cannot serve)."""
        best = None
        for e in self.index.get(self.lineage(run), ()):
            if e.file in self.bad or e.rows > run.cfg.steps // run.cfg.log_every + 1:
                continue
            if e.steps != run.cfg.steps:
                why = continuable(run.cfg)
                if why is not None:
                    self.refused[why] = self.refused.get(why, 0) + 1
                    continue
            if best is None or e.rows > best.rows:
                best = e
        return best

    def verify(self, files) -> None:
        """Read each file once and check its digest; a damaged one is set aside (noted)."""
        for path in sorted(set(files) - self.checked):
            self.checked.add(path)
            try:
                checkpoint.load(path)
            except ValueError as e:
                self.set_aside(path, str(e))

    def load(self, entries: list[Entry], template):
        """The kept trees of `entries`' runs, stacked on a leading run axis in entries' order,
        in the structure of `template` (one run's, no run axis); raises ValueError if a file
        does not fit it, having set that file aside (its runs then train from step 0)."""
        by_file: dict[str, list[int]] = {}
        for e in entries:
            by_file.setdefault(e.file, []).append(e.position)
        leaves = {}
        for path, positions in by_file.items():
            try:
                tree = checkpoint.unflatten(template, checkpoint.load(path), positions)
            except ValueError as e:
                self.set_aside(path, str(e))
                raise
            leaves[path] = (jax.tree.leaves(tree), {p: i for i, p in enumerate(positions)})
        stacked = []
        for n in range(len(jax.tree.leaves(template))):
            parts = [leaves[e.file][0][n][leaves[e.file][1][e.position]] for e in entries]
            stacked.append(jnp.stack(parts) if jax.dtypes.issubdtype(
                parts[0].dtype, jax.dtypes.prng_key) else np.stack(parts))
        return jax.tree.unflatten(jax.tree.structure(template), stacked)

    def save(self, runs: list[Run], tree, rows: int) -> int:
        """Keep a chunk's runs' trees (leading run axis, the chunk's real runs only) at `rows`
        rows done; returns the file's bytes."""
        os.makedirs(self.dir, exist_ok=True)
        head = {"run_ids": [r.run_id for r in runs],
                "lineages": [self.lineage(r) for r in runs],
                "rows": rows, "steps": runs[0].cfg.steps}
        return checkpoint.save(os.path.join(self.dir, chunk_name(runs)), tree, head)

    def drop(self, runs: list[Run]) -> None:
        """Remove a chunk's file (its records are written and its state is not to be kept)."""
        try:
            os.remove(os.path.join(self.dir, chunk_name(runs)))
        except FileNotFoundError:
            pass


def run_bytes(cfg: RunConfig, rows: int | None = None) -> int:
    """Bytes one run adds to a kept state file after `rows` history rows (default: all):
    its TrainState, history fields and generators, from the training program's shapes
    (traced, not compiled). A file adds to its runs' bytes zip and npy headers of about
    300 bytes per array and a few KiB of header (paths and run ids)."""
    hp, key = abstract_inputs(cfg)
    one = jax.tree.map(lambda s: jax.ShapeDtypeStruct((1, *s.shape), s.dtype), (hp, key))
    state, trained, snaps = jax.eval_shape(engine.batched_training(static_part(cfg)), *one)
    rows = cfg.steps // cfg.log_every + 1 if rows is None else rows
    total = checkpoint.flatten(jax.tree.map(lambda s: np.zeros(s.shape[1:], _host(s.dtype)),
                                            state))[0]
    count = sum(a.nbytes for a in total.values())
    for tree in (trained, snaps):
        for s in jax.tree.leaves(tree):
            count += rows * int(np.prod(s.shape[2:], dtype=np.int64)) * _host(s.dtype).itemsize
    return count


def _host(dtype):
    """The dtype a leaf is kept as (a typed key as its key data, uint32)."""
    return np.dtype(np.uint32) if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key) else dtype
