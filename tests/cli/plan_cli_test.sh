#!/usr/bin/env bash
# `promptsweep plan` as a user runs it: the table and total, --json, stable
# ids, --write-jobs files that `promptsweep train --config` runs as they are,
# and one-line errors with file:line:col for a bad sweep (nothing written).
# Usage: plan_cli_test.sh TEST_DATA_DIR   (PROMPTSWEEP = the binary)
set -uo pipefail
data=$(cd "$1" && pwd)
bin=${PROMPTSWEEP:?set PROMPTSWEEP to the promptsweep binary}
source "$(dirname "${BASH_SOURCE[0]}")/expect.sh"

sweep=$data/sweeps/toy_grid.yaml

expect plan-help 0 "Sweep YAML reference" -- "$bin" plan --help
expect plan-table 0 "^job +num_virtual_tokens +init +seed" -- "$bin" plan "$sweep"
expect plan-row 0 "^[0-9a-f]{16}  4 +text +1$" -- "$bin" plan "$sweep"
expect plan-total 0 "^8 jobs: 2 num_virtual_tokens × 2 init × 2 seeds$" -- "$bin" plan "$sweep"
expect plan-json 0 '"summary": "8 jobs: ' -- "$bin" plan "$sweep" --json

# The same sweep gives the same ids, run after run and from another directory.
"$bin" plan "$sweep" --json >"$tmp/a.json" 2>&1
(cd "$tmp" && "$bin" plan "$sweep" --json) >"$tmp/b.json" 2>&1
check json-valid python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert len(j['jobs']) == 8" "$tmp/a.json"
check ids-stable cmp -s "$tmp/a.json" "$tmp/b.json"
check json-settings python3 -c "
import json, sys
j = json.load(open(sys.argv[1]))
s = j['jobs'][2]['settings']
assert j['jobs'][2]['swept'] == {'num_virtual_tokens': '2', 'init': 'text'}, j['jobs'][2]
assert s['init'] == 'TEXT' and s['init_text'] == '  two\nlines: \"quoted\"', s
assert s['model'] == sys.argv[2] + '/models/tiny-llama', s['model']
assert s['train'] == sys.argv[2] + '/tasks/toy_animals_train.jsonl', s['train']
assert s['verbalizer'] == {'dog': ' dog', 'fox': ' fox'} and s['max_length'] == '24', s
" "$tmp/a.json" "$data"

# --write-jobs: one job file per job; each runs with `train --config` as it is.
expect write-jobs 0 "wrote 8 job files" -- "$bin" plan "$sweep" --write-jobs "$tmp/jobs"
check job-files test "$(ls "$tmp"/jobs/*/job.yaml | wc -l)" -eq 8
text_job=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['jobs'][2]['id'])" "$tmp/a.json")
expect train-job 0 "^succeeded: 1 steps" -- \
  "$bin" train --config "$tmp/jobs/$text_job/job.yaml" --max-steps 1 --threads 1 -q
check job-output test -s "$tmp/jobs/$text_job/adapter_model.safetensors"
# The trainer saw exactly the planned settings (init_text with its spaces, newline and quotes).
check job-round-trip python3 -c "
import json, sys
plan = json.load(open(sys.argv[1]))['jobs'][2]['settings']
result = json.load(open(sys.argv[2]))
for name, value in result['settings'].items():
    want = 1 if name == 'max_steps' else plan[name]  # --max-steps 1 overrides the file
    assert str(value) == str(want) or float(value) == float(want), (name, value, want)
assert result['model'] == plan['model'] and result['train'] == plan['train'] and result['dev'] == plan['dev']
" "$tmp/a.json" "$tmp/jobs/$text_job/result.json"

# Errors: one line, file:line:col, a suggestion; nothing written.
# (Copies in $tmp with the relative paths made absolute.)
sed "s#\.\./#$data/#" "$sweep" >"$tmp/sweep.yaml"
check same-ids-absolute-paths diff <("$bin" plan "$sweep") <("$bin" plan "$tmp/sweep.yaml")
sed 's/  max_steps: 2/  max_step: 2/' "$tmp/sweep.yaml" >"$tmp/typo.yaml"
expect typo 1 "^promptsweep: error: $tmp/typo\.yaml:11:3: unknown trainer setting 'max_step' in train; did you mean 'max_steps'\?$" -- \
  "$bin" plan "$tmp/typo.yaml" --write-jobs "$tmp/typo-jobs"
check nothing-written test ! -e "$tmp/typo-jobs"
sed 's/values: \[2, 4\]/values: [2, 0]/' "$tmp/sweep.yaml" >"$tmp/zero.yaml"
expect zero-tokens 1 "zero\.yaml:16:36: num_virtual_tokens: invalid trainer setting: num_virtual_tokens must be >= 1, got 0" -- \
  "$bin" plan "$tmp/zero.yaml"
sed 's/, init_text: .*}/}/' "$tmp/zero.yaml" | sed 's/\[2, 0\]/[2]/' >"$tmp/notext.yaml"
expect init-text-missing 1 "notext\.yaml:15:1: job [0-9a-f]{16} \(num_virtual_tokens=2, init=text, seed=0\): .*init TEXT needs a non-empty init_text" -- \
  "$bin" plan "$tmp/notext.yaml"
expect missing-file 1 "^promptsweep: error: $tmp/none.yaml: cannot open sweep file$" -- "$bin" plan "$tmp/none.yaml"

# A name that is not one directory name: plan and run refuse it at name:, and
# run (whose default output is runs/<name>) creates nothing, here or in runs/.
mkdir -p "$tmp/cwd"
for bad in .. . "''" a/b; do
  sed "s|^name: toy-grid$|name: $bad|" "$sweep" >"$tmp/cwd/bad.yaml"
  expect "bad-name-plan $bad" 1 "^promptsweep: error: .*bad\.yaml:2:7: name '.*': use only letters, digits, '_', '\.' and '-', not empty and not '\.' or '\.\.'$" -- \
    "$bin" plan "$tmp/cwd/bad.yaml"
  expect "bad-name-run $bad" 1 "bad\.yaml:2:7: name '.*': use only letters" -- \
    bash -c 'cd "$1" && exec "$2" run bad.yaml --workers 1' _ "$tmp/cwd" "$bin"
  check "bad-name-nothing-created $bad" test "$(ls -A "$tmp/cwd")" = bad.yaml
done

finish
