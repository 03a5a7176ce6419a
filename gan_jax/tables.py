"""Result tables: per configuration, over seeds, each final metric's mean, spread and interval.

`python -m gan_jax table DIR [--by KEYS] [--metrics NAMES] [--format md|csv|latex]` reads every
results file in DIR (results.jsonl and the shards' results.shard-I-of-N.jsonl, merged), groups
the records by the values of the --by configuration keys (default: the keys that vary across
the records, i.e. the sweep's grid keys) and summarises each metric over the seeds of a cell
with `gan_jax.stats.summarize`: mean ± std (ddof 1), median and the 95% Student-t interval of
the mean. Statistics use the runs that did not diverge; `runs` counts every run of the cell and
`diverged` those that did. The tables are written atomically as DIR/summary.md, summary.csv
and summary.tex, and the chosen format is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, NamedTuple

from gan_jax import results, stats
from gan_jax.errors import ConfigError, suggest

FORMATS = ("md", "csv", "latex")
FILES = {"md": "summary.md", "csv": "summary.csv", "latex": "summary.tex"}
STATS_NOTE = ("mean ± std (sample std), median and 95% interval of the mean (Student t) over "
              "the seeds of each cell that did not diverge")


class Row(NamedTuple):
    """One table row: a configuration (the --by values) and its metrics over seeds."""

    values: tuple[Any, ...]               # the --by keys' values
    runs: int                             # runs of this configuration
    diverged: int                         # of which diverged
    summaries: dict[str, stats.Summary]   # metric -> summary over the runs that did not


class Table(NamedTuple):
    sweep: str
    by: tuple[str, ...]
    metrics: tuple[str, ...]
    rows: tuple[Row, ...]


def make_table(records: list[dict], by: tuple[str, ...] | None = None,
               metrics: tuple[str, ...] | None = None) -> Table:
    """Summarise records per configuration of the `by` keys.

    Args:
      records: results records (see gan_jax.results).
      by: configuration keys naming a cell; None: the keys that vary across records.
      metrics: final metrics to summarise; None: every final metric of the records.

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
    rows = []
    for values, cell in results.group_records(records, by).items():
        ok = [r for r in cell if r.get("status") != "diverged"]
        summaries = {m: stats.summarize([results.number(r["final"].get(m)) for r in ok])
                     for m in metrics}
        rows.append(Row(values, len(cell), len(cell) - len(ok), summaries))
    sweeps = sorted({str(r.get("sweep")) for r in records})
    return Table(", ".join(sweeps), by, metrics, tuple(rows))


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


def to_markdown(table: Table) -> str:
    header = [*table.by, "runs", "diverged"]
    for m in table.metrics:
        header += [f"{m} mean ± std", f"{m} median", f"{m} 95% CI"]
    rows = []
    for row in table.rows:
        cells = [_cell(v) for v in row.values] + [str(row.runs), str(row.diverged)]
        for m in table.metrics:
            s = row.summaries[m]
            cells += [f"{stats.fmt(s.mean)} ± {stats.fmt(s.std)}", stats.fmt(s.median),
                      f"[{stats.fmt(s.ci_low)}, {stats.fmt(s.ci_high)}]"]
        rows.append(cells)
    return (f"# {table.sweep}: final metrics over seeds\n\nCells: {STATS_NOTE}.\n\n"
            + markdown_table(header, rows) + "\n")


def to_csv(table: Table) -> str:
    """One row per configuration, numbers at full precision (10 significant digits)."""
    import csv
    import io
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header = [*table.by, "runs", "diverged"]
    for m in table.metrics:
        header += [f"{m}_{s}" for s in ("n", "mean", "std", "median", "ci_low", "ci_high")]
    writer.writerow(header)
    for row in table.rows:
        cells = [json.dumps(list(v)) if isinstance(v, tuple) else ("" if v is None else v)
                 for v in row.values] + [row.runs, row.diverged]
        for m in table.metrics:
            s = row.summaries[m]
            cells += [s.n] + [f"{x:.10g}" for x in (s.mean, s.std, s.median, s.ci_low, s.ci_high)]
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
    spec = "l" * n_by + "rr" + "rrc" * len(table.metrics)
    group_head = ["" for _ in range(first)]
    rules = []
    for i, m in enumerate(table.metrics):
        label = _LATEX_METRICS.get(m, latex_escape(m))
        group_head.append(rf"\multicolumn{{3}}{{c}}{{{label}}}")
        start = first + 3 * i + 1
        rules.append(rf"\cmidrule(lr){{{start}-{start + 2}}}")
    sub_head = ([latex_escape(k) for k in table.by] + ["runs", "div."]
                + [r"mean $\pm$ std", "median", r"95\% CI"] * len(table.metrics))
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
                      f"$[{_tex_num(s.ci_low)}, {_tex_num(s.ci_high)}]$"]
        lines.append(" & ".join(cells) + r" \\")
    note = latex_escape(STATS_NOTE).replace("±", r"$\pm$")
    caption = (rf"Sweep \texttt{{{latex_escape(table.sweep)}}}: final metrics per configuration; "
               f"{note}. Runs: runs of the configuration; div.: runs that diverged.")
    label = "".join(c if c.isalnum() or c in "-:" else "-" for c in table.sweep)
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{caption}}}",
              rf"\label{{tab:{label}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


RENDER = {"md": to_markdown, "csv": to_csv, "latex": to_latex}


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
    table = make_table(records, _names(args.by), _names(args.metrics))
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
    return 0
