"""The stabilisers' reference runs: a small set of configurations that between them switch on
every stabiliser of the training loop and the wrappers around the method (spectral
normalization, instance noise with its anneal, the Nagarajan-Kolter term, packing, batch
normalization, lookahead with the generator's average, extragradient, a scaled SGA), with
their run ids and final metrics, stored in tests/stabiliser_reference.json. Moving a
stabiliser between modules must leave every one of these numbers as it was, bit for bit
(tests/test_stabilisers.py).

    python tests/stabiliser_reference.py      # writes the JSON (only when a change is meant)
"""

from __future__ import annotations

import json
import pathlib

SMALL = dict(data="ring_2d", generator="mlp", discriminator="mlp", g_width=8, g_depth=1,
             d_width=8, d_depth=1, steps=12, log_every=6, batch_size=16, d_updates=1,
             eval_batch=32, history_samples=32, eval_samples=64, mmd_samples=0,
             optimizer="adam", lr_g=1e-3, lr_d=1e-3, jacobian_max_params=0)
CASES = {
    "seed": {},
    "spectral_norm": dict(SMALL, spectral_norm=True),
    "noise_anneal": dict(SMALL, noise_std=0.3, noise_anneal=True),
    "nk": dict(SMALL, nk_eta=0.5),
    "pack": dict(SMALL, pack=2, d_updates=2),
    "batch_norm": dict(SMALL, g_norm="batch", pack=2),
    "lookahead_ema": dict(SMALL, lookahead_k=3, ema_beta=0.9),
    "extragradient": dict(SMALL, update="extragradient"),
    "sga_scaled": dict(SMALL, update="sga", sga_scaled=True, sga_lambda=0.5),
    "all_at_once": dict(SMALL, loss="wgan_gp", spectral_norm=True, noise_std=0.2, nk_eta=0.1,
                        pack=2, g_norm="batch"),
}
SEEDS = (0, 1)
FILE = pathlib.Path(__file__).with_name("stabiliser_reference.json")


def compute(name: str) -> dict:
    """One case's run ids and final metrics (floats, exactly as float32 holds them)."""
    from gan_jax import config
    from gan_jax.engine import programs as engine
    from gan_jax.records import results
    from gan_jax.analysis import seed_repro
    cfg = seed_repro.SEED_CONFIGS["linear"] if name == "seed" else \
        config.make_config(CASES[name])
    out = engine.run_batch([cfg] * len(SEEDS), list(SEEDS))
    return {"run_ids": [results.run_id(cfg, s) for s in SEEDS],
            "final": {k: [float(x) for x in v] for k, v in sorted(out.final.items())},
            "loss_g": [float(x) for x in out.history["loss_g"][:, -1]]}


if __name__ == "__main__":
    FILE.write_text(json.dumps({name: compute(name) for name in CASES}, indent=1) + "\n")
    print(f"wrote {FILE}")
