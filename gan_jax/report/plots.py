"""Figures from a sweep's results: `python -m gan_jax plot DIR [...]` (needs matplotlib).

Five kinds, each a PNG under `--out` (default DIR/plots):

  curves   a history metric over training steps: the median over seeds as a line, the 25-75%
           band around it, one line per configuration, at most MAX_LINES a panel: the keys
           that vary become facets (small multiples, `--facet` or `data` first) and, past
           MAX_PANELS panels, the last ones are pooled into each line and the title says so
           (`layout`). A metric spanning more than LOG_DECADES decades gets a log axis; each
           panel counts its runs per line and its diverged runs.
  heatmap  a final metric (mean or median over seeds) for every pair of values of two config
           keys, one panel per combination of the other keys that vary; keys tied to X or Y
           (lr_d swept with lr_g) are that axis, not panels.
  samples  generated samples of chosen runs: a scatter over the target's mode centres (2-D;
           the first two coordinates in more dimensions) or histograms of real and generated
           samples over the exact density (1-D).
  critic   WGAN-GP's toy figure (Gulrajani et al. 2017, gan_toy.py's generate_image): real
           and generated samples of chosen 2-D runs over the contours of their final
           discriminator (the critic's value, or the logit), re-run from their records.
  profile  performance profiles of a final metric (rliable's score distributions): the
           fraction of a configuration's runs better than tau, against tau, with a pointwise
           95% bootstrap band; lines and panels as for curves; diverged runs never count as
           better, and are counted.
  search   a final metric against each sampled key of a [search], one panel per key: a dot per
           run, the median of each point's seeds highlighted, a binned median across the key,
           log axes where the key's values are log-spaced; per key Spearman's rank correlation
           with the points' medians (in the panel's title, and printed as a table).

Keys with equal values in every record (a sweep's tied "lr_g+lr_d") are one key everywhere
(`tied_keys`), and titles wrap to the figure's width.

Records do not say which keys a sweep file's [search] sampled (nor whether log-uniformly), so
`search` reads it from the values: a numeric key that takes SEARCH_MIN_VALUES or more values
is sampled (`sampled_keys`; `--sampled KEY ...` names others), and its axis is logarithmic when
its values are likelier log-uniform than uniform over their range (`log_spaced`).

Heatmaps of a positive metric whose values span more than two decades (max/min > 100) use a
logarithmic colour scale, and the colour bar says so.

A run's record holds its generated samples when its sweep keeps them (`keep_samples = N`, the
first N samples of its final evaluation, the ones its final metrics were computed on); `samples`
draws those. Runs whose records hold none are run again from their records by
`engine.rerun` (a run's numbers depend on its configuration and seed alone), at the cost of
one compilation per static configuration shown, and a panel whose re-run's final metrics
differ from the record's says so.

Figures are drawn on `matplotlib.figure.Figure` objects with the Agg canvas, never pyplot, so
nothing global (backend, open figures) changes and no display is needed. Their size in pixels
is fixed by the layout constants below (no tight bounding box), so tests can check it.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import textwrap
import warnings
from typing import Any, NamedTuple

import jax
import numpy as np

from gan_jax import config as config_lib
from gan_jax.components import data, models
from gan_jax.engine import programs as engine
from gan_jax.records import results
from gan_jax.config import tied_fields
from gan_jax.core.errors import ConfigError, suggest

DPI = 100
CURVE_PANEL = (4.8, 3.0)        # inches per curves panel
LEGEND_WIDTH = 2.8              # inches to the right of curves, for the legend
HEATMAP_PANEL = (5.2, 4.2)      # inches per heatmap panel
PROFILE_PANEL = (5.6, 3.8)      # inches of the profile panel (legend to its right)
PROFILE_TAUS = 201              # thresholds of a profile
LOG_DECADES = 2                 # a heatmap's colours go logarithmic beyond this many decades
SAMPLE_PANEL = (3.6, 3.6)       # inches per samples panel
SAMPLE_COLUMNS = 4
MAX_LINES = 8                   # lines per panel; more are pooled (and the figure says so)
MAX_PANELS = 6                  # panels a figure's facets may make
MAX_COLUMNS = 4                 # panels side by side
SEARCH_PANEL = (4.6, 3.6)       # inches per panel of a search figure (one per sampled key)
SEARCH_MIN_VALUES = 8           # a numeric key taking this many values counts as sampled
DEFAULT_CURVES_2D = ("modes_captured", "hq_fraction", "reverse_kl")
DEFAULT_CURVES_1D = ("w1", "mode_balance")
PLOT_STREAM = 0x9107            # fold_in constant: the real samples' key from the run's seed
CRITIC_POINTS = 128             # critic maps: grid points per axis (gan_toy.py's N_POINTS)


# ----------------------------------------------------------------------------- records


def parse_where(items: list[str] | None) -> dict[str, Any]:
    """KEY=VALUE filters; VALUE is read as JSON where it can be (numbers, true, null)."""
    where = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--where: got {item!r}; must be KEY=VALUE, e.g. loss=hinge")
        try:
            where[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            where[key.strip()] = raw
    return where


def _ordered(values) -> list:
    """Distinct values in sorted order (numbers first, then strings, then sequences)."""
    distinct = []
    for v in values:
        if not any(results.same(v, d) for d in distinct):
            distinct.append(v)
    return sorted(distinct, key=results.sort_key)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, tuple):
        return "/".join(_fmt(x) for x in v)
    return str(v)


def label(record: dict, keys) -> str:
    return ", ".join(f"{k}={_fmt(results.key_value(record, k))}" for k in keys) or "all runs"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=+-]+", "_", text).strip("_")


# ----------------------------------------------------------------------------- drawing

def new_figure(width: float, height: float, dpi: int = DPI):
    """A matplotlib Figure (no pyplot), or ConfigError if matplotlib is not installed."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError("plot needs matplotlib, an optional dependency: "
                          "pip install 'gan_jax[plot]' (or pip install matplotlib)") from None
    return Figure(figsize=(width, height), dpi=dpi, layout="constrained")


def _save(fig, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=fig.dpi, format="png")
    return path


def _colors(n: int):
    from matplotlib import colormaps
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def tied_keys(records: list[dict], keys) -> tuple[str, ...]:
    """The keys, those with equal values in every record merged into one key "a+b" (a sweep's
    tied `"lr_g+lr_d"`, or two keys that happen to move together): one axis, not two."""
    groups: list[list[str]] = []
    for k in keys:
        for g in groups:
            if all(results.same(results.key_value(r, k), results.key_value(r, g[0]))
                   for r in records):
                g.append(k)
                break
        else:
            groups.append([k])
    return tuple("+".join(g) for g in groups)


