#!/usr/bin/env bash
# `promptsweep train`, `eval` and `generate` as a user runs them on the tiny
# Llama: a train -> eval -> generate round trip, job files, resume, signals,
# and one-line errors for bad models, adapters and data.
# Usage: train_cli_test.sh TEST_DATA_DIR   (PROMPTSWEEP = the binary)
set -uo pipefail
data=$1
bin=${PROMPTSWEEP:?set PROMPTSWEEP to the promptsweep binary}
source "$(dirname "${BASH_SOURCE[0]}")/expect.sh"

model=$data/models/tiny-llama
tasks=$data/tasks
task_flags=(--template "{text}. animal:" --verbalizer "dog= dog" --verbalizer "fox= fox")
train_flags=(--threads 1 --optimizer adamw --learning-rate 0.1 --num-virtual-tokens 8 --batch-size 8)

# --help of each command explains it.
expect train-help 0 "^  --learning-rate VALUE +peak learning rate" -- "$bin" train --help
expect eval-help 0 "accuracy by rank classification" -- "$bin" eval --help
expect generate-help 0 "^  --top-p" -- "$bin" generate --help

# Round trip: train -> eval -> generate.
expect train 0 "^succeeded: 40 steps, best dev accuracy .* at step [0-9]+, test accuracy" -- \
  "$bin" train "$model" --train "$tasks/toy_animals_train.jsonl" --dev "$tasks/toy_animals_dev.jsonl" \
  --test "$tasks/toy_animals_test.jsonl" "${task_flags[@]}" "${train_flags[@]}" --max-steps 40 --eval-every 20 \
  --output "$tmp/run"
check adapter-files test -s "$tmp/run/adapter_config.json" -a -s "$tmp/run/adapter_model.safetensors"
check adapter-config grep -q '"peft_type": "PROMPT_TUNING"' "$tmp/run/adapter_config.json"
check adapter-base-model grep -q "\"base_model_name_or_path\": \"$model\"" "$tmp/run/adapter_config.json"
check adapter-tokens grep -q '"num_virtual_tokens": 8' "$tmp/run/adapter_config.json"
check metrics-header test "$(head -1 "$tmp/run/metrics.csv")" = "step,split,metric,value"
check metrics-dev grep -Eq '^40,dev,accuracy,' "$tmp/run/metrics.csv"
check metrics-test grep -Eq '^40,test,loss,' "$tmp/run/metrics.csv"
check result-status grep -q '"status": "succeeded"' "$tmp/run/result.json"
expect eval 0 '"accuracy": [0-9.]+' -- \
  "$bin" eval "$model" --adapter "$tmp/run" --data "$tasks/toy_animals_test.jsonl" "${task_flags[@]}"
expect eval-n 0 '"n": 24' -- \
  "$bin" eval "$model" --adapter "$tmp/run" --data "$tasks/toy_animals_test.jsonl" "${task_flags[@]}"
expect eval-bare-model 0 '"adapter": null' -- \
  "$bin" eval "$model" --data "$tasks/toy_animals_test.jsonl" "${task_flags[@]}"
expect eval-generation 0 '"exact_match": [0-9.]+' -- \
  "$bin" eval "$model" --task generation --data "$tasks/toy_animals_gen_dev.jsonl"
expect generate 0 "." -- "$bin" generate "$model" --adapter "$tmp/run" --text "the lazy dog. animal:" --max-new-tokens 4
greedy1=$("$bin" generate "$model" --adapter "$tmp/run" --text "a quick fox" --max-new-tokens 6 2>&1)
greedy2=$(printf 'a quick fox' | "$bin" generate "$model" --adapter "$tmp/run" --max-new-tokens 6 2>&1)
check generate-stdin-greedy-deterministic test "$greedy1" = "$greedy2"
sample1=$("$bin" generate "$model" --text "the" --temperature 1.0 --top-p 0.9 --seed 5 --max-new-tokens 8 2>&1)
sample2=$("$bin" generate "$model" --text "the" --temperature 1.0 --top-p 0.9 --seed 5 --max-new-tokens 8 2>&1)
check generate-sampling-seeded test "$sample1" = "$sample2"

