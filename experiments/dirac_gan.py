"""The Dirac-GAN of Mescheder et al. (2018): where GAN training converges, cycles or diverges.

    PYTHONPATH=. python experiments/dirac_gan.py --out out/dirac

Target: a point mass at 0. Generator: a point mass at theta, i.e. the library's linear
generator with its slope held at 0, G(z) = 0 z + theta. Discriminator: the logit psi x, i.e.
the library's logistic discriminator with its bias held at 0. Losses, R1 and the gradient
penalty are the library's own (gan_jax.components.losses), evaluated on the one real and one fake point;
the game is gan_jax.analysis.dirac's (whose `dirac` command analyses every training method on it).
The unique equilibrium is (theta, psi) = (0, 0).

For each arm the script writes one row: the eigenvalues of the vector field's Jacobian at the
equilibrium, the spectral radius of the simultaneous and alternating update maps at the given
learning rate, and the distance to the equilibrium after N steps of each map from (1, 1);
and a figure of the trajectories. References: Mescheder, Geiger, Nowozin, "Which Training
Methods for GANs do actually Converge?", ICML 2018, Sections 2-4 and Figure 3.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.analysis import dirac, stability
from gan_jax.components import methods
from gan_jax.config import ConfigError
from gan_jax.records.results import write_atomic
from gan_jax.report.tables import markdown_table as md_table

EQUILIBRIUM = (np.zeros(1, np.float32), np.zeros(1, np.float32))   # (theta, psi)


class Arm(NamedTuple):
    label: str
    loss: str
    r1_weight: float = 0.0
    gp_weight: float = 0.0
    clip: float | None = None
    r2_weight: float = 0.0


ARMS = (
    Arm("GAN (minimax)", "minimax"),
    Arm("GAN (non-saturating)", "nonsaturating"),
    Arm("GAN + R1 (gamma = 1)", "nonsaturating", r1_weight=1.0),
    Arm("WGAN, clip 1", "wgan", clip=1.0),
    Arm("WGAN-GP (lambda = 1)", "wgan", gp_weight=1.0),
    Arm("RpGAN", "rpgan"),
    Arm("RaGAN", "ragan"),
    Arm("RpGAN + R1 + R2 (gamma = 1): R3GAN", "rpgan", r1_weight=1.0, r2_weight=1.0),
)


def dirac_game(arm: Arm) -> methods.Game:
    """The arm's Dirac-GAN (gan_jax.analysis.dirac.dirac_game) on theta and psi (f[1] each)."""
    return dirac.dirac_game(arm.loss, r1=arm.r1_weight or None, gp=arm.gp_weight or None,
                            clip=arm.clip, r2=arm.r2_weight or None)


class ArmResult(NamedTuple):
    arm: Arm
    analysis: stability.LocalAnalysis
    paths: dict[str, np.ndarray]      # update -> f32[steps + 1, 2]


def run_arm(arm: Arm, *, lr: float, steps: int, x0) -> ArmResult:
    game = dirac_game(arm)
    # The search starts at the known equilibrium: it confirms v = 0 there, and the Jacobian
    # check then says whether a linearisation describes the dynamics at all.
    analysis = stability.analyze(game, EQUILIBRIUM, lr_g=lr, lr_d=lr)
    paths = {u: np.asarray(jax.jit(lambda x, u=u: stability.trajectory(
        stability.update_map(game, EQUILIBRIUM, lr, lr, u), x, steps))(
            jnp.asarray(x0, jnp.float32)))
        for u in ("simultaneous", "alternating")}
    return ArmResult(arm, analysis, paths)


def _eigs(e) -> str:
    if e is None:
        return "-"
    def part(v):  # round-off (|v| < 1e-9, including -0.0) prints as 0
        return f"{0.0 if abs(v) < 1e-9 else v:.3g}"

    return ", ".join(f"{part(z.real)} {'-' if z.imag < 0 else '+'} {part(abs(z.imag))}i"
                     for z in np.sort_complex(e))


def _rho(r, verdict) -> str:
    return "-" if r is None else f"{r:.5f} ({verdict})"


def table(results: list[ArmResult], lr: float, steps: int) -> str:
    header = ["arm", "eigenvalues of J at (0, 0)", "gradient flow",
              f"rho simultaneous (lr {lr})", f"rho alternating (lr {lr})",
              f"‖x − x*‖ after {steps} simultaneous steps", "… alternating steps"]
    rows = []
    for r in results:
        a = r.analysis
        rows.append([r.arm.label, _eigs(a.eigenvalues), a.flow,
                     _rho(a.rho_simultaneous, a.simultaneous),
                     _rho(a.rho_alternating, a.alternating),
                     f"{np.linalg.norm(r.paths['simultaneous'][-1]):.3g}",
                     f"{np.linalg.norm(r.paths['alternating'][-1]):.3g}"])
    return md_table(header, rows)


def figure(results: list[ArmResult], path: str) -> None:
    """Phase portraits (theta, psi), one panel per arm; PNG at path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(4, len(results))
    rows = -(-len(results) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, 3.4 * rows), sharex=True,
                             sharey=True, squeeze=False)
    for ax in axes.flat[len(results):]:
        ax.set_visible(False)
    first_column = axes[:, 0]
    axes = axes.flat
    styles = {"simultaneous": dict(color="tab:red", lw=0.8),
              "alternating": dict(color="tab:blue", lw=0.8)}
    for ax, r in zip(axes, results):
        for update, xs in r.paths.items():
            ax.plot(xs[:, 0], xs[:, 1], label=update, **styles[update])
        ax.plot(*r.paths["alternating"][0], "ko", ms=4)
        ax.plot(0, 0, "k*", ms=9)
        ax.set_title(f"{r.arm.label}\nflow at x*: {r.analysis.flow.split(' (')[0].replace(' at x*', '')}", fontsize=8)
        ax.set_xlabel("theta (generator)", fontsize=8)
        ax.set_xlim(-2.6, 2.6)
        ax.set_ylim(-2.6, 2.6)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
    for ax in first_column:
        ax.set_ylabel("psi (discriminator)", fontsize=8)
    first_column[0].legend(fontsize=7, loc="lower left")
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--lr", type=float, default=0.1, help="both players' step size (0.1)")
    parser.add_argument("--steps", type=int, default=500, help="steps per trajectory (500)")
    parser.add_argument("--no-figure", action="store_true", help="skip the PNG (no matplotlib)")


def main(args: argparse.Namespace) -> int:
    if not args.lr > 0:
        raise ConfigError(f"--lr: got {args.lr}; must be a positive number")
    if args.steps < 1:
        raise ConfigError(f"--steps: got {args.steps}; must be a positive integer")
    os.makedirs(args.out, exist_ok=True)
    t0 = time.perf_counter()
    results = [run_arm(arm, lr=args.lr, steps=args.steps, x0=(1.0, 1.0)) for arm in ARMS]
    report = ["# Dirac-GAN: local stability at the equilibrium (0, 0)\n",
              f"Start (theta, psi) = (1, 1); plain gradient steps, lr {args.lr} for both "
              f"players; alternating = one discriminator step, then one generator step.\n",
              table(results, args.lr, args.steps), ""]
    if not args.no_figure:
        png = os.path.join(args.out, "dirac_gan.png")
        figure(results, png)
        report.append(f"Figure: {png}\n")
    report.append(f"Wall time {time.perf_counter() - t0:.1f} s on {jax.devices()[0].platform}.\n")
    text = "\n".join(report)
    write_atomic(os.path.join(args.out, "dirac_gan.md"), text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    from gan_jax.commands.cli import run_script
    run_script(__doc__, add_arguments, main)