def _values(records: list[dict], key: str) -> list:
    return _ordered(results.key_value(r, key) for r in records)


def _find(keys, key: str) -> str | None:
    """The merged key holding every field of `key`, or None."""
    fields = set(tied_fields(key))
    return next((k for k in keys if fields <= set(tied_fields(k))), None)


class Layout(NamedTuple):
    """How a figure splits the records: one panel per value of the facet keys, one line per
    value of the line keys, and runs pooled over the rest (seeds always)."""

    facets: tuple[str, ...]
    lines: tuple[str, ...]
    pooled: tuple[str, ...]


def layout(records: list[dict], facet: str | None = None, exclude=()) -> Layout:
    """Facets and lines for records whose varying keys are too many for one panel.

    Keys (varying, tied ones merged, `exclude`d fields and the seed left out) are taken in
    configuration order. `facet` (or `data`, if it varies) is the first facet. Then each key
    becomes a facet while a panel would hold more than MAX_LINES lines and the figure stays
    within MAX_PANELS panels; the rest are lines. If they still make more than MAX_LINES
    lines, the last of them are pooled: their runs go into one median and band, and the figure
    says so. Counts are of the combinations the records have (keys that move together, like
    the seed's two configurations' generator, steps and rates, make 2, not 2^5). The loss
    ablation (generator x discriminator x loss x rate) becomes 6 panels of 6 losses, pooled
    over the 3 rates; its MLP generator alone, discriminator x rate panels of the 6 losses.
    """
    skip = set(exclude) | {"seed"}
    keys = list(tied_keys(records, [k for k in results.varying_keys(records)
                                    if k not in skip]))

    def panels(facets) -> list[list[dict]]:
        return list(results.group_records(records, facets).values()) if facets else [records]

    def most_lines(facets, lines) -> int:
        return max(len(results.group_records(p, lines)) for p in panels(facets))

    facets: list[str] = []
    first = _find(keys, facet) if facet is not None else _find(keys, "data")
    if facet is not None and first is None:
        first = facet                      # a facet that does not vary: one panel
    if first is not None:
        facets.append(first)
        keys = [k for k in keys if k != first]
    lines = list(keys)
    for k in keys:
        if (most_lines(facets, lines) > MAX_LINES and len(lines) > 1
                and len(panels(facets + [k])) <= MAX_PANELS):
            facets.append(k)
            lines.remove(k)
    pooled: list[str] = []
    while lines and most_lines(facets, lines) > MAX_LINES:
        pooled.insert(0, lines.pop())
    return Layout(tuple(facets), tuple(lines), tuple(pooled))


def _grid(records: list[dict], facets: tuple[str, ...]) -> tuple[int, int]:
    """(rows, columns) of a figure's panels: the last facet key's values across (at most
    MAX_COLUMNS), the rest down; one facet key: its values across, MAX_COLUMNS a row."""
    panels = len(results.group_records(records, facets)) if facets else 1
    across = len(_values(records, facets[-1])) if len(facets) > 1 else panels
    ncols = max(1, min(across, MAX_COLUMNS, panels))
    return math.ceil(panels / ncols), ncols


def _title(fig, text: str, fontsize: float = 10, legend: bool = True) -> None:
    """A figure title wrapped to the figure's width (less a legend's on the right), never
    clipped."""
    total = fig.get_figwidth()
    room = total - (LEGEND_WIDTH if legend else 0)
    width = room * 72 / (0.55 * fontsize)
    fig.suptitle(textwrap.fill(text, max(int(width), 20)), fontsize=fontsize,
                 x=0.5 * room / total)                  # centred over the panels


def _legend(fig, handles: dict) -> None:
    """The figure's legend on the right, each label wrapped to LEGEND_WIDTH."""
    chars = max(int(LEGEND_WIDTH * 72 / (0.55 * 8)) - 4, 12)
    fig.legend([h for h, _ in handles.values()],
               [textwrap.fill(t, chars, subsequent_indent="  ") for _, t in handles.values()],
               loc="outside right upper", fontsize=8, frameon=False)


def _pooled_note(pooled: tuple[str, ...]) -> str:
    return (f"; each line pools the runs of every {', '.join(pooled)} (more than {MAX_LINES} "
            "lines otherwise)") if pooled else ""


def _diverged(runs: list[dict]) -> int:
    return sum(r.get("status") == "diverged" for r in runs)


def _line_label(runs: list[dict], keys) -> str:
    """A line's label with its runs counted and, if any, its diverged runs."""
    div = _diverged(runs)
    n = f"n={len(runs)}" + (f", {div} diverged" if div else "")
    return f"{label(runs[0], keys)} ({n})" if keys else f"all runs ({n})"


