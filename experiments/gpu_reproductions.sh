#!/usr/bin/env bash
# The full-budget reproductions on a GPU in one call: each sweep file given (default: the
# VEEGAN and Nagarajan-Kolter full budgets) runs under its own time limit, its records under
# $OUT/runs/NAME (a sweep stopped by its limit keeps the chunks it finished; `--resume` with
# the same --out continues it). Installs nothing. Prints each sweep's wall time, then the
# tables that docs/reproductions.md reads.
#
#   experiments/gpu_reproductions.sh [LIMIT_S FILE.toml]...
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-out}"
mkdir -p "$out/runs"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/gpu.txt" || true
if [ $# -eq 0 ]; then
    set -- 120 experiments/veegan_2d_full.toml 150 experiments/nagarajan_kolter_ring_full.toml
fi
summary=""
while [ $# -ge 2 ]; do
    limit="$1"; file="$2"; shift 2
    name="$(basename "$file" .toml)"
    start=$(date +%s)
    # SIGINT at the limit: the sweep finishes the chunk in flight and stops (records kept);
    # a chunk still running 60 s later is killed (that chunk is lost, the rest kept).
    timeout --signal=INT --kill-after=60 "$limit" python -m gan_jax sweep "$file" --out "$out/runs/$name" \
        > "$out/$name.log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    summary+="$name: exit $rc after ${took} s (limit ${limit} s)"$'\n'
    tail -3 "$out/$name.log"
done
echo
echo "== summary =="
printf '%s' "$summary"
