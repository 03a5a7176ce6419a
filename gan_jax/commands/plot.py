"""`python -m gan_jax plot`: figures of a sweep's results."""

from __future__ import annotations

import argparse
import os
import sys

from gan_jax.components import data
from gan_jax.core.errors import ConfigError
from gan_jax.records import results
from gan_jax.report.plots import (critic_maps, DEFAULT_CURVES_1D, DEFAULT_CURVES_2D, DPI, label,
                                  new_figure, parse_where, plot_critic, plot_curves, plot_heatmap,
                                  plot_profile, plot_samples, plot_search, recorded_samples,
                                  SEARCH_MIN_VALUES, sensitivity_table, slug)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="a sweep's output directory (results*.jsonl)")
    parser.add_argument("--out", help="where to write the PNGs (default DIR/plots)")
    parser.add_argument("--where", action="append", metavar="KEY=VALUE",
                        help="keep only runs whose config has this value (repeatable)")
    parser.add_argument("--curves", nargs="*", metavar="METRIC",
                        help="history metrics over steps (no names: modes_captured, hq_fraction, "
                             "reverse_kl in 2-D; w1, mode_balance in 1-D)")
    parser.add_argument("--facet", metavar="KEY",
                        help="curves: one column per value of this key (default: data, if it "
                             "varies)")
    parser.add_argument("--heatmap", nargs="+", metavar="ARG",
                        help="X Y [METRIC]: a final metric (default modes_captured or w1) over "
                             "two config keys (tied keys as in the sweep file: lr_g+lr_d)")
    parser.add_argument("--stat", choices=("mean", "median"), default="mean",
                        help="heatmap cells: mean (default) or median over seeds")
    parser.add_argument("--samples", action="store_true",
                        help="scatter (2-D) or histograms (1-D) of generated samples: those the "
                             "records kept (keep_samples), else re-runs "
                             "the chosen runs from their records")
    parser.add_argument("--critic", action="store_true",
                        help="2-D runs: real and generated samples over the contours of the "
                             "final discriminator (WGAN-GP's toy figure), re-running the chosen "
                             "runs from their records")
    parser.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                        help="samples, critic: these seeds of each configuration (default: the "
                             "lowest)")
    parser.add_argument("--max-runs", type=int, default=16, metavar="N",
                        help="samples, critic: at most this many runs (16)")
    parser.add_argument("--num-samples", type=int, default=2500, metavar="N",
                        help="samples, critic: points drawn per run (2500)")
    parser.add_argument("--profile", metavar="METRIC",
                        help="performance profile of a final metric: fraction of each "
                             "configuration's runs better than tau, with bootstrap bands")
    parser.add_argument("--higher-is-better", action="store_true",
                        help="profile: higher values are better (default: the metric's known "
                             "direction, see gan_jax.report.tables)")
    parser.add_argument("--lower-is-better", action="store_true",
                        help="profile: lower values are better")
    parser.add_argument("--search", nargs="?", const="", metavar="METRIC",
                        help="a search's final metric (default w1 or modes_captured) against "
                             "each sampled key: one dot per run, the median of a point's seeds, "
                             "log axes for log-spaced keys, and Spearman's rho per key (printed)")
    parser.add_argument("--sampled", nargs="+", metavar="KEY",
                        help="search: these keys (default: every numeric key taking "
                             f"{SEARCH_MIN_VALUES} or more values)")
    parser.add_argument("--dpi", type=int, default=DPI, help=f"resolution ({DPI})")


def main(args: argparse.Namespace) -> int:
    new_figure(1, 1)  # fail early, before reading anything, if matplotlib is missing
    # Upper bounds: a figure is at most ~12 in wide, and a PNG side past 2**16 pixels fails
    # in Agg; samples and runs are drawn on one figure.
    limits = {"max_runs": 1024, "num_samples": 10**6, "dpi": MAX_DPI}
    for name, high in limits.items():
        value = getattr(args, name)
        if not 1 <= value <= high:
            raise ConfigError(f"--{name.replace('_', '-')}: got {value}; must be an integer "
                              f"in [1, {high:,}]")
    if getattr(args, "sampled", None) is not None and getattr(args, "search", None) is None:
        raise ConfigError("--sampled: only with --search (the keys a search figure plots "
                          "against)")
    if args.heatmap is not None and len(args.heatmap) not in (2, 3):
        raise ConfigError(f"--heatmap: got {len(args.heatmap)} values; give X Y [METRIC]")
    records, problems = results.load_results(args.dir)
    for p in problems:
        print(f"note: {p}", file=sys.stderr)
    where = parse_where(args.where)
    records = results.select(records, where)
    out_dir = args.out or os.path.join(args.dir, "plots")
    _check_out_dir(out_dir, "--out" if args.out else args.dir)
    suffix = "".join(f"__{slug(f'{k}={v}')}" for k, v in where.items())
    one_d = all(_dim(r) == 1 for r in records)
    written = []

    nothing_chosen = (args.curves is None and args.heatmap is None and not args.samples
                      and not getattr(args, "critic", False)
                      and getattr(args, "profile", None) is None
                      and getattr(args, "search", None) is None)
    if args.curves is not None or nothing_chosen:
        names = args.curves or _defaults(records, DEFAULT_CURVES_1D if one_d else DEFAULT_CURVES_2D)
        facet = args.facet
        if facet is None and "data" in results.varying_keys(records):
            facet = "data"
        written.append(_drawn(lambda p, **kw: plot_curves(records, names, p, **kw),
                              os.path.join(out_dir, f"curves{suffix}.png"),
                              facet=facet, dpi=args.dpi))
    if args.heatmap is not None:
        x, y = args.heatmap[:2]
        metric = args.heatmap[2] if len(args.heatmap) == 3 else ("w1" if one_d else
                                                                  "modes_captured")
        name = f"heatmap_{slug(metric)}_{slug(x)}_{slug(y)}{suffix}.png"
        written.append(_drawn(lambda p, **kw: plot_heatmap(records, x, y, metric, p, **kw),
                              os.path.join(out_dir, name), stat=args.stat, dpi=args.dpi))
    if args.samples:
        chosen = choose_runs(records, args.seeds, args.max_runs)
        drawn = recorded_samples(chosen, args.num_samples)
        written.append(_drawn(lambda p, **kw: plot_samples(chosen, drawn, p, **kw),
                              os.path.join(out_dir, f"samples{suffix}.png"), dpi=args.dpi))
    if getattr(args, "critic", False):
        chosen = choose_runs(records, args.seeds, args.max_runs)
        maps = critic_maps(chosen, args.num_samples)
        written.append(_drawn(lambda p, **kw: plot_critic(chosen, maps, p, **kw),
                              os.path.join(out_dir, f"critic{suffix}.png"), dpi=args.dpi))
    written += write_profile(args, records, out_dir, suffix)
    written += write_search(args, records, out_dir, suffix, one_d)
    for path in written:
        print(path)
    return 0


