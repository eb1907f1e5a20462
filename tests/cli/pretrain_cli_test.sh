#!/usr/bin/env bash
# `promptsweep pretrain` and `perplexity` as a user runs them: a small model
# pretrained from scratch on a text file into a Hugging Face directory that
# the engine commands load, SIGTERM -> checkpoint -> --resume, and one-line
# errors for bad settings.
# Usage: pretrain_cli_test.sh TEST_DATA_DIR   (PROMPTSWEEP = the binary)
set -uo pipefail
data=$1
bin=${PROMPTSWEEP:?set PROMPTSWEEP to the promptsweep binary}
source "$(dirname "${BASH_SOURCE[0]}")/expect.sh"

tokenizer=$data/models/tiny-llama/tokenizer.json
for i in $(seq 1 60); do echo "the quick brown fox jumps over the lazy dog. the dog sleeps."; done > "$tmp/train.txt"
printf 'the lazy dog sleeps.\n\nthe quick fox jumps.\n' > "$tmp/heldout.txt"
small=(--train "$tmp/train.txt" --heldout "$tmp/heldout.txt" --hidden-size 32 --layers 2 --heads 2
       --max-position-embeddings 64 --seq-length 16 --batch-size 4 --learning-rate 1e-2 --warmup-steps 2
       --threads 1)

expect help 0 "^  --resume +continue from the checkpoint" -- "$bin" pretrain --help
expect perplexity-help 0 "window" -- "$bin" perplexity --help

expect pretrain 0 "^done: held-out perplexity [0-9.]+ over [0-9]+ tokens; model in $tmp/model" -- \
  "$bin" pretrain "${small[@]}" --tokenizer "$tokenizer" -o "$tmp/model" --max-steps 40 --eval-every 20 --log-every 20
for f in config.json model.safetensors tokenizer.json generation_config.json; do
  check "hf-file-$f" test -s "$tmp/model/$f"
done
check config-architecture grep -q '"LlamaForCausalLM"' "$tmp/model/config.json"
expect inspect 0 "LlamaForCausalLM" -- "$bin" inspect "$tmp/model"
expect perplexity 0 "^perplexity [0-9.]+ \(loss [0-9.]+ nats/token\) over [0-9]+ tokens" -- \
  "$bin" perplexity "$tmp/model" --text-file "$tmp/heldout.txt" --threads 1
expect generate 0 "." -- "$bin" generate "$tmp/model" --text "the quick" --max-new-tokens 4 --threads 1

# Resume: an interrupted run continues from its checkpoint and ends like an
# uninterrupted one (same weights file bytes).
"$bin" pretrain "${small[@]}" --tokenizer "$tokenizer" -o "$tmp/full" --max-steps 30 --eval-every 0 >/dev/null 2>&1
"$bin" pretrain "${small[@]}" --tokenizer "$tokenizer" -o "$tmp/part" --max-steps 30 --eval-every 0 --log-every 1 \
  > "$tmp/part.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do grep -q "^step [0-9]" "$tmp/part.log" 2>/dev/null && break; sleep 0.05; done
kill -TERM "$pid"
wait "$pid"
check sigterm-exit test $? -eq 0
check sigterm-message grep -q "stopped by signal at step\|^done:" "$tmp/part.log"
expect resume 0 "^done:" -- "$bin" pretrain "${small[@]}" --tokenizer "$tokenizer" -o "$tmp/part" --max-steps 30 \
  --eval-every 0 --resume
check resume-equals-uninterrupted cmp -s "$tmp/full/model.safetensors" "$tmp/part/model.safetensors"
expect resume-other-settings 1 "promptsweep: error: .*trainer_state.json: the checkpoint was made with learning_rate" -- \
  "$bin" pretrain "${small[@]}" --tokenizer "$tokenizer" -o "$tmp/part" --max-steps 30 --learning-rate 5e-3 --resume

# Errors: one line, what and where.
expect no-tokenizer 1 "promptsweep: error: --tokenizer is required" -- \
  "$bin" pretrain --train "$tmp/train.txt" --heldout "$tmp/heldout.txt" -o "$tmp/x"
expect bad-separator 1 "has no token '<nope>'" -- \
  "$bin" pretrain "${small[@]}" --tokenizer "$tokenizer" -o "$tmp/x" --separator-token "<nope>"
expect missing-train 1 "promptsweep: error: $tmp/absent.txt: cannot read" -- \
  "$bin" pretrain "${small[@]}" --train "$tmp/absent.txt" --tokenizer "$tokenizer" -o "$tmp/x"
expect bad-heads 1 "--hidden-size 30 is not a multiple of --heads 4" -- \
  "$bin" pretrain "${small[@]}" --tokenizer "$tokenizer" -o "$tmp/x" --hidden-size 30 --heads 4
expect bad-lr 1 "promptsweep: error: learning_rate must be > 0, got 0 \(--learning-rate\)" -- \
  "$bin" pretrain "${small[@]}" --tokenizer "$tokenizer" -o "$tmp/x" --learning-rate 0
expect bad-kv-heads 1 "promptsweep: error: --heads 2 is not a multiple of --kv-heads 3" -- \
  "$bin" pretrain "${small[@]}" --tokenizer "$tokenizer" -o "$tmp/x" --kv-heads 3
expect bad-position 1 "promptsweep: error: --max-position-embeddings 8 is below --seq-length 16" -- \
  "$bin" pretrain "${small[@]}" --tokenizer "$tokenizer" -o "$tmp/x" --max-position-embeddings 8
printf 'the dog.\n' > "$tmp/short.txt"
expect short-train 1 "promptsweep: error: the training text \(--train\) has [0-9]+ tokens, fewer than one window" -- \
  "$bin" pretrain "${small[@]}" --train "$tmp/short.txt" --tokenizer "$tokenizer" -o "$tmp/x"
mkdir -p "$tmp/notckpt/resume" && echo '{}' > "$tmp/notckpt/resume/trainer_state.json"
expect not-a-checkpoint 1 "promptsweep: error: .*notckpt/resume/trainer_state.json: not a pretraining checkpoint" -- \
  "$bin" pretrain "${small[@]}" --tokenizer "$tokenizer" -o "$tmp/notckpt" --resume
expect bad-window 1 "promptsweep: error: .*--window" -- \
  "$bin" perplexity "$tmp/model" --text-file "$tmp/heldout.txt" --window 0 --threads 1
: > "$tmp/empty.txt"
expect empty-heldout 1 "empty.txt: no text" -- \
  "$bin" pretrain "${small[@]}" --heldout "$tmp/empty.txt" --tokenizer "$tokenizer" -o "$tmp/x"
finish