def plot_curves(records: list[dict], metrics: list[str], path: str, *, facet: str | None = None,
                dpi: int = DPI) -> str:
    """History metrics over steps: median over seeds and its 25-75% band, per configuration.

    Panels by `layout` (at most MAX_LINES lines each, runs pooled beyond that and said so),
    one row of panels per metric; a metric whose values span more than LOG_DECADES decades gets
    a log axis. Each line's label counts its runs and how many diverged (their values after
    divergence are gaps)."""
    available = set().union(*(r["history"] for r in records)) - {"step"}
    for m in metrics:
        if m not in available:
            raise ConfigError(f"--curves: {m!r} is not a history metric{suggest(m, available)}; "
                              f"metrics: {', '.join(sorted(available))}")
    if facet is not None:
        results.check_keys(records, [facet], "--facet")
    lay = layout(records, facet)
    panels = results.group_records(records, lay.facets) if lay.facets else {(): records}
    line_ids = list(results.group_records(records, lay.lines))
    colors = dict(zip(line_ids, _colors(len(line_ids))))
    prow, ncols = _grid(records, lay.facets)
    nrows = prow * len(metrics)
    fig = new_figure(CURVE_PANEL[0] * ncols + LEGEND_WIDTH, CURVE_PANEL[1] * nrows, dpi)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    handles: dict = {}
    for i, metric in enumerate(metrics):
        drawn = []
        for p, runs_p in enumerate(panels.values()):
            ax = axes[i * prow + p // ncols, p % ncols]
            notes, sizes = [], set()
            for gid, runs in results.group_records(runs_p, lay.lines).items():
                steps = np.asarray(runs[0]["history"]["step"], float)
                rows = [r["history"].get(metric) for r in runs]
                rows = [[results.number(v) for v in row] for row in rows
                        if row is not None and len(row) == len(steps)]
                if not rows:
                    continue
                with warnings.catch_warnings():
                    # All-NaN columns (every seed diverged by then) are expected: gaps.
                    warnings.simplefilter("ignore", RuntimeWarning)
                    lo, med, hi = np.nanpercentile(np.asarray(rows), [25, 50, 75], axis=0)
                (line,) = ax.plot(steps, med, color=colors[gid], lw=1.6)
                ax.fill_between(steps, lo, hi, color=colors[gid], alpha=0.18, lw=0)
                drawn += [lo, med, hi]
                handles.setdefault(gid, (line, label(runs[0], lay.lines) if lay.lines
                                         else "all runs"))
                div = _diverged(runs)
                notes.append(f"{label(runs[0], lay.lines) or 'all'}: {div}/{len(runs)}"
                             if div else None)
                sizes.add(len(runs))
            ax.grid(alpha=0.3)
            ax.set_ylabel(metric, fontsize=9)
            ax.set_xlabel("step", fontsize=9)
            ax.tick_params(labelsize=8)
            head = label(runs_p[0], lay.facets) if lay.facets else ""
            sizes = sorted(sizes)
            n = (f"n={sizes[0]} per line" if len(sizes) == 1 else
                 f"n={sizes[0]}-{sizes[-1]} per line") if sizes else "no runs"
            ax.set_title(textwrap.fill(f"{head}{' · ' if head else ''}{n}",
                                       int(CURVE_PANEL[0] * 13)), fontsize=8)
            notes = [t for t in notes if t]
            if notes:
                ax.text(0.01, 0.99, textwrap.fill("diverged: " + "; ".join(notes), 60),
                        transform=ax.transAxes, va="top", ha="left", fontsize=6.5,
                        color="firebrick")
        finite = np.concatenate([np.ravel(d) for d in drawn]) if drawn else np.array([])
        if color_scale(finite) == "log":
            for ax in axes[i * prow:(i + 1) * prow].ravel():
                ax.set_yscale("log")
                _plain_ticks(ax.yaxis)
                ax.set_ylabel(f"{metric} (log scale)", fontsize=9)
    for ax in axes.ravel()[len(panels) * len(metrics):]:
        ax.set_axis_off()
    for i in range(len(metrics)):
        for ax in axes[i * prow:(i + 1) * prow].ravel()[len(panels):]:
            ax.set_axis_off()
    _title(fig, f"median over seeds, band: 25-75% of runs{_pooled_note(lay.pooled)}",
           fontsize=10)
    _legend(fig, handles)
    return _save(fig, path)


def heatmap_cells(records: list[dict], x: str, y: str, metric: str, stat: str = "mean"):
    """(x values, y values, value[y, x], std[y, x], n[y, x], runs[y, x]) of a final metric.

    value and std are over the n runs of a cell whose metric is finite (of its `runs` runs).
    """
    from gan_jax.report import stats
    xs = _ordered(results.key_value(r, x) for r in records)
    ys = _ordered(results.key_value(r, y) for r in records)
    value = np.full((len(ys), len(xs)), np.nan)
    spread = np.full_like(value, np.nan)
    count = np.zeros(value.shape, int)
    runs = np.zeros(value.shape, int)
    for (i, yv), (j, xv) in ((a, b) for a in enumerate(ys) for b in enumerate(xs)):
        cell = [results.number(r["final"].get(metric)) for r in records
                if results.same(results.key_value(r, x), xv) and results.same(results.key_value(r, y), yv)]
        s = stats.summarize(cell, interval="t")   # mean, median, std only: no resampling
        count[i, j], runs[i, j] = s.n, len(cell)
        if s.n:
            value[i, j] = s.mean if stat == "mean" else s.median
            spread[i, j] = s.std
    return xs, ys, value, spread, count, runs


def plot_heatmap(records: list[dict], x: str, y: str, metric: str, path: str, *,
                 stat: str = "mean", dpi: int = DPI) -> str:
    """A final metric over two config keys; one panel per combination of other varying keys."""
    results.check_keys(records, [x, y], "--heatmap")
    from gan_jax.report import tables
    tables.check_metric(metric, results.final_metrics(records), "--heatmap")
    # Keys that move with x or y (lr_d with lr_g in a sweep's "lr_g+lr_d") are the same axis,
    # not panels of one row each.
    axis_fields = set(tied_fields(x)) | set(tied_fields(y))
    keys = tied_keys(records, results.varying_keys(records, exclude=("seed",)))
    panel_keys = tuple(k for k in keys if not set(tied_fields(k)) & axis_fields)
    panels = results.group_records(records, panel_keys)
    nrows, ncols = _grid(records, panel_keys)
    fig = new_figure(HEATMAP_PANEL[0] * ncols, HEATMAP_PANEL[1] * nrows, dpi)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    for ax, runs in zip(axes, panels.values()):
        xs, ys, value, spread, count, total = heatmap_cells(runs, x, y, metric, stat)
        masked = np.ma.masked_invalid(value)
        vmin, vmax = _color_range(metric, runs[0])
        scale = color_scale(value, fixed=vmin is not None)
        if scale == "log":
            from matplotlib.colors import LogNorm
            finite = value[np.isfinite(value)]
            image = ax.imshow(masked, cmap="viridis", aspect="auto", origin="lower",
                              norm=LogNorm(vmin=finite.min(), vmax=finite.max()))
        else:
            image = ax.imshow(masked, cmap="viridis", aspect="auto", origin="lower", vmin=vmin,
                              vmax=vmax)
        bar = fig.colorbar(image, ax=ax, shrink=0.85)
        bar.set_label(f"{metric} ({stat}{', log scale' if scale == 'log' else ''})")
        ax.set_xticks(range(len(xs)), [_fmt(v) for v in xs], rotation=30, ha="right")
        ax.set_yticks(range(len(ys)), [_fmt(v) for v in ys])
        ax.set_xlabel(_find(keys, x) or x)        # "lr_g+lr_d" where lr_d moves with lr_g
        ax.set_ylabel(_find(keys, y) or y)
        lo, hi = image.norm.vmin, image.norm.vmax
        middle = 0.5 * (lo + hi) if lo is not None and hi is not None else 0.0
        if scale == "log":
            middle = math.sqrt(lo * hi)                  # the colour scale's midpoint
        for i in range(len(ys)):
            for j in range(len(xs)):
                if count[i, j] == 0:
                    text, color = ("no runs" if total[i, j] == 0 else "not finite"), "black"
                else:
                    sd = "" if not np.isfinite(spread[i, j]) else f"\n±{spread[i, j]:.2g}"
                    part = "" if count[i, j] == total[i, j] else \
                        f"\n({count[i, j]} of {total[i, j]} finite)"
                    text = f"{value[i, j]:.3g}{sd}{part}"
                    color = "black" if value[i, j] > middle else "white"
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color=color)
        div = _diverged(runs)
        head = label(runs[0], panel_keys) if panel_keys else ""
        tail = f"{div} of {len(runs)} runs diverged" if div else ""
        if head or tail:
            ax.set_title(textwrap.fill(" · ".join(t for t in (head, tail) if t),
                                       int(HEATMAP_PANEL[0] * 12)), fontsize=9)
    _title(fig, f"{metric}: {stat} over seeds (± std; a cell's finite runs if not all)",
           fontsize=11, legend=False)
    return _save(fig, path)


