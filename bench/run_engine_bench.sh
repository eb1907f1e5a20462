#!/usr/bin/env bash
# Prompt-tuning training step: promptsweep (bench/engine_bench.cc) against the
# PyTorch-eager + PEFT-style baseline (bench/peft_baseline.py), in one run, on
# the same random SmolLM2-135M-shaped weights, batch (8 x 128 real tokens, 20
# virtual tokens) and threads. Prints a table: tokens/s, peak RSS, achieved
# FLOP/s as a fraction of a large torch::mm on the same threads and dtype, and
# the bf16 loss deviation from f32.
#
# Usage: bench/run_engine_bench.sh [BUILD_DIR] [STEPS]
#   BUILD_DIR  holds bench/engine_bench (default: build)
#   STEPS      optimizer steps per run, the first one warm-up (default 4)
# Env: CONFIG (model shape, default tests/data/configs/smollm2-135m.json),
#      THREADS ("1 2"), DTYPES ("float32 bfloat16"), WORK (scratch dir).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
steps=${2:-4}
bench=$build/bench/engine_bench
config=${CONFIG:-$root/tests/data/configs/smollm2-135m.json}
threads_list=${THREADS:-"1 2"}
dtypes=${DTYPES:-"float32 bfloat16"}
work=${WORK:-$(mktemp -d)}
tokenizer=$root/tests/data/models/tiny-llama/tokenizer.json
python=/usr/bin/python3
results=$work/results.jsonl

[ -x "$bench" ] || { echo "no $bench; build the engine_bench target first" >&2; exit 1; }
echo "BLAS: $(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | sed -n 's/^Value: //p')" >&2
echo "preparing random weights for $config in $work/model" >&2
"$bench" prepare --config "$config" --out "$work/model" >&2
: >"$results"
for threads in $threads_list; do
  for dtype in $dtypes; do
    echo "threads $threads, $dtype: mm, promptsweep, pytorch eager" >&2
    export OMP_NUM_THREADS=$threads
    "$bench" mm --threads "$threads" --dtype "$dtype" >>"$results"
    "$bench" step --model "$work/model" --tokenizer "$tokenizer" --threads "$threads" --dtype "$dtype" \
      --steps "$steps" >>"$results"
    "$python" "$root/bench/peft_baseline.py" --model "$work/model" --threads "$threads" --dtype "$dtype" \
      --steps "$steps" >>"$results"
  done
done

"$python" - "$work/model/bench.json" "$results" <<'EOF'
import json
import sys

info = json.load(open(sys.argv[1]))
rows = [json.loads(line) for line in open(sys.argv[2]) if line.strip()]
flops = info["flops_per_step"]
mm = {(r["threads"], r["dtype"]): r["flops_per_second"] for r in rows if r["impl"] == "mm"}
runs = {(r["impl"], r["threads"], r["dtype"]): r for r in rows if r["impl"] != "mm"}
print(f"model: {info['parameters']:,} parameters ({info['block_parameters']:,} in decoder blocks); "
      f"batch {info['batch']} x {info['length']} real tokens + {info['num_virtual_tokens']} virtual")
print(f"useful FLOPs per step: {flops:.3e} (4*P_blocks*B*S + 12*layers*B*S^2*heads*head_dim + 4*V*H*B)")
print()
header = ("threads", "dtype", "impl", "tok/s", "s/step", "peak RSS MB", "GFLOP/s", "% of mm", "speed x", "RSS x")
print("| " + " | ".join(header) + " |")
print("|" + "---|" * len(header))
for (impl, threads, dtype), r in sorted(runs.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0] != "promptsweep")):
    base = runs.get(("pytorch_eager_peft", threads, dtype))
    achieved = flops / r["seconds_per_step"]
    speed = r["tokens_per_second"] / base["tokens_per_second"] if base else float("nan")
    rss = r["peak_rss_mb"] / base["peak_rss_mb"] if base else float("nan")
    print(f"| {threads} | {dtype} | {impl} | {r['tokens_per_second']:.1f} | {r['seconds_per_step']:.2f} | "
          f"{r['peak_rss_mb']:.0f} | {achieved / 1e9:.1f} | {100 * achieved / mm[(threads, dtype)]:.0f}% | "
          f"{speed:.2f} | {rss:.2f} |")
print()
for (threads, dtype), value in sorted(mm.items()):
    print(f"torch::mm {threads} thread(s) {dtype}: {value / 1e9:.1f} GFLOP/s")
print()
for impl in ("promptsweep", "pytorch_eager_peft"):
    for threads in sorted({k[1] for k in runs}):
        f32 = runs.get((impl, threads, "float32"))
        bf16 = runs.get((impl, threads, "bfloat16"))
        if not (f32 and bf16):
            continue
        dev = max(abs(a - b) / abs(a) for a, b in zip(f32["losses"], bf16["losses"]))
        print(f"{impl}, {threads} thread(s): bf16 speed-up {bf16['tokens_per_second'] / f32['tokens_per_second']:.2f}x; "
              f"loss f32 {['%.4f' % x for x in f32['losses']]} bf16 {['%.4f' % x for x in bf16['losses']]}; "
              f"max relative deviation {100 * dev:.2f}%")
for threads in sorted({k[1] for k in runs}):
    a = runs.get(("promptsweep", threads, "float32"))
    b = runs.get(("pytorch_eager_peft", threads, "float32"))
    if a and b:
        print(f"cross-check, {threads} thread(s) f32: step-1 loss promptsweep {a['losses'][0]:.6f} "
              f"vs PyTorch eager {b['losses'][0]:.6f}")
EOF
