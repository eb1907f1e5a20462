#!/usr/bin/env bash
# The SLURM scripts in deploy/slurm/ on a real single-node SLURM
# (deploy/slurm/local_cluster.sh: slurmctld + slurmd + munged on this machine):
#   1. sbatch sweep.sbatch configs/quickstart.yaml completes, every job once;
#   2. the time-limit path: USR2 to the batch shell (what --signal=B:USR2@120
#      sends) mid-sweep -> workers hand back checkpoints, the job requeues
#      itself, resumes, and ends with every job once, the interrupted one
#      resumed from its checkpoint (its adapter equals an uninterrupted run's);
#   3. workers.sbatch: a job array of workers joins a coordinator and finishes a sweep;
#   4. mpi-worker.sbatch runs a 2-rank worker group via srun --mpi=pmix.
# Exit 77 (skipped) when SLURM is not installed (.ci/run installs it).
# Usage: slurm_test.sh REPO_ROOT TEST_DATA_DIR   (PROMPTSWEEP = the binary)
set -uo pipefail
root=$(cd "$1" && pwd)
data=$(cd "$2" && pwd)
bin=${PROMPTSWEEP:?set PROMPTSWEEP to the promptsweep binary}
cluster=$root/deploy/slurm/local_cluster.sh
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  echo "SLURM not installed (bash deploy/slurm/local_cluster.sh install); skipping"
  exit 77
fi
source "$(dirname "${BASH_SOURCE[0]}")/expect.sh"
# Its own short path (unix sockets live there), readable by the munge user.
export PROMPTSWEEP_SLURM_DIR=$(mktemp -d /tmp/ps-slurm.XXXXXX) PROMPTSWEEP_SLURM_PORT=${PROMPTSWEEP_SLURM_PORT:-6917} PROMPTSWEEP_SLURM_FRESH=1
chmod 755 "$PROMPTSWEEP_SLURM_DIR"
pids=()
cleanup() {
  bash "$cluster" stop >/dev/null 2>&1
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$tmp" "$PROMPTSWEEP_SLURM_DIR"
}
trap cleanup EXIT
job_field() { scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p"; }
job_done() { case "$(job_field "$1" JobState)" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) return 0;; esac; return 1; }
show_logs() {  # on failure, what SLURM and the job said
  for f in "$@" "$PROMPTSWEEP_SLURM_DIR"/log/slurmctld.log; do [ -f "$f" ] && { echo "== $f"; tail -n 20 "$f"; }; done
}

section cluster
check cluster-start bash "$cluster" start
eval "$(bash "$cluster" env)"
export PROMPTSWEEP=$bin
cd "$tmp"

section sweep.sbatch
# 1. The whole quickstart sweep in one allocation.
jid=$(sbatch --parsable --output="$tmp/quick-%j.out" --export=ALL,OUT="$tmp/quick" \
  "$root/deploy/slurm/sweep.sbatch" "$root/configs/quickstart.yaml")
check sweep-submitted test -n "$jid"
check sweep-finishes wait_until 900 job_done "$jid"
check sweep-completed test "$(job_field "$jid" JobState)" = COMPLETED || show_logs "$tmp/quick-$jid.out"
check sweep-rows test "$(rows "$tmp/quick/results.csv")" -eq 8
check sweep-unique unique_ids "$tmp/quick/results.csv"
check sweep-succeeded test "$(column "$tmp/quick/results.csv" status | sort -u)" = succeeded
check sweep-log grep -q "sweep quickstart finished (wait exit 0)" "$tmp/quick-$jid.out"

section requeue
# 2. USR2 to the batch shell mid-job, as SLURM sends it before the time limit.
cat >"$tmp/long.yaml" <<EOF
name: long
metric: {name: accuracy}
seeds: [1]
model: {path: $data/models/tiny-llama}
task: {file: $data/tasks/toy_animals.yaml, max_length: 24}
train: {max_steps: 4000, batch_size: 4, eval_every: 0, optimizer: adamw, num_virtual_tokens: 4, log_every: 5}
parameters:
  learning_rate: {values: [0.1, 0.2]}
