#!/usr/bin/env bash
# `promptsweep worker` as an MPI worker group (mpirun -np 2) against a real
# coordinator on 127.0.0.1: the group registers as one worker of 2 ranks and
# finishes a sweep whose adapters match `promptsweep train` of the same jobs
# (up to float summation order); SIGUSR2 to mpirun preempts the group and
# another group resumes the job, ending with the prompt of an uninterrupted
# group run bit for bit; kill -9 of rank 1 mid-job ends the whole
# group (no hang) and the job, re-queued when its lease expires, finishes on
# a plain worker with one results row. Every wait has a bound.
# Usage: mpi_worker_test.sh TEST_DATA_DIR   (PROMPTSWEEP = the binary, MPIRUN = mpirun)
set -uo pipefail
data=$(cd "$1" && pwd)
bin=${PROMPTSWEEP:?set PROMPTSWEEP to the promptsweep binary}
mpirun=${MPIRUN:-mpirun}
source "$(dirname "${BASH_SOURCE[0]}")/expect.sh"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT


running_job() {  # SWEEP: id of a running job with steps done
  "$bin" status "$1" | awk '$2 == "running" && $4 !~ /^0\// {print $1; exit}' | grep .
}
# same_prompt A B: the prompt_embeddings of two adapters agree within 1e-5
# (a group sums in another order than one process, so not bit for bit).
same_prompt() { python3 - "$1" "$2" <<'EOF'
import array, json, struct, sys
def prompt(path):
    blob = open(path, 'rb').read()
    n = struct.unpack('<Q', blob[:8])[0]
    info = json.loads(blob[8:8 + n])['prompt_embeddings']
    begin, end = info['data_offsets']
    values = array.array('f')
    values.frombytes(blob[8 + n + begin:8 + n + end])
    return values
a, b = prompt(sys.argv[1]), prompt(sys.argv[2])
diff = max(abs(x - y) for x, y in zip(a, b))
print('max abs diff', diff)
sys.exit(0 if len(a) == len(b) and diff <= 1e-5 else 1)
EOF
}
# start_group NAME: a worker group of 2 ranks; sets `group` to mpirun's pid
# (not $(...): the cleanup must see it in pids).
start_group() {
  "$mpirun" -np 2 --oversubscribe --bind-to none "$bin" worker --threads 1 >"$tmp/$1.log" 2>&1 &
  group=$!
  pids+=("$group")
}
# rank_pid MPIRUN_PID RANK: the pid of one rank (a child of mpirun on this node).
rank_pid() {
  local p
  for p in $(pgrep -P "$1"); do
    if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then echo "$p"; return 0; fi
  done
  return 1
}

export PROMPTSWEEP_TOKEN=tok
state=$tmp/state
"$bin" coordinator --listen 127.0.0.1:0 --state-dir "$state" --lease-timeout 3 --port-file "$tmp/port" \
  >"$tmp/coordinator.log" 2>&1 &
coord=$!
pids+=("$coord")
wait_until 20 test -s "$tmp/port" || echo "coordinator did not start: $(cat "$tmp/coordinator.log")"
export PROMPTSWEEP_COORDINATOR=127.0.0.1:$(cat "$tmp/port")

section group
# Two jobs on one group of 2 ranks; the adapters equal single-process training.
make_sweep group 30 "0.05, 0.2" "" 5
expect submit 0 "2 new" -- "$bin" submit "$tmp/group.yaml"
start_group group-1
g1=$group
expect group-wait 0 "2/2 done \(2 ok\)" -- "$bin" wait group --timeout 120 --interval 0.5
group_csv=$state/sweeps/group/results.csv
check group-rows test "$(rows "$group_csv")" -eq 2
check group-unique unique_ids "$group_csv"
check group-succeeded test "$(column "$group_csv" status | sort -u)" = succeeded
check group-announced grep -q "a group of 2 MPI ranks, 1 LibTorch thread(s) per rank" "$tmp/group-1.log"
check group-registered-2-ranks python3 -c "
import sqlite3, sys
ranks = [r[0] for r in sqlite3.connect(sys.argv[1]).execute('SELECT ranks FROM workers')]
assert ranks == [2], ranks" "$state/promptsweep.db"
"$bin" plan "$tmp/group.yaml" --write-jobs "$tmp/group-jobs" >/dev/null
for job in $(column "$group_csv" job_id); do
  expect "group-reference-$job" 0 "^succeeded: 30 steps" -- \
    "$bin" train --config "$tmp/group-jobs/$job/job.yaml" --threads 1 -q
  check "group-same-prompt-$job" same_prompt "$tmp/group-jobs/$job/adapter_model.safetensors" \
    "$state/sweeps/group/adapters/$job/adapter_model.safetensors"
