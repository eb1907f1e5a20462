#!/usr/bin/env bash
# `promptsweep report` as users run it, with real sweeps and a real browser
# (Debian's headless chromium, tests/report/browser_check.sh): the report of a
# `run` with early termination loads with no console error, every section
# draws the plots its data calls for, the results table sorts on a click and
# filters, and a screenshot is written (SCREENSHOT_DIR/report-main.png); so do the reports of a sweep with one
# parameter, of a sweep whose jobs all failed (a coordinator's
# STATE_DIR/sweeps/<name>), of a sweep still pending (read beside the live
# coordinator) and of an empty results.csv. Markdown and JSON faces, and the
# errors a user meets.
# Usage: report_cli_test.sh TEST_DATA_DIR [SCREENSHOT_DIR]   (PROMPTSWEEP = the binary)
set -uo pipefail
data=$(cd "$1" && pwd)
shots=${2:-}
bin=${PROMPTSWEEP:?set PROMPTSWEEP to the promptsweep binary}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
browser_check="$here/../report/browser_check.sh"
source "$here/expect.sh"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT
export PROMPTSWEEP_TOKEN=report-test
state=$tmp/state

# sweep NAME STEPS PARAMETERS_YAML [EXTRA_YAML]: $tmp/NAME.yaml on the tiny Llama and the toy task.
sweep() {
  cat >"$tmp/$1.yaml" <<EOF
name: $1
metric: {name: accuracy}
seeds: [1, 2]
model: {path: ${MODEL:-$data/models/tiny-llama}}
task: {file: $data/tasks/toy_animals.yaml, max_length: 24, test: $data/tasks/toy_animals_test.jsonl}
train: {max_steps: $2, batch_size: 4, eval_every: 10, optimizer: adamw, log_every: 5}
parameters:
$3
${4:-}
EOF
}
# json FILE EXPR: a Python expression over the report data `d`.
json() { python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print($2)" "$1"; }
# browse NAME REPORT [SCREENSHOT]: the browser check; with SCREENSHOT=1 its
# screenshot is kept in SCREENSHOT_DIR (when given).
browse() {
  expect "browser-$1" 0 "sort: ok; filter: ok" -- env REPORT_CHECK_SCREENSHOT="${3:-0}" \
    bash "$browser_check" "$2" "$tmp/browser-$1"
  if [ -n "$shots" ] && [ -f "$tmp/browser-$1/report.png" ]; then
    mkdir -p "$shots" && cp "$tmp/browser-$1/report.png" "$shots/report-$1.png"
  fi
}

section "a sweep with early termination, run to the end"
# 2 learning rates (3.0 is far too high) x 2 prompt lengths x 2 seeds = 8 jobs;
# ASHA stops jobs at the first rung.
sweep main 40 "  learning_rate: {values: [0.1, 3.0]}
  num_virtual_tokens: {values: [2, 4]}" "early_terminate: {type: asha, grace_period: 1, reduction_factor: 2, max_t: 4}"
expect run-main 0 "8/8 done" -- "$bin" run "$tmp/main.yaml" --workers 2 --threads 1 -o "$tmp/main"
expect report-main 0 "report: $tmp/main/report.html \(.* MB, 8 jobs, from the state database" -- \
  "$bin" report "$tmp/main"
browse main "$tmp/main/report.html" 1
check html-self-contained bash -c "! grep -Eiq '<script[^>]+src=|<link[^>]+href=\"?https?:|@import' '$tmp/main/report.html'"
expect report-json 0 "" -- "$bin" report "$tmp/main" --format json -o "$tmp/main.json"
expect json-counts 0 "^8 8$" -- json "$tmp/main.json" \
  "d['counts']['total'], d['counts']['succeeded'] + d['counts']['stopped']"
expect json-timeline 0 "^True True$" -- json "$tmp/main.json" \
  "d['timeline']['exact'], len(d['timeline']['attempts']) >= 8"
expect json-rungs 0 "^True True$" -- json "$tmp/main.json" \
  "d['rungs']['steps'][0] == 10, d['compute']['steps_planned'] == 320"
expect json-curves 0 "^8 2 2$" -- json "$tmp/main.json" \
  "len(d['curves']['jobs']), len(d['parameters']), len(d['heatmaps']) + 1"
expect json-best 0 "eval .*--adapter '$tmp/main/adapters/[0-9a-f]{16}' --data" -- json "$tmp/main.json" "d['best']['eval']"
# The Markdown face: the tables the README shows.
expect report-md 0 "\| learning_rate \| num_virtual_tokens \| n \| test accuracy \(%\)" -- \
  "$bin" report "$tmp/main" --format md
expect report-md-pivot 0 "\| learning_rate \\\\ num_virtual_tokens \| 2 \| 4 \| mean \|" -- \
  "$bin" report "$tmp/main" --format md --pivot learning_rate,num_virtual_tokens
mkdir -p "$tmp/csv-only" && cp "$tmp/main/results.csv" "$tmp/main/metrics.csv" "$tmp/csv-only/"
expect report-from-csv 0 "8 jobs, from the CSVs" -- "$bin" report "$tmp/csv-only"
expect md-from-csv 0 "^- jobs: 8 \(" -- "$bin" report "$tmp/csv-only" --format md

section "one parameter"
sweep one 20 "  learning_rate: {values: [0.1, 0.3]}"
expect run-one 0 "4/4 done" -- "$bin" run "$tmp/one.yaml" --workers 2 --threads 1 -o "$tmp/one"
expect report-one 0 "4 jobs" -- "$bin" report "$tmp/one" -o "$tmp/one.html"
browse one "$tmp/one.html"

section "every job failed, and a sweep still pending, through a coordinator"
mkdir -p "$state"
start_coordinator 30
cp -r "$data/models/tiny-llama" "$tmp/vanishing-model"
MODEL=$tmp/vanishing-model sweep failed 20 "  learning_rate: {values: [0.1]}"
"$bin" submit "$tmp/failed.yaml" >/dev/null
mv "$tmp/vanishing-model" "$tmp/moved-model"
"$bin" worker --threads 1 --max-jobs 2 >"$tmp/worker.log" 2>&1 &
pids+=($!)
expect failed-wait 2 "2/2 done \(0 ok, 2 failed\)" -- "$bin" wait failed --timeout 120 --interval 0.5
expect report-failed 0 "2 jobs, from the state database" -- \
  "$bin" report "$state/sweeps/failed" -o "$tmp/failed.html"
browse failed "$tmp/failed.html"
expect md-failed 0 "jobs: 2 \(2 failed\)" -- "$bin" report "$state/sweeps/failed" --format md
sweep pending 20 "  learning_rate: {values: [0.1, 0.3]}"
"$bin" submit "$tmp/pending.yaml" >/dev/null  # no worker left: the jobs wait
expect report-pending 0 "4 jobs, from the state database" -- \
  "$bin" report "$state/sweeps/pending" -o "$tmp/pending.html"
browse pending "$tmp/pending.html"
expect report-pending-json 0 "" -- "$bin" report "$state/sweeps/pending" --format json -o "$tmp/pending.json"
expect json-pending 0 "^4 True None$" -- json "$tmp/pending.json" "d['counts']['pending'], d['source']['running'], d['best']"

section "an empty results.csv"
mkdir -p "$tmp/empty"
head -1 "$tmp/main/results.csv" >"$tmp/empty/results.csv"
expect report-empty 0 "0 jobs, from the CSVs" -- "$bin" report "$tmp/empty"
browse empty "$tmp/empty/report.html"

section "errors"
expect no-dir 1 "error: $tmp/nope: no such directory" -- "$bin" report "$tmp/nope"
mkdir -p "$tmp/not-a-sweep"
expect not-a-sweep 1 "not a sweep's output directory" -- "$bin" report "$tmp/not-a-sweep"
expect bad-pivot 1 "--pivot: 'lr' is not a swept parameter of sweep main \(swept: learning_rate, num_virtual_tokens\)" -- \
  "$bin" report "$tmp/main" --format md --pivot lr,init
expect no-plotly 1 "$tmp/none.js: no such file \(--plotly\)" -- "$bin" report "$tmp/main" --plotly "$tmp/none.js"
expect bad-format 1 "--format pdf: use html, md or json" -- "$bin" report "$tmp/main" --format pdf
printf 'job_id,seed,status,test_accuracy\n"unterminated,0,ok,1\n' >"$tmp/empty/results.csv"
expect bad-csv 1 "results.csv:2:1: a quoted field is never closed" -- "$bin" report "$tmp/empty" --format md

finish