def write_profile(args: argparse.Namespace, records: list[dict], out_dir: str,
                  suffix: str) -> list[str]:
    """`plot --profile METRIC`: OUT/profile_METRIC.png (none without --profile)."""
    metric = getattr(args, "profile", None)
    if metric is None:
        return []
    from gan_jax.report import tables
    if args.higher_is_better and args.lower_is_better:
        raise ConfigError("--higher-is-better, --lower-is-better: give at most one")
    hib = tables.direction(metric, higher=(metric,) if args.higher_is_better else (),
                           lower=(metric,) if args.lower_is_better else ())
    name = f"profile_{slug(metric)}{suffix}.png"
    return [_drawn(lambda p, **kw: plot_profile(records, metric, p, higher_is_better=hib, **kw),
                   os.path.join(out_dir, name), dpi=args.dpi)]


def write_search(args: argparse.Namespace, records: list[dict], out_dir: str, suffix: str,
                 one_d: bool) -> list[str]:
    """`plot --search [METRIC]`: OUT/search_METRIC.png, and the sensitivity table printed
    (none without --search)."""
    metric = getattr(args, "search", None)
    if metric is None:
        return []
    metric = metric or ("w1" if one_d else "modes_captured")
    hib = None
    if args.higher_is_better or args.lower_is_better:
        if args.higher_is_better and args.lower_is_better:
            raise ConfigError("--higher-is-better, --lower-is-better: give at most one")
        hib = bool(args.higher_is_better)
    keys = tuple(args.sampled) if args.sampled else None
    rows: list[dict] = []

    def draw(path, **kw):
        drawn, found = plot_search(records, metric, path, keys=keys, higher_is_better=hib, **kw)
        rows.extend(found)
        return drawn
    path = _drawn(draw, os.path.join(out_dir, f"search_{slug(metric)}{suffix}.png"),
                  dpi=args.dpi)
    print(f"{metric}: Spearman rank correlation of each point's median over seeds (failed runs "
          "the worst value) with each sampled key")
    print(sensitivity_table(rows))
    return [path]


MAX_DPI = 1200


def _check_out_dir(out_dir: str, flag: str) -> None:
    """Refuse, before drawing anything, an output directory that cannot be made or written."""
    from gan_jax.core.errors import OutputError
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ConfigError(f"{flag}: {out_dir!r} is a file; give a directory for the figures")
    try:
        results.ensure_writable_dir(out_dir)
    except OSError as e:
        raise OutputError(f"{flag}: cannot write figures to {out_dir!r}: "
                          f"{e.strerror or e}") from None


def _drawn(draw, path: str, *args, **kwargs) -> str:
    """Draw a figure into a temporary file beside `path`, then rename it into place: a full
    disk leaves the previous figure (or none), never half a PNG; OutputError names the file."""
    from gan_jax.core.errors import OutputError
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp{os.getpid()}.png")
    try:
        draw(*args, tmp, **kwargs)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise OutputError(f"{path}: cannot write: {e.strerror or e}; nothing was left "
                          "half-written") from None
    return path


def choose_runs(records: list[dict], seeds: list[int] | None, max_runs: int) -> list[dict]:
    """The runs to show: the given seeds (default: the lowest) of each configuration."""
    keys = results.varying_keys(records)
    chosen = []
    for runs in results.group_records(records, keys).values():
        present = sorted({r["seed"] for r in runs})
        wanted = seeds if seeds is not None else present[:1]
        missing = [s for s in wanted if s not in present]
        if missing:
            raise ConfigError(f"--seeds: {label(runs[0], keys)} has no run with seed "
                              f"{missing[0]}; its seeds: {present[:10]}"
                              f"{' ...' if len(present) > 10 else ''}")
        by_seed = {r["seed"]: r for r in runs}
        chosen += [by_seed[s] for s in wanted]
    if len(chosen) > max_runs:
        print(f"note: showing {max_runs} of {len(chosen)} runs (--max-runs; narrow with --where)",
              file=sys.stderr)
        chosen = chosen[:max_runs]
    return chosen


def _dim(record: dict) -> int:
    return data.DIMS.get(record["config"].get("data"), 2)


def _defaults(records: list[dict], names) -> list[str]:
    available = set().union(*(r["history"] for r in records))
    return [n for n in names if n in available] or sorted(available - {"step"})[:3]
