"""Result tables: per configuration, over seeds, each final metric's mean, spread and interval.

`python -m gan_jax table DIR [--by KEYS] [--metrics NAMES] [--format md|csv|latex]` reads every
results file in DIR (results.jsonl and the shards' results.shard-I-of-N.jsonl, merged), groups
the records by the values of the --by configuration keys (default: the keys that vary across
the records, i.e. the sweep's grid keys) and summarises each metric over the seeds of a cell
with `gan_jax.stats.summarize`: mean ± std (ddof 1), median, interquartile mean (IQM) and the
95% percentile-bootstrap interval of the mean (10,000 resamples, seed 0; `--interval t` for
Student's t, `--interval bca` for BCa), kept inside each metric's known range (`BOUNDS`).
Statistics use the runs that did not diverge; `runs` counts every run of the cell and
`diverged` those that did. `--success "w1<0.5"` adds the fraction of runs meeting a threshold,
with its Wilson interval, counting diverged runs (and non-finite values) as failures. The
tables are written atomically as DIR/summary.md, summary.csv and summary.tex, and the chosen
format is printed.

`--compare KEY=A,B` adds a second table (DIR/compare_KEY_A_B.{md,csv,tex}): for each cell of
the other --by keys and each metric, A - B paired by seed (runs with the same seed share their
real-data draws) and unpaired, the probability that A beats B, the sign-flip p-value and its
Holm adjustment over the table (see `make_comparison`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from typing import Any, NamedTuple

import numpy as np

from gan_jax import metrics as metrics_lib
from gan_jax import results, stats
from gan_jax.errors import ConfigError, suggest

FORMATS = ("md", "csv", "latex")
FILES = {"md": "summary.md", "csv": "summary.csv", "latex": "summary.tex"}
INTERVALS = ("bootstrap", "bca", "t")
INTERVAL_NAMES = {"bootstrap": "percentile bootstrap, 10,000 resamples, seed 0",
                  "bca": "BCa bootstrap, 10,000 resamples, seed 0", "t": "Student t"}


def stats_note(interval: str = "bootstrap") -> str:
    """The sentence a table's caption uses to say what its cells are."""
    return ("mean ± std (sample std), median, interquartile mean (IQM) and 95% interval of the "
            f"mean ({INTERVAL_NAMES[interval]}) over the seeds of each cell that did not diverge")


STATS_NOTE = stats_note()

# Known ranges of final metrics (docs/records.md): intervals are kept inside them. Values
# outside by more than rounding (float32 records) are an error. modes_captured: [0, the
# target's number of modes], looked up per cell.
BOUNDS: dict[str, tuple[float, float]] = {
    "mode_balance": (0.0, 1.0), "left": (0.0, 1.0), "right": (0.0, 1.0),
    "hq_fraction": (0.0, 1.0), "reverse_kl": (0.0, math.inf), "mode_js": (0.0, math.log(2)),
    "w1": (0.0, math.inf), "sliced_w1": (0.0, math.inf), "fake_std": (0.0, math.inf),
    "real_std": (0.0, math.inf)}
# Which way is better, for comparisons and performance profiles (--higher-is-better and
# --lower-is-better override or extend these).
HIGHER_IS_BETTER = frozenset({"modes_captured", "hq_fraction", "mode_balance"})
LOWER_IS_BETTER = frozenset({"w1", "sliced_w1", "reverse_kl", "mode_js", "mmd2"})
_ROUNDING = 1e-6       # relative slack for float32-rounded values at a bound


def metric_bounds(metric: str, record: dict | None = None) -> tuple[float, float] | None:
    """The known range of a final metric, or None; modes_captured needs a record of the cell."""
    if metric == "modes_captured" and record is not None:
        from gan_jax import config as config_lib, data
        cfg = config_lib.make_config(record["config"], where="record config")
        return 0.0, float(data.make_target(cfg).num_modes)
    return BOUNDS.get(metric)


def _within(values: list[float], bounds, metric: str) -> list[float]:
    """Values with float32 rounding at the bounds undone (clipped); ConfigError beyond that."""
    if bounds is None:
        return values
    lo, hi = bounds
    out = []
    for v in values:
        if math.isfinite(v) and not lo <= v <= hi:
            if lo - _ROUNDING * max(1.0, abs(lo)) <= v <= hi + _ROUNDING * max(1.0, abs(hi)):
                v = min(max(v, lo), hi)
            else:
                raise ConfigError(f"{metric}: got {v} outside its known range [{lo}, {hi}] "
                                  "(gan_jax.tables.BOUNDS)")
        out.append(v)
    return out


