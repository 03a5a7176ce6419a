"""`python -m gan_jax exact`: exact quantities of one closed-form generator."""

from __future__ import annotations

import math
import sys

import jax
import jax.numpy as jnp

from gan_jax.analysis.exact import (CLOSED_FORM, family_floor, js, kl, no_closed_form, OBJECTIVES,
                                    optimal_value, pushforward, w1)
from gan_jax.components import data as data_lib, models
from gan_jax.config import make_config
from gan_jax.core.errors import ConfigError


def add_arguments(parser) -> None:
    """`python -m gan_jax exact`: exact quantities of one closed-form generator."""
    parser.add_argument("--generator", required=True, help="linear | piecewise")
    parser.add_argument("--theta", type=float, nargs="+", required=True,
                        help="generator parameters: a b (linear) or a_l b_l a_r b_r (piecewise)")
    parser.add_argument("--data-std", type=float, default=None,
                        help="std of each mode of the bimodal target (default 0.35)")
    parser.add_argument("--floor", action="store_true",
                        help="also the family's best W1 and JS (16 random starts and theta)")


def main(args) -> int:
    if args.generator not in CLOSED_FORM:
        raise no_closed_form(args.generator, "this command")
    for flag, values in (("--theta", args.theta), ("--data-std", [args.data_std])):
        bad = [v for v in values if v is not None and not math.isfinite(v)]
        if bad:
            raise ConfigError(f"{flag}: got {bad[0]}; must be a finite number")
    cfg = make_config({"generator": args.generator, "data_std": args.data_std})
    n = models.num_params(cfg, "generator")
    if len(args.theta) != n:
        raise ConfigError(f"--theta: got {len(args.theta)} values; generator "
                          f"{args.generator!r} has {n} parameters")
    target = data_lib.make_target(cfg)
    theta = jnp.asarray(args.theta, jnp.float32)

    names = ("W1", "JS", "KL(p_g || p_data)", "KL(p_data || p_g)", "V(D*, G) = 2 JS - log 4")

    @jax.jit
    def quantities(theta):
        pf = pushforward(cfg.generator, theta)
        return (w1(pf, target), js(pf, target), kl(pf, target), kl(pf, target, "data||g"),
                optimal_value(pf, target))

    print(f"generator {cfg.generator}, theta = {list(args.theta)}, target bimodal_1d "
          f"(std {target.stds[0]:g})")
    failed = []
    for name, value in zip(names, quantities(theta)):
        value = float(value)
        if math.isfinite(value):
            print(f"  {name:26s} {value:.6g}")
        else:
            # The quadrature over- or underflows float32 at this theta / data_std (densities
            # of scale 1e30 or 1e-30): no number here is better than a wrong one.
            print(f"  {name:26s} not computable in float32 at this theta and data std")
            failed.append(name)
    if failed:
        print(f"error: {', '.join(failed)}: not computable in float32 here (a scale of theta "
              "or data std far from the target's; see docs/exact.md)", file=sys.stderr)
        return 1
    if args.floor:
        for objective in OBJECTIVES:
            floor = family_floor(cfg.generator, target, jax.random.key(0), objective=objective,
                                 extra_starts=theta[None])
            best = ", ".join(f"{float(v):.4f}" for v in floor.params)
            print(f"  family floor {objective.upper():13s} {float(floor.value):.6g} at theta = "
                  f"[{best}]")
    return 0
