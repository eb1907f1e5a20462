#!/usr/bin/env bash
# Runs a sweep on this machine job by job through `promptsweep train`, until
# the orchestrator (`promptsweep run`) lands:
#
#   tools/sweep/run_local.sh SWEEP.yaml OUT_DIR [PARALLEL]
#
# `promptsweep plan` expands the sweep into OUT_DIR/jobs/<job id>/job.yaml;
# every job without a result.json runs (PARALLEL at a time, default 2, one
# LibTorch thread each), so rerunning after an interruption only runs what is
# missing. Then tools/sweep/summarize.py writes OUT_DIR/results.csv (one row per
# job) and prints the mean ± std over seeds of every parameter combination.
# Environment: PROMPTSWEEP (binary, default build/promptsweep).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="${PROMPTSWEEP:-$root/build/promptsweep}"
[[ $# -ge 2 ]] || { sed -n '2,13p' "$0" >&2; exit 2; }
sweep="$1"
out="$2"
parallel="${3:-2}"
mkdir -p "$out"

"$bin" plan "$sweep" --json > "$out/plan.json.tmp" && mv "$out/plan.json.tmp" "$out/plan.json"
"$bin" plan "$sweep" --write-jobs "$out/jobs" > "$out/plan.txt"
total=$(find "$out/jobs" -name job.yaml | wc -l)
todo=()
for job in "$out"/jobs/*/; do
  [[ -f "$job/result.json" ]] || todo+=("${job%/}")
done
echo "$(basename "$sweep"): $total jobs, $((total - ${#todo[@]})) already done, running ${#todo[@]} ($parallel at a time)"
start=$(date +%s)
if [[ ${#todo[@]} -gt 0 ]]; then
  # A failed or diverged job still writes result.json (or its log says why);
  # the sweep goes on either way.
  printf '%s\n' "${todo[@]}" | xargs -P "$parallel" -I{} sh -c \
    '"$0" train --config "$1/job.yaml" --threads 1 -q > "$1/log.txt" 2>&1; echo "  $(basename "$1"): $(tail -n 1 "$1/log.txt")"' "$bin" {}
fi
echo "wall time: $(( $(date +%s) - start )) s"
/usr/bin/python3 "$root/tools/sweep/summarize.py" "$out"