def color_scale(values, fixed: bool = False) -> str:
    """'log' when the finite values are all positive and span more than LOG_DECADES decades
    (max / min > 10^LOG_DECADES), else 'linear'; always 'linear' for a metric with a fixed
    natural range (fixed=True), whose colours mean the same on every figure."""
    x = np.asarray(values, float)
    x = x[np.isfinite(x)]
    if fixed or x.size < 2 or np.any(x <= 0):
        return "linear"
    return "log" if x.max() / x.min() > 10.0 ** LOG_DECADES else "linear"


# Metrics with a natural range: a colour scale over it shows 5 of 8 modes as 5/8, not as "best".
_UNIT_METRICS = ("hq_fraction", "mode_balance", "left", "right")


def _color_range(metric: str, record: dict) -> tuple[float | None, float | None]:
    if metric in _UNIT_METRICS:
        return 0.0, 1.0
    if metric == "modes_captured":
        return 0.0, float(data.make_target(config_lib.make_config(record["config"])).num_modes)
    return None, None


def profile_values(records: list[dict], metric: str, higher_is_better: bool) -> dict:
    """Configuration label -> its runs' values of a final metric, diverged or non-finite runs
    as the worst value (+-inf: never better than any threshold); configurations are the
    varying keys' values, seeds pooled."""
    keys = results.varying_keys(records, exclude=("seed",))
    worst = -math.inf if higher_is_better else math.inf
    out = {}
    for runs in results.group_records(records, keys).values():
        x = [results.number(r["final"].get(metric)) if r.get("status") != "diverged" else worst
             for r in runs]
        out[label(runs[0], keys)] = [v if math.isfinite(v) else worst for v in x]
    return out


