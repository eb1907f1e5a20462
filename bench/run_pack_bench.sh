#!/usr/bin/env bash
# Sweep throughput (issue 12), in one run, as markdown tables:
#  1. Training steps: K jobs packed in one TrainPack (one forward/backward per
#     step, per-row prompts) vs the same K jobs one after the other, each alone
#     (PromptTrainer::Run) — bench/pack_bench.cc — on the shipped model
#     (pico-llama-2.6m, data/spam train split, task.yaml's template/verbalizer/
#     max_length), K = 1 2 4 8 16, 1 and 2 threads, float32 and bfloat16; then
#     the SmolLM2-135M shape with random weights (random 128-token rows),
#     K = 1 4, f32 and bf16, 2 threads, fewer steps (it is slow on CPU).
#  2. Multi-adapter eval: N adapters (short `promptsweep train` runs on spam:
#     seeds 0..N-1, lengths 4/8/16/32 × inits RANDOM/SAMPLE_VOCAB/TEXT/TEXT as
#     configs/init-vs-length.yaml) scored by one `promptsweep eval --adapter DIR`
#     against N separate `eval` calls, on data/spam/test.jsonl; the JSON results
#     must agree (accuracy equal, loss within 1e-5). A second set of N adapters,
#     all of length 20, shows the same without per-row prompt padding.
#
# Usage: bench/run_pack_bench.sh [BUILD_DIR]     # ~10.5 min on 2 cores (SMOL_DTYPES=bfloat16: ~9)
# Env: STEPS (timed steps per job, 10), REPS (pack_bench repetitions, 1),
#      KS ("1 2 4 8 16"), THREADS ("1 2"), DTYPES ("float32 bfloat16"),
#      SMOL (1: run the SmolLM2-135M rows; 0: skip), SMOL_STEPS (2), SMOL_KS ("1 4"),
#      SMOL_THREADS ("2"), SMOL_DTYPES ("float32 bfloat16"), SMOL_TIMEOUT (seconds, 300),
#      ADAPTERS (N, 16; the issue's sweep has 48), EVAL_REPS (2), EVAL_THREADS (1),
#      WORK (scratch dir; default a new temp dir).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
bench=$build/bench/pack_bench
bin=$build/promptsweep
work=${WORK:-$(mktemp -d)}
model=$root/models/pico-llama-2.6m
python=/usr/bin/python3
[ -x "$bench" ] || { echo "no $bench; build the pack_bench target first" >&2; exit 1; }
[ -x "$bin" ] || { echo "no $bin; build the promptsweep target first" >&2; exit 1; }
mkdir -p "$work"
echo "BLAS: $(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | sed -n 's/^Value: //p')" >&2
echo "scratch: $work" >&2

repeat_flag() { local flag=$1; shift; for v in "$@"; do printf '%s\n%s\n' "$flag" "$v"; done; }
mapfile -t ks < <(repeat_flag --k ${KS:-1 2 4 8 16})
mapfile -t threads < <(repeat_flag --threads ${THREADS:-1 2})
mapfile -t dtypes < <(repeat_flag --dtype ${DTYPES:-float32 bfloat16})

steps=${STEPS:-10}
echo "### 1. Training steps: K jobs packed vs one after the other"
echo
echo "batch 8 per job, 20 virtual tokens, Adafactor, job j: seed 1 + j, lr 0.3·(0.5 + 0.1 j);"
echo "1 warm-up step per job (sequential) / per pack (packed) untimed, then the timed steps;"
echo "tok/s = real (input + target) tokens of all K jobs / time (same tokens on both sides)."
echo "pico-llama-2.6m: data/spam train split, $steps timed steps, ${REPS:-1} repetition(s) (median)."
echo
start=$(date +%s)
"$bench" --model "$model" --task "$root/data/spam/task.yaml" "${ks[@]}" "${threads[@]}" "${dtypes[@]}" \
  --steps "$steps" --reps "${REPS:-1}"
echo >&2 "shipped model: $(( $(date +%s) - start )) s"

if [ "${SMOL:-1}" = 1 ]; then
  mapfile -t smol_ks < <(repeat_flag --k ${SMOL_KS:-1 4})
  mapfile -t smol_threads < <(repeat_flag --threads ${SMOL_THREADS:-2})
  mapfile -t smol_dtypes < <(repeat_flag --dtype ${SMOL_DTYPES:-float32 bfloat16})
  smol_steps=${SMOL_STEPS:-2}
  echo
  echo "SmolLM2-135M shape (tests/data/configs/smollm2-135m.json), random weights, random rows of 128 real"
  echo "tokens (127 input + 1 target), $smol_steps timed steps, 1 step of prewarm:"
  echo
  start=$(date +%s)
  rc=0
  timeout "${SMOL_TIMEOUT:-300}" "$bench" --config "$root/tests/data/configs/smollm2-135m.json" \
    --tokenizer "$root/tests/data/models/tiny-llama/tokenizer.json" --label "SmolLM2-135M (random)" \
    "${smol_ks[@]}" "${smol_threads[@]}" "${smol_dtypes[@]}" --steps "$smol_steps" --prewarm 1 || rc=$?
  [ "$rc" = 124 ] && echo "(stopped after ${SMOL_TIMEOUT:-300} s: rows missing above were not measured)"
  echo >&2 "SmolLM2-135M: $(( $(date +%s) - start )) s"
fi