# The adapter carries its task (promptsweep_task.yaml next to the PEFT files):
# eval needs no task flags; flags still override it.
check adapter-task-file grep -q '^template: "{text}. animal:"' "$tmp/run/promptsweep_task.yaml"
one=$("$bin" eval "$model" --adapter "$tmp/run" --data "$tasks/toy_animals_test.jsonl" 2>&1)
with_flags=$("$bin" eval "$model" --adapter "$tmp/run" --data "$tasks/toy_animals_test.jsonl" "${task_flags[@]}" 2>&1)
check eval-uses-adapter-task test "$one" = "$with_flags"
override=$("$bin" eval "$model" --adapter "$tmp/run" --data "$tasks/toy_animals_test.jsonl" --template "{text} =" 2>&1)
check eval-flag-overrides-task-file test "$override" != "$one" -a -n "$(grep '"accuracy"' <<<"$override")"

# Several adapters in one call: shared batches with per-row prompts, one JSON
# line per adapter, each equal to its own call (within float rounding).
"$bin" train "$model" --train "$tasks/toy_animals_train.jsonl" "${task_flags[@]}" "${train_flags[@]}" \
  --num-virtual-tokens 3 --seed 9 --max-steps 6 --output "$tmp/run2" >/dev/null 2>&1
two=$("$bin" eval "$model" --adapter "$tmp/run" --adapter "$tmp/run2" --data "$tasks/toy_animals_test.jsonl" 2>&1)
check multi-eval-two-lines test "$(grep -c '"accuracy"' <<<"$two")" = 2
single2=$("$bin" eval "$model" --adapter "$tmp/run2" --data "$tasks/toy_animals_test.jsonl" 2>&1)
same_results() {  # multi-adapter JSON lines vs single-adapter objects
  /usr/bin/python3 - "$@" <<'PY'
import json, sys
lines = [json.loads(l) for l in sys.argv[1].splitlines()]
singles = [json.loads(s) for s in sys.argv[2:]]
assert len(lines) == len(singles), (lines, singles)
for got, want in zip(lines, singles):
    assert got["adapter"] == want["adapter"], (got, want)
    assert got["n"] == want["n"] and got["accuracy"] == want["accuracy"], (got, want)
    assert abs(got["loss"] - want["loss"]) < 1e-5, (got, want)
PY
}
check multi-eval-equals-single-calls same_results "$two" "$one" "$single2"
mkdir -p "$tmp/adapters"
cp -r "$tmp/run" "$tmp/adapters/a" && cp -r "$tmp/run2" "$tmp/adapters/b"
dir_eval=$("$bin" eval "$model" --adapter "$tmp/adapters" --data "$tasks/toy_animals_test.jsonl" 2>&1)
check multi-eval-directory-of-adapters test "$(grep -c "\"adapter\":\"$tmp/adapters/[ab]\"" <<<"$dir_eval")" = 2
cp -r "$tmp/run2" "$tmp/other-task"
sed -i 's/^template: .*/template: "{text} is about"/' "$tmp/other-task/promptsweep_task.yaml"
expect multi-eval-different-tasks 1 "^promptsweep: error: adapters .*run and .*other-task were trained for different tasks" -- \
  "$bin" eval "$model" --adapter "$tmp/run" --adapter "$tmp/other-task" --data "$tasks/toy_animals_test.jsonl"
gen_two=$("$bin" generate "$model" --adapter "$tmp/run" --adapter "$tmp/run2" --text "a quick fox" --max-new-tokens 6 2>&1)
gen_two_alone=$("$bin" generate "$model" --adapter "$tmp/run2" --text "a quick fox" --max-new-tokens 6 2>&1)
same_generations() {
  /usr/bin/python3 - "$@" <<'PY'
import json, sys
lines = [json.loads(l) for l in sys.argv[1].splitlines()]
# $(...) drops the single calls' trailing newlines
assert [l["text"].rstrip("\n") for l in lines] == sys.argv[2:], (lines, sys.argv[2:])
PY
}
check multi-generate-equals-single-calls same_generations "$gen_two" "$greedy1" "$gen_two_alone"

# A YAML job file; a flag overrides it; the generation task trains too.
cat >"$tmp/job.yaml" <<EOF
model: $model
train: $tasks/toy_animals_gen_train.jsonl
task: generation
output: $tmp/gen
num_virtual_tokens: 4
learning_rate: 0.05
optimizer: adamw
max_steps: 1000
threads: 1
eval_metric: loss
EOF
expect job-file 0 "^succeeded: 6 steps" -- "$bin" train --config "$tmp/job.yaml" --max-steps 6 -q
check job-file-adapter grep -q '"num_virtual_tokens": 4' "$tmp/gen/adapter_config.json"
cat >"$tmp/verbalizer.yaml" <<EOF
train: $tasks/toy_animals_train.jsonl
template: "{text}. animal:"
verbalizer:
  dog: " dog"
  fox: " fox"
