"""The exact 1-D analysis: how far trained runs end from the best their generator family can do.

    PYTHONPATH=. python experiments/exact_analysis.py --out out/exact [--seeds 64]

For the seed's linear and piecewise runs, the linear run with an MLP discriminator, and an MLP
generator, each over --seeds seeds in one `jit(vmap(train))` call, the script computes at the
end of training:

  W1       exact (gan_jax.analysis.exact.w1) for closed-form generators; for the MLP, estimated from
           4 x 2^14 fresh samples against exact target quantiles (exact.estimate_w1)
  floor    the family's best W1 (exact.family_floor: Adam on exact W1 from --starts random
           starts and the seed's start); for the MLP an estimate (exact.estimated_floor)
  gap      achieved W1 - floor: the part of the distance that is optimisation, not capacity
  JS       exact JS divergence at the end, and the family's best JS
  D gap    V(D*, G) - V(D, G) of the trained discriminator, as recorded in training history

It writes under --out: report.md (every table, also printed), table.md (the main table),
runs.csv (one row per run), saturation.png (gradient signal of every loss).
"""

from __future__ import annotations

import argparse
import csv
import functools
import os
import sys
import time

import jax
import numpy as np
from jax.flatten_util import ravel_pytree

from gan_jax import config as config_lib
from gan_jax.components import losses
from gan_jax.engine import programs as engine
from gan_jax.analysis import exact, stability
from gan_jax.report import stats
from gan_jax.training import train
from gan_jax.config import ConfigError, RunConfig, make_config
from gan_jax.records.results import write_atomic
from gan_jax.presets import SEED_CONFIGS
from gan_jax.report.tables import markdown_table as md_table
from gan_jax.analysis.seed_repro import pm as pm_summary

ARMS: dict[str, RunConfig] = {
    "linear (seed)": SEED_CONFIGS["linear"],
    "piecewise (seed)": SEED_CONFIGS["piecewise"],
    "linear, MLP D": SEED_CONFIGS["linear"].replace(discriminator="mlp", d_width=32,
                                                    d_init=None),
    "MLP G, MLP D": make_config(dict(
        generator="mlp", discriminator="mlp", g_width=32, d_width=32, optimizer="adam",
        lr_g=1e-3, lr_d=1e-3, d_updates=1, steps=2000, log_every=200)),
}
SATURATION_PROBS = (0.001, 0.01, 0.05, 0.1, 0.5, 0.9, 0.99)
ESTIMATE_SHAPE = (4, 2**14)   # batches x samples per run for the MLP's W1 estimate


def _parts(cfg: RunConfig):
    return train.make_parts(config_lib.static_part(cfg))


def closed_form_finals(cfg: RunConfig, g_params) -> dict[str, np.ndarray]:
    """Exact W1 and JS of every run's final generator (one vmapped program)."""
    target = _parts(cfg).target

    def one(theta):
        pf = exact.pushforward(cfg.generator, theta)
        return {"w1": exact.w1(pf, target), "js": exact.js(pf, target)}

    return jax.tree.map(np.asarray, jax.jit(jax.vmap(one))(g_params))


def estimated_finals(cfg: RunConfig, g_params, seeds) -> dict[str, np.ndarray]:
    """W1 estimates (value and error bar) of every run's final generator, on fresh samples."""
    parts = _parts(cfg)
    r, n = ESTIMATE_SHAPE

    def one(params, key):
        keys = jax.random.split(key, r)
        samples = jax.vmap(lambda k: train.sample_fake(parts, params, k, n)[:, 0])(keys)
        est = exact.estimate_w1(samples, parts.target)
        return {"w1": est.value, "w1_error": est.error}

    keys = jax.vmap(lambda k: jax.random.fold_in(k, 2))(engine.seed_keys(seeds))
    return jax.tree.map(np.asarray, jax.jit(jax.vmap(one))(g_params, keys))