# ---- 2. Multi-adapter eval ----
n=${ADAPTERS:-16}
eval_threads=${EVAL_THREADS:-1}
eval_reps=${EVAL_REPS:-2}
data=$root/data/spam/test.jsonl
inits=(RANDOM SAMPLE_VOCAB TEXT TEXT)
texts=("" "" "Is this mail spam or ham?" " money software")
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# make_adapters DIR LENGTH...: N adapters, adapter i of length LENGTH[i mod #], init inits[(i / #) mod 4].
make_adapters() {
  local dir=$1; shift
  local lengths=("$@") m=$#
  rm -rf "$dir"
  mkdir -p "$dir"
  for ((i = 0; i < n; i++)); do
    local k=$(( (i / m) % 4 )) out; out=$dir/$(printf 'a%03d' "$i")
    "$bin" train "$model" --train "$root/data/spam/train.jsonl" --template $'{text}\nThis mail is about' \
      --verbalizer 'spam= money' --verbalizer 'ham= software' --max-length 64 --max-steps 2 --seed "$i" \
      --num-virtual-tokens "${lengths[$((i % m))]}" --init "${inits[$k]}" --init-text "${texts[$k]}" \
      --threads 1 -q --output "$out" >/dev/null
    rm -f "$out/metrics.csv" "$out/result.json"
  done
}

# time_eval DIR PREFIX: EVAL_REPS alternating repetitions of one call (all adapters) and N calls.
time_eval() {
  local dir=$1 prefix=$2 order
  : >"$prefix.times"
  for ((r = 0; r < eval_reps; r++)); do
    echo >&2 "  eval repetition $((r + 1))/$eval_reps"
    if ((r % 2 == 0)); then order="all each"; else order="each all"; fi
    for side in $order; do
      local t0; t0=$(now_ms)
      if [ "$side" = all ]; then
        "$bin" eval "$model" --adapter "$dir" --data "$data" --threads "$eval_threads" >"$prefix.all.jsonl"
      else
        : >"$prefix.each.jsonl"
        for a in "$dir"/a*; do
          "$bin" eval "$model" --adapter "$a" --data "$data" --threads "$eval_threads" | tr -d '\n' >>"$prefix.each.jsonl"
          echo >>"$prefix.each.jsonl"
        done
      fi
      echo "$side $(( $(now_ms) - t0 ))" >>"$prefix.times"
    done
  done
}

summarize() {  # LABEL PREFIX: one table row; exit 1 when the results disagree
  "$python" - "$1" "$2" "$n" <<'EOF'
import json
import statistics
import sys

label, prefix, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
all_rows = [json.loads(l) for l in open(prefix + ".all.jsonl") if l.strip()]
each_rows = [json.loads(l) for l in open(prefix + ".each.jsonl") if l.strip()]
times = {"all": [], "each": []}
for line in open(prefix + ".times"):
    kind, ms = line.split()
    times[kind].append(int(ms) / 1000.0)
assert len(all_rows) == n and len(each_rows) == n, (len(all_rows), len(each_rows), n)
each = {r["adapter"]: r for r in each_rows}
acc_equal = 0
max_loss = 0.0
for r in all_rows:
    e = each[r["adapter"]]
    acc_equal += r["accuracy"] == e["accuracy"] and r["n"] == e["n"]
    max_loss = max(max_loss, abs(r["loss"] - e["loss"]))
t_all, t_each = statistics.median(times["all"]), statistics.median(times["each"])
examples = all_rows[0]["n"]
print(f"| {label} | {n} | {t_all:.2f} | {t_each:.2f} | **{t_each / t_all:.2f}x** | {n * examples / t_all:.0f} / "
      f"{n * examples / t_each:.0f} | {acc_equal}/{n} | {max_loss:.1e} |")
print(f"{label}: all times (s): one call {times['all']}, separate {times['each']}", file=sys.stderr)
sys.exit(0 if acc_equal == n and max_loss <= 1e-5 else 1)
EOF
}

rows=()
agree=1
for variant in mixed uniform; do
  if [ "$variant" = mixed ]; then lengths=(4 8 16 32); label="4/8/16/32 (as init-vs-length.yaml)"
  else lengths=(20); label="all 20"; fi
  echo >&2 "eval, prompt lengths $label: training $n adapters (2 steps each)"
  make_adapters "$work/adapters-$variant" "${lengths[@]}"
  time_eval "$work/adapters-$variant" "$work/eval-$variant"
  row=$(summarize "$label" "$work/eval-$variant") || agree=0
  rows+=("$row")
done

echo
echo "### 2. Multi-adapter eval: one \`eval\` call vs one call per adapter"
echo
echo "$n adapters (2 training steps each; inits RANDOM/SAMPLE_VOCAB/TEXT/TEXT, seeds 0..$((n - 1))) on"
echo "data/spam/test.jsonl ($(wc -l <"$data") examples), \`--threads $eval_threads\`, \`--batch-size 8\`; median of $eval_reps"
echo "alternating repetitions; times include process start, model load and tokenizing."
echo
echo "| prompt lengths | adapters | one call, all adapters (s) | one call per adapter (s, total) | speed-up | adapter-examples/s (one call / separate) | accuracy equal | max loss diff |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
if [ "$agree" = 1 ]; then echo "JSON results agree (accuracy equal, loss within 1e-5)."
else echo "RESULTS DISAGREE (see above)"; exit 1; fi
