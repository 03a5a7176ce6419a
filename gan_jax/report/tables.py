"""Result tables: per configuration, over seeds, each final metric's mean, spread and interval.

`python -m gan_jax table DIR [--by KEYS] [--metrics NAMES] [--format md|csv|latex] [--out D]`
reads every results file in DIR (results.jsonl and the shards' results.shard-I-of-N.jsonl,
merged), groups the records by the values of the --by configuration keys (default: the keys that
vary across the records, i.e. the sweep's grid keys) and summarises each metric (default: the
target kind's, `DEFAULT_METRICS`) over the seeds of a cell with `gan_jax.report.stats.summarize`: n,
mean ± std (ddof 1), median, interquartile mean (IQM) and the 95% percentile-bootstrap interval
of the mean (10,000 resamples, seed 0; `--interval t` for Student's t, `--interval bca` for BCa),
kept inside each metric's known range (`BOUNDS`). Statistics use the runs that did not diverge;
`runs` counts every run of the cell and `diverged` those that did; a cell with fewer than two
finite values says so. A metric equal to another in every run (sliced_w1 and w1 in 1-D) is
shown once. `--success "w1<0.5"` adds the fraction of runs meeting a threshold, with its Wilson
interval, counting diverged runs (and non-finite values) as failures. The chosen format is
printed; `--out D` also writes all three, atomically, as D/summary.md, summary.csv and
summary.tex (nothing is written without it).

`--compare KEY=A,B` adds a second table (with --out, D/compare_KEY_A_B.{md,csv,tex}): for each
cell of the other --by keys and each metric, A - B paired by seed (runs with the same seed share
their real-data draws, and pairs that share a seed are resampled and tested together) and
unpaired, the probability that A beats B (diverged runs as failures, and among finished pairs),
the sign-flip p-value and its Holm adjustment over the table's family (see `make_comparison`).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NamedTuple

import numpy as np

from gan_jax.components import metrics as metrics_lib
from gan_jax.records import results
from gan_jax.report import stats
from gan_jax.core.errors import ConfigError, suggest

FORMATS = ("md", "csv", "latex")
FILES = {"md": "summary.md", "csv": "summary.csv", "latex": "summary.tex"}
INTERVALS = ("bootstrap", "bca", "t")
INTERVAL_NAMES = {"bootstrap": "percentile bootstrap, 10,000 resamples, seed 0",
                  "bca": "BCa bootstrap, 10,000 resamples, seed 0", "t": "Student t"}


# Simulated coverage of the nominal 95% percentile bootstrap interval of the mean, normal data
# (python -m gan_jax.report.stats coverage; 4,000 samples each, see `stats.bootstrap_coverage`).
COVERAGE_NOTE = ("at few seeds the percentile bootstrap covers less than its nominal 95% "
                 "(normal data, simulated: about {c4:.0%} at n = 4, {c5:.0%} at 5, {c10:.0%} "
                 "at 10, {c20:.0%} at 20); read it with its n")


def stats_note(interval: str = "bootstrap") -> str:
    """The sentence a table's caption uses to say what its cells are."""
    text = ("n: the runs of the cell with a finite value of the metric (diverged runs left "
            "out); mean ± std (sample std), median, interquartile mean (IQM) and 95% interval "
            f"of the mean ({INTERVAL_NAMES[interval]}) over those runs")
    if interval != "t":
        text += "; " + COVERAGE_NOTE.format(**stats.PERCENTILE_COVERAGE)
    return text + "; a cell with fewer than 2 such runs has no std or interval"


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


# The metrics a table shows when --metrics is not given, per target kind: the ones
# docs/records.md explains as the measure of that kind of target (1-D: distance to the target
# and the split between its two modes; 2-D: modes covered, sample quality and the mode
# histogram's divergence). Every final metric remains available by name.
DEFAULT_METRICS = {1: ("w1", "mode_balance"), 2: ("modes_captured", "hq_fraction", "reverse_kl")}


def check_metric(metric: str, known: list[str], flag: str) -> None:
    """Raise ConfigError unless `metric` is one of the records' final metrics `known`."""
    if metric not in known:
        raise ConfigError(f"{flag}: {metric!r} is not a final metric of these results"
                          f"{suggest(metric, known)}; metrics: {', '.join(known)}")


