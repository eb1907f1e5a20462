#!/usr/bin/env bash
# Early termination as users run it, with real processes on 127.0.0.1:
# `plan` shows the rungs in steps; `run` of an ASHA sweep with clearly bad
# learning rates beside a good one stops the bad ones at the first rung (status stopped,
# stopped_at_step, the reason, an adapter and a test figure) and runs the good
# one to the end, exiting 0; then (hyperband) a coordinator killed with kill -9 right
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

# sweep NAME "LR, LR" EARLY_TERMINATE: learning rates on the toy task, 600 steps,
# a dev evaluation every 20 (30 evaluations).
sweep() {
  cat >"$tmp/$1.yaml" <<EOF
name: $1
metric: {name: accuracy}
seeds: [1]
model: {path: $data/models/tiny-llama}
task: {file: $data/tasks/toy_animals.yaml, max_length: 24, test: $data/tasks/toy_animals_test.jsonl}
train: {max_steps: 600, batch_size: 4, eval_every: 20, optimizer: adamw, num_virtual_tokens: 4, log_every: 5}
parameters:
  learning_rate: {values: [$2]}
early_terminate: $3
EOF
}
# field CSV LR COLUMN: a column of the row whose learning_rate is LR.
field() { python3 -c "
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r['learning_rate'] == sys.argv[2]]
assert len(rows) == 1, rows
print(rows[0][sys.argv[3]])" "$@"; }

section plan
sweep et "0.1, 1e-05, 3.0" "{type: asha, grace_period: 2, reduction_factor: 2, max_t: 30}"
expect plan 0 "early termination: asha \(reduction_factor 2, max_t 30\): rungs at evaluations 2, 4, 8, 16 = steps 40, 80, 160, 320" -- \
  "$bin" plan "$tmp/et.yaml"

section run
# One worker: the jobs run in file order. ASHA (reduction_factor 2) stops a job
# below the median of the earlier jobs' values at the rung: at rung 1 (step 40)
# 1e-05 (dev accuracy 0.5, chance) is below 0.1's 0.75, and 3.0 (0.58, as
# unstable as it is fast) below the median 0.625 of 0.75 and 0.5. Both decisions
# need only the rung-1 values, so how soon a stop arrives changes nothing.
expect run 0 "3/3 done \(1 ok, 2 stopped early saving [0-9]+ steps" -- "$bin" run "$tmp/et.yaml" --workers 1 --threads 1 -o "$tmp/et"
csv=$tmp/et/results.csv
check run-rows test "$(rows "$csv")" -eq 3
check run-header grep -q "^job_id,learning_rate,seed,status,attempts,.*,steps,stopped_at_step,tokens_per_second," "$csv"
for lr in 0.1; do
  check "good-$lr-succeeded" test "$(field "$csv" "$lr" status)" = succeeded
  check "good-$lr-all-steps" test "$(field "$csv" "$lr" steps)" = 600
  check "good-$lr-not-stopped" test -z "$(field "$csv" "$lr" stopped_at_step)"
done
for lr in 1e-05 3.0; do
  check "bad-$lr-stopped" test "$(field "$csv" "$lr" status)" = stopped
  at=$(field "$csv" "$lr" stopped_at_step)
  check "bad-$lr-early" test "${at:-600}" -ge 40 -a "${at:-600}" -lt 600
  check "bad-$lr-reason" grep -Eq "rung 1 \(40 steps\): dev accuracy [0-9.]+ below the top 1/2 cutoff [0-9.]+ of [12] earlier jobs?; stopped at step $at" \
    <<<"$(field "$csv" "$lr" message)"
  check "bad-$lr-test" test -n "$(field "$csv" "$lr" test_accuracy)"
  check "bad-$lr-adapter" test -s "$tmp/et/$(field "$csv" "$lr" adapter)/adapter_model.safetensors"
done
check run-unique unique_ids "$csv"
check run-metrics-unique test "$(cut -d, -f1-4 "$tmp/et/metrics.csv" | sort | uniq -d | wc -l)" -eq 0
expect run-again 0 "0 new, 3 from an earlier run \(3 finished\)" -- \
  "$bin" run "$tmp/et.yaml" --workers 1 --threads 1 -o "$tmp/et" -q

section kill-coordinator
# kill -9 the coordinator as soon as a stop decision is committed (the worker
# hears it with a heartbeat ~0.2 s later, so the kill usually lands before);
# the restarted coordinator delivers it. The job ends stopped, once.
export PROMPTSWEEP_TOKEN=tok
state=$tmp/state
start_coordinator 20
# A good job of 400 steps, then a bad one of 20,000 (a minute if nothing stops it).
sweep crash "{label: good, learning_rate: 0.1, max_steps: 400}, {label: bad, learning_rate: 1e-05, max_steps: 20000}" \
  "{type: hyperband, min_iter: 2, eta: 3}"
sed -i 's/max_steps: 600, //' "$tmp/crash.yaml"
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
start_coordinator 20 "$port"
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
# The holder hears it by heartbeat, or (its lease ran out while the coordinator
# was away) the next lease carries it as stop_at_step.
check crash-heard grep -Eq "stopped by early termination|early termination decided before" "$tmp/worker.log"
echo "    delivered: $(grep -Eo "stopped by early termination|early termination decided before" "$tmp/worker.log" | head -1)"
check crash-metrics-unique test "$(cut -d, -f1-4 "$state/sweeps/crash/metrics.csv" | sort | uniq -d | wc -l)" -eq 0
expect crash-status 0 "stopped early saving [0-9]+ steps" -- "$bin" status crash

section done
finish