done

section preempt
# SIGUSR2 to mpirun (which forwards it to every rank) preempts the group:
# rank 0 hands the checkpoint to the coordinator, every rank exits; a new
# group resumes from it (every rank loads the checkpoint it broadcasts).
make_sweep preempt 1500 "0.1" "" 5
"$bin" submit "$tmp/preempt.yaml" >/dev/null
check preempt-running wait_until 60 running_job preempt
job=$(running_job preempt)
kill -USR2 "$g1"
check preempt-group-exits wait_until 30 bash -c "! kill -0 $g1"
check preempt-checkpoint grep -q "preempted at step" "$tmp/group-1.log"
start_group group-2
g2=$group
expect preempt-wait 0 "1/1 done \(1 ok\)" -- "$bin" wait preempt --timeout 120 --interval 0.5
check preempt-resumed grep -q "resuming" "$tmp/group-2.log"
# The same job (another sweep, so the same id) uninterrupted on a group of 2:
# the resumed prompt is the same bit for bit (same ranks, same summation order).
make_sweep preempt-ref 1500 "0.1" "" 5
"$bin" submit "$tmp/preempt-ref.yaml" >/dev/null
expect preempt-ref-wait 0 "1/1 done \(1 ok\)" -- "$bin" wait preempt-ref --timeout 120 --interval 0.5
check preempt-same-prompt cmp "$state/sweeps/preempt/adapters/$job/adapter_model.safetensors" \
  "$state/sweeps/preempt-ref/adapters/$job/adapter_model.safetensors"

section kill-rank
# kill -9 rank 1 mid-job: mpirun ends rank 0 too (no hang), the lease runs
# out, and a plain worker started afterwards finishes the job: one row.
make_sweep killrank 2500 "0.3" "" 5
"$bin" submit "$tmp/killrank.yaml" >/dev/null
check killrank-running wait_until 60 running_job killrank
victim=$(running_job killrank)
rank0=$(rank_pid "$g2" 0)
rank1=$(rank_pid "$g2" 1)
check killrank-found-ranks test -n "$rank0" -a -n "$rank1"
kill -9 "$rank1"
check killrank-group-ends wait_until 30 bash -c "! kill -0 $g2"
check killrank-rank0-gone wait_until 10 bash -c "! kill -0 $rank0"
check killrank-requeued wait_until 30 bash -c "'$bin' status killrank | grep -q pending"
"$bin" worker --threads 1 >"$tmp/plain.log" 2>&1 &
pids+=($!)
expect killrank-wait 0 "1/1 done \(1 ok\)" -- "$bin" wait killrank --timeout 150 --interval 0.5
killrank_csv=$state/sweeps/killrank/results.csv
check killrank-rows test "$(rows "$killrank_csv")" -eq 1
check killrank-attempts python3 -c "
import csv, sys
row = [r for r in csv.DictReader(open(sys.argv[1])) if r['job_id'] == sys.argv[2]][0]
assert row['attempts'] == '2' and row['status'] == 'succeeded', row" "$killrank_csv" "$victim"

kill -TERM "${pids[@]}" 2>/dev/null
for p in "${pids[@]}"; do wait_until 20 bash -c "! kill -0 $p"; done
section done
finish