def distinct_metrics(records: list[dict], metrics,
                     known: list[str]) -> tuple[tuple[str, ...], dict[str, str]]:
    """(metrics, same): the asked metrics, each checked against `known` (--metrics), without
    those that equal an earlier one in every record (`identical_metrics`, returned as same)."""
    for m in metrics:
        check_metric(m, known, "--metrics")
    same = identical_metrics(records, metrics)
    return tuple(m for m in metrics if m not in same), same


def default_metrics(records: list[dict]) -> tuple[str, ...]:
    """The default metrics of the records' target kinds (1-D, 2-D or more; several kinds: each
    kind's, in that order) that the records have; every final metric if none of them."""
    from gan_jax.components import data
    known = results.final_metrics(records)
    kinds = sorted({min(data.DIMS.get(r["config"].get("data"), 2), 2) for r in records})
    chosen = [m for k in kinds for m in DEFAULT_METRICS[k] if m in known]
    return tuple(dict.fromkeys(chosen)) or tuple(known)


def identical_metrics(records: list[dict], metrics) -> dict[str, str]:
    """Metric -> an earlier metric of `metrics` it equals in every record (1-D: sliced_w1 is
    w1), for metrics to be shown and counted once. Equal means the same recorded number (or
    both missing) in every record, with at least one finite."""
    columns = {m: np.array([results.number(r.get("final", {}).get(m)) for r in records], float)
               for m in dict.fromkeys(metrics)}
    kept: list[str] = []
    same: dict[str, str] = {}
    for m, column in columns.items():
        twin = next((k for k in kept if np.any(np.isfinite(column))
                     and np.array_equal(column, columns[k], equal_nan=True)), None)
        if twin is None:
            kept.append(m)
        else:
            same[m] = twin
    return same


def _same_note(same: dict[str, str]) -> str:
    if not same:
        return ""
    return (" " + "; ".join(f"{m} equals {k} in every run (shown and counted once, as {k})"
                            for m, k in same.items()) + ".")


def metric_bounds(metric: str, record: dict | None = None) -> tuple[float, float] | None:
    """The known range of a final metric, or None; modes_captured needs a record of the cell."""
    if metric == "modes_captured" and record is not None:
        from gan_jax import config as config_lib
        from gan_jax.components import data
        cfg = config_lib.make_config(record["config"], where="record config")
        target = data.make_target(cfg)
        # A target without modes records no modes_captured: no bounds to apply.
        return (0.0, float(target.num_modes)) if data.has_modes(target) else None
    return BOUNDS.get(metric)


MODE_METRICS = ("modes_captured", "hq_fraction", "reverse_kl", "mode_js")
ONE_D_METRICS = ("w1", "left", "right", "mode_balance", "real_mean", "real_std", "fake_mean",
                 "fake_std")


def undefined_metric(metric: str, record: dict) -> str | None:
    """Why a built-in metric is not defined for a record's target (it has no modes, or is not
    1-D), or None."""
    if metric not in MODE_METRICS + ONE_D_METRICS:
        return None
    from gan_jax import config as config_lib
    from gan_jax.components import data
    cfg = config_lib.make_config(record["config"], where="record config")
    target = data.make_target(cfg)
    if metric in MODE_METRICS and not data.has_modes(target):
        return f"not defined for {cfg.data} (no modes)"
    if metric in ONE_D_METRICS and target.dim != 1:
        return f"not defined for {cfg.data} ({target.dim}-D)"
    return None


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
                                  "(gan_jax.report.tables.BOUNDS)")
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
    undefined: dict[str, str] = {}        # metric -> why no run of the cell has it (its target)


class Table(NamedTuple):
    sweep: str
    by: tuple[str, ...]
    metrics: tuple[str, ...]
    rows: tuple[Row, ...]
    interval: str = "bootstrap"
    successes: tuple[Success, ...] = ()
    same: dict = {}                       # metric left out -> the metric it equals


