#!/usr/bin/env bash
# Timing of compilation: the loss ablation and reproduce-seed with an empty and
# a filled persistent cache, each command's own summary line. Usage:
#   experiments/compile_bench.sh OUTDIR
# Run on an idle machine; takes about 10 minutes on 2 CPU cores.
set -euo pipefail
out=${1:?usage: compile_bench.sh OUTDIR}
mkdir -p "$out"
cache="$out/cache"
rm -rf "$cache" "$out/loss1" "$out/loss2" "$out/seed1" "$out/seed2"
export GAN_JAX_CACHE="$cache"
t() { local TIMEFORMAT="process wall: %R s"; time "$@"; }
echo "== loss ablation, empty cache"
t python -m gan_jax sweep experiments/loss_ablation.toml --out "$out/loss1" 2>&1 | tail -3
echo "== loss ablation, filled cache"
t python -m gan_jax sweep experiments/loss_ablation.toml --out "$out/loss2" 2>&1 | tail -3
rm -rf "$cache"
echo "== reproduce-seed, empty cache"
t python -m gan_jax reproduce-seed --out "$out/seed1" | tail -2
echo "== reproduce-seed, filled cache"
t python -m gan_jax reproduce-seed --out "$out/seed2" | tail -2
