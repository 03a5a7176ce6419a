#!/usr/bin/env bash
# The GPU benchmark in one short call (about 3-5 minutes on an H100): the seed's linear run
# from 1 to 65,536 runs per call and the MLP 2x64 from 1 to 16,384, compile time apart, with
# peak memory per run. Installs nothing (jax, optax, chex must be present; the project is
# imported from this checkout). Full JSON under $OUT (or ./out), a short table last.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-out}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# Let XLA take GPU memory as it needs it, so per-call peaks are honest.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt" || true
python -c "import jax; print(jax.__version__, jax.devices())" | tee -a "$out/gpu.txt"
python -m gan_jax bench --configs seed_linear --runs 1,16,256,1024,4096,16384,65536 \
    --repeats 3 --matmul-size 8192 --json "$out/bench_linear.json" | tee "$out/table_linear.md"
python -m gan_jax bench --configs mlp_2x64 --runs 1,16,256,1024,4096,16384 \
    --repeats 3 --matmul-size 8192 --json "$out/bench_mlp.json" | tee "$out/table_mlp.md"
echo
echo "== summary =="
cat "$out/table_linear.md" "$out/table_mlp.md"