def make_table(records: list[dict], by: tuple[str, ...] | None = None,
               metrics: tuple[str, ...] | None = None, *, interval: str = "bootstrap",
               successes: tuple[Success, ...] = ()) -> Table:
    """Summarise records per configuration of the `by` keys.

    Args:
      records: results records (see gan_jax.records.results).
      by: configuration keys naming a cell; None: the keys that vary across records.
      metrics: final metrics to summarise; None: the target kind's defaults
        (`default_metrics`). A metric equal to an earlier one in every record (sliced_w1 and
        w1 in 1-D) is shown once (`Table.same` says which).
      interval: the interval of the mean, "bootstrap" (percentile), "bca" or "t".
      successes: criteria whose success rate (Wilson interval) to add; every run of a cell
        counts, a diverged run or a non-finite value as a failure.

    Raises:
      ConfigError: for a key or metric the records do not have (with a near-miss suggestion).
    """
    by = results.varying_keys(records) if by is None else tuple(by)
    results.check_keys(records, by, "--by")
    known = results.final_metrics(records)
    metrics, same = distinct_metrics(
        records, default_metrics(records) if metrics is None else tuple(metrics), known)
    if interval not in INTERVALS:
        raise ConfigError(f"--interval: got {interval!r}; must be one of {', '.join(INTERVALS)}")
    for c in successes:
        check_metric(c.metric, known, "--success")
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
        undefined = {m: why for m in metrics
                     if (why := undefined_metric(m, cell[0])) is not None
                     and not any(m in r.get("final", {}) for r in cell)}
        rows.append(Row(values, len(cell), len(cell) - len(ok), summaries, rates, undefined))
    sweeps = sorted({str(r.get("sweep")) for r in records})
    return Table(", ".join(sweeps), by, metrics, tuple(rows), interval, tuple(successes), same)


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


def summary_cells(s: stats.Summary, num=stats.fmt, pm: str = " ± ") -> list[str]:
    """A summary's mean ± std, median, IQM and interval as text; a cell with no finite run, or
    one, says so instead of printing nan."""
    if s.n == 0:
        return ["no finite run", "–", "–", "–"]
    if s.n == 1:
        return [f"{num(s.mean)} (1 run)", num(s.median), num(s.iqm), "too few runs"]
    return [f"{num(s.mean)}{pm}{num(s.std)}", num(s.median), num(s.iqm),
            f"[{num(s.ci_low)}, {num(s.ci_high)}]"]


def to_markdown(table: Table) -> str:
    header = [*table.by, "runs", "diverged"]
    for m in table.metrics:
        header += [f"{m} n", f"{m} mean ± std", f"{m} median", f"{m} IQM",
                   f"{m} {_ci_label(table)}"]
    header += [f"{c.name} success" for c in table.successes]
    rows = []
    for row in table.rows:
        cells = [_cell(v) for v in row.values] + [str(row.runs), str(row.diverged)]
        for m in table.metrics:
            if m in row.undefined:
                cells += ["0", row.undefined[m], "–", "–", "–"]
                continue
            cells += [str(row.summaries[m].n), *summary_cells(row.summaries[m])]
        cells += [_rate(row.successes[c.name]) for c in table.successes]
        rows.append(cells)
    return (f"# {table.sweep}: final metrics over seeds\n\nCells: {stats_note(table.interval)}."
            f"{_same_note(table.same)}{_success_note(table)}\n\n"
            + markdown_table(header, rows) + "\n")


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
    spec = "l" * n_by + "rr" + "rrrrc" * len(table.metrics) + "c" * len(table.successes)
    group_head = ["" for _ in range(first)]
    rules = []
    for i, m in enumerate(table.metrics):
        label = _LATEX_METRICS.get(m, latex_escape(m))
        group_head.append(rf"\multicolumn{{5}}{{c}}{{{label}}}")
        start = first + 5 * i + 1
        rules.append(rf"\cmidrule(lr){{{start}-{start + 4}}}")
    group_head += ["" for _ in table.successes]
    sub_head = ([latex_escape(k) for k in table.by] + ["runs", "div."]
                + ["$n$", r"mean $\pm$ std", "median", "IQM", r"95\% CI"] * len(table.metrics)
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
            if m in row.undefined:
                cells += ["0", latex_escape(row.undefined[m]), "--", "--", "--"]
                continue
            cells += [str(s.n), *_tex_summary(s)]
        for c in table.successes:
            i = row.successes[c.name]
            cells.append(f"${_tex_num(i.value)}$ $[{_tex_num(i.ci_low)}, {_tex_num(i.ci_high)}]$")
        lines.append(" & ".join(cells) + r" \\")
    note = latex_escape(stats_note(table.interval)).replace("±", r"$\pm$")
    caption = (rf"Sweep \texttt{{{latex_escape(table.sweep)}}}: final metrics per configuration; "
               f"{note}. Runs: runs of the configuration; div.: runs that diverged."
               + latex_escape(_same_note(table.same) + _success_note(table)))
    label = "".join(c if c.isalnum() or c in "-:" else "-" for c in table.sweep)
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{caption}}}",
              rf"\label{{tab:{label}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def _tex_summary(s: stats.Summary) -> list[str]:
    """`summary_cells` for LaTeX."""
    if s.n == 0:
        return ["no finite run", "--", "--", "--"]
    mid = [f"${_tex_num(s.median)}$", f"${_tex_num(s.iqm)}$"]
    if s.n == 1:
        return [f"${_tex_num(s.mean)}$ (1 run)", *mid, "too few runs"]
    return [f"${_tex_num(s.mean)} \\pm {_tex_num(s.std)}$", *mid,
            f"$[{_tex_num(s.ci_low)}, {_tex_num(s.ci_high)}]$"]


