"""`python -m gan_jax dirac`: one training method's local behaviour on the Dirac-GAN."""

from __future__ import annotations

import argparse
import json
import sys

from gan_jax.analysis.dirac import analyze, names, Options, report, to_json
from gan_jax.components import losses
from gan_jax.config import make_config


def options_from_args(args: argparse.Namespace) -> Options:
    """The command's flags as Options, with the loss's own defaults: WGAN clips at the
    configuration's default bound, WGAN-GP penalises with its default weight (10)."""
    spec = losses.LOSSES.get(args.loss)
    clip, gp = args.clip, args.gp
    if spec is not None and spec.clip and clip is None:
        clip = make_config({}).clip
    if spec is not None and spec.gp_weight and gp is None:
        gp = spec.gp_weight

    def off_if_zero(x):       # 0 means "no such term", like a configuration's weights
        return None if x == 0 else x

    return Options(args.method, args.lr, args.loss, args.gamma, args.sga_lambda,
                   args.sga_scaled, args.steps_k, args.alpha, off_if_zero(args.r1), off_if_zero(gp), clip,
                   off_if_zero(args.nk_eta), off_if_zero(args.noise_std), off_if_zero(args.r2))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`python -m gan_jax dirac`: one method's local behaviour on the Dirac-GAN."""
    defaults = Options("")
    parser.add_argument("--method", required=True, metavar="NAME",
                        help=f"one of {', '.join(names())} (lookahead: lookahead-minimax around "
                             "simultaneous gradient descent)")
    parser.add_argument("--lr", type=float, default=defaults.lr,
                        help=f"both players' SGD step size h ({defaults.lr})")
    parser.add_argument("--loss", default=defaults.loss,
                        help=f"{', '.join(losses.LOSSES)} ({defaults.loss})")
    parser.add_argument("--gamma", type=float, default=defaults.gamma,
                        help=f"consensus weight ({defaults.gamma})")
    parser.add_argument("--sga-lambda", type=float, default=defaults.sga_lambda,
                        help=f"with --sga-scaled: SGA's |lambda| ({defaults.sga_lambda})")
    parser.add_argument("--sga-scaled", action="store_true",
                        help="SGA's lambda = --sga-lambda times the alignment's sign (this "
                             "library's generalisation); default: the sign itself, Balduzzi "
                             "et al.'s Algorithm 1")
    parser.add_argument("--steps-k", type=int, default=defaults.steps_k,
                        help=f"unrolled: discriminator steps unrolled; lookahead: fast steps "
                             f"per synchronisation ({defaults.steps_k})")
    parser.add_argument("--alpha", type=float, default=defaults.alpha,
                        help=f"lookahead: the slow weights' step ({defaults.alpha})")
    parser.add_argument("--r2", type=float, default=None,
                        help="R2 weight gamma: d_loss += gamma/2 E|grad D(generated)|^2 (with "
                             "--r1 and --loss rpgan: R3GAN's objective)")
    parser.add_argument("--r1", type=float, default=None,
                        help="R1 weight gamma: d_loss += gamma/2 E|grad D(real)|^2")
    parser.add_argument("--gp", type=float, default=None,
                        help="gradient-penalty weight lambda (WGAN-GP's; default: the loss's, "
                             "10 for wgan_gp, else none)")
    parser.add_argument("--clip", type=float, default=None,
                        help="clip psi to [-clip, clip] after each D step (default: the "
                             "configuration's 0.01 for wgan, else none)")
    parser.add_argument("--nk-eta", type=float, default=None,
                        help="Nagarajan-Kolter eta: G minimises g_loss + eta |d d_loss/d psi|^2 "
                             "(d_loss without penalties)")
    parser.add_argument("--noise-std", type=float, default=None,
                        help="instance noise std (expectation by Gauss-Hermite nodes)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def main(args: argparse.Namespace) -> int:
    analysis = analyze(options_from_args(args))
    if args.json:
        print(json.dumps(to_json(analysis)))
    else:
        sys.stdout.write(report(analysis))
    return 0