@functools.cache
def family_floors(name: str, starts: int) -> dict:
    """The family's best W1 and JS (closed form) or estimated W1 (MLP), with parameters."""
    cfg = ARMS[name]
    target = _parts(cfg).target
    key = jax.random.key(2024)
    if cfg.generator in exact.CLOSED_FORM:
        seed_start = np.asarray([cfg.g_init], np.float32)
        return {m: exact.family_floor(cfg.generator, target, key, objective=m, starts=starts,
                                      extra_starts=seed_start) for m in ("w1", "js")}
    floor = exact.estimated_floor(cfg, key)
    parts = _parts(cfg)
    _, unravel = ravel_pytree(parts.generator.init(key))
    samples = jax.vmap(lambda k: train.sample_fake(parts, unravel(floor.params), k, 2**17)[:, 0])(
        jax.random.split(jax.random.fold_in(key, 1), 4))
    return {"w1": floor, "w1_check": exact.estimate_w1(samples, parts.target)}


def _floor_key(name: str) -> str:
    """Arms sharing a generator family share its floor."""
    gen = ARMS[name].generator
    return next(n for n, c in ARMS.items() if c.generator == gen)


# ----------------------------------------------------------------------------- tables

def _pm(values) -> str:
    return pm_summary(stats.summarize(values, interval="t"))


def _ci(values) -> str:
    s = stats.summarize(values, interval="t")
    return f"{stats.fmt(s.mean)} [{stats.fmt(s.ci_low)}, {stats.fmt(s.ci_high)}]"


def _median(values) -> str:
    return stats.fmt(stats.summarize(values, interval="t").median)


def main_table(rows: dict) -> str:
    header = ["configuration", "W1 at end: mean ± std (median)", "family floor W1",
              "optimisation gap: mean [95% CI] (median)", "gap / W1 (means)", "JS at end", "family floor JS",
              "D gap to D* (start → end, median)", "W1 on 4000 samples (training's metric)"]
    out = []
    for name, r in rows.items():
        gap = r["w1"] - r["floor_w1"]
        d_gap = (f"{stats.fmt(float(np.median(r['d_gap_start'])))} → "
                 f"{stats.fmt(float(np.median(r['d_gap_end'])))}" if "d_gap_end" in r else
                 "n/a (no closed-form p_g)")
        w1 = f"{_pm(r['w1'])} ({_median(r['w1'])})"
        if "w1_error" in r:
            w1 += f" (per-run error bar ≤ {stats.fmt(float(np.max(r['w1_error'])))})"
        out.append([
            name + (" ‡" if r["estimated"] else ""), w1,
            stats.fmt(r["floor_w1"]) + (" ‡" if r["estimated"] else ""),
            f"{_ci(gap)} ({_median(gap)})",
            f"{100 * float(np.mean(gap) / np.mean(r['w1'])):.0f}%",
            _pm(r["js"]) if "js" in r else "n/a", stats.fmt(r["floor_js"]) if "floor_js" in r
            else "n/a", d_gap, _pm(r["w1_samples"])])
    return md_table(header, out)


def floor_table(floors: dict) -> str:
    rows = []
    for name, f in floors.items():
        cfg = ARMS[name]
        for m in ("w1", "js"):
            if m not in f:
                continue
            fl = f[m]
            params = (np.array2string(np.asarray(fl.params), precision=4, separator=", ")
                      if cfg.generator in exact.CLOSED_FORM else f"{fl.params.size} MLP weights")
            agree = int(np.sum(np.asarray(fl.values) <= float(fl.value) + 1e-4))
            rows.append([cfg.generator, m.upper(), stats.fmt(float(fl.value), 5), params,
                         f"{agree} of {len(fl.values)}"])
        if "w1_check" in f:
            c = f["w1_check"]
            rows.append([cfg.generator, "W1 (fresh 4 × 2^17 samples)", stats.fmt(float(c.value), 5),
                         f"± {stats.fmt(float(c.error))} (bias bound + 2 s.e.)", "-"])
    return md_table(["family", "objective", "floor", "parameters", "starts within 1e-4 of it"], rows)


# rpgan is rsgan under R3GAN's name (gan_jax.components.losses): the same signal, shown once.
SATURATION_LOSSES = tuple(n for n in losses.LOSSES if n != "rpgan")


def saturation_table(probs=SATURATION_PROBS) -> str:
    sat = stability.saturation(probs, SATURATION_LOSSES)
    header = ["D(fake)"] + [f"{n}: G / D" for n in sat]
    rows = [[str(p)] + [f"{sat[n]['g'][i]:.4g} / {sat[n]['d'][i]:.4g}" for n in sat]
            for i, p in enumerate(probs)]
    return md_table(header, rows)


