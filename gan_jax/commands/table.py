"""`python -m gan_jax table`: tables over seeds of a sweep's results, and paired comparisons."""

from __future__ import annotations

import argparse
import os
import sys

from gan_jax.core.errors import ConfigError
from gan_jax.records import results
from gan_jax.report.tables import (COMPARE_RENDER, comparison_files, FILES, FORMATS, INTERVALS,
                                   make_comparison, make_table, parse_compare, parse_success,
                                   RENDER)


def _write(out: str, name: str, text: str, what: str) -> bool:
    """Write OUT/name atomically and say so on stderr; warn (the text was printed) on failure."""
    path = os.path.join(out, name)
    try:
        results.write_atomic(path, text)
    except OSError as e:
        print(f"warning: {out}: cannot write {name}: {e.strerror or e}; the {what} is printed, "
              "its files were not written", file=sys.stderr)
        return False
    print(f"wrote {path}", file=sys.stderr)
    return True


def write_comparison(args: argparse.Namespace, records: list[dict]) -> str:
    """`table --compare`: the comparison's text in args.format ("" without --compare), and with
    --out its three files under it."""
    if not getattr(args, "compare", None):
        return ""
    key, a, b = parse_compare(args.compare)
    comp = make_comparison(records, key, a, b, _names(args.by), _names(args.metrics),
                           higher=tuple(args.higher_is_better or ()),
                           lower=tuple(args.lower_is_better or ()))
    texts = {fmt: render(comp) for fmt, render in COMPARE_RENDER.items()}
    if getattr(args, "out", None):
        for fmt, name in comparison_files(comp).items():
            if not _write(args.out, name, texts[fmt], "comparison"):
                break
    return "\n" + texts[args.format]


def _check_out(out: str) -> None:
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"--out: {out!r} is a file; give a directory for the tables")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        print(f"warning: --out: cannot make {out!r}: {e.strerror or e}; the table is printed, "
              "its files were not written", file=sys.stderr)


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
                        help="comma-separated final metrics (default: the target's: w1, "
                             "mode_balance in 1-D; modes_captured, hq_fraction, reverse_kl in "
                             "2-D)")
    parser.add_argument("--format", choices=FORMATS, default="md",
                        help="format to print (md)")
    parser.add_argument("--out", metavar="DIR",
                        help="also write the table in all three formats to DIR/summary.{md,"
                             "csv,tex} (and a comparison to DIR/compare_KEY_A_B.{md,csv,tex}); "
                             "without it nothing is written")
    parser.add_argument("--interval", choices=INTERVALS, default="bootstrap",
                        help="interval of the mean: bootstrap (percentile, 10,000 resamples, "
                             "seed 0; the default), bca, or t (Student)")
    parser.add_argument("--success", action="append", metavar="CRITERION",
                        help="add the fraction of runs meeting METRIC OP NUMBER (OP: < <= > "
                             ">=), e.g. 'w1<0.5', with its Wilson interval; diverged runs fail "
                             "(repeatable)")
    parser.add_argument("--compare", metavar="KEY=A,B",
                        help="a second table: A versus B (e.g. loss=nonsaturating,hinge) in "
                             "each cell of the other --by keys, paired by seed and unpaired")
    parser.add_argument("--higher-is-better", action="append", metavar="METRIC",
                        help="--compare: higher values of METRIC are better (repeatable; "
                             "defaults: modes_captured, hq_fraction, mode_balance)")
    parser.add_argument("--lower-is-better", action="append", metavar="METRIC",
                        help="--compare: lower values of METRIC are better (repeatable; "
                             "defaults: w1, sliced_w1, reverse_kl, mode_js, mmd2)")


def main(args: argparse.Namespace) -> int:
    if args.out:
        _check_out(args.out)                # before reading anything: a file there is an error
    records, problems = results.load_results(args.dir)
    for p in problems:
        print(f"note: {p}", file=sys.stderr)
    rungs = len(records)
    records = results.last_rungs(records)       # successive halving: each run's last rung
    if rungs > len(records):
        print(f"note: {rungs - len(records)} records of earlier rungs of successive halving "
              "left out; each run is read at its last rung", file=sys.stderr)
    sweeps = sorted({r["sweep"] for r in records})
    if len(sweeps) > 1:
        counts = ", ".join(f"{s!r} ({sum(r['sweep'] == s for r in records)} runs)"
                           for s in sweeps)
        print(f"note: {args.dir} holds {len(sweeps)} sweeps: {counts}; one table over all of "
              "them (give each sweep its own directory to keep them apart)", file=sys.stderr)
    for note in results.mixed_versions(records):
        print(f"note: {note}", file=sys.stderr)
    table = make_table(records, _names(args.by), _names(args.metrics), interval=args.interval,
                       successes=tuple(map(parse_success, args.success or ())))
    texts = {fmt: render(table) for fmt, render in RENDER.items()}
    sys.stdout.write(texts[args.format])        # the table first: a write below may fail
    sys.stdout.flush()
    if args.out:
        for fmt, text in texts.items():
            if not _write(args.out, FILES[fmt], text, "table"):
                break
    sys.stdout.write(write_comparison(args, records))
    return 0
