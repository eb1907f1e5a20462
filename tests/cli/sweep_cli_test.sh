#!/usr/bin/env bash
# Sweep orchestration as users run it, with real processes on 127.0.0.1:
# `run` (and its resume), then a coordinator with worker processes through
# kill -9 of a worker, kill -9 of the coordinator, SIGTERM preemption (the
# resumed prompt equals an uninterrupted run's), a diverging job, a job whose
# model vanished, and calls without the token; then packing (`--pack 3`: jobs
# trained together equal lone runs within 1e-4) through SIGTERM and kill -9 of a
# packed worker. Every wait has a bound.
# Usage: sweep_cli_test.sh TEST_DATA_DIR   (PROMPTSWEEP = the binary)
set -uo pipefail
data=$(cd "$1" && pwd)
bin=${PROMPTSWEEP:?set PROMPTSWEEP to the promptsweep binary}
source "$(dirname "${BASH_SOURCE[0]}")/expect.sh"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT


has_rows() { [ -f "$1" ] && [ "$(rows "$1")" -ge "$2" ]; }  # CSV N
# same_results A_DIR B_DIR: the same jobs in both results.csv, each succeeded with an
# equal best dev metric; train loss and every metrics.csv value within 1e-4, the
# adapter's prompt within 5e-3 (packed training equals lone training up to float
# rounding; AdamW turns a rounding-level difference in a near-zero gradient into an
# lr-sized step of that one element, so the prompt's tolerance depends on the CPU's
# kernels: 1e-4 held on one VM, up to ~1e-3 on an AMD EPYC one).
same_results() { python3 - "$1" "$2" <<'EOF'
import csv, json, struct, sys
a_dir, b_dir = sys.argv[1:3]
def results(d): return {r['job_id']: r for r in csv.DictReader(open(d + '/results.csv'))}
def metrics(d): return {tuple(r[:4]): float(r[4]) for r in list(csv.reader(open(d + '/metrics.csv')))[1:]}
def prompt(d, job):
    b = open(f'{d}/adapters/{job}/adapter_model.safetensors', 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    t = json.loads(b[8:8 + n])['prompt_embeddings']
    assert t['dtype'] == 'F32', t
    lo, hi = t['data_offsets']
    return struct.unpack(f'<{(hi - lo) // 4}f', b[8 + n + lo:8 + n + hi])
a, b = results(a_dir), results(b_dir)
assert a.keys() == b.keys(), (a.keys(), b.keys())
for job in a:
    ra, rb = a[job], b[job]
    assert ra['status'] == rb['status'] == 'succeeded', (ra, rb)
    metric = [k for k in ra if k.startswith('best_dev_')][0]
    assert ra[metric] == rb[metric], (job, metric, ra[metric], rb[metric])
    assert abs(float(ra['train_loss']) - float(rb['train_loss'])) <= 1e-4, (job, ra['train_loss'], rb['train_loss'])
    pa, pb = prompt(a_dir, job), prompt(b_dir, job)
    diff = max(abs(x - y) for x, y in zip(pa, pb)) if len(pa) == len(pb) else float('inf')
    assert diff <= 5e-3, (job, 'prompts differ', diff)
    print(f'    {job}: prompts within {diff:.2e}', file=sys.stderr)
ma, mb = metrics(a_dir), metrics(b_dir)
assert ma.keys() == mb.keys(), ma.keys() ^ mb.keys()
bad = [k for k in ma if abs(ma[k] - mb[k]) > 1e-4]
assert not bad, [(k, ma[k], mb[k]) for k in bad[:5]]
EOF
}
# leased_before_result LOG N: the worker log shows N jobs leased before the first one
# ended (N jobs running at once).
leased_before_result() {
  [ "$(awk '/: (succeeded|failed|diverged|cancelled|preempted)/ {exit} /leased job/ {n++} END {print n + 0}' "$1")" -ge "$2" ]
}
# attempts_are CSV ATTEMPTS JOB...: those jobs succeeded with that many attempts.
attempts_are() { python3 -c "
import csv, sys
rows = {r['job_id']: r for r in csv.DictReader(open(sys.argv[1]))}
for job in sys.argv[3:]:
    assert rows[job]['status'] == 'succeeded' and rows[job]['attempts'] == sys.argv[2], rows[job]" "$@"; }


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
check run-header grep -q "^job_id,learning_rate,seed,status,attempts,final_dev_accuracy,best_dev_accuracy,best_step,test_accuracy,train_loss,steps,stopped_at_step,tokens_per_second,wall_seconds,worker,adapter" "$tmp/quick/results.csv"
expect run-again 0 "0 new, 4 from an earlier run \(4 finished\)" -- \
  "$bin" run "$tmp/quick.yaml" --workers 2 --threads 1 -o "$tmp/quick" -q
check run-again-rows test "$(rows "$tmp/quick/results.csv")" -eq 4
expect run-invalid 1 "bad.yaml:[0-9]+:[0-9]+: learning_rate: .*must be > 0" -- \
  bash -c "sed 's/0.1, 0.3/-1/' '$tmp/quick.yaml' > '$tmp/bad.yaml' && '$bin' run '$tmp/bad.yaml' -o '$tmp/bad'"
check run-invalid-nothing test ! -e "$tmp/bad"

section pack
# --- run --pack 3: one worker trains up to 3 jobs together in lockstep --------
# (4 jobs: 3 start together, the 4th joins when they end); every job once, and
# each job's result equals a --pack 1 run's up to float rounding.
make_sweep packed 1200 "0.05, 0.1, 0.2, 0.3"
sed -i 's/eval_every: 0/eval_every: 300/' "$tmp/packed.yaml"
expect pack-run 0 "results: .*/results.csv" -- "$bin" run "$tmp/packed.yaml" --workers 1 --pack 3 --threads 1 -o "$tmp/packed3" -q
check pack-rows test "$(rows "$tmp/packed3/results.csv")" -eq 4
check pack-unique unique_ids "$tmp/packed3/results.csv"
check pack-succeeded test "$(column "$tmp/packed3/results.csv" status | sort -u)" = succeeded
check pack-slots grep -q "3 slots" "$tmp/packed3/logs/worker-0.log"
check pack-concurrent leased_before_result "$tmp/packed3/logs/worker-0.log" 3
expect pack-lone-run 0 "results: .*/results.csv" -- "$bin" run "$tmp/packed.yaml" --workers 2 --threads 1 -o "$tmp/packed1" -q
check pack-equals-lone same_results "$tmp/packed3" "$tmp/packed1"

section coordinator
# --- a coordinator and worker processes ---------------------------------------
export PROMPTSWEEP_TOKEN=tok
state=$tmp/state
start_worker() {  # NAME [FLAGS...]: starts a worker; its pid in $worker (not $(...): pids must reach cleanup)
  "$bin" worker --threads 1 "${@:2}" >"$tmp/$1.log" 2>&1 &
  worker=$!
  pids+=("$worker")
}
running_job() {  # SWEEP: id of a running job with steps done
  "$bin" status "$1" | awk '$2 == "running" && $4 !~ /^0\// {print $1; exit}' | grep .
}
running_jobs() {  # SWEEP N: ids of the running jobs with steps done; false unless N of them
  "$bin" status "$1" | awk -v n="$2" '$2 == "running" && $4 !~ /^0\// {print $1; k++} END {exit k < n}'
}
start_coordinator 3

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
start_coordinator 3 "$port"
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

kill -TERM "$e"
check idle-worker-e-exits wait_until 30 bash -c "! kill -0 $e"

section pack-preempt
# SIGTERM a `worker --pack 3` while 3 jobs train in one pack: each hands back its
# checkpoint, a second packed worker resumes them (attempt 2) and runs the 4th, and
# every job ends as in the uninterrupted --pack 1 run above (within 1e-4).
"$bin" submit "$tmp/packed.yaml" >/dev/null
start_worker worker-p --pack 3; p=$worker
check pack-preempt-running wait_until 60 running_jobs packed 3
kill -TERM "$p"
check pack-preempt-worker-exits wait_until 30 bash -c "! kill -0 $p"
check pack-preempt-checkpoints test "$(grep -c "preempted at step .*checkpoint handed" "$tmp/worker-p.log")" -eq 3
packed_jobs=$("$bin" status packed | awk '$2 == "pending" && /\(checkpoint\)/ {print $1}')
check pack-preempt-pending test "$(wc -w <<<"$packed_jobs")" -eq 3
start_worker worker-q --pack 3; q=$worker
expect pack-preempt-wait 0 "4/4 done \(4 ok\)" -- "$bin" wait packed --timeout 240 --interval 0.5
packed_csv=$state/sweeps/packed/results.csv
check pack-preempt-resumed test "$(grep -c "leased .*resuming" "$tmp/worker-q.log")" -eq 3
check pack-preempt-rows test "$(rows "$packed_csv")" -eq 4
check pack-preempt-unique unique_ids "$packed_csv"
check pack-preempt-attempts attempts_are "$packed_csv" 2 $packed_jobs
check pack-preempt-equals-lone same_results "$state/sweeps/packed" "$tmp/packed1"
kill -TERM "$q"
check idle-worker-q-exits wait_until 30 bash -c "! kill -0 $q"

section pack-kill-worker
# kill -9 a `worker --pack 3` mid-pack: all 3 leases run out, another worker
# finishes the jobs, each once (attempt 2), no duplicate metrics rows.
make_sweep packkill 1000 "0.15, 0.25, 0.35"
"$bin" submit "$tmp/packkill.yaml" >/dev/null
start_worker worker-r --pack 3; r=$worker
check pack-kill-running wait_until 60 running_jobs packkill 3
kill -9 "$r"
start_worker worker-s --pack 3; s=$worker
expect pack-kill-wait 0 "3/3 done \(3 ok\)" -- "$bin" wait packkill --timeout 240 --interval 0.5
packkill_csv=$state/sweeps/packkill/results.csv
check pack-kill-rows test "$(rows "$packkill_csv")" -eq 3
check pack-kill-unique unique_ids "$packkill_csv"
check pack-kill-attempts attempts_are "$packkill_csv" 2 $(column "$packkill_csv" job_id)
check pack-kill-metrics-unique test "$(cut -d, -f1-4 "$state/sweeps/packkill/metrics.csv" | sort | uniq -d | wc -l)" -eq 0
check pack-kill-metrics-final test "$(grep -c "^[0-9a-f]\{16\},1000,train,loss," "$state/sweeps/packkill/metrics.csv")" -eq 3

kill -TERM "$s" "$coord"
section done
finish