def saturation_figure(path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = np.logspace(-4, 0, 400)[:-1]
    p = np.concatenate([p, 1 - p[::-1][1:]])
    p = np.unique(p[(p > 1e-4) & (p < 1 - 1e-4)])
    sat = stability.saturation(p, SATURATION_LOSSES)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    # Several losses share a curve (wgan, wgan_gp and hinge give G the same signal; minimax and
    # non-saturating give D the same one): wide pale lines under thin or dashed ones.
    styles = {"nonsaturating": dict(lw=4, alpha=0.45), "minimax": dict(lw=1.3),
              "lsgan": dict(lw=1.3), "wgan": dict(lw=4, alpha=0.45),
              "wgan_gp": dict(lw=1.5, ls="--"), "hinge": dict(lw=1.5, ls=":"),
              "rsgan": dict(lw=1.2, ls="-."), "ragan": dict(lw=1.3, ls=(0, (5, 1, 1, 1)))}
    for name, g in sat.items():
        axes[0].plot(p, g["g"], label=name, **styles.get(name, {}))
        axes[1].plot(p, g["d"], label=name, **styles.get(name, {}))
    for ax, title in zip(axes, ("generator: |d g_loss / d logit|",
                                "discriminator: |d d_loss / d fake logit|")):
        ax.set_xscale("logit")
        ax.set_yscale("log")
        ax.set_ylim(1e-4, 2)
        ax.set_xlabel("D(fake) = sigmoid(logit)")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def stability_table() -> str:
    rows = []
    for name in ("linear", "piecewise"):
        cfg = SEED_CONFIGS[name]
        a = stability.analyze_config(cfg)
        eigs = ("-" if a.eigenvalues is None else
                ", ".join(f"{z.real:.3g}" + (f"{z.imag:+.3g}i" if abs(z.imag) > 1e-6 else "")
                          for z in np.sort_complex(a.eigenvalues)))
        rows.append([f"{name} (seed)", np.array2string(a.x, precision=3, separator=", "),
                     f"{a.residual:.2g}", eigs, a.flow,
                     f"{a.rho_alternating:.6f} ({a.alternating})" if a.rho_alternating else "-"])
    return md_table(["configuration", "stationary (theta, phi) found from the seed's start",
                "residual ‖v‖",
                "eigenvalues of J", "gradient flow",
                "rho alternating (seed's lr, d_updates)"], rows)


# ----------------------------------------------------------------------------- main

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--seeds", type=int, default=64, help="seeds per configuration (64)")
    parser.add_argument("--starts", type=int, default=16,
                        help="random starts per family floor (16), plus the seed's start")
    parser.add_argument("--no-figure", action="store_true", help="skip the PNG (no matplotlib)")


def run_arms(seeds: list[int], starts: int) -> tuple[dict, dict, dict]:
    rows, timing, floors = {}, {}, {}
    for name, cfg in ARMS.items():
        t = time.perf_counter()
        out = engine.run_batch([cfg] * len(seeds), seeds)
        timing[name] = time.perf_counter() - t
        key = _floor_key(name)
        if key not in floors:
            floors[key] = family_floors(key, starts)
        floor = floors[key]
        row = {"w1_samples": out.final["w1"], "estimated": cfg.generator not in exact.CLOSED_FORM,
               "floor_w1": float(floor["w1"].value)}
        if row["estimated"]:
            row.update(estimated_finals(cfg, out.state.g_params, seeds))
        else:
            row.update(closed_form_finals(cfg, out.state.g_params))
            row["floor_js"] = float(floor["js"].value)
        if "d_gap" in out.history:
            row["d_gap_start"], row["d_gap_end"] = out.history["d_gap"][:, 0], out.history["d_gap"][:, -1]
        row["status_ok"] = out.state.diverged_at < 0
        rows[name] = row
    return rows, timing, floors



def write_csv(path: str, rows: dict, seeds: list[int]) -> None:
    keys = ["w1", "w1_error", "js", "d_gap_end", "w1_samples"]
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["configuration", "seed", "floor_w1", "optimisation_gap", *keys])
        for name, r in rows.items():
            for i, seed in enumerate(seeds):
                vals = [f"{float(r[k][i]):.7g}" if k in r else "" for k in keys]
                w.writerow([name, seed, f"{r['floor_w1']:.7g}",
                            f"{float(r['w1'][i]) - r['floor_w1']:.7g}", *vals])
    os.replace(tmp, path)


