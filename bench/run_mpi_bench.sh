#!/usr/bin/env bash
# Data-parallel scaling of one prompt-tuning job: step time with 1 rank × 1
# thread against an MPI group of 2 ranks × 1 thread (mpirun -np 2, each rank
# its half of every batch, the prompt gradient all-reduced), and the share of
# the step spent in the all-reduces (waiting for the slower rank included).
# Two shapes with random weights: the shipped model's (pico-llama-2.6m) and
# SmolLM2-135M's; batch 8 × 128 real tokens + 20 virtual tokens.
#
#   bench/run_mpi_bench.sh [BUILD_DIR] [STEPS]      # ~5 min on 2 cores
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="${1:-$root/build}/bench/engine_bench"
steps=${2:-6}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tokenizer=$root/tests/data/models/tiny-llama/tokenizer.json
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
for shape in "pico-llama-2.6m:$root/models/pico-llama-2.6m/config.json" \
             "smollm2-135m:$root/tests/data/configs/smollm2-135m.json"; do
  name=${shape%%:*}
  "$bench" prepare --config "${shape#*:}" --out "$work/$name" > /dev/null
  one=$("$bench" step --model "$work/$name" --tokenizer "$tokenizer" --threads 1 --steps "$steps")
  two=$(mpirun -np 2 --bind-to none "$bench" step --mpi --model "$work/$name" --tokenizer "$tokenizer" \
        --threads 1 --steps "$steps")
  python3 - "$name" "$one" "$two" <<'PY'
import json, sys
name, one, two = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
gap = max(abs(a - b) for a, b in zip(one["losses"], two["losses"]))
print(f"{name}: 1 rank {one['seconds_per_step']:.3f} s/step, 2 ranks {two['seconds_per_step']:.3f} s/step, "
      f"speed-up {one['seconds_per_step'] / two['seconds_per_step']:.2f}x, all-reduce "
      f"{100 * two['allreduce_share']:.2f}% of the 2-rank step; max loss difference {gap:.2e}")
PY
done