max_steps: 3
EOF
expect job-file-verbalizer-map 0 "^succeeded: 3 steps" -- \
  "$bin" train "$model" --config "$tmp/verbalizer.yaml" --output "$tmp/verb" --threads 1 -q
printf 'train: x.jsonl\nlerning_rate: 0.1\n' >"$tmp/typo.yaml"
expect job-file-unknown-key 1 "^promptsweep: error: .*typo.yaml:2:1: unknown key 'lerning_rate'" -- \
  "$bin" train "$model" --config "$tmp/typo.yaml" --output "$tmp/typo"
printf 'max_steps: [1, 2]\n' >"$tmp/list.yaml"
expect job-file-bad-value 1 "list.yaml:1:1: max_steps: expected a scalar" -- \
  "$bin" train "$model" --config "$tmp/list.yaml" --train x --output "$tmp/list"
printf 'max_steps: {\n' >"$tmp/broken.yaml"
expect job-file-invalid-yaml 1 "broken.yaml:[0-9]+:[0-9]+: invalid YAML" -- \
  "$bin" train "$model" --config "$tmp/broken.yaml" --train x --output "$tmp/broken"

# Resume: 10 steps with checkpoints, then on to 16, gives the adapter of a
# straight 16-step run, byte for byte (no dev set: the adapter is the final prompt).
resume_flags=(--train "$tasks/toy_animals_train.jsonl" "${task_flags[@]}" "${train_flags[@]}" -q)
expect straight 0 "^succeeded: 16 steps" -- "$bin" train "$model" "${resume_flags[@]}" --max-steps 16 --output "$tmp/straight"
expect first-part 0 "^succeeded: 10 steps" -- \
  "$bin" train "$model" "${resume_flags[@]}" --max-steps 10 --checkpoint-every 5 --output "$tmp/part"
expect resumed 0 "^succeeded: 16 steps" -- \
  "$bin" train "$model" "${resume_flags[@]}" --max-steps 16 --resume-from "$tmp/part/checkpoint.safetensors" \
  --output "$tmp/resumed"
check resume-bit-for-bit cmp -s "$tmp/straight/adapter_model.safetensors" "$tmp/resumed/adapter_model.safetensors"
expect resume-other-job 1 "checkpoint.safetensors: was written with num_virtual_tokens = 8 but this job has 5" -- \
  "$bin" train "$model" "${resume_flags[@]}" --num-virtual-tokens 5 --resume-from "$tmp/part/checkpoint.safetensors" \
  --output "$tmp/other"

# SIGTERM stops between steps with exit code 2 and a checkpoint; resuming
# from it to step k + 3 gives the adapter of a straight (k + 3)-step run.
"$bin" train "$model" "${resume_flags[@]}" --max-steps 1000000 --log-every 1 --output "$tmp/term" \
  >"$tmp/term.out" 2>"$tmp/term.err" &
pid=$!
for _ in $(seq 1 200); do grep -q "^step" "$tmp/term.err" 2>/dev/null && break; sleep 0.1; done
kill -TERM "$pid"
wait "$pid"
check sigterm-exit-code test $? -eq 2
check sigterm-message grep -q "cancelled: stopped at step" "$tmp/term.err"
check sigterm-checkpoint test -s "$tmp/term/checkpoint.safetensors"
steps=$(grep -Eo '"steps": [0-9]+' "$tmp/term/result.json" | grep -Eo '[0-9]+')
target=$((${steps:-0} + 3))
expect sigterm-resume 0 "^succeeded: $target steps" -- \
  "$bin" train "$model" "${resume_flags[@]}" --max-steps "$target" --resume-from "$tmp/term/checkpoint.safetensors" \
  --output "$tmp/term-resumed"
expect sigterm-straight 0 "^succeeded: $target steps" -- \
  "$bin" train "$model" "${resume_flags[@]}" --max-steps "$target" --output "$tmp/term-straight"
check sigterm-resume-bit-for-bit cmp -s "$tmp/term-straight/adapter_model.safetensors" \
  "$tmp/term-resumed/adapter_model.safetensors"