def seed_claim(rows: dict, floors: dict) -> str:
    lin, lin_d = rows["linear (seed)"], rows["linear, MLP D"]
    f = floors[_floor_key("linear (seed)")]["w1"]
    a, b = (float(v) for v in f.params)
    gap = lin["w1"] - lin["floor_w1"]
    gap_d = lin_d["w1"] - lin_d["floor_w1"]
    return (
        f"**The seed's claim.** The best linear generator against the bimodal target is "
        f"N({b:.3g}, {abs(a):.4g}²) with exact W1 = {lin['floor_w1']:.4f}; no linear generator "
        f"does better. The seed's training ends at W1 = {_pm(lin['w1'])} over "
        f"{len(lin['w1'])} seeds, so the optimisation gap is {_ci(gap)}: "
        f"{100 * float(np.mean(gap) / np.mean(lin['w1'])):.0f}% of the achieved distance is "
        f"not the family's capacity. The same generator, optimiser and schedule with an MLP "
        f"discriminator end at median W1 = {_median(lin_d['w1'])} (median gap "
        f"{_median(gap_d)}; mean {_pm(lin_d['w1'])}, {int(np.sum(gap_d > 0.1))} of "
        f"{len(gap_d)} runs end more than 0.1 above the floor). The linear "
        f"family does fail to fit two modes (its floor is {lin['floor_w1']:.3f}, not 0), but "
        f"the seed's 1.88 is mostly the logistic discriminator, which sees only the mean and "
        f"leaves the spread a without any signal (a neutral direction of the dynamics, below).")


def main(args: argparse.Namespace) -> int:
    if args.seeds < 2:
        raise ConfigError(f"--seeds: got {args.seeds}; must be an integer >= 2")
    if args.starts < 1:
        raise ConfigError(f"--starts: got {args.starts}; must be a positive integer")
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--out: cannot create {args.out!r}: {e.strerror}") from None
    t0 = time.perf_counter()
    seeds = list(range(args.seeds))
    rows, timing, floors = run_arms(seeds, args.starts)
    table = main_table(rows)
    t_stab = time.perf_counter()
    stab = stability_table()
    t_stab = time.perf_counter() - t_stab
    n_bad = {n: int(np.sum(~r["status_ok"])) for n, r in rows.items()}
    parts = [
        f"# Exact analysis over {args.seeds} seeds per configuration\n",
        "Exact quantities by quadrature of the closed-form generated law (gan_jax.analysis.exact); "
        "‡ marks estimates (the MLP generator has no closed form: W1 from fresh samples "
        "against exact target quantiles, floor from fitting the MLP to the target directly). "
        "Optimisation gap = achieved W1 − family floor, per seed. D gap = V(D*, G) − V(D, G) "
        "of the trained discriminator, from the training history's first and last rows.\n",
        table, "", seed_claim(rows, floors), "",
        "## Family floors\n", floor_table(floors), "",
        "## Local stability of the seed's configurations (population losses, plain steps)\n",
        stab, "",
        "## Gradient signal of every loss (|d loss / d fake logit| at D(fake))\n",
        saturation_table(), "",
    ]
    if not args.no_figure:
        png = os.path.join(args.out, "saturation.png")
        saturation_figure(png)
        parts.append(f"Figure: {png}\n")
    elapsed = time.perf_counter() - t0
    parts.append(
        f"Runs per configuration: {args.seeds} ({', '.join(f'{n}: {k} diverged' for n, k in n_bad.items())}). "
        f"Wall time {elapsed:.0f} s on {jax.devices()[0].platform} (training, compile included: "
        + ", ".join(f"{n} {t:.0f} s" for n, t in timing.items())
        + f"; stability {t_stab:.0f} s; the rest is exact quantities and floors).\n")
    report = "\n".join(parts)
    write_atomic(os.path.join(args.out, "report.md"), report)
    write_atomic(os.path.join(args.out, "table.md"), table + "\n")
    write_csv(os.path.join(args.out, "runs.csv"), rows, seeds)
    sys.stdout.write(report)
    return 0


if __name__ == "__main__":
    from gan_jax.commands.cli import run_script
    run_script(__doc__, add_arguments, main)
