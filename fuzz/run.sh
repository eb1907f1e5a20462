#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (format readers only, no LibTorch)
# and runs each for a while. Usage:
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
# Crashes are written to build-fuzz/artifacts/<target>/; the corpus grows in
# build-fuzz/corpus/<target>/, seeded from fuzz/seeds/<target>/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors_fuzz model_config_fuzz tokenizer_json_fuzz tokenizer_encode_fuzz)
build=${PROMPTSWEEP_FUZZ_BUILD_DIR:-$root/build-fuzz}
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPROMPTSWEEP_FUZZ=ON -DPROMPTSWEEP_FORMATS_ONLY=ON >/dev/null
cmake --build "$build" --target "${targets[@]}"
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"; artifacts="$build/artifacts/$t/"
  mkdir -p "$corpus" "$artifacts"
  seeds=()
  [ -d "$root/fuzz/seeds/$t" ] && seeds=("$root/fuzz/seeds/$t")
  echo "== $t: ${seconds}s"
  # The encode target reads the GPT-2 tokenizer that deploy/setup.sh builds.
  PROMPTSWEEP_DEPS_DIR="$root/.deps" "$build/fuzz/$t" -max_total_time="$seconds" -max_len=65536 \
    -artifact_prefix="$artifacts" -print_final_stats=1 "$corpus" "${seeds[@]}" 2>&1 |
    grep -E "^(stat::number_of_executed_units|stat::peak_rss|==|SUMMARY|Done)|ERROR" || true
  echo "crash files: $(find "$artifacts" -type f | wc -l)"
done
