#!/usr/bin/env bash
# Sweep orchestration as users run it, with real processes on 127.0.0.1:
# `run` (and its resume), then a coordinator with worker processes through
# kill -9 of a worker, kill -9 of the coordinator, SIGTERM preemption (the
# resumed prompt equals an uninterrupted run's), a diverging job, a job whose
# model vanished, and calls without the token. Every wait has a bound.
# Usage: sweep_cli_test.sh TEST_DATA_DIR   (PROMPTSWEEP = the binary)
set -uo pipefail
data=$(cd "$1" && pwd)
bin=${PROMPTSWEEP:?set PROMPTSWEEP to the promptsweep binary}
source "$(dirname "${BASH_SOURCE[0]}")/expect.sh"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT


has_rows() { [ -f "$1" ] && [ "$(rows "$1")" -ge "$2" ]; }  # CSV N


section run
# --- run: a whole sweep in one command, and running it again -----------------
make_sweep quick 3 "0.1, 0.3"
sed -i 's/^seeds: \[1\]/seeds: [1, 2]/' "$tmp/quick.yaml"
expect run 0 "results: .*/results.csv" -- "$bin" run "$tmp/quick.yaml" --workers 2 --threads 1 -o "$tmp/quick" -q
check run-rows test "$(rows "$tmp/quick/results.csv")" -eq 4
check run-unique unique_ids "$tmp/quick/results.csv"
check run-succeeded test "$(column "$tmp/quick/results.csv" status | sort -u)" = succeeded
check run-adapters test "$(ls "$tmp"/quick/adapters/*/adapter_model.safetensors | wc -l)" -eq 4
check run-metrics grep -q "^[0-9a-f]\{16\},3,train,loss," "$tmp/quick/metrics.csv"
check run-header grep -q "^job_id,learning_rate,seed,status,attempts,final_dev_accuracy,best_dev_accuracy,best_step,test_accuracy,train_loss,steps,tokens_per_second,wall_seconds,worker,adapter" "$tmp/quick/results.csv"
expect run-again 0 "0 new, 4 from an earlier run \(4 finished\)" -- \
  "$bin" run "$tmp/quick.yaml" --workers 2 --threads 1 -o "$tmp/quick" -q
check run-again-rows test "$(rows "$tmp/quick/results.csv")" -eq 4
expect run-invalid 1 "bad.yaml:[0-9]+:[0-9]+: learning_rate: .*must be > 0" -- \
  bash -c "sed 's/0.1, 0.3/-1/' '$tmp/quick.yaml' > '$tmp/bad.yaml' && '$bin' run '$tmp/bad.yaml' -o '$tmp/bad'"
check run-invalid-nothing test ! -e "$tmp/bad"

section coordinator
# --- a coordinator and worker processes ---------------------------------------
export PROMPTSWEEP_TOKEN=tok
state=$tmp/state
start_coordinator() {  # [PORT]
  rm -f "$tmp/port"
  "$bin" coordinator --listen "127.0.0.1:${1:-0}" --state-dir "$state" --lease-timeout 3 --port-file "$tmp/port" \
    >>"$tmp/coordinator.log" 2>&1 &
  coord=$!
  pids+=("$coord")
  wait_until 20 test -s "$tmp/port" || echo "coordinator did not start: $(cat "$tmp/coordinator.log")"
  port=$(cat "$tmp/port")
  export PROMPTSWEEP_COORDINATOR=127.0.0.1:$port
}
start_worker() {  # NAME: starts a worker; its pid in $worker (not $(...): pids must reach cleanup)
  "$bin" worker --threads 1 >"$tmp/$1.log" 2>&1 &
  worker=$!
  pids+=("$worker")
}
running_job() {  # SWEEP: id of a running job with steps done
  "$bin" status "$1" | awk '$2 == "running" && $4 !~ /^0\// {print $1; exit}' | grep .
}
start_coordinator

expect no-token 1 "needs a token" -- env PROMPTSWEEP_TOKEN= "$bin" status
expect wrong-token 1 "wrong token" -- "$bin" status --token nope
expect no-sweeps 0 "no sweeps" -- "$bin" status

section kill-worker
# kill -9 a worker mid-job: the lease runs out, the job is requeued and finishes once.
make_sweep crash 1500 "0.1, 0.2"
expect submit 0 "2 new, 0 already known" -- "$bin" submit "$tmp/crash.yaml"
expect submit-again 0 "0 new, 2 already known" -- "$bin" submit "$tmp/crash.yaml"
start_worker worker-a; a=$worker
check crash-running wait_until 60 running_job crash
victim=$(running_job crash)
kill -9 "$a"
start_worker worker-b; b=$worker
expect crash-wait 0 "2/2 done \(2 ok\)" -- "$bin" wait crash --timeout 240 --interval 0.5
crash_csv=$state/sweeps/crash/results.csv
check crash-rows test "$(rows "$crash_csv")" -eq 2
check crash-unique unique_ids "$crash_csv"
check crash-requeued python3 -c "
import csv, sys
row = [r for r in csv.DictReader(open(sys.argv[1])) if r['job_id'] == sys.argv[2]][0]
assert row['attempts'] == '2' and row['status'] == 'succeeded', row" "$crash_csv" "$victim"