def direction(metric: str, higher: tuple[str, ...] = (), lower: tuple[str, ...] = ()) -> bool:
    """True if higher values of the metric are better; the user's lists first, then the defaults."""
    if metric in higher:
        return True
    if metric in lower:
        return False
    if metric in HIGHER_IS_BETTER:
        return True
    if metric in LOWER_IS_BETTER:
        return False
    registered = metrics_lib.METRICS.get(metric.removeprefix("ema_"))
    if registered is not None and registered.higher_is_better is not None:
        return registered.higher_is_better
    raise ConfigError(f"{metric}: no known direction; say which way is better with "
                      f"--higher-is-better {metric} or --lower-is-better {metric}")


class Success(NamedTuple):
    """A success criterion `metric OP threshold`, e.g. w1<0.5."""

    metric: str
    op: str
    threshold: float

    @property
    def name(self) -> str:
        return f"{self.metric}{self.op}{self.threshold:g}"

    def test(self, value: float) -> bool:
        """Whether a value succeeds; nan and a diverged run's missing value fail."""
        if not math.isfinite(value):
            return False
        return {"<": value < self.threshold, "<=": value <= self.threshold,
                ">": value > self.threshold, ">=": value >= self.threshold}[self.op]


def parse_success(text: str) -> Success:
    """'w1<0.5', 'modes_captured>=7' -> Success; ConfigError otherwise."""
    m = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*(\S+)\s*", text)
    try:
        threshold = float(m.group(3)) if m else math.nan
    except ValueError:
        threshold = math.nan
    if m is None or not math.isfinite(threshold):
        raise ConfigError(f"--success: got {text!r}; must be METRIC OP NUMBER with OP one of "
                          "<, <=, >, >=, e.g. 'w1<0.5' or 'modes_captured>=7'")
    return Success(m.group(1), m.group(2), threshold)


class Row(NamedTuple):
    """One table row: a configuration (the --by values) and its metrics over seeds."""

    values: tuple[Any, ...]               # the --by keys' values
    runs: int                             # runs of this configuration
    diverged: int                         # of which diverged
    summaries: dict[str, stats.Summary]   # metric -> summary over the runs that did not
    successes: dict[str, stats.Interval] = {}   # Success.name -> rate over every run (Wilson)


class Table(NamedTuple):
    sweep: str
    by: tuple[str, ...]
    metrics: tuple[str, ...]
    rows: tuple[Row, ...]
    interval: str = "bootstrap"
    successes: tuple[Success, ...] = ()


def make_table(records: list[dict], by: tuple[str, ...] | None = None,
               metrics: tuple[str, ...] | None = None, *, interval: str = "bootstrap",
               successes: tuple[Success, ...] = ()) -> Table:
    """Summarise records per configuration of the `by` keys.

    Args:
      records: results records (see gan_jax.results).
      by: configuration keys naming a cell; None: the keys that vary across records.
      metrics: final metrics to summarise; None: every final metric of the records.
      interval: the interval of the mean, "bootstrap" (percentile), "bca" or "t".
      successes: criteria whose success rate (Wilson interval) to add; every run of a cell
        counts, a diverged run or a non-finite value as a failure.

    Raises:
      ConfigError: for a key or metric the records do not have (with a near-miss suggestion).
    """
    by = results.varying_keys(records) if by is None else tuple(by)
    results.check_keys(records, by, "--by")
    known = list(dict.fromkeys(m for r in records for m in r.get("final", {})))
    metrics = tuple(known) if metrics is None else tuple(metrics)
    for m in metrics:
        if m not in known:
            raise ConfigError(f"--metrics: {m!r} is not a final metric of these results"
                              f"{suggest(m, known)}; metrics: {', '.join(known)}")
    if interval not in INTERVALS:
        raise ConfigError(f"--interval: got {interval!r}; must be one of {', '.join(INTERVALS)}")
    for c in successes:
        if c.metric not in known:
            raise ConfigError(f"--success: {c.metric!r} is not a final metric of these results"
                              f"{suggest(c.metric, known)}; metrics: {', '.join(known)}")
    rows = []
    for values, cell in results.group_records(records, by).items():
        ok = [r for r in cell if r.get("status") != "diverged"]
        summaries = {}
        for m in metrics:
            bounds = metric_bounds(m, cell[0])
            x = _within([results.number(r["final"].get(m)) for r in ok], bounds, m)
            summaries[m] = stats.summarize(x, interval=interval, bounds=bounds)
        rates = {c.name: stats.success_rate(
            [r.get("status") != "diverged" and c.test(results.number(r["final"].get(c.metric)))
             for r in cell]) for c in successes}
        rows.append(Row(values, len(cell), len(cell) - len(ok), summaries, rates))
    sweeps = sorted({str(r.get("sweep")) for r in records})
    return Table(", ".join(sweeps), by, metrics, tuple(rows), interval, tuple(successes))