def profile_taus(values: dict, count: int = PROFILE_TAUS) -> tuple[np.ndarray, str]:
    """Thresholds spanning the finite values: log-spaced when they are positive and span more
    than LOG_DECADES decades (W1 from 0.05 to 4000), else evenly spaced; and the scale."""
    x = np.asarray([v for vs in values.values() for v in vs], float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return np.linspace(0.0, 1.0, count), "linear"
    lo, hi = float(x.min()), float(x.max())
    if color_scale(x) == "log":
        return np.geomspace(lo, hi, count), "log"
    pad = 0.02 * (hi - lo) if hi > lo else 0.5
    return np.linspace(lo - pad, hi + pad, count), "linear"


def plot_profile(records: list[dict], metric: str, path: str, *, higher_is_better: bool,
                 dpi: int = DPI) -> str:
    """Performance profiles of a final metric: per configuration, the fraction of runs better
    than tau against tau, with its pointwise 95% percentile-bootstrap band (10,000 resamples,
    seed 0; `stats.performance_profile`). Panels and lines by `layout` (at most MAX_LINES lines
    a panel, runs pooled beyond that and said so); diverged runs count as never better, and
    each line's label counts them."""
    from gan_jax.report import stats, tables
    tables.check_metric(metric, results.final_metrics(records), "--profile")
    lay = layout(records)
    panels = results.group_records(records, lay.facets) if lay.facets else {(): records}
    taus, scale = profile_taus(profile_values(records, metric, higher_is_better))
    line_ids = list(results.group_records(records, lay.lines))
    colors = dict(zip(line_ids, _colors(len(line_ids))))
    nrows, ncols = _grid(records, lay.facets)
    fig = new_figure(PROFILE_PANEL[0] * ncols + LEGEND_WIDTH, PROFILE_PANEL[1] * nrows, dpi)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    handles: dict = {}
    worst = -math.inf if higher_is_better else math.inf
    for ax, runs_p in zip(axes.ravel(), panels.values()):
        groups = results.group_records(runs_p, lay.lines)
        values = {gid: [results.number(r["final"].get(metric))
                        if r.get("status") != "diverged" else worst for r in runs]
                  for gid, runs in groups.items()}
        values = {g: [v if math.isfinite(v) else worst for v in vs] for g, vs in values.items()}
        profiles = stats.performance_profile(values, taus, higher_is_better=higher_is_better)
        for gid, prof in profiles.items():
            runs = groups[gid]
            (line,) = ax.step(taus, prof.fraction, where="post", color=colors[gid], lw=1.5,
                              label=_line_label(runs, lay.lines))
            ax.fill_between(taus, prof.ci_low, prof.ci_high, step="post", color=colors[gid],
                            alpha=0.15, lw=0)
            handles.setdefault(gid, (line, label(runs[0], lay.lines) if lay.lines
                                     else "all runs"))
        if scale == "log":
            ax.set_xscale("log")
            _plain_ticks(ax.xaxis)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        ax.set_xlabel(f"τ ({metric}{', log scale' if scale == 'log' else ''})", fontsize=9)
        ax.set_ylabel(f"fraction with {metric} {'>' if higher_is_better else '<'} τ",
                      fontsize=9)
        sizes = sorted({len(g) for g in groups.values()})
        div = [f"{label(groups[g][0], lay.lines) or 'all'}: {_diverged(groups[g])}"
               f"/{len(groups[g])}" for g in groups if _diverged(groups[g])]
        head = label(runs_p[0], lay.facets) if lay.facets else ""
        n = f"n={sizes[0]} per line" if len(sizes) == 1 else f"n={sizes[0]}-{sizes[-1]} per line"
        ax.set_title(textwrap.fill(f"{head}{' · ' if head else ''}{n}",
                                   int(PROFILE_PANEL[0] * 13)), fontsize=8)
        if div:
            ax.text(0.99, 0.02, textwrap.fill("diverged (never better): " + "; ".join(div), 60),
                    transform=ax.transAxes, va="bottom", ha="right", fontsize=6.5,
                    color="firebrick")
    for ax in axes.ravel()[len(panels):]:
        ax.set_axis_off()
    _title(fig, f"performance profile of {metric} ({'higher' if higher_is_better else 'lower'} "
           f"is better); band: 95% bootstrap over runs{_pooled_note(lay.pooled)}", fontsize=10)
    _legend(fig, handles)
    return _save(fig, path)


# ----------------------------------------------------------------------------- searches


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def sampled_keys(records: list[dict], exclude=()) -> tuple[str, ...]:
    """The keys a figure treats as sampled, i.e. continuous: the varying keys (tied ones
    merged, the seed and `exclude`d fields left out) whose values are all numbers and take at
    least SEARCH_MIN_VALUES distinct values. Records do not say which keys a sweep file's
    [search] sampled; a sampled real-valued key takes a new value at nearly every point (32
    points, 32 values), a grid key the few values listed."""
    skip = set(exclude) | {"seed"}
    keys = tied_keys(records, [k for k in results.varying_keys(records) if k not in skip])
    out = []
    for k in keys:
        values = _values(records, k)
        if len(values) >= SEARCH_MIN_VALUES and all(_is_number(v) for v in values):
            out.append(k)
    return tuple(out)


def log_spaced(values) -> bool:
    """True when the distinct values are positive and likelier log-uniform than uniform on
    their range [lo, hi]: sum(log 1/x) - n log(log(hi / lo)) > -n log(hi - lo), the
    log-likelihood ratio of the two densities (log-uniform draws and geometric grids pass;
    uniform draws and even grids do not, whatever decades they span). Such a key gets a log
    axis. Over three decades 32 random draws are never mistaken (1,000 trials); over one
    decade, where the two scales differ least (0.2 nats a draw), about 1 in 25 sets of 32 is,
    fewer for a Sobol sequence's even points."""
    x = np.unique(np.asarray([v for v in values if _is_number(v)], float))
    x = x[np.isfinite(x)]
    if x.size < 3 or x[0] <= 0:
        return False
    lo, hi = float(x[0]), float(x[-1])
    return float(-np.log(x).sum() - x.size * math.log(math.log(hi / lo))) > \
        -x.size * math.log(hi - lo)


class SearchPoint(NamedTuple):
    """One configuration of a search (a sampled point crossed with a grid point), its runs'
    values of a metric pooled over seeds."""

    config: dict            # the record's configuration (its first run's)
    group: tuple            # values of the varying keys that are not sampled (grid keys)
    values: np.ndarray      # one per run: the metric, NaN where the run failed
    failed: int             # runs that diverged or whose metric is not finite
    score: float            # median over runs, failed runs as the worst value (+-inf)


def search_points(records: list[dict], metric: str, keys: tuple[str, ...],
                  higher_is_better: bool | None = None) -> list[SearchPoint]:
    """The records' configurations (every varying key but the seed) with their runs' values.

    A failed run (diverged, or its metric null or not finite) counts as the worst value in a
    point's score (its median over runs), so a point that fails on most seeds ranks last;
    that needs the metric's direction, which `higher_is_better` gives or `tables.direction`
    knows (its ConfigError otherwise), and only when some run failed."""
    from gan_jax.report import tables
    config_keys = tied_keys(records, results.varying_keys(records, exclude=("seed",)))
    group_keys = _group_keys(records, keys)
    points = []
    for runs in results.group_records(records, config_keys).values():
        x = np.asarray([results.number(r["final"].get(metric)) if r.get("status") != "diverged"
                        else math.nan for r in runs], float)
        x[~np.isfinite(x)] = math.nan
        failed = int(np.isnan(x).sum())
        if failed and higher_is_better is None:
            higher_is_better = tables.direction(metric)
        worst = (-math.inf if higher_is_better else math.inf) if failed else math.nan
        score = float(np.median(np.where(np.isnan(x), worst, x)))
        points.append(SearchPoint(runs[0]["config"], tuple(results.key_value(runs[0], k)
                                                           for k in group_keys),
                                  x, failed, score))
    return points


def search_sensitivity(records: list[dict], metric: str, keys: tuple[str, ...],
                       higher_is_better: bool | None = None) -> list[dict]:
    """Per sampled key and group of grid values, Spearman's rank correlation of the key's value
    with the points' scores (`search_points`: median over seeds, failed runs the worst):
    dicts of key, group (label), points, failed runs, rho, p. Groups pool when there are
    more than MAX_LINES (the figure says so)."""
    points = search_points(records, metric, keys, higher_is_better)
    return _sensitivity(points, keys, _group_keys(records, keys))


def _sensitivity(points: list[SearchPoint], keys, group_keys) -> list[dict]:
    from gan_jax.report import stats
    groups, pooled = _pooled_groups(points)
    out = []
    for key in keys:
        for gid, pts in groups.items():
            xs = [results.key_value(dict(config=p.config), key) for p in pts]
            c = stats.spearman(xs, [p.score for p in pts])
            out.append(dict(key=key, group=_group_label(group_keys, gid, pooled), points=len(pts),
                            failed=sum(p.failed for p in pts), rho=c.rho, p=c.p))
    return out


def _group_keys(records: list[dict], keys) -> tuple[str, ...]:
    sampled = {f for k in keys for f in tied_fields(k)}
    return tuple(k for k in tied_keys(records, results.varying_keys(records, exclude=("seed",)))
                 if not set(tied_fields(k)) & sampled)


def _search_groups(points: list[SearchPoint]) -> dict[tuple, list[SearchPoint]]:
    groups: dict[tuple, list[SearchPoint]] = {}
    for p in points:
        match = next((g for g in groups if all(map(results.same, g, p.group))), p.group)
        groups.setdefault(match, []).append(p)
    return {k: groups[k] for k in sorted(groups, key=lambda v: tuple(map(results.sort_key, v)))}


def _pooled_groups(points: list[SearchPoint]) -> tuple[dict[tuple, list[SearchPoint]], bool]:
    """The points by group of grid values, or all in one group when there are more than
    MAX_LINES groups; and whether they were pooled."""
    groups = _search_groups(points)
    if len(groups) > MAX_LINES:
        return {(): points}, True
    return groups, False


def _group_label(group_keys, gid, pooled: bool) -> str:
    if pooled:
        return f"all {', '.join(group_keys)} pooled"
    return ", ".join(f"{k}={_fmt(v)}" for k, v in zip(group_keys, gid)) or "all points"


def _rho(row: dict) -> str:
    if not math.isfinite(row["rho"]):
        return f"ρ undefined ({row['points']} points)"
    return f"ρ = {row['rho']:+.2f} (p = {row['p']:.2g}, {row['points']} points)"


def sensitivity_table(rows: list[dict]) -> str:
    """The sensitivity summary as a markdown table (printed by `plot --search`)."""
    from gan_jax.report import tables
    grouped = any(r["group"] != "all points" for r in rows)
    header = ["key"] + (["grid point"] if grouped else []) + [
        "points", "failed runs", "Spearman ρ", "p"]
    body = [[r["key"]] + ([r["group"]] if grouped else []) + [
        str(r["points"]), str(r["failed"]),
        f"{r['rho']:+.3f}" if math.isfinite(r["rho"]) else "undefined",
        f"{r['p']:.2g}" if math.isfinite(r["p"]) else "-"] for r in rows]
    return tables.markdown_table(header, body)


def _binned(xs: np.ndarray, ys: np.ndarray, log: bool) -> tuple[np.ndarray, np.ndarray]:
    """The median of ys in equal-count bins of xs (3 to 8 bins, about 4 points each): a rough
    marginal curve, so a U-shape that a rank correlation misses shows."""
    order = np.argsort(xs, kind="stable")
    bins = np.array_split(order, int(np.clip(xs.size // 4, 3, 8)))
    bx = np.asarray([np.exp(np.median(np.log(xs[b]))) if log else np.median(xs[b])
                     for b in bins])
    by = np.asarray([np.median(ys[b]) for b in bins])
    by[~np.isfinite(by)] = np.nan                  # a bin whose median point failed: a gap
    return bx, by


def plot_search(records: list[dict], metric: str, path: str, *,
                keys: tuple[str, ...] | None = None, higher_is_better: bool | None = None,
                dpi: int = DPI) -> tuple[str, list[dict]]:
    """A final metric against each sampled key of a search, one panel per key.

    Every run is a small dot; each point's score (the median over its seeds, failed runs as
    the worst value) a large marker; a thin line joins binned medians of the scores. A key
    whose values are log-spaced (`log_spaced`) gets a log axis, the metric one when its
    values span more than LOG_DECADES decades. Grid points crossed with the search (the
    varying keys that are not sampled) are colours, at most MAX_LINES (pooled beyond, and
    the title says so). Failed runs (diverged, or the metric not finite) are crosses on the
    panel's worse edge, counted in the legend. Each panel's title gives Spearman's rho of the
    key with the scores (`search_sensitivity`).

    Returns:
      (path, the sensitivity rows).
    """
    from gan_jax.report import tables
    tables.check_metric(metric, results.final_metrics(records), "--search")
    if keys is None:
        keys = sampled_keys(records)
        if not keys:
            raise ConfigError(
                f"--search: no key takes {SEARCH_MIN_VALUES} or more numeric values across "
                "the runs, as a [search]'s sampled keys do; name the keys with --sampled KEY")
    else:
        results.check_keys(records, keys, "--sampled")
        all_keys = tied_keys(records, results.varying_keys(records, exclude=("seed",)))
        keys = tuple(_find(all_keys, k) or k for k in keys)
        for k in keys:
            values = _values(records, k)
            if len(values) < 2 or not all(_is_number(v) for v in values):
                raise ConfigError(f"--sampled: {k} takes the values "
                                  f"{', '.join(map(_fmt, values[:6]))}; must be a numeric key "
                                  "that varies")
    points = search_points(records, metric, keys, higher_is_better)
    if any(p.failed for p in points) and higher_is_better is None:
        from gan_jax.report import tables
        higher_is_better = tables.direction(metric)
    group_keys = _group_keys(records, keys)
    rows = _sensitivity(points, keys, group_keys)
    groups, pooled = _pooled_groups(points)
    colors = dict(zip(groups, _colors(len(groups)) if len(groups) > 1 else ["tab:blue"]))
    ncols = min(len(keys), MAX_COLUMNS)
    nrows = math.ceil(len(keys) / ncols)
    fig = new_figure(SEARCH_PANEL[0] * ncols + LEGEND_WIDTH, SEARCH_PANEL[1] * nrows, dpi)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    finite = np.concatenate([p.values[np.isfinite(p.values)] for p in points])
    y_log = color_scale(finite) == "log"
    seeds = sorted({len(p.values) for p in points})
    handles: dict = {}
    extras: dict = {}                         # entries after the groups': runs, bins, failures
    failed_total = sum(p.failed for p in points)
    for ax, key in zip(axes, keys):
        xs_all = [results.key_value(dict(config=p.config), key) for p in points]
        x_log = log_spaced(xs_all)
        for gid, pts in groups.items():
            color = colors[gid]
            xs = np.asarray([float(results.key_value(dict(config=p.config), key)) for p in pts])
            run_x = np.concatenate([np.full(p.values.size, x) for p, x in zip(pts, xs)])
            run_y = np.concatenate([p.values for p in pts])
            ok = np.isfinite(run_y)
            dots = ax.scatter(run_x[ok], run_y[ok], s=7, color=color, alpha=0.35, lw=0)
            scores = np.asarray([p.score for p in pts])
            shown = np.isfinite(scores)
            big = ax.scatter(xs[shown], scores[shown], s=30, color=color, edgecolor="black",
                             lw=0.6, zorder=3)
            line = None
            if xs.size >= 9:
                bx, by = _binned(xs, scores, x_log)
                (line,) = ax.plot(bx, by, color=color, lw=1.2, alpha=0.8, zorder=2)
            if gid not in handles:
                name = _group_label(group_keys, gid, pooled)
                handles[gid] = (big, f"{name}: median of a point's seeds"
                                if len(groups) > 1 else "median of a point's seeds")
            extras.setdefault("run", (_proxy(dots, "o", 4, "grey" if len(groups) > 1 else color),
                                      "one run"))
            if line is not None:
                extras.setdefault("bin", (_proxy(line, None, 0, "grey" if len(groups) > 1
                                                 else color), "binned median of the points"))
            fail_x = run_x[~ok]
            if fail_x.size:
                from matplotlib.transforms import blended_transform_factory
                edge = 0.0 if higher_is_better else 1.0
                cross = ax.scatter(fail_x, np.full(fail_x.size, edge), marker="x", s=22,
                                   color="firebrick", lw=1.0, clip_on=False, zorder=4,
                                   transform=blended_transform_factory(ax.transData,
                                                                       ax.transAxes))
                extras.setdefault("failed", (cross, f"failed run (diverged or not finite), "
                                              f"on the worse edge: {failed_total}"))
        if x_log:
            ax.set_xscale("log")
            _plain_ticks(ax.xaxis)
        if y_log:
            ax.set_yscale("log")
            _plain_ticks(ax.yaxis)
        ax.set_xlabel(f"{key}{' (log scale)' if x_log else ''}", fontsize=9)
        ax.set_ylabel(f"{metric}{' (log scale)' if y_log else ''}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        lines = [_rho(r) if len(groups) == 1 else f"{r['group']}: {_rho(r)}"
                 for r in rows if r["key"] == key]
        ax.set_title("\n".join(textwrap.fill(t, int(SEARCH_PANEL[0] * 12.5)) for t in lines),
                     fontsize=8)
    for ax in axes[len(keys):]:
        ax.set_axis_off()
    n = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
    what = f"{len(points)} points" if len(groups) == 1 and not pooled else \
        f"{len(points)} configurations (sampled point × grid point)"
    note = (f"; {len(_search_groups(points))} grid points of {', '.join(group_keys)} pooled "
            f"(more than {MAX_LINES}; --where picks one)") if pooled else ""
    _title(fig, f"{metric} against each sampled key, {what} × {n} seeds; ρ: "
           f"Spearman rank correlation of a point's median with the key (failed runs as the "
           f"worst value){note}", fontsize=10)
    _legend(fig, {**handles, **extras})
    return _save(fig, path), rows


def _proxy(artist, marker, size, color):
    """A legend handle like `artist` in a neutral colour (entries that every group shares)."""
    from matplotlib.lines import Line2D
    if marker is None:
        return Line2D([], [], color=color, lw=1.2, alpha=0.8)
    return Line2D([], [], ls="", marker=marker, markersize=size, color=color, alpha=0.5, mew=0)


def _plain_ticks(axis) -> None:
    """Log-axis tick labels as plain numbers (0.1, 1, 10, 200), not 2 x 10^0; 1-2-5 steps over
    at most two decades, powers of ten beyond."""
    from matplotlib.ticker import FuncFormatter, LogLocator
    lo, hi = sorted(axis.get_view_interval())
    decades = math.log10(hi / lo) if lo > 0 and hi > 0 else 99
    axis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0) if decades <= 2.5
                                      else (1.0,), numticks=12))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def recorded_samples(records: list[dict], num_samples: int) -> list[dict]:
    """Each run's generated samples: those its record kept, or else a re-run's.

    A sweep keeps samples in its records with `keep_samples = N` (docs/sweeps.md); the runs
    whose records hold fewer than num_samples are run again from their records
    (engine.rerun), and their re-run final metrics are checked against the record's.

    Returns:
      One dict per record: samples (f32[n, D] NumPy), target, matches (whether the samples
      come from the record or a re-run that equals it), diverged_at.
    """
    out: list[dict | None] = [None] * len(records)
    missing = []
    for i, r in enumerate(records):
        target = data.make_target(config_lib.make_config(r["config"], where="record config"))
        kept = r.get("samples")
        if kept is not None and len(kept) >= num_samples:
            samples = np.asarray([[results.number(v) for v in row] for row in kept[:num_samples]],
                                 np.float32)
            out[i] = dict(samples=samples, target=target, matches=True,
                          diverged_at=r.get("diverged_at") if r.get("diverged_at") is not None
                          else -1)
        else:
            missing.append(i)
            out[i] = dict(target=target)
    if missing:
        for i, run in zip(missing, engine.rerun([records[i] for i in missing], num_samples)):
            final = {k: float(v) for k, v in run.final.items()}
            out[i].update(samples=np.asarray(run.samples), matches=_same_metrics(
                final, records[i]["final"]), diverged_at=int(run.state.diverged_at))
    return out


def _same_metrics(a: dict, b: dict) -> bool:
    for k, v in b.items():
        if k not in a:
            continue
        x, y = a[k], results.number(v)
        if not (math.isnan(x) and math.isnan(y)) and not math.isclose(x, y, rel_tol=1e-5,
                                                                       abs_tol=1e-6):
            return False
    return True


def plot_samples(records: list[dict], drawn: list[dict], path: str, *, dpi: int = DPI) -> str:
    """Generated samples of the given runs, one panel each (`drawn`: recorded_samples')."""
    ncols = min(SAMPLE_COLUMNS, len(records))
    nrows = math.ceil(len(records) / ncols)
    fig = new_figure(SAMPLE_PANEL[0] * ncols, SAMPLE_PANEL[1] * nrows, dpi)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    shown = results.varying_keys(records, exclude=("seed",))
    for ax, record, d in zip(axes, records, drawn):
        target, x = d["target"], d["samples"]
        finite = x[np.all(np.isfinite(x), axis=1)]
        if target.dim == 1:
            _draw_1d(ax, target, finite, len(x), record["seed"])
        else:
            _draw_2d(ax, target, finite, record["seed"])
        summary = _final_summary(record["final"], target.dim)
        if d.get("diverged_at", -1) >= 0:
            summary = f"diverged at step {d['diverged_at']}"
        if not d.get("matches", True):
            print(f"warning: re-running seed {record['seed']} ({label(record, shown)}) gave final "
                  "metrics that differ from its record; the panel shows the re-run",
                  file=sys.stderr)
            summary += " (re-run differs)"
        head = f"{label(record, shown)}\n" if shown else ""
        ax.set_title(f"{head}seed {record['seed']}: {summary}", fontsize=8)
    for ax in axes[len(records):]:
        ax.set_axis_off()
    return _save(fig, path)


def critic_maps(records: list[dict], num_samples: int,
                points: int = CRITIC_POINTS) -> list[dict]:
    """Each 2-D run's final discriminator on a grid, with real and generated samples.

    The discriminator's parameters are in no record, so every run is run again from its
    record (engine.rerun; one compilation per static configuration), its re-run final metrics
    checked against the record's. The grid is square, points x points, over the real and
    generated samples' 1st-99th percentiles widened by a fifth (gan_toy.py draws 128 x 128
    over [-3, 3]^2, which holds its targets). Real samples: `num_samples` from the target,
    keyed by the run's seed (the samples figure's stream).

    Returns one dict per record: real, samples (f32[n, 2] NumPy), xs, ys (f32[points]),
    values (f32[points, points], values[i, j] at (xs[j], ys[i]): the raw critic value or
    logit), matches, diverged_at.
    """
    cfgs = [config_lib.make_config(r["config"], where="record config") for r in records]
    for cfg in cfgs:
        if data.DIMS.get(cfg.data, 2) != 2 or cfg.pack != 1 or cfg.spectral_norm:
            raise ConfigError(f"--critic: got data = {cfg.data!r}, pack = {cfg.pack}, "
                              f"spectral_norm = {cfg.spectral_norm}; critic maps need a 2-D "
                              "target, pack = 1 and no spectral normalization")
    out = []
    for record, cfg, run in zip(records, cfgs, engine.rerun(records, num_samples)):
        target = data.make_target(cfg)
        real = np.asarray(target.sample(jax.random.fold_in(jax.random.key(record["seed"]),
                                                           PLOT_STREAM), num_samples))
        fake = np.asarray(run.samples)
        both = np.concatenate([real, fake[np.all(np.isfinite(fake), axis=1)]])
        lo, hi = np.percentile(both, [1, 99], axis=0)
        centre, half = 0.5 * (lo + hi), 0.6 * float(np.max(hi - lo))
        xs = np.linspace(centre[0] - half, centre[0] + half, points, dtype=np.float32)
        ys = np.linspace(centre[1] - half, centre[1] + half, points, dtype=np.float32)
        grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
        d = models.make_discriminator(config_lib.static_part(cfg))
        values = np.asarray(jax.jit(d.apply)(run.state.d_params, grid)).reshape(points, points)
        final = {k: float(v) for k, v in run.final.items()}
        out.append(dict(real=real, samples=fake, xs=xs, ys=ys, values=values,
                        matches=_same_metrics(final, record["final"]),
                        diverged_at=int(run.state.diverged_at)))
    return out


def plot_critic(records: list[dict], maps: list[dict], path: str, *, dpi: int = DPI) -> str:
    """Real (orange) and generated (green) samples over the contours of each run's final
    discriminator, one panel per run (`maps`: critic_maps'), as WGAN-GP's toy figure."""
    ncols = min(SAMPLE_COLUMNS, len(records))
    nrows = math.ceil(len(records) / ncols)
    fig = new_figure(SAMPLE_PANEL[0] * ncols, (SAMPLE_PANEL[1] + 0.3) * nrows, dpi)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    shown = results.varying_keys(records, exclude=("seed",))
    for ax, record, m in zip(axes, records, maps):
        values = np.where(np.isfinite(m["values"]), m["values"], np.nan)
        if np.isfinite(values).any() and np.nanmax(values) > np.nanmin(values):
            ax.contour(m["xs"], m["ys"], values, levels=12, linewidths=0.7, cmap="viridis")
        ax.scatter(m["real"][:, 0], m["real"][:, 1], s=6, marker="+", lw=0.5,
                   color="tab:orange", label="real")
        ax.scatter(m["samples"][:, 0], m["samples"][:, 1], s=6, marker="+", lw=0.5,
                   color="tab:green", label="generated")
        ax.set_xlim(m["xs"][0], m["xs"][-1])
        ax.set_ylim(m["ys"][0], m["ys"][-1])
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
        head = f"{label(record, shown)}\n" if shown else ""
        note = ""
        if m["diverged_at"] >= 0:
            note = f", diverged at step {m['diverged_at']}"
        elif not m["matches"]:
            print(f"warning: re-running seed {record['seed']} ({label(record, shown)}) gave "
                  "final metrics that differ from its record; the panel shows the re-run",
                  file=sys.stderr)
            note = " (re-run differs)"
        ax.set_title(f"{head}seed {record['seed']}, step {record['config'].get('steps')}{note}",
                     fontsize=8)
    for ax in axes[len(records):]:
        ax.set_axis_off()
    _title(fig, "real (orange) and generated (green) samples over the contours of the final "
                "discriminator", legend=False)
    return _save(fig, path)


def _final_summary(final: dict, dim: int) -> str:
    if dim == 1 and "w1" in final:
        return f"W1 {results.number(final['w1']):.3g}, balance {results.number(final.get('mode_balance')):.2f}"
    if "modes_captured" in final:
        return (f"{results.number(final['modes_captured']):.0f} modes, "
                f"{100 * results.number(final['hq_fraction']):.0f}% HQ")
    return ""


def _draw_2d(ax, target, x, seed):
    """Generated samples over the target: its mode centres where it has modes, else a real
    sample of it (a swiss roll, a point cloud)."""
    ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.35, color="tab:blue", lw=0, label="generated")
    if data.has_modes(target):
        means = target.means[:, :2]
        ax.scatter(means[:, 0], means[:, 1], s=40, marker="x", color="tab:red", lw=1.5,
                   label="mode centres")
        # View: the target's modes with a margin, widened to hold most samples (1st-99th
        # percentiles), so a few far outliers do not shrink the picture.
        pad = 3 * float(target.stds.max()) + 0.15 * float(np.ptp(means, axis=0).max() + 1e-9)
        lo, hi = means.min(0) - pad, means.max(0) + pad
    else:
        real = np.asarray(target.sample(
            jax.random.fold_in(jax.random.key(seed), PLOT_STREAM), 2000))[:, :2]
        ax.scatter(real[:, 0], real[:, 1], s=2, alpha=0.35, color="tab:red", lw=0,
                   label="real")
        lo, hi = np.percentile(real, [0.5, 99.5], axis=0)
        pad = 0.05 * float(np.max(hi - lo))
        lo, hi = lo - pad, hi + pad
    if len(x):
        q_lo, q_hi = np.percentile(x[:, :2], [1, 99], axis=0)
        lo, hi = np.minimum(lo, q_lo), np.maximum(hi, q_hi)
    half = 0.5 * float(np.max(hi - lo))
    centre = 0.5 * (lo + hi)
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=7)


