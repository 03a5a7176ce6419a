"""Kept training states: a chunk's runs' state at a history row, as one `.npz` file.

What a kept state holds is the training program's output at a row boundary (gan_jax.training.train's
`Training.loop`): the TrainState (both players, optimisers, the method's and its wrappers'
state, stabilisers' state, step), the history rows' training fields so far and the generator
at each row so far, each with a leading run axis. From it a run continues with the same
numbers as if it had never stopped (iteration i and row i draw from their own keys, recomputed
from the run's seed; see gan_jax.training.train). Nothing is stored by field name: a pytree is kept as
its leaves, each named by its path (`jax.tree.flatten_with_path`), and read back into the
structure of a template of the program's outputs; a file whose paths, shapes or dtypes differ
from the template (the state gained or lost a field) is not used.

The format is a plain `.npz` (NumPy's zip of `.npy` arrays, read with allow_pickle=False): no
new dependency, data only (nothing executed on reading), one file per chunk, written to a
temporary name, fsynced and renamed over the old one (`os.replace`), so a reader sees the old
file or the new one, never a mix. Its header (a JSON string among the arrays) records the runs'
ids, their lineage (`lineage`), the rows done, and a SHA-256 digest of every other array's name,
dtype, shape and bytes; a file that does not open, fails zip's CRC-32 checks, or whose digest
differs, is reported as damaged and never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from typing import Any, NamedTuple

import jax
import numpy as np

from gan_jax.records import results

FORMAT = "gan_jax kept state 1"
HEADER = "header"
SUFFIX = ".npz"


def lineage(cfg_identity: dict, seed: int) -> str:
    """A run's identity apart from its number of steps: the hash of its configuration's
    identity (RunConfig.identity_dict) without `steps`, and its seed. Runs of one lineage train
    the same iterations in the same order, so one's state at a row is the other's (unless
    their schedule reads the total number of steps: `continuable`)."""
    rest = {k: v for k, v in cfg_identity.items() if k != "steps"}
    text = json.dumps({"config": rest, "seed": int(seed)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def flatten(tree) -> tuple[dict[str, np.ndarray], list[str], dict[str, str]]:
    """A pytree's leaves as host arrays named by their paths: (arrays by name, names in leaf
    order, the names of typed-key leaves and their implementation). Typed keys are kept as
    their key data."""
    arrays, names, keys = {}, [], {}
    for i, (path, leaf) in enumerate(jax.tree.flatten_with_path(tree)[0]):
        name = f"{i}:{jax.tree_util.keystr(path)}"
        if _is_key(leaf):
            keys[name] = str(jax.random.key_impl(leaf))
            leaf = jax.random.key_data(leaf)
        arrays[name] = np.asarray(leaf)
        names.append(name)
    return arrays, names, keys


def digest(arrays: dict[str, np.ndarray], names: list[str]) -> str:
    """SHA-256 over each array's name, dtype, shape and bytes, in `names` order."""
    h = hashlib.sha256()
    for name in names:
        a = np.ascontiguousarray(arrays[name])
        h.update(json.dumps([name, a.dtype.str, list(a.shape)]).encode())
        h.update(a.tobytes())
    return h.hexdigest()


class Kept(NamedTuple):
    """A kept state file as read: its header and its arrays by name (digest checked)."""

    header: dict[str, Any]
    arrays: dict[str, np.ndarray]


def save(path: str | os.PathLike, tree, header: dict[str, Any]) -> int:
    """Write `tree` (host or device arrays, leading run axis) and `header` to `path`
    atomically: a temporary file in the same directory, fsynced, then renamed over `path`.
    Returns the file's bytes. On failure the temporary file is removed, the old file stays,
    and OSError propagates."""
    arrays, names, keys = flatten(tree)
    head = dict(header, format=FORMAT, names=names, keys=keys, digest=digest(arrays, names))
    path = os.fspath(path)
    results.write_atomic(path, lambda f: np.savez(
        f, **{HEADER: np.asarray(json.dumps(head))},
        **{f"a{i}": arrays[n] for i, n in enumerate(names)}))
    return os.path.getsize(path)


def load(path: str | os.PathLike) -> Kept:
    """Read a kept state file and check its digest; raises ValueError naming what is wrong
    (not a kept state, cut short, damaged) so that the caller recomputes instead."""
    try:
        with np.load(path, allow_pickle=False) as z:
            bad = z.zip.testzip()          # every member read whole, its CRC-32 checked
            if bad is not None:
                raise ValueError(f"member {bad} fails its CRC-32 check (damaged)")
            head = json.loads(str(z[HEADER]))
            if head.get("format") != FORMAT:
                raise ValueError(f"not a kept state of format {FORMAT!r}")
            names = head["names"]
            arrays = {n: z[f"a{i}"] for i, n in enumerate(names)}
    except ValueError:
        raise
    except (OSError, KeyError, zipfile.BadZipFile, EOFError, json.JSONDecodeError,
            TypeError) as e:
        raise ValueError(f"unreadable ({type(e).__name__}: {e})") from None
    if digest(arrays, names) != head["digest"]:
        raise ValueError("its digest differs from the one recorded (damaged)")
    return Kept(head, arrays)


def header(path: str | os.PathLike) -> dict[str, Any]:
    """A kept state's header alone (no digest check: for finding which file holds a run)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            head = json.loads(str(z[HEADER]))
    except (OSError, KeyError, zipfile.BadZipFile, EOFError, json.JSONDecodeError,
            TypeError, ValueError) as e:
        raise ValueError(f"unreadable ({type(e).__name__}: {e})") from None
    if head.get("format") != FORMAT:
        raise ValueError(f"not a kept state of format {FORMAT!r}")
    return head


def unflatten(template, kept: Kept, rows: list[int]):
    """The runs at positions `rows` of a kept file, in the structure of `template` (a pytree
    of arrays or ShapeDtypeStructs of ONE run, no run axis). Raises ValueError when the file's
    leaves are not the template's (other paths, shapes or dtypes)."""
    leaves, treedef = jax.tree.flatten_with_path(template)
    names = kept.header["names"]
    if len(names) != len(leaves):
        raise ValueError(f"{len(names)} arrays kept, the state has {len(leaves)}")
    out = []
    for (path, leaf), name in zip(leaves, names):
        if name.partition(":")[2] != jax.tree_util.keystr(path):
            raise ValueError(f"kept array {name!r} is not the state's {jax.tree_util.keystr(path)}")
        a = kept.arrays[name][rows]
        if _is_key(leaf):
            a = jax.random.wrap_key_data(a, impl=kept.header["keys"][name])
            ok = a.shape[1:] == leaf.shape
        else:
            ok = a.shape[1:] == tuple(leaf.shape) and a.dtype == leaf.dtype
        if not ok:
            raise ValueError(f"kept array {name!r} has shape {a.shape[1:]} {a.dtype}, the "
                             f"state's is {tuple(leaf.shape)} {leaf.dtype}")
        out.append(a)
    return jax.tree.unflatten(jax.tree.structure(template), out)
