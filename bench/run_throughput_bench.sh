#!/usr/bin/env bash
# Sweep throughput, everything side by side in one run (the README's "Sweep
# throughput" tables):
#   1. rank-classification evaluation, one pass vs one row per label (run_eval_bench.sh);
#   2. training-step tokens/s of K = 1..16 packed jobs vs the same jobs one after
#      the other, and multi-adapter eval vs one eval call per adapter (run_pack_bench.sh);
#   3. the makespan of configs/init-vs-length.yaml with `run --workers 2`: an older
#      build (OLD=path/to/promptsweep, e.g. built from the commit before one-pass
#      evaluation), one-pass evaluation (--pack 1) and packing (--pack 4)
#      (run_sweep_makespan.sh).
#
#   bench/run_throughput_bench.sh [BUILD_DIR]
# Defaults are the full sizes (48 adapters, the 48-job sweep: ~40 min on 2 cores);
# QUICK=1 takes 16 adapters and the sweep cut to seed 0 (16 jobs): ~20 min.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
if [ "${QUICK:-0}" = 1 ]; then
  adapters=16
  small=1
else
  adapters=48
  small=0
fi

echo "## 1. Evaluation: one pass vs per-label rows"
bash "$root/bench/run_eval_bench.sh" "$build" 3
echo
echo "## 2. Packing and multi-adapter eval"
ADAPTERS="${ADAPTERS:-$adapters}" bash "$root/bench/run_pack_bench.sh" "$build"
echo
echo "## 3. Sweep makespan"
SMALL="$small" PROMPTSWEEP="$build/promptsweep" bash "$root/bench/run_sweep_makespan.sh" "" 2 4