def _cell(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_cell(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return "-" if value is None else str(value)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table (no trailing newline): the one writer every report uses."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _rate(i: stats.Interval) -> str:
    k = round(i.value * i.n) if i.n else 0
    return (f"{stats.fmt(i.value, 3)} [{stats.fmt(i.ci_low, 3)}, {stats.fmt(i.ci_high, 3)}] "
            f"({k}/{i.n})")


def _ci_label(table: Table) -> str:
    return "95% CI" + (" (t)" if table.interval == "t" else " (BCa)" if table.interval == "bca"
                       else "")


def _success_note(table: Table) -> str:
    if not table.successes:
        return ""
    return (" Success columns: the fraction of all runs of the cell meeting the criterion, with "
            "its 95% Wilson interval and (successes/runs); diverged runs and non-finite values "
            "count as failures.")


def to_markdown(table: Table) -> str:
    header = [*table.by, "runs", "diverged"]
    for m in table.metrics:
        header += [f"{m} mean ± std", f"{m} median", f"{m} IQM", f"{m} {_ci_label(table)}"]
    header += [f"{c.name} success" for c in table.successes]
    rows = []
    for row in table.rows:
        cells = [_cell(v) for v in row.values] + [str(row.runs), str(row.diverged)]
        for m in table.metrics:
            s = row.summaries[m]
            cells += [f"{stats.fmt(s.mean)} ± {stats.fmt(s.std)}", stats.fmt(s.median),
                      stats.fmt(s.iqm), f"[{stats.fmt(s.ci_low)}, {stats.fmt(s.ci_high)}]"]
        cells += [_rate(row.successes[c.name]) for c in table.successes]
        rows.append(cells)
    return (f"# {table.sweep}: final metrics over seeds\n\nCells: {stats_note(table.interval)}."
            f"{_success_note(table)}\n\n" + markdown_table(header, rows) + "\n")


def to_csv(table: Table) -> str:
    """One row per configuration, numbers at full precision (10 significant digits)."""
    import csv
    import io
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header = [*table.by, "runs", "diverged"]
    for m in table.metrics:
        header += [f"{m}_{s}" for s in ("n", "mean", "std", "median", "iqm", "ci_low",
                                        "ci_high")]
    for c in table.successes:
        header += [f"{c.name}_{s}" for s in ("successes", "runs", "rate", "ci_low", "ci_high")]
    writer.writerow(header)
    for row in table.rows:
        cells = [json.dumps(list(v)) if isinstance(v, tuple) else ("" if v is None else v)
                 for v in row.values] + [row.runs, row.diverged]
        for m in table.metrics:
            s = row.summaries[m]
            cells += [s.n] + [f"{x:.10g}" for x in (s.mean, s.std, s.median, s.iqm, s.ci_low,
                                                    s.ci_high)]
        for c in table.successes:
            i = row.successes[c.name]
            cells += [round(i.value * i.n) if i.n else 0, i.n] + [
                f"{x:.10g}" for x in (i.value, i.ci_low, i.ci_high)]
        writer.writerow(cells)
    return buf.getvalue()


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}"}
_LATEX_METRICS = {"w1": "$W_1$", "mode_balance": "mode balance"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(c, c) for c in str(text))


def _tex_num(x: float) -> str:
    text = stats.fmt(x)
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa}\\times 10^{{{int(exponent)}}}"
    return text


