"""Named configurations the library, its benchmark and its experiments share.

`SEED_CONFIGS` are the seed notebook's two runs (docs/seed.md); `BENCH_CONFIGS` are the
benchmark's configurations (BENCHMARKS.md). A configuration is validated when it is made,
without touching a JAX device, so importing this module starts nothing.
"""

from __future__ import annotations

from gan_jax.config import RunConfig, make_config

# The seed notebook's two runs. The seed computes no MMD, whose cost (the square of its sample
# count) would exceed the training itself in these tiny models.
SEED_CONFIGS: dict[str, RunConfig] = {
    "linear": make_config(dict(
        generator="linear", g_init=[0.15, 0.0], d_init=[0.25, 0.0],
        steps=320, lr_g=0.04, lr_d=0.04, d_updates=2, batch_size=128, log_every=40,
        mmd_samples=0)),
    "piecewise": make_config(dict(
        generator="piecewise", g_init=[0.35, -1.8, 0.35, 1.8], d_init=[0.25, 0.0],
        steps=400, lr_g=0.02, lr_d=0.03, d_updates=2, batch_size=128, log_every=40,
        mmd_samples=0)),
}

BENCH_CONFIGS: dict[str, RunConfig] = {
    # The seed's linear run: batch 128, d_updates 2, 321 run-steps, its history and final
    # evaluation (W1, left/right, mode metrics; no MMD, as in the seed).
    "seed_linear": SEED_CONFIGS["linear"],
    # MLP 2x64 generator and discriminator on the seed's target, Adam.
    "mlp_2x64": make_config(dict(
        generator="mlp", discriminator="mlp", g_width=64, g_depth=2, d_width=64, d_depth=2,
        optimizer="adam", lr_g=1e-3, lr_d=1e-3, steps=200, log_every=100, d_updates=2,
        batch_size=128)),
}


def non_default_fields(cfg: RunConfig) -> dict:
    """The fields of cfg that differ from RunConfig's defaults (JSON-ready), e.g. to write a
    preset as a sweep file's [base]."""
    default = RunConfig().to_dict()
    return {k: v for k, v in cfg.to_dict().items() if v != default[k]}
