#!/usr/bin/env bash
# Early termination as users run it, with real processes on 127.0.0.1:
# `plan` shows the rungs in steps; `run` of a sweep with clearly bad learning
# rates beside good ones stops the bad ones at the first rung (status stopped,
# stopped_at_step, the reason, an adapter and a test figure) and runs the good
# ones to the end, exiting 0; then a coordinator killed with kill -9 right
# after it committed a stop decision (before or as it is delivered): the
# restarted coordinator keeps the decision, the job ends stopped with the
# same reason, once. Every wait has a bound.
# Usage: early_termination_cli_test.sh TEST_DATA_DIR   (PROMPTSWEEP = the binary)
set -uo pipefail
data=$(cd "$1" && pwd)
bin=${PROMPTSWEEP:?set PROMPTSWEEP to the promptsweep binary}
source "$(dirname "${BASH_SOURCE[0]}")/expect.sh"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT

# sweep NAME "LR, LR": learning rates on the toy task, 400 steps, a dev
# evaluation every 20, hyperband from the second evaluation (rungs at steps 40, 120, 360).
sweep() {
  cat >"$tmp/$1.yaml" <<EOF
name: $1
metric: {name: accuracy}
seeds: [1]
model: {path: $data/models/tiny-llama}
task: {file: $data/tasks/toy_animals.yaml, max_length: 24, test: $data/tasks/toy_animals_test.jsonl}
train: {max_steps: 400, batch_size: 4, eval_every: 20, optimizer: adamw, num_virtual_tokens: 4, log_every: 5}
parameters:
  learning_rate: {values: [$2]}
early_terminate: {type: hyperband, min_iter: 2, eta: 3}
EOF
}
# field CSV LR COLUMN: a column of the row whose learning_rate is LR.
field() { python3 -c "
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r['learning_rate'] == sys.argv[2]]
assert len(rows) == 1, rows
print(rows[0][sys.argv[3]])" "$@"; }

section plan
sweep et "0.1, 1e-05, 0.05, 1e-06"
expect plan 0 "early termination: hyperband \(eta 3, strict\): rungs at evaluations 2, 6, 18 = steps 40, 120, 360" -- \
  "$bin" plan "$tmp/et.yaml"

section run
# One worker: the jobs run in file order. Hyperband's rule (W&B's) keeps a job
# at least as good as the one at index floor(n/3) of the n jobs at the rung:
# 1e-05 meets 0.1 alone (n = 2: it must be the best), 0.05 is second of 3 and
# goes on, 1e-06 is below the second of 4.
expect run 0 "2 stopped early" -- "$bin" run "$tmp/et.yaml" --workers 1 --threads 1 -o "$tmp/et"
csv=$tmp/et/results.csv
check run-rows test "$(rows "$csv")" -eq 4
check run-header grep -q "^job_id,learning_rate,seed,status,attempts,.*,steps,stopped_at_step,tokens_per_second," "$csv"
for lr in 0.1 0.05; do
  check "good-$lr-succeeded" test "$(field "$csv" "$lr" status)" = succeeded
  check "good-$lr-all-steps" test "$(field "$csv" "$lr" steps)" = 400
  check "good-$lr-not-stopped" test -z "$(field "$csv" "$lr" stopped_at_step)"
done
for lr in 1e-05 1e-06; do
  check "bad-$lr-stopped" test "$(field "$csv" "$lr" status)" = stopped
  at=$(field "$csv" "$lr" stopped_at_step)
  check "bad-$lr-early" test "${at:-400}" -ge 40 -a "${at:-400}" -lt 400
  check "bad-$lr-reason" grep -Eq "rung 1 \(40 steps\): dev accuracy [0-9.]+ not in top 1/3 of [0-9]+ \(cutoff [0-9.]+\); stopped at step $at" \
    <<<"$(field "$csv" "$lr" message)"
  check "bad-$lr-test" test -n "$(field "$csv" "$lr" test_accuracy)"
  check "bad-$lr-adapter" test -s "$tmp/et/$(field "$csv" "$lr" adapter)/adapter_model.safetensors"