def to_latex(table: Table) -> str:
    """A booktabs table, ready to paste into a paper (needs \\usepackage{booktabs})."""
    n_by = len(table.by)
    first = n_by + 2
    spec = "l" * n_by + "rr" + "rrrc" * len(table.metrics) + "c" * len(table.successes)
    group_head = ["" for _ in range(first)]
    rules = []
    for i, m in enumerate(table.metrics):
        label = _LATEX_METRICS.get(m, latex_escape(m))
        group_head.append(rf"\multicolumn{{4}}{{c}}{{{label}}}")
        start = first + 4 * i + 1
        rules.append(rf"\cmidrule(lr){{{start}-{start + 3}}}")
    group_head += ["" for _ in table.successes]
    sub_head = ([latex_escape(k) for k in table.by] + ["runs", "div."]
                + [r"mean $\pm$ std", "median", "IQM", r"95\% CI"] * len(table.metrics)
                + [_tex_criterion(c) for c in table.successes])
    lines = [
        r"% Generated by `python -m gan_jax table`; needs \usepackage{booktabs}.",
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
    ]
    if table.metrics:
        lines += [" & ".join(group_head) + r" \\", " ".join(rules)]
    lines += [" & ".join(sub_head) + r" \\", r"\midrule"]
    for row in table.rows:
        cells = [latex_escape(_cell(v)) for v in row.values] + [str(row.runs), str(row.diverged)]
        for m in table.metrics:
            s = row.summaries[m]
            cells += [f"${_tex_num(s.mean)} \\pm {_tex_num(s.std)}$", f"${_tex_num(s.median)}$",
                      f"${_tex_num(s.iqm)}$", f"$[{_tex_num(s.ci_low)}, {_tex_num(s.ci_high)}]$"]
        for c in table.successes:
            i = row.successes[c.name]
            cells.append(f"${_tex_num(i.value)}$ $[{_tex_num(i.ci_low)}, {_tex_num(i.ci_high)}]$")
        lines.append(" & ".join(cells) + r" \\")
    note = latex_escape(stats_note(table.interval)).replace("±", r"$\pm$")
    caption = (rf"Sweep \texttt{{{latex_escape(table.sweep)}}}: final metrics per configuration; "
               f"{note}. Runs: runs of the configuration; div.: runs that diverged."
               + latex_escape(_success_note(table)))
    label = "".join(c if c.isalnum() or c in "-:" else "-" for c in table.sweep)
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{caption}}}",
              rf"\label{{tab:{label}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def _tex_criterion(c: Success) -> str:
    op = {"<": "<", "<=": r"\le", ">": ">", ">=": r"\ge"}[c.op]
    return f"{latex_escape(c.metric)} ${op}$ {c.threshold:g}"


RENDER = {"md": to_markdown, "csv": to_csv, "latex": to_latex}


# ----------------------------------------------------------------------------- comparisons

ALPHA = 0.05            # level of the tests and of the multiple-comparison corrections


class CompareRow(NamedTuple):
    """A versus B in one cell of the other --by keys, for one metric."""

    values: tuple[Any, ...]        # the other --by keys' values
    metric: str
    higher_is_better: bool
    runs_a: int                    # runs of A in the cell
    runs_b: int
    pairs: int                     # seeds with a run of A and a run of B (everything else equal)
    finite_pairs: int              # of which neither diverged nor non-finite: the differences
    paired: stats.Interval         # mean of the per-seed differences A - B, bootstrap over seeds
    unpaired: stats.Interval       # mean(A) - mean(B) of the same runs, groups resampled apart
    improve_paired: stats.Interval   # P(A better than B): fraction of seeds A wins (ties 1/2)
    improve_unpaired: stats.Interval  # P(X_A better than X_B) over all pairs of runs
    pvalue: float                  # sign-flip test of the finite differences (two-sided)
    holm: float                    # Holm-adjusted over the table's comparisons
    bh: float                      # Benjamini-Hochberg-adjusted


class Comparison(NamedTuple):
    sweep: str
    key: str
    a: Any
    b: Any
    by: tuple[str, ...]            # the cells' keys (--by without KEY)
    metrics: tuple[str, ...]
    rows: tuple[CompareRow, ...]


