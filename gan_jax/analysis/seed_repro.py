"""The seed notebook's experiment, over many seeds: `python -m gan_jax reproduce-seed --out DIR`.

Runs the seed's two configurations (linear and piecewise generator, logistic discriminator,
non-saturating loss, plain gradient steps, the seed's initial values and hyperparameters), each
over `--seeds` seeds in one `jit(vmap(train))` call, and writes under DIR:

  results.jsonl  one record per run (docs/records.md)
  report.md      the tables below, also printed

Tables: training history (median and quartiles over seeds per log step), final statistics
(mean +- std and 95% interval), linear vs piecewise, the saturation table (exact, by autodiff
of the library's losses), GAN and LSGAN objectives at the trained piecewise parameters, and the
weight-clipping example.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp

from gan_jax import config as config_lib
from gan_jax import presets
from gan_jax.engine import programs as engine
from gan_jax.components import losses
from gan_jax.analysis import stability
from gan_jax.report import stats
from gan_jax.config import RunConfig
from gan_jax.report.tables import BOUNDS, markdown_table
from gan_jax.training.train import make_parts

SWEEP = "reproduce-seed"
SEED_CONFIGS = presets.SEED_CONFIGS

# What the seed printed for its single run (Python's random seeded with 21), for reference.
SEED_PRINTED = {
    "linear": dict(real_mean=-0.0126, real_std=2.033, fake_mean=0.0078, fake_std=0.1481,
                   w1=1.8831, left=0.4798, right=0.5202, mode_balance=0.9222),
    "piecewise": dict(real_mean=0.0423, real_std=2.0328, fake_mean=0.0212, fake_std=2.0869,
                      w1=0.1305, left=0.4965, right=0.5035, mode_balance=0.9861),
}
SEED_OBJECTIVES = dict(gan_L_D=-1.38635, gan_L_G=-0.69287, lsgan_loss_d=0.25001,
                       lsgan_loss_g=0.12493)
SATURATION_PROBS = (0.001, 0.01, 0.05, 0.1, 0.5, 0.9)
FINAL_KEYS = ("real_mean", "real_std", "fake_mean", "fake_std", "w1", "left", "right",
              "mode_balance")


def pm(s: stats.Summary) -> str:
    return f"{stats.fmt(s.mean)} ± {stats.fmt(s.std)}"


def _ci(s: stats.Summary) -> str:
    return f"[{stats.fmt(s.ci_low)}, {stats.fmt(s.ci_high)}]"


def history_table(out, cfg: RunConfig) -> str:
    """Per log step: median [q25, q75] over seeds; L_D and L_G in the seed's (maximised) sign."""
    h = out.history
    cols = {
        "L_D": -h["loss_d"], "L_G": -h["loss_g"], "W1": h["w1"], "left": h["left"],
        "right": h["right"],
    }
    g_names = ["a", "b"] if cfg.generator == "linear" else ["a_l", "b_l", "a_r", "b_r"]
    for i, name in enumerate(g_names):
        cols[name] = h["g_params"][..., i]
    cols["c"], cols["d"] = h["d_params"][..., 0], h["d_params"][..., 1]
    rows = []
    for j, step in enumerate(h["step"][0]):
        row = [str(int(step))]
        for v in cols.values():
            s = stats.summarize(v[:, j], interval="t")
            row.append(f"{stats.fmt(s.median)} [{stats.fmt(s.q25)}, {stats.fmt(s.q75)}]")
        rows.append(row)
    return markdown_table(["step", *cols], rows)


def final_table(out, name: str) -> str:
    """Final statistics over seeds; the t interval of a bounded metric (mode balance, left,
    right in [0, 1]) is kept inside its range (`tables.BOUNDS`), as the `table` command does."""
    rows = []
    for key in FINAL_KEYS:
        s = stats.summarize(out.final[key], interval="t", bounds=BOUNDS.get(key))
        rows.append([key, pm(s), _ci(s), stats.fmt(s.median), str(SEED_PRINTED[name][key])])
    return markdown_table(["statistic", "mean ± std", "95% CI of mean", "median",
                      "seed notebook (1 run)"], rows)


def comparison_table(outs) -> str:
    rows = []
    for key, label in (("w1", "W1"), ("fake_std", "fake std"), ("mode_balance", "mode balance")):
        cells = [pm(stats.summarize(outs[n].final[key], interval="t")) for n in ("linear", "piecewise")]
        seed = [str(SEED_PRINTED[n][key]) for n in ("linear", "piecewise")]
        rows.append([label, *cells, " vs ".join(seed)])
    return markdown_table(["metric", "linear", "piecewise", "seed notebook (linear vs piecewise)"],
                     rows)


def saturation_table() -> str:
    """|d g_loss / d s| at D(fake) = sigmoid(s) = p, by autodiff of the library's G losses."""
    grads = stability.saturation(SATURATION_PROBS, names=("minimax", "nonsaturating"))
    rows = [[str(p), f"{grads['minimax']['g'][i]:.4f}", f"{grads['nonsaturating']['g'][i]:.4f}"]
            for i, p in enumerate(SATURATION_PROBS)]
    return markdown_table(["D(fake)", "abs d(minimax)/ds", "abs d(non-sat)/ds"], rows)


def objective_table(out_pw, cfg: RunConfig, seeds: list[int], n: int = 256) -> str:
    """GAN and LSGAN objectives at each trained piecewise run's parameters, fresh batch of n."""
    parts = make_parts(config_lib.static_part(cfg))

    def objectives(g_params, d_params, key):
        k_real, k_z = jax.random.split(key)
        real = parts.target.sample(k_real, n)
        fake = parts.generator.apply(g_params, jax.random.normal(k_z, (n, 1)))
        r, f = (parts.discriminator.apply(d_params, real),
                parts.discriminator.apply(d_params, fake))
        return {
            "gan_L_D": -losses.nonsaturating_d_loss(r, f),
            "gan_L_G": -losses.nonsaturating_g_loss(f),
            "lsgan_loss_d": losses.lsgan_d_loss(r, f),
            "lsgan_loss_g": losses.lsgan_g_loss(f),
        }

    keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(engine.seed_keys(seeds))
    vals = jax.jit(jax.vmap(objectives))(out_pw.state.g_params, out_pw.state.d_params, keys)
    labels = {"gan_L_D": "GAN L_D (maximised)", "gan_L_G": "GAN L_G non-saturating (maximised)",
              "lsgan_loss_d": "LSGAN loss_D (minimised)", "lsgan_loss_g": "LSGAN loss_G (minimised)"}
    rows = [[labels[k], pm(stats.summarize(v, interval="t")), _ci(stats.summarize(v, interval="t")),
             str(SEED_OBJECTIVES[k])] for k, v in vals.items()]
    return markdown_table(["objective", "mean ± std", "95% CI of mean", "seed notebook (1 run)"], rows)


def clipping_example() -> str:
    raw, clip = 1.7, 0.1
    clipped = float(losses.clip_params(jnp.asarray(raw), clip))
    return f"WGAN weight clipping: raw critic weight = {raw} -> clipped at {clip} = {clipped:.4g}"