EOF
jid=$(sbatch --parsable --output="$tmp/long-%j.out" --export=ALL,OUT="$tmp/long" \
  "$root/deploy/slurm/sweep.sbatch" "$tmp/long.yaml")
check long-running wait_until 120 grep -q "attempt 1 (train)" "$tmp/long/workers.log"
sleep 3
scancel --batch --signal=USR2 "$jid"
check long-preempted wait_until 60 grep -q "preempted at step" "$tmp/long/workers.log"
check long-requeued wait_until 120 grep -q "restart 1" "$tmp/long-$jid.out"
check long-finishes wait_until 600 job_done "$jid"
check long-completed test "$(job_field "$jid" JobState)" = COMPLETED || show_logs "$tmp/long-$jid.out" "$tmp/long/workers.log"
check long-rows test "$(rows "$tmp/long/results.csv")" -eq 2
check long-unique unique_ids "$tmp/long/results.csv"
check long-resumed grep -q "resuming" "$tmp/long/workers.log"
resumed=$(grep -o "job [0-9a-f]\{16\} attempt [0-9]* (train, resuming)" "$tmp/long/workers.log" | head -n 1 | cut -d' ' -f2)
"$bin" plan "$tmp/long.yaml" --write-jobs "$tmp/long-jobs" >/dev/null
if [ -n "$resumed" ]; then
  "$bin" train --config "$tmp/long-jobs/$resumed/job.yaml" --threads 1 -q >/dev/null 2>&1
  check long-same-prompt cmp "$tmp/long-jobs/$resumed/adapter_model.safetensors" \
    "$tmp/long/adapters/$resumed/adapter_model.safetensors"
else
  check long-resumed-job false
fi

section workers.sbatch
# 3. A job array of workers joining a coordinator outside SLURM.
export PROMPTSWEEP_TOKEN=slurm-test-token
"$bin" coordinator --listen 127.0.0.1:0 --state-dir "$tmp/mpi-state" --port-file "$tmp/mpi.port" \
  >"$tmp/mpi-coordinator.log" 2>&1 &
pids+=($!)
wait_until 30 test -s "$tmp/mpi.port"
export PROMPTSWEEP_COORDINATOR=127.0.0.1:$(cat "$tmp/mpi.port")
sed -e 's/^name: long/name: array/' -e 's/max_steps: 4000/max_steps: 50/' "$tmp/long.yaml" >"$tmp/array.yaml"
"$bin" submit "$tmp/array.yaml" >/dev/null
jid=$(sbatch --parsable --array=0-1 --output="$tmp/array-%A_%a.out" --export=ALL,IDLE_EXIT=5 \
  "$root/deploy/slurm/workers.sbatch")
expect array-sweep 0 "2/2 done \(2 ok\)" -- "$bin" wait array --timeout 300 --interval 1
check array-tasks-end wait_until 120 bash -c "[ -z \"\$(squeue -h -j $jid)\" ]"
check array-two-workers test "$(cat "$tmp"/array-*.out | grep -c "registered with")" -eq 2

section mpi-worker.sbatch
# 4. A 2-rank worker group through srun --mpi=pmix, against the same coordinator.
sed -e 's/^name: long/name: mpi/' -e 's/max_steps: 4000/max_steps: 50/' "$tmp/long.yaml" >"$tmp/mpi.yaml"
"$bin" submit "$tmp/mpi.yaml" >/dev/null
jid=$(sbatch --parsable --output="$tmp/mpi-%j.out" --export=ALL,IDLE_EXIT=5 "$root/deploy/slurm/mpi-worker.sbatch")
expect mpi-sweep 0 "2/2 done \(2 ok\)" -- "$bin" wait mpi --timeout 300 --interval 1
check mpi-job-ends wait_until 120 job_done "$jid"
check mpi-two-ranks grep -q "registered with .* (2 ranks" "$tmp/mpi-$jid.out" || show_logs "$tmp/mpi-$jid.out"
check mpi-rows test "$(rows "$tmp/mpi-state/sweeps/mpi/results.csv")" -eq 2

section done
finish