def _draw_1d(ax, target, x, n, seed):
    real = np.asarray(target.sample(jax.random.fold_in(jax.random.key(seed), PLOT_STREAM), n))
    lo, hi = (float(v) for v in np.percentile(real[:, 0], [0.1, 99.9]))
    if data.has_modes(target):
        lo = min(lo, float(target.means.min() - 4 * target.stds.max()))
        hi = max(hi, float(target.means.max() + 4 * target.stds.max()))
    if len(x):
        lo = min(lo, float(np.percentile(x, 0.5)))
        hi = max(hi, float(np.percentile(x, 99.5)))
    bins = np.linspace(lo, hi, 61)
    ax.hist(real[:, 0], bins=bins, density=True, histtype="step", color="black", lw=1.2,
            label="real")
    if len(x):
        ax.hist(np.clip(x[:, 0], lo, hi), bins=bins, density=True, color="tab:blue", alpha=0.5,
                label="generated")
    if hasattr(target, "log_prob"):
        grid = np.linspace(lo, hi, 400)
        density = np.exp(np.asarray(target.log_prob(grid.astype(np.float32))))
        ax.plot(grid, density, color="tab:red", lw=1, label="target density")
    ax.legend(fontsize=7, frameon=False)
    ax.tick_params(labelsize=7)