def parse_compare(text: str) -> tuple[str, Any, Any]:
    """'loss=nonsaturating,hinge' -> ('loss', 'nonsaturating', 'hinge'); values read as JSON
    where they can be (numbers)."""
    key, sep, raw = text.partition("=")
    parts = raw.split(",")
    if not sep or not key.strip() or len(parts) != 2 or not all(p.strip() for p in parts):
        raise ConfigError(f"--compare: got {text!r}; must be KEY=A,B, e.g. "
                          "loss=nonsaturating,hinge")

    def value(p: str) -> Any:
        try:
            return json.loads(p.strip())
        except json.JSONDecodeError:
            return p.strip()
    return key.strip(), value(parts[0]), value(parts[1])


def _worst(x: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Non-finite values (diverged runs) as the worst value, for win counts."""
    return np.where(np.isfinite(x), x, -np.inf if higher_is_better else np.inf)


def make_comparison(records: list[dict], key: str, a: Any, b: Any,
                    by: tuple[str, ...] | None = None, metrics: tuple[str, ...] | None = None,
                    *, higher: tuple[str, ...] = (), lower: tuple[str, ...] = ()) -> Comparison:
    """A versus B (values of config key `key`) in each cell of the other `by` keys.

    Pairing: a run of A and a run of B pair when they have the same seed and the same value of
    every other configuration key (the keys that vary but are not in `by` included), so they
    drew the same real data (common random numbers). Per metric and cell:
      paired: mean of d_i = A_i - B_i over the pairs where both runs finished with a finite
        value, percentile bootstrap over those pairs (`stats.paired_difference`);
      unpaired: the same runs, mean(A) - mean(B), resampling A and B independently
        (`stats.unpaired_difference`): the same estimate, the interval that ignores pairing;
      P(A better): over all pairs, a diverged or non-finite run counting as the worst value
        (so A diverged and B not is a win for B, both diverged a tie), paired (fraction of
        seeds) and unpaired (all n_a x n_b pairs of runs), percentile bootstrap;
      p-value: two-sided sign-flip test of the finite differences (exact up to 16 pairs), and
        its Holm and Benjamini-Hochberg adjustments over every comparison of the table.
    Bootstraps: 10,000 resamples, seed 0, 95%.

    Args:
      records: results records.
      key: the configuration key compared; a, b: its two values.
      by: keys naming a cell (default: the varying keys); `key` is taken out of them.
      metrics: final metrics (default: every one with a known direction).
      higher, lower: metrics whose direction to set (overriding `HIGHER_IS_BETTER` and
        `LOWER_IS_BETTER`).
    """
    results.check_keys(records, [key], "--compare")
    from gan_jax.config import tied_fields
    present = [v for v in dict.fromkeys(results.key_value(r, key) for r in records)]
    for v in (a, b):
        if not any(results.same(results.hashable(v), p) for p in present):
            shown = ", ".join(map(_cell, sorted(present, key=results.sort_key)))
            raise ConfigError(f"--compare: no run has {key}={v!r}; its values: {shown}")
    key_fields = set(tied_fields(key))
    by = results.varying_keys(records) if by is None else tuple(by)
    by = tuple(k for k in by if not set(tied_fields(k)) & key_fields)
    results.check_keys(records, by, "--by")
    by_fields = set().union(*(tied_fields(k) for k in by)) if by else set()
    rest = [k for k in results.varying_keys(records) if k not in key_fields | by_fields]
    known = list(dict.fromkeys(m for r in records for m in r.get("final", {})))
    if metrics is None:
        metrics = tuple(m for m in known if m in HIGHER_IS_BETTER | LOWER_IS_BETTER
                        or m in higher or m in lower)
    for m in metrics:
        if m not in known:
            raise ConfigError(f"--metrics: {m!r} is not a final metric of these results"
                              f"{suggest(m, known)}; metrics: {', '.join(known)}")
    directions = {m: direction(m, higher, lower) for m in metrics}

    def side(runs: list[dict], value: Any) -> dict[tuple, dict]:
        chosen = [r for r in runs if results.same(results.key_value(r, key),
                                                  results.hashable(value))]
        return {(r["seed"], *(results.key_value(r, k) for k in rest)): r for r in chosen}

    def metric(r: dict, m: str) -> float:
        return math.nan if r.get("status") == "diverged" else results.number(r["final"].get(m))

    rows = []
    for values, cell in results.group_records(records, by).items():
        runs_a, runs_b = side(cell, a), side(cell, b)
        if not runs_a and not runs_b:
            continue
        common = [k for k in runs_a if k in runs_b]
        for m in metrics:
            hib = directions[m]
            xa = np.array([metric(runs_a[k], m) for k in common], float)
            xb = np.array([metric(runs_b[k], m) for k in common], float)
            ok = np.isfinite(xa) & np.isfinite(xb)
            d = xa[ok] - xb[ok]
            rows.append(CompareRow(
                values, m, hib, len(runs_a), len(runs_b), len(common), int(ok.sum()),
                stats.paired_difference(xa[ok], xb[ok]),
                stats.unpaired_difference(xa[ok], xb[ok]),
                stats.probability_of_improvement(_worst(xa, hib), _worst(xb, hib),
                                                 higher_is_better=hib, paired=True),
                stats.probability_of_improvement(_worst(xa, hib), _worst(xb, hib),
                                                 higher_is_better=hib, paired=False),
                stats.sign_flip_pvalue(d) if d.size else math.nan, math.nan, math.nan))
    tested = [i for i, r in enumerate(rows) if math.isfinite(r.pvalue)]
    if tested:
        p = [rows[i].pvalue for i in tested]
        for i, h, q in zip(tested, stats.holm(p), stats.benjamini_hochberg(p)):
            rows[i] = rows[i]._replace(holm=float(h), bh=float(q))
    sweeps = sorted({str(r.get("sweep")) for r in records})
    return Comparison(", ".join(sweeps), key, a, b, by, tuple(metrics), tuple(rows))


def _excludes_zero(i: stats.Interval) -> bool:
    return math.isfinite(i.ci_low) and (i.ci_low > 0 or i.ci_high < 0)


def comparison_counts(comp: Comparison) -> dict[str, int]:
    """How many comparisons, how many intervals exclude 0, what the corrections leave."""
    tested = [r for r in comp.rows if math.isfinite(r.pvalue)]
    return {"comparisons": len(tested),
            "paired_exclude_zero": sum(_excludes_zero(r.paired) for r in tested),
            "unpaired_exclude_zero": sum(_excludes_zero(r.unpaired) for r in tested),
            "p_below_alpha": sum(r.pvalue <= ALPHA for r in tested),
            "holm": sum(r.holm <= ALPHA for r in tested),
            "bh": sum(r.bh <= ALPHA for r in tested)}


def comparison_note(comp: Comparison) -> str:
    a, b = _cell(comp.a), _cell(comp.b)
    c = comparison_counts(comp)
    better = "; ".join(f"{m}: {'higher' if d else 'lower'} is better" for m, d in
                       dict.fromkeys((r.metric, r.higher_is_better) for r in comp.rows))
    return (f"{a} − {b} ({comp.key}), per cell of the other keys. Paired: mean of the per-seed "
            f"differences over the seeds where both runs finished with a finite value (runs "
            f"pair when their seed and every other configuration key agree: they drew the same "
            f"real data), 95% percentile bootstrap over seeds (10,000 resamples, seed 0). "
            f"Unpaired: the same runs, {a} and {b} resampled independently. P({a} better): "
            f"fraction of seeds on which {a} beats {b} (ties count 1/2), a diverged run counting "
            f"as the worst value; unpaired: over all pairs of runs. p: two-sided sign-flip test "
            f"of the paired differences; Holm: adjusted over the {c['comparisons']} comparisons "
            f"of this table. {better}.\n\n"
            f"Of {c['comparisons']} comparisons, {c['paired_exclude_zero']} paired intervals "
            f"exclude 0 (unpaired: {c['unpaired_exclude_zero']}); p ≤ {ALPHA:g} in "
            f"{c['p_below_alpha']}, of which Holm (family-wise error {ALPHA:g}) keeps "
            f"{c['holm']} and Benjamini-Hochberg (false discovery rate {ALPHA:g}) {c['bh']}.")


def _diff(i: stats.Interval) -> str:
    return f"{stats.fmt(i.value, 3)} [{stats.fmt(i.ci_low, 3)}, {stats.fmt(i.ci_high, 3)}]"


def _width_ratio(r: CompareRow) -> float:
    wp = r.paired.ci_high - r.paired.ci_low
    wu = r.unpaired.ci_high - r.unpaired.ci_low
    return wu / wp if wp > 0 else math.nan


def comparison_to_markdown(comp: Comparison) -> str:
    a, b = _cell(comp.a), _cell(comp.b)
    header = [*comp.by, "metric", "pairs", "finite", f"{a} − {b} paired", "unpaired",
              "width unpaired/paired", f"P({a} better) paired", "unpaired", "p", "Holm p"]
    rows = []
    for r in comp.rows:
        rows.append([_cell(v) for v in r.values] + [
            r.metric, str(r.pairs), str(r.finite_pairs), _diff(r.paired), _diff(r.unpaired),
            stats.fmt(_width_ratio(r), 3), _diff(r.improve_paired), _diff(r.improve_unpaired),
            stats.fmt(r.pvalue, 2), stats.fmt(r.holm, 2)])
    return (f"# {comp.sweep}: {comp.key} = {a} versus {b}\n\n{comparison_note(comp)}\n\n"
            + markdown_table(header, rows) + "\n")


def comparison_to_csv(comp: Comparison) -> str:
    import csv
    import io
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*comp.by, "metric", "higher_is_better", "runs_a", "runs_b", "pairs",
                     "finite_pairs", "paired_diff", "paired_ci_low", "paired_ci_high",
                     "unpaired_diff", "unpaired_ci_low", "unpaired_ci_high",
                     "p_better_paired", "p_better_paired_ci_low", "p_better_paired_ci_high",
                     "p_better_unpaired", "p_better_unpaired_ci_low",
                     "p_better_unpaired_ci_high", "pvalue", "holm", "bh"])
    for r in comp.rows:
        nums = []
        for i in (r.paired, r.unpaired, r.improve_paired, r.improve_unpaired):
            nums += [i.value, i.ci_low, i.ci_high]
        writer.writerow(
            [json.dumps(list(v)) if isinstance(v, tuple) else ("" if v is None else v)
             for v in r.values] + [r.metric, int(r.higher_is_better), r.runs_a, r.runs_b,
                                   r.pairs, r.finite_pairs]
            + [f"{x:.10g}" for x in (*nums, r.pvalue, r.holm, r.bh)])
    return buf.getvalue()


def comparison_to_latex(comp: Comparison) -> str:
    a, b = latex_escape(_cell(comp.a)), latex_escape(_cell(comp.b))

    def iv(i: stats.Interval) -> str:
        return f"${_tex_num(i.value)}$ $[{_tex_num(i.ci_low)}, {_tex_num(i.ci_high)}]$"
    n_by = len(comp.by)
    lines = [
        r"% Generated by `python -m gan_jax table --compare`; needs \usepackage{booktabs}.",
        r"\begin{table}[t]", r"\centering", r"\small",
        rf"\begin{{tabular}}{{{'l' * (n_by + 1)}rcccccc}}", r"\toprule",
        " & ".join([latex_escape(k) for k in comp.by] + [
            "metric", "pairs", rf"{a} $-$ {b} paired", "unpaired",
            rf"$P$({a} better) paired", "unpaired", "$p$", "Holm $p$"]) + r" \\",
        r"\midrule"]
    for r in comp.rows:
        label = _LATEX_METRICS.get(r.metric, latex_escape(r.metric))
        lines.append(" & ".join(
            [latex_escape(_cell(v)) for v in r.values]
            + [label, str(r.pairs), iv(r.paired), iv(r.unpaired), iv(r.improve_paired),
               iv(r.improve_unpaired), f"${_tex_num(r.pvalue)}$", f"${_tex_num(r.holm)}$"])
            + r" \\")
    note = latex_escape(comparison_note(comp).replace("\n\n", " ")).replace("≤", r"$\le$")
    note = note.replace("−", "$-$")
    label = "".join(c if c.isalnum() or c in "-:" else "-"
                    for c in f"{comp.sweep}-{comp.key}-{_cell(comp.a)}-{_cell(comp.b)}")
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{note}}}",
              rf"\label{{tab:{label}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


COMPARE_RENDER = {"md": comparison_to_markdown, "csv": comparison_to_csv,
                  "latex": comparison_to_latex}
COMPARE_EXT = {"md": "md", "csv": "csv", "latex": "tex"}


def comparison_files(comp: Comparison) -> dict[str, str]:
    """Format -> file name, compare_KEY_A_B.EXT."""
    stem = re.sub(r"[^A-Za-z0-9_.=+-]+", "_",
                  f"compare_{comp.key}_{_cell(comp.a)}_{_cell(comp.b)}")
    return {fmt: f"{stem}.{ext}" for fmt, ext in COMPARE_EXT.items()}


def write_comparison(args: argparse.Namespace, records: list[dict]) -> str:
    """`table --compare`: write the comparison's three files under args.dir; return the text of
    args.format ("" without --compare)."""
    if not getattr(args, "compare", None):
        return ""
    key, a, b = parse_compare(args.compare)
    comp = make_comparison(records, key, a, b, _names(args.by), _names(args.metrics),
                           higher=tuple(args.higher_is_better or ()),
                           lower=tuple(args.lower_is_better or ()))
    texts = {fmt: render(comp) for fmt, render in COMPARE_RENDER.items()}
    for fmt, name in comparison_files(comp).items():
        try:
            results.write_atomic(os.path.join(args.dir, name), texts[fmt])
        except OSError as e:
            print(f"warning: {args.dir}: cannot write {name}: {e.strerror or e}; the "
                  "comparison is printed, its files were not written", file=sys.stderr)
            break
    return "\n" + texts[args.format]


def _names(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(n.strip() for n in text.split(",") if n.strip())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="a sweep's output directory (results*.jsonl)")
    parser.add_argument("--by", metavar="KEYS",
                        help="comma-separated configuration keys naming a row (default: the "
                             "keys that vary across the records: the sweep's grid keys); "
                             "'' for one row over everything")
    parser.add_argument("--metrics", metavar="NAMES",
                        help="comma-separated final metrics (default: all of them)")
    parser.add_argument("--format", choices=FORMATS, default="md",
                        help="format to print (md); all three are written under DIR")
    parser.add_argument("--interval", choices=INTERVALS, default="bootstrap",
                        help="interval of the mean: bootstrap (percentile, 10,000 resamples, "
                             "seed 0; the default), bca, or t (Student)")
    parser.add_argument("--success", action="append", metavar="CRITERION",
                        help="add the fraction of runs meeting METRIC OP NUMBER (OP: < <= > "
                             ">=), e.g. 'w1<0.5', with its Wilson interval; diverged runs fail "
                             "(repeatable)")
    parser.add_argument("--compare", metavar="KEY=A,B",
                        help="a second table: A versus B (e.g. loss=nonsaturating,hinge) in "
                             "each cell of the other --by keys, paired by seed and unpaired, "
                             "written to DIR/compare_KEY_A_B.{md,csv,tex}")
    parser.add_argument("--higher-is-better", action="append", metavar="METRIC",
                        help="--compare: higher values of METRIC are better (repeatable; "
                             "defaults: modes_captured, hq_fraction, mode_balance)")
    parser.add_argument("--lower-is-better", action="append", metavar="METRIC",
                        help="--compare: lower values of METRIC are better (repeatable; "
                             "defaults: w1, sliced_w1, reverse_kl, mode_js, mmd2)")


def main(args: argparse.Namespace) -> int:
    records, problems = results.load_results(args.dir)
    for p in problems:
        print(f"note: {p}", file=sys.stderr)
    sweeps = sorted({r["sweep"] for r in records})
    if len(sweeps) > 1:
        counts = ", ".join(f"{s!r} ({sum(r['sweep'] == s for r in records)} runs)"
                           for s in sweeps)
        print(f"note: {args.dir} holds {len(sweeps)} sweeps: {counts}; one table over all of "
              "them (give each sweep its own directory to keep them apart)", file=sys.stderr)
    table = make_table(records, _names(args.by), _names(args.metrics), interval=args.interval,
                       successes=tuple(map(parse_success, args.success or ())))
    texts = {fmt: render(table) for fmt, render in RENDER.items()}
    sys.stdout.write(texts[args.format])        # the table first: a write below may fail
    sys.stdout.flush()
    for fmt, text in texts.items():
        try:
            results.write_atomic(os.path.join(args.dir, FILES[fmt]), text)
        except OSError as e:
            print(f"warning: {args.dir}: cannot write {FILES[fmt]}: {e.strerror or e}; the "
                  "table was printed above, the files were not written", file=sys.stderr)
            break
    sys.stdout.write(write_comparison(args, records))
    return 0
