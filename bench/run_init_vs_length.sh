#!/usr/bin/env bash
# Regenerates the README's "What the sweep shows" tables (`promptsweep report
# --format md`, and each sweep's report.html): configs/init-vs-length.yaml
# (spam) and configs/init-vs-length-genre.yaml (Brown genre) on the shipped model,
# with `promptsweep run` (2 workers), plus the baselines on each test set:
# majority class, the bare model zero-shot, and zero-shot with each TEXT init text
# as a hard prompt (`promptsweep eval --prompt-text`).
#
#   bench/run_init_vs_length.sh [OUT_DIR] [WORKERS]     # ~70 min on 2 cores
#
# Interrupted runs resume (finished jobs are kept). Environment: PROMPTSWEEP.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${PROMPTSWEEP:-$root/build/promptsweep}"
out="${1:-$root/.deps/sweeps}"
parallel="${2:-2}"
model="$root/models/pico-llama-2.6m"
mkdir -p "$out"

baselines() {  # task_dir template max_length verbalizer... -- texts...
  local dir=$1 template=$2 max_length=$3; shift 3
  local flags=(--template "$template" --max-length "$max_length")
  while [[ $1 != -- ]]; do flags+=(--verbalizer "$1"); shift; done; shift
  local accuracy
  accuracy=$("$bin" eval "$model" --data "$dir/test.jsonl" "${flags[@]}" --threads 2 | grep -o '"accuracy": [0-9.e-]*')
  echo "  zero-shot, no prompt: ${accuracy#*: }"
  for text in "$@"; do
    accuracy=$("$bin" eval "$model" --data "$dir/test.jsonl" "${flags[@]}" --threads 2 --prompt-text "$text" |
               grep -o '"accuracy": [0-9.e-]*')
    echo "  zero-shot, text prompt \"$text\": ${accuracy#*: }"
  done
}

for sweep in init-vs-length init-vs-length-genre; do
  "$bin" run "$root/configs/$sweep.yaml" --workers "$parallel" --threads 1 -o "$out/$sweep" || true  # diverged jobs are results too
  # The README's tables: init x length (mean ± std over seeds) and every setting; the page too.
  "$bin" report "$out/$sweep" --format md --pivot init,num_virtual_tokens --top 0 > "$out/$sweep/table.md"
  "$bin" report "$out/$sweep"
done

echo "== baselines (test accuracy)"
baselines "$root/data/spam" $'{text}\nThis mail is about' 64 'spam= money' 'ham= software' -- \
  "Is this mail spam or ham?" " money software" | tee "$out/init-vs-length/baselines.txt"
baselines "$root/data/genre" $'{text}\nTopic:' 64 'news= news' 'religion= church' 'government= government' \
  'romance= love' -- "What is the topic of this passage?" " news church government love" |
  tee "$out/init-vs-length-genre/baselines.txt"
for sweep in init-vs-length init-vs-length-genre; do echo; cat "$out/$sweep/table.md"; done