done
check run-unique unique_ids "$csv"
check run-metrics-unique test "$(cut -d, -f1-4 "$tmp/et/metrics.csv" | sort | uniq -d | wc -l)" -eq 0
expect run-again 0 "0 new, 4 from an earlier run \(4 finished\)" -- \
  "$bin" run "$tmp/et.yaml" --workers 1 --threads 1 -o "$tmp/et" -q

section kill-coordinator
# kill -9 the coordinator as soon as a stop decision is committed (the worker
# hears it with a heartbeat ~0.2 s later, so the kill usually lands before);
# the restarted coordinator delivers it. The job ends stopped, once.
export PROMPTSWEEP_TOKEN=tok
state=$tmp/state
start_coordinator() {  # [PORT]
  rm -f "$tmp/port"
  "$bin" coordinator --listen "127.0.0.1:${1:-0}" --state-dir "$state" --lease-timeout 6 --port-file "$tmp/port" \
    >>"$tmp/coordinator.log" 2>&1 &
  coord=$!
  pids+=("$coord")
  wait_until 20 test -s "$tmp/port" || echo "coordinator did not start: $(cat "$tmp/coordinator.log")"
  port=$(cat "$tmp/port")
  export PROMPTSWEEP_COORDINATOR=127.0.0.1:$port
}
start_coordinator
# A good job of 400 steps, then a bad one of 20,000 (a minute if nothing stops it).
sweep crash "{label: good, learning_rate: 0.1, max_steps: 400}, {label: bad, learning_rate: 1e-05, max_steps: 20000}"
sed -i 's/max_steps: 400, //' "$tmp/crash.yaml"
expect submit 0 "2 new" -- "$bin" submit "$tmp/crash.yaml"
"$bin" worker --threads 1 >"$tmp/worker.log" 2>&1 &
pids+=("$!")
db=$state/promptsweep.db
decided() { [ "$(sqlite3 "$db" "SELECT count(*) FROM jobs WHERE stop_reason <> ''" 2>/dev/null)" -ge 1 ]; }
deadline=$((SECONDS + 180))
until decided || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.02; done
kill -9 "$coord"
check decision-committed decided
reason=$(sqlite3 "$db" "SELECT stop_reason FROM jobs WHERE stop_reason <> ''")
victim=$(sqlite3 "$db" "SELECT job_id FROM jobs WHERE stop_reason <> ''")
heard_before=$(grep -c "stopped by early termination" "$tmp/worker.log")
echo "    decision: $victim: $reason (worker had heard it before the kill: $heard_before)"
wait "$coord" 2>/dev/null
sleep 1
start_coordinator "$port"
expect crash-wait 0 "2/2 done \(1 ok, 1 stopped early" -- "$bin" wait crash --timeout 240 --interval 0.5
crash_csv=$state/sweeps/crash/results.csv
check crash-rows test "$(rows "$crash_csv")" -eq 2
check crash-unique unique_ids "$crash_csv"
check crash-stopped python3 -c "
import csv, sys
row = [r for r in csv.DictReader(open(sys.argv[1])) if r['job_id'] == sys.argv[2]][0]
assert row['status'] == 'stopped', row
assert row['message'].startswith(sys.argv[3] + '; stopped at step '), (row['message'], sys.argv[3])
assert int(row['stopped_at_step']) < 20000, row" "$crash_csv" "$victim" "$reason"
check crash-heard grep -q "stopped by early termination" "$tmp/worker.log"
check crash-metrics-unique test "$(cut -d, -f1-4 "$state/sweeps/crash/metrics.csv" | sort | uniq -d | wc -l)" -eq 0
expect crash-status 0 "stopped early saving [0-9]+ steps" -- "$bin" status crash

section done
finish
