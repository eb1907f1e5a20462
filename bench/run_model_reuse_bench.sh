#!/usr/bin/env bash
# Model held vs reloaded: 24 short prompt-tuning jobs on the shipped model
# (spam; 2 lengths × 2 inits × 6 seeds; dev and test cut to their first 32
# examples so the jobs stay short) on 2 workers that keep the model and the
# tokenized data loaded between jobs (`promptsweep run --workers 2`), against
# the same jobs run one fresh `promptsweep train` process per job, 2 at a time
# (what a SLURM job array does). Both sides: 1 LibTorch thread per process,
# same machine, one after the other; their adapters must be byte-identical.
# Runs at 5 and at 20 training steps per job.
#
#   bench/run_model_reuse_bench.sh [BUILD_DIR] [OUT_DIR]     # ~4 min on 2 cores
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${1:-$root/build}/promptsweep"
out="${2:-$(mktemp -d)}"
mkdir -p "$out"
head -n 32 "$root/data/spam/dev.jsonl" > "$out/dev32.jsonl"
head -n 32 "$root/data/spam/test.jsonl" > "$out/test32.jsonl"

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

for steps in 5 20; do
  sweep="$out/reuse-$steps.yaml"
  cat > "$sweep" <<YAML
name: model-reuse-$steps
metric: {name: accuracy, goal: maximize}
seeds: [0, 1, 2, 3, 4, 5]
model: {path: $root/models/pico-llama-2.6m}
task: {file: $root/data/spam/task.yaml, dev: $out/dev32.jsonl, test: $out/test32.jsonl}
train: {learning_rate: 0.3, max_steps: $steps, batch_size: 8, eval_every: 0}
parameters:
  num_virtual_tokens: {values: [8, 16]}
  init:
    values:
      - {label: sample_vocab, init: SAMPLE_VOCAB}
      - {label: text_labels, init: TEXT, init_text: " money software"}
YAML
  held_dir="$out/held-$steps"
  fresh_dir="$out/fresh-$steps"
  rm -rf "$held_dir" "$fresh_dir"

  start=$(now_ms)
  "$bin" run "$sweep" --workers 2 --threads 1 -o "$held_dir" -q > "$out/held-$steps.txt" 2>&1
  held=$(( $(now_ms) - start ))

  "$bin" plan "$sweep" --write-jobs "$fresh_dir" > /dev/null
  start=$(now_ms)
  ls -d "$fresh_dir"/*/ | xargs -P 2 -I{} sh -c '"$0" train --config "$1/job.yaml" --threads 1 -q > "$1/log.txt" 2>&1' "$bin" {}
  fresh=$(( $(now_ms) - start ))

  same=0
  for dir in "$held_dir"/adapters/*/; do
    id=$(basename "$dir")
    cmp -s "$dir/adapter_model.safetensors" "$fresh_dir/$id/adapter_model.safetensors" && same=$((same + 1))
  done
  python3 - "$steps" "$held" "$fresh" "$same" "$held_dir/results.csv" <<'PY'
import csv, sys
steps, held, fresh, same, results = int(sys.argv[1]), int(sys.argv[2]) / 1e3, int(sys.argv[3]) / 1e3, sys.argv[4], sys.argv[5]
rows = list(csv.DictReader(open(results)))
train = sum(float(r["wall_seconds"]) for r in rows)
print(f"{steps} steps/job, {len(rows)} jobs: held {held:.1f} s, fresh process per job {fresh:.1f} s, "
      f"speed-up {fresh / held:.2f}x; training+eval inside the jobs {train:.1f} s of worker time; "
      f"adapters identical: {same}/{len(rows)}")
PY
done
