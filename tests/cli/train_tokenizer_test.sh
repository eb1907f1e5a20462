#!/usr/bin/env bash
# `promptsweep train-tokenizer` as a user runs it: training, the written
# tokenizer.json in `promptsweep tokenize`, and one-line errors.
# Usage: train_tokenizer_test.sh TEST_DATA_DIR   (PROMPTSWEEP = the binary)
set -uo pipefail
data=$1
bin=${PROMPTSWEEP:?set PROMPTSWEEP to the promptsweep binary}
source "$(dirname "${BASH_SOURCE[0]}")/expect.sh"

# Any text file is a corpus; the reference JSONL has Brown sentences and hard cases.
corpus=$data/tokenizer/gpt2_reference.jsonl

expect help 0 "BpeTrainer with a ByteLevel pre-tokenizer" -- "$bin" train-tokenizer --help
expect train 0 "^vocab size: +600 \(1 special, 256 byte symbols, 343 merges\)$" -- \
  "$bin" train-tokenizer "$corpus" --vocab-size 600 -o "$tmp/tok.json"
check written test -s "$tmp/tok.json"
expect report 0 "^compression: [0-9.]+ bytes/token on the training text" -- \
  "$bin" train-tokenizer "$corpus" --vocab-size 600 -o "$tmp/tok.json"
expect encode 0 '^\[[0-9,]+\]$' -- "$bin" tokenize --tokenizer "$tmp/tok.json" --text "The jury said it did find."
ids=$("$bin" tokenize --tokenizer "$tmp/tok.json" --text "Hello,  wörld 😀!")
expect round-trip 0 "^Hello,  wörld 😀!$" -- "$bin" tokenize --tokenizer "$tmp/tok.json" --decode --text "$ids"
expect eot-is-0 0 '^\[0\]$' -- "$bin" tokenize --tokenizer "$tmp/tok.json" --text "<|endoftext|>"

# Several files and special tokens: the specials take ids 0, 1, ... in order,
# and a file after --special-token stays a file.
printf 'low lower lowest\n' >"$tmp/a.txt"
printf 'newer wider\r\nnew\n' >"$tmp/b.txt"
expect specials 0 "vocab size: +270 \(2 special, 256 byte symbols, 12 merges\)" -- \
  "$bin" train-tokenizer --special-token "<s>" "$tmp/a.txt" --special-token "<pad>" "$tmp/b.txt" \
  --min-frequency 1 --vocab-size 270 -o "$tmp/two.json"
expect pad-is-1 0 '^\[1\]$' -- "$bin" tokenize --tokenizer "$tmp/two.json" --text "<pad>"
expect min-frequency 0 "note: stopped below --vocab-size 1000" -- \
  "$bin" train-tokenizer "$tmp/a.txt" --min-frequency 5 --vocab-size 1000 -o "$tmp/few.json"

# Errors: one line naming the file or the limit.
expect missing-file 1 "^promptsweep: error: .*nope.txt: cannot open: No such file or directory$" -- \
  "$bin" train-tokenizer "$tmp/a.txt" "$tmp/nope.txt" -o "$tmp/x.json"
expect vocab-too-small 1 "^promptsweep: error: vocab size 100 is too small: the minimum is 257 " -- \
  "$bin" train-tokenizer "$tmp/a.txt" --vocab-size 100 -o "$tmp/x.json"
: >"$tmp/empty.txt"
expect empty 1 "^promptsweep: error: .*empty.txt: no text to train on: the file is empty$" -- \
  "$bin" train-tokenizer "$tmp/empty.txt" -o "$tmp/x.json"
printf 'ok\nbad \xff\n' >"$tmp/bad.txt"
expect bad-utf8 1 "^promptsweep: error: .*bad.txt:2: not valid UTF-8 \(byte 4 of 6\)$" -- \
  "$bin" train-tokenizer "$tmp/bad.txt" -o "$tmp/x.json"
expect no-output 106 "output is required" -- "$bin" train-tokenizer "$tmp/a.txt"
check nothing-written test ! -e "$tmp/x.json"

finish