# Divergence is a status, not a crash.
expect diverged 2 "^promptsweep: diverged: .*learning_rate" -- \
  "$bin" train "$model" "${resume_flags[@]}" --learning-rate 1e30 --max-steps 20 --output "$tmp/diverged"
check diverged-result grep -q '"status": "diverged"' "$tmp/diverged/result.json"

# Bad inputs: one clear line, exit 1.
expect bad-model-dir 1 "^promptsweep: error: .*nope: not a model directory" -- \
  "$bin" train "$tmp/nope" --train "$tasks/toy_animals_train.jsonl" "${task_flags[@]}" --output "$tmp/x"
mkdir -p "$tmp/empty-model"
expect model-without-config 1 "^promptsweep: error: .*empty-model" -- \
  "$bin" eval "$tmp/empty-model" --data "$tasks/toy_animals_test.jsonl" "${task_flags[@]}"
printf '{"text": "a dog", "label": "dog"}\n{"text": "a fox" "label": "fox"}\n' >"$tmp/bad.jsonl"
expect bad-data-line 1 "^promptsweep: error: .*bad.jsonl:2" -- \
  "$bin" train "$model" --train "$tmp/bad.jsonl" "${task_flags[@]}" --output "$tmp/x"
printf '{"text": "a dog", "label": "cat"}\n' >"$tmp/cat.jsonl"
expect unknown-label 1 "^promptsweep: error: .*cat.jsonl:1: label \"cat\" is not in the verbalizer" -- \
  "$bin" eval "$model" --data "$tmp/cat.jsonl" "${task_flags[@]}"
expect no-verbalizer 1 "^promptsweep: error: a classification task needs a verbalizer" -- \
  "$bin" eval "$model" --data "$tasks/toy_animals_test.jsonl"
expect bad-verbalizer 1 "^promptsweep: error: --verbalizer: expected label=words, got 'dog'" -- \
  "$bin" eval "$model" --data "$tasks/toy_animals_test.jsonl" --verbalizer dog
expect bad-number 1 "^promptsweep: error: --learning-rate: learning_rate: expected a finite number, got 'fast'" -- \
  "$bin" train "$model" --train "$tasks/toy_animals_train.jsonl" --output "$tmp/x" --learning-rate fast
expect bad-setting 1 "^promptsweep: error: invalid trainer setting: batch_size must be >= 1, got 0" -- \
  "$bin" train "$model" --train "$tasks/toy_animals_train.jsonl" --output "$tmp/x" --batch-size 0
expect no-train 1 "^promptsweep: error: no training data" -- "$bin" train "$model" --output "$tmp/x"
expect missing-data 1 "^promptsweep: error: .*missing.jsonl: cannot open" -- \
  "$bin" eval "$model" --data "$tmp/missing.jsonl" "${task_flags[@]}"
expect bad-device 1 "^promptsweep: error: unsupported device 'tpu'" -- \
  "$bin" generate "$model" --text hi --device tpu
expect not-an-adapter 1 "^promptsweep: error: .*not a directory|no adapter_config.json" -- \
  "$bin" generate "$model" --adapter "$tmp/nope" --text hi

# An adapter whose prompt is [1, 16] while the model's hidden size is 32.
mkdir -p "$tmp/narrow"
sed -e 's/"token_dim": 32/"token_dim": 16/' -e 's/"num_virtual_tokens": 8/"num_virtual_tokens": 1/' \
  "$tmp/run/adapter_config.json" >"$tmp/narrow/adapter_config.json"
/usr/bin/python3 - "$tmp/narrow/adapter_model.safetensors" <<'EOF'
import json, struct, sys
header = json.dumps({"__metadata__": {"format": "pt"},
                     "prompt_embeddings": {"dtype": "F32", "shape": [1, 16], "data_offsets": [0, 64]}},
                    separators=(",", ":")).encode()
header += b" " * (-len(header) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(header)) + header + bytes(64))
EOF
expect adapter-shape-mismatch 1 "^promptsweep: error: .*narrow.*16.*32|^promptsweep: error: .*narrow.*32.*16" -- \
  "$bin" generate "$model" --adapter "$tmp/narrow" --text hi
expect adapter-shape-mismatch-eval 1 "^promptsweep: error: .*narrow" -- \
  "$bin" eval "$model" --adapter "$tmp/narrow" --data "$tasks/toy_animals_test.jsonl" "${task_flags[@]}"

finish