def _tex_criterion(c: Success) -> str:
    op = {"<": "<", "<=": r"\le", ">": ">", ">=": r"\ge"}[c.op]
    return f"{latex_escape(c.metric)} ${op}$ {c.threshold:g}"


RENDER = {"md": to_markdown, "csv": to_csv, "latex": to_latex}


# ----------------------------------------------------------------------------- comparisons

ALPHA = 0.05            # level of the tests and of the multiple-comparison corrections


class CompareRow(NamedTuple):
    """A versus B in one cell of the other --by keys, for one metric.

    Two estimands, side by side: survival-conditioned (the runs where both A and B finished
    with a finite value: `paired`, `improve_finite`, `pvalue`) and diverged-as-failure (every
    pair, a diverged run counting as the worst value: `improve_paired`)."""

    values: tuple[Any, ...]        # the other --by keys' values
    metric: str
    higher_is_better: bool
    runs_a: int                    # runs of A in the cell
    runs_b: int
    pairs: int                     # runs of A with a run of B of the same seed (all else equal)
    finite_pairs: int              # of which neither diverged nor non-finite: the differences
    paired: stats.Interval         # mean of the per-seed differences A - B, bootstrap over seeds
    unpaired: stats.Interval       # mean(A) - mean(B) over every finished run, groups apart
    improve_paired: stats.Interval   # P(A better), a diverged run the worst (Wilson, seeds)
    improve_unpaired: stats.Interval  # P(X_A better than X_B) over all pairs of runs
    pvalue: float                  # sign-flip test of the finite differences, by seed
    holm: float                    # Holm-adjusted over the table's family
    bh: float                      # Benjamini-Hochberg-adjusted
    improve_finite: stats.Interval  # P(A better) over the pairs where both finished (Wilson)
    seeds: int                     # seeds of the pairs (the n of every paired statistic)
    finite_seeds: int              # seeds of the finite pairs: the n of the test
    diverged_a: int                # runs of A that diverged (or ended non-finite)
    diverged_b: int

    @property
    def testable(self) -> bool:
        """Whether the sign-flip test can reach p <= ALPHA with this many seeds."""
        return stats.sign_flip_floor(self.finite_seeds) <= ALPHA