section kill-coordinator
# kill -9 the coordinator mid-sweep and start it again: nothing reruns, no duplicate rows.
make_sweep restart 1000 "0.1, 0.2, 0.3"
"$bin" submit "$tmp/restart.yaml" >/dev/null
restart_csv=$state/sweeps/restart/results.csv
check restart-progress wait_until 120 has_rows "$restart_csv" 1
kill -9 "$coord"
wait "$coord" 2>/dev/null
finished_before=$(column "$restart_csv" job_id)
sleep 1
start_coordinator "$port"
expect restart-wait 0 "3/3 done \(3 ok\)" -- "$bin" wait restart --timeout 240 --interval 0.5
check restart-rows test "$(rows "$restart_csv")" -eq 3
check restart-unique unique_ids "$restart_csv"
check restart-no-rerun python3 -c "
import csv, sys
rows = {r['job_id']: r for r in csv.DictReader(open(sys.argv[1]))}
for job in sys.argv[2].split():
    assert rows[job]['attempts'] == '1', rows[job]" "$restart_csv" "$finished_before"
check restart-metrics-unique test "$(cut -d, -f1-4 "$state/sweeps/restart/metrics.csv" | sort | uniq -d | wc -l)" -eq 0

section preempt
# SIGTERM a worker mid-job: its checkpoint goes to the coordinator, the job
# resumes on the next worker, and the final prompt equals an uninterrupted run's.
kill -TERM "$b"
check idle-worker-b-exits wait_until 30 bash -c "! kill -0 $b"
make_sweep preempt 3000 "0.2"
"$bin" submit "$tmp/preempt.yaml" >/dev/null
start_worker worker-c; c=$worker
check preempt-running wait_until 60 running_job preempt
job=$(running_job preempt)
kill -TERM "$c"
check preempt-worker-exits wait_until 30 bash -c "! kill -0 $c"
check preempt-checkpoint grep -q "preempted at step" "$tmp/worker-c.log"
expect preempt-pending 0 "pending .*\(checkpoint\)" -- "$bin" status preempt
start_worker worker-d; d=$worker
expect preempt-wait 0 "1/1 done \(1 ok\)" -- "$bin" wait preempt --timeout 240 --interval 0.5
check preempt-resumed grep -q "resuming" "$tmp/worker-d.log"
"$bin" plan "$tmp/preempt.yaml" --write-jobs "$tmp/preempt-jobs" >/dev/null
expect preempt-reference 0 "^succeeded: 3000 steps" -- \
  "$bin" train --config "$tmp/preempt-jobs/$job/job.yaml" --threads 1 -q
check preempt-same-prompt cmp "$tmp/preempt-jobs/$job/adapter_model.safetensors" \
  "$state/sweeps/preempt/adapters/$job/adapter_model.safetensors"

section diverge-and-vanished-model
# A diverging job is marked diverged and the sweep goes on; a job whose model
# vanished (after the submit, before a worker got to it) fails with the
# reason, and the worker stays up for the next job.
kill -TERM "$d"
check idle-worker-exits wait_until 30 bash -c "! kill -0 $d"
make_sweep diverge 20 "0.1, 1e30"
cp -r "$data/models/tiny-llama" "$tmp/vanishing-model"
make_sweep gone 5 "0.1" "$tmp/vanishing-model"
"$bin" submit "$tmp/gone.yaml" >/dev/null
mv "$tmp/vanishing-model" "$tmp/moved-model"
"$bin" submit "$tmp/diverge.yaml" >/dev/null
start_worker worker-e; e=$worker
expect gone-wait 2 "1/1 done \(0 ok, 1 failed\)" -- "$bin" wait gone --timeout 120 --interval 0.5
check gone-reason grep -q "vanishing-model.*not a model directory" "$state/sweeps/gone/results.csv"
expect diverge-wait 2 "2/2 done \(1 ok, 1 diverged\)" -- "$bin" wait diverge --timeout 120 --interval 0.5
check worker-alive kill -0 "$e"
expect status-table 0 "diverged" -- "$bin" status diverge
expect cancel-unknown 1 "unknown sweep" -- "$bin" cancel no-such-sweep

kill -TERM "$e" "$coord"
section done
finish
