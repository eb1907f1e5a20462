# Sourced by the CLI test scripts: a scratch dir, counters and two checks.
# The sourcing script ends with `finish`.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
pass=0

# expect NAME WANT_EXIT PATTERN -- CMD...: runs CMD, checks exit code and that
# stdout+stderr match the extended regex PATTERN.
expect() {
  local name=$1 want=$2 pattern=$3
  shift 4
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [ "$rc" -ne "$want" ] || ! grep -Eq -- "$pattern" <<<"$out"; then
    echo "FAIL $name: exit $rc (want $want), output:"
    sed 's/^/    /' <<<"$out" | head -20
    failures=$((failures + 1))
  else
    pass=$((pass + 1))
  fi
}

# check NAME CONDITION...: a plain test.
check() {
  local name=$1
  shift
  if "$@"; then pass=$((pass + 1)); else echo "FAIL $name"; failures=$((failures + 1)); fi
}

# --- helpers for the orchestration tests -----------------------------------
# wait_until SECONDS CMD...: polls CMD every 0.2 s; false after SECONDS.
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.2
  done
}
# column CSV NAME: the values of one column of a results.csv.
column() { python3 -c "
import csv, sys
for row in csv.DictReader(open(sys.argv[1])): print(row[sys.argv[2]])" "$1" "$2"; }
rows() { tail -n +2 "$1" | wc -l; }  # data rows of a CSV
unique_ids() { [ "$(column "$1" job_id | sort | uniq -d | wc -l)" -eq 0 ]; }
section() { echo "[$SECONDS s] $*"; }
# make_sweep NAME STEPS "LR, LR" [MODEL] [BATCH]: $tmp/NAME.yaml, one job per
# learning rate on the tiny test Llama (or MODEL) and the toy task ($data = tests/data).
make_sweep() {
  cat >"$tmp/$1.yaml" <<EOF
name: $1
metric: {name: accuracy}
seeds: [1]
model: {path: ${4:-$data/models/tiny-llama}}
task: {file: $data/tasks/toy_animals.yaml, max_length: 24}
train: {max_steps: $2, batch_size: ${5:-4}, eval_every: 0, optimizer: adamw, num_virtual_tokens: 4, log_every: 5}
parameters:
  learning_rate: {values: [$3]}
EOF
}

# start_coordinator LEASE_TIMEOUT [PORT]: a coordinator on the state dir $state
# (token from PROMPTSWEEP_TOKEN, log appended to $tmp/coordinator.log); its pid
# in $coord and in the caller's pids array, its address in PROMPTSWEEP_COORDINATOR.
start_coordinator() {
  rm -f "$tmp/port"
  "$bin" coordinator --listen "127.0.0.1:${2:-0}" --state-dir "$state" --lease-timeout "$1" --port-file "$tmp/port" \
    >>"$tmp/coordinator.log" 2>&1 &
  coord=$!
  pids+=("$coord")
  wait_until 20 test -s "$tmp/port" || echo "coordinator did not start: $(cat "$tmp/coordinator.log")"
  port=$(cat "$tmp/port")
  export PROMPTSWEEP_COORDINATOR=127.0.0.1:$port
}

# Prints the closing line ctest shows and exits non-zero on any failure.
finish() {
  echo "$pass passed, $failures failed"
  [ "$failures" -eq 0 ]
}