class Comparison(NamedTuple):
    sweep: str
    key: str
    a: Any
    b: Any
    by: tuple[str, ...]            # the cells' keys (--by without KEY)
    metrics: tuple[str, ...]
    rows: tuple[CompareRow, ...]
    same: dict = {}                # metric left out -> the metric it equals
    pooled: tuple[str, ...] = ()   # keys not in --by with several values in a cell


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
    every other configuration key, so they drew the same real data (common random numbers).
    When --by leaves out a key that varies (e.g. the learning rate), a cell holds several pairs
    per seed; they share that seed's real data, so every paired statistic treats the seed, not
    the pair, as the unit: intervals resample seeds, the test flips a seed's differences
    together, and n is the number of seeds (`stats` "Clusters"). Per metric and cell:
      paired (survival-conditioned): mean of d_i = A_i - B_i over the pairs where both runs
        finished with a finite value, percentile bootstrap over their seeds;
      unpaired: mean(A) - mean(B) over every run of A and of B that finished (the summary
        table's means), resampling A and B independently: the interval that ignores pairing;
      P(A better), diverged as failure: over all pairs, a diverged or non-finite run counting as
        the worst value (A diverged and B not is a win for B, both diverged a tie);
      P(A better), both finished: over the finite pairs only;
        both with the Wilson interval over seeds (`stats.probability_of_improvement`);
      p-value: two-sided sign-flip test of the finite differences by seed (exact up to 16
        seeds), and its Holm and Benjamini-Hochberg adjustments over the family of every
        comparison of the table (cells x metrics, a metric equal to another counted once).
    Bootstraps: 10,000 resamples, seed 0, 95%.

    Args:
      records: results records.
      key: the configuration key compared; a, b: its two values.
      by: keys naming a cell (default: the varying keys); `key` is taken out of them.
      metrics: final metrics (default: the target kind's, `default_metrics`, with a known
        direction).
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
    if metrics is None:
        metrics = tuple(m for m in default_metrics(records)
                        if m in HIGHER_IS_BETTER | LOWER_IS_BETTER or m in higher or m in lower)
    metrics, same = distinct_metrics(records, metrics, results.final_metrics(records))
    directions = {m: direction(m, higher, lower) for m in metrics}

    def side(runs: list[dict], value: Any) -> dict[tuple, dict]:
        chosen = [r for r in runs if results.same(results.key_value(r, key),
                                                  results.hashable(value))]
        return {(r["seed"], *(results.key_value(r, k) for k in rest)): r for r in chosen}

    def metric(r: dict, m: str) -> float:
        return math.nan if r.get("status") == "diverged" else results.number(r["final"].get(m))

    rows = []
    pooled: dict[str, None] = {}
    for values, cell in results.group_records(records, by).items():
        runs_a, runs_b = side(cell, a), side(cell, b)
        if not runs_a and not runs_b:
            continue
        common = [k for k in runs_a if k in runs_b]
        for i, k in enumerate(rest):    # keys with several values in a cell: pairs share seeds
            if len({results.sort_key(c[i + 1]) for c in common}) > 1:
                pooled[k] = None
        seeds = [k[0] for k in common]
        for m in metrics:
            hib = directions[m]
            xa = np.array([metric(runs_a[k], m) for k in common], float)
            xb = np.array([metric(runs_b[k], m) for k in common], float)
            all_a = np.array([metric(r, m) for r in runs_a.values()], float)
            all_b = np.array([metric(r, m) for r in runs_b.values()], float)
            ok = np.isfinite(xa) & np.isfinite(xb)
            d = xa[ok] - xb[ok]
            finite_seeds = [s for s, o in zip(seeds, ok) if o]
            rows.append(CompareRow(
                values=values, metric=m, higher_is_better=hib, runs_a=len(runs_a),
                runs_b=len(runs_b), pairs=len(common), finite_pairs=int(ok.sum()),
                paired=stats.paired_difference(xa[ok], xb[ok], clusters=finite_seeds),
                unpaired=stats.unpaired_difference(all_a[np.isfinite(all_a)],
                                                   all_b[np.isfinite(all_b)]),
                improve_paired=stats.probability_of_improvement(
                    _worst(xa, hib), _worst(xb, hib), higher_is_better=hib, paired=True,
                    clusters=seeds),
                improve_unpaired=stats.probability_of_improvement(
                    _worst(all_a, hib), _worst(all_b, hib), higher_is_better=hib,
                    paired=False),
                pvalue=stats.sign_flip_pvalue(d, clusters=finite_seeds) if d.size else math.nan,
                holm=math.nan, bh=math.nan,
                improve_finite=stats.probability_of_improvement(
                    xa[ok], xb[ok], higher_is_better=hib, paired=True, clusters=finite_seeds),
                seeds=len(set(seeds)), finite_seeds=len(set(finite_seeds)),
                diverged_a=int(np.sum(~np.isfinite(all_a))),
                diverged_b=int(np.sum(~np.isfinite(all_b)))))
    tested = [i for i, r in enumerate(rows) if math.isfinite(r.pvalue)]
    if tested:
        p = [rows[i].pvalue for i in tested]
        for i, h, q in zip(tested, stats.holm(p), stats.benjamini_hochberg(p)):
            rows[i] = rows[i]._replace(holm=float(h), bh=float(q))
    sweeps = sorted({str(r.get("sweep")) for r in records})
    return Comparison(", ".join(sweeps), key, a, b, by, tuple(metrics), tuple(rows), same,
                      tuple(pooled))


def _excludes_zero(i: stats.Interval) -> bool:
    return math.isfinite(i.ci_low) and (i.ci_low > 0 or i.ci_high < 0)


def comparison_counts(comp: Comparison) -> dict[str, int]:
    """How many comparisons, how many intervals exclude 0 (among those whose seeds allow a test
    to reject: `CompareRow.testable`), what the corrections leave."""
    tested = [r for r in comp.rows if math.isfinite(r.pvalue)]
    testable = [r for r in tested if r.testable]
    return {"comparisons": len(tested),
            "untestable": len(tested) - len(testable),
            "paired_exclude_zero": sum(_excludes_zero(r.paired) for r in testable),
            "unpaired_exclude_zero": sum(_excludes_zero(r.unpaired) for r in testable),
            "p_below_alpha": sum(r.pvalue <= ALPHA for r in tested),
            "holm": sum(r.holm <= ALPHA for r in tested),
            "bh": sum(r.bh <= ALPHA for r in tested)}


def _count(k: int, word: str) -> str:
    return f"{k} {word}" + ("" if k == 1 else "s")


def comparison_note(comp: Comparison) -> str:
    a, b = _cell(comp.a), _cell(comp.b)
    c = comparison_counts(comp)
    better = "; ".join(f"{m}: {'higher' if d else 'lower'} is better" for m, d in
                       dict.fromkeys((r.metric, r.higher_is_better) for r in comp.rows))
    cells = len({r.values for r in comp.rows})
    pooled = (f" The cells pool {', '.join(comp.pooled)} (not in --by): pairs that share a seed "
              "share its real data, so every paired statistic resamples and tests seeds, and "
              "its n is the number of seeds, not of pairs." if comp.pooled else "")
    small = ""
    if c["untestable"]:
        small = (f" {c['untestable']} of them {'has' if c['untestable'] == 1 else 'have'} "
                 f"fewer than 6 seeds with both runs finished: "
                 f"with n seeds no test of the signs can give p below 2/2^n (0.0625 at 5, "
                 f"0.125 at 4), so no test can show a difference there at {ALPHA:g}; their "
                 "intervals are not counted as excluding 0, whatever they show.")
    return (f"{a} − {b} ({comp.key}), per cell of the other keys. Paired, both finished "
            f"(survival-conditioned): mean of the per-seed differences over the seeds where "
            f"both runs finished with a finite value (runs pair when their seed and every "
            f"other configuration key agree: they drew the same real data), 95% percentile "
            f"bootstrap over seeds (10,000 resamples, seed 0; at 4-10 seeds it covers about "
            f"{stats.PERCENTILE_COVERAGE['c4']:.0%}-{stats.PERCENTILE_COVERAGE['c10']:.0%}, "
            f"not 95%). Unpaired: mean({a}) − mean({b}) over every run of each that finished "
            f"(the summary table's means), resampled independently. P({a} better): fraction of "
            f"seeds on which {a} beats {b} (ties count 1/2), 95% Wilson interval over seeds; "
            f"diverged = worst: every pair, a diverged run counting as the worst value (the "
            f"diverged-as-failure estimand); both finished: the finite pairs only. p: two-sided "
            f"sign-flip test of the paired differences, by seed. Holm and Benjamini-Hochberg: "
            f"adjusted over one family, the {_count(c['comparisons'], 'comparison')} of this "
            f"table ({_count(cells, 'cell')} × {_count(len(comp.metrics), 'metric')}: "
            f"{', '.join(comp.metrics)})."
            f"{_same_note(comp.same)}{pooled} {better}.\n\n"
            f"Of {c['comparisons']} comparisons, {c['paired_exclude_zero']} paired intervals "
            f"exclude 0 (unpaired: {c['unpaired_exclude_zero']}); p ≤ {ALPHA:g} in "
            f"{c['p_below_alpha']}, of which Holm (family-wise error {ALPHA:g}) keeps "
            f"{c['holm']} and Benjamini-Hochberg (false discovery rate {ALPHA:g}) {c['bh']}."
            f"{small}")


def _diff(i: stats.Interval) -> str:
    return f"{stats.fmt(i.value, 3)} [{stats.fmt(i.ci_low, 3)}, {stats.fmt(i.ci_high, 3)}]"


def _width_ratio(r: CompareRow) -> float:
    wp = r.paired.ci_high - r.paired.ci_low
    wu = r.unpaired.ci_high - r.unpaired.ci_low
    return wu / wp if wp > 0 else math.nan


def comparison_to_markdown(comp: Comparison) -> str:
    a, b = _cell(comp.a), _cell(comp.b)
    header = [*comp.by, "metric", "seeds", "pairs", "both finished", f"diverged {a}/{b}",
              f"{a} − {b} paired, both finished", "unpaired", "width unpaired/paired",
              f"P({a} better), diverged = worst", f"P({a} better), both finished", "p",
              "Holm p"]
    rows = []
    for r in comp.rows:
        rows.append([_cell(v) for v in r.values] + [
            r.metric, str(r.seeds), str(r.pairs), str(r.finite_pairs),
            f"{r.diverged_a}/{r.diverged_b}", _diff(r.paired), _diff(r.unpaired),
            stats.fmt(_width_ratio(r), 3), _diff(r.improve_paired), _diff(r.improve_finite),
            stats.fmt(r.pvalue, 2), stats.fmt(r.holm, 2)])
    return (f"# {comp.sweep}: {comp.key} = {a} versus {b}\n\n{comparison_note(comp)}\n\n"
            + markdown_table(header, rows) + "\n")


def comparison_to_csv(comp: Comparison) -> str:
    import csv
    import io
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*comp.by, "metric", "higher_is_better", "runs_a", "runs_b", "diverged_a",
                     "diverged_b", "seeds", "pairs", "finite_seeds", "finite_pairs",
                     "paired_diff", "paired_ci_low", "paired_ci_high",
                     "unpaired_diff", "unpaired_ci_low", "unpaired_ci_high",
                     "p_better_paired", "p_better_paired_ci_low", "p_better_paired_ci_high",
                     "p_better_finite", "p_better_finite_ci_low", "p_better_finite_ci_high",
                     "p_better_unpaired", "p_better_unpaired_ci_low",
                     "p_better_unpaired_ci_high", "pvalue", "min_pvalue", "holm", "bh"])
    for r in comp.rows:
        nums = []
        for i in (r.paired, r.unpaired, r.improve_paired, r.improve_finite, r.improve_unpaired):
            nums += [i.value, i.ci_low, i.ci_high]
        writer.writerow(
            [json.dumps(list(v)) if isinstance(v, tuple) else ("" if v is None else v)
             for v in r.values] + [r.metric, int(r.higher_is_better), r.runs_a, r.runs_b,
                                   r.diverged_a, r.diverged_b, r.seeds, r.pairs,
                                   r.finite_seeds, r.finite_pairs]
            + [f"{x:.10g}" for x in (*nums, r.pvalue, stats.sign_flip_floor(r.finite_seeds),
                                     r.holm, r.bh)])
    return buf.getvalue()


