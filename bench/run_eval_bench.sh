#!/usr/bin/env bash
# Rank-classification evaluation on the shipped model: one pass per example
# (EvaluatePrompt's default) against one row per (example, label), in one run
# of bench/eval_bench.cc, on the spam and genre dev sets, at 1 and 2 threads,
# repetitions alternating between the two paths. Prints a table: median
# seconds, examples/s, the speed-up, and both paths' accuracy and loss.
#
# Usage: bench/run_eval_bench.sh [BUILD_DIR] [REPS]
#   BUILD_DIR  holds bench/eval_bench (default: build)
#   REPS       timed repetitions per path (default 3)
# Env: THREADS ("1 2"), BATCH (eval batch size, 8), TASKS ("spam genre").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
reps=${2:-3}
bench=$build/bench/eval_bench
[ -x "$bench" ] || { echo "no $bench; build the eval_bench target first" >&2; exit 1; }

args=(--model "$root/models/pico-llama-2.6m" --reps "$reps" --batch-size "${BATCH:-8}")
for task in ${TASKS:-spam genre}; do args+=(--task "$root/data/$task/task.yaml"); done
for threads in ${THREADS:-1 2}; do args+=(--threads "$threads"); done
echo "BLAS: $(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | sed -n 's/^Value: //p')" >&2
"$bench" "${args[@]}"