def comparison_to_latex(comp: Comparison) -> str:
    a, b = latex_escape(_cell(comp.a)), latex_escape(_cell(comp.b))

    def iv(i: stats.Interval) -> str:
        return f"${_tex_num(i.value)}$ $[{_tex_num(i.ci_low)}, {_tex_num(i.ci_high)}]$"
    n_by = len(comp.by)
    lines = [
        r"% Generated by `python -m gan_jax table --compare`; needs \usepackage{booktabs}.",
        r"\begin{table}[t]", r"\centering", r"\small",
        rf"\begin{{tabular}}{{{'l' * (n_by + 1)}rrrccccc}}", r"\toprule",
        " & ".join([latex_escape(k) for k in comp.by] + [
            "metric", "seeds", "pairs", "finite", rf"{a} $-$ {b} paired, finite", "unpaired",
            rf"$P$({a} better), div.\ = worst", "finite", "$p$", "Holm $p$"]) + r" \\",
        r"\midrule"]
    for r in comp.rows:
        label = _LATEX_METRICS.get(r.metric, latex_escape(r.metric))
        lines.append(" & ".join(
            [latex_escape(_cell(v)) for v in r.values]
            + [label, str(r.seeds), str(r.pairs), str(r.finite_pairs), iv(r.paired),
               iv(r.unpaired), iv(r.improve_paired), iv(r.improve_finite),
               f"${_tex_num(r.pvalue)}$", f"${_tex_num(r.holm)}$"])
            + r" \\")
    note = latex_escape(comparison_note(comp).replace("\n\n", " ")).replace("≤", r"$\le$")
    note = note.replace("−", "$-$").replace("×", r"$\times$")
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
