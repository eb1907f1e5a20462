#!/usr/bin/env bash
# Early termination, measured: configs/random-spam-hyperband.yaml (48 random
# draws on spam, hyperband eta 3) against the same sweep without
# early_terminate (the same job ids), each with `promptsweep run --workers W`
# in a fresh output directory, one after the other on this machine. Prints a
# Markdown table: optimizer steps, wall seconds, jobs stopped, the best job by
# dev accuracy and its test accuracy, and the ratios. Then, when a finished
# run of configs/init-vs-length-long.yaml is given (its output directory),
# replays hyperband offline on its recorded dev curves
# (build/bench/early_termination_replay, the coordinator's own rule).
#
#   bench/run_early_termination_bench.sh [WORKERS] [LONG_STUDY_DIR]
#   Env: PROMPTSWEEP (the binary), THREADS (per worker, default 1), SWEEP (another sweep
#        file with early_terminate), OUT (keep the runs there instead of a temp dir).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${PROMPTSWEEP:-$root/build/promptsweep}"
replay="${REPLAY:-$(dirname "$bin")/bench/early_termination_replay}"
workers="${1:-2}"
long_study="${2:-}"
threads="${THREADS:-1}"
sweep="${SWEEP:-$root/configs/random-spam-hyperband.yaml}"
out="${OUT:-$(mktemp -d)}"
[ -n "${OUT:-}" ] || trap 'rm -rf "$out"' EXIT
mkdir -p "$out"

# The same sweep without early_terminate (another name, the same job ids), both with absolute paths.
sed -e "s#\.\./#$root/#g" "$sweep" >"$out/hyperband.yaml"
sed -e '/^early_terminate:/d' -e 's/^name: \(.*\)/name: \1-full/' "$out/hyperband.yaml" >"$out/full.yaml"

declare -A seconds
for variant in full hyperband; do
  rm -rf "$out/$variant"
  start=$(date +%s.%N)
  "$bin" run "$out/$variant.yaml" --workers "$workers" --threads "$threads" -o "$out/$variant" -q || true
  seconds[$variant]=$(/usr/bin/python3 -c "print($(date +%s.%N) - $start)")
done

/usr/bin/python3 - "$out" "${seconds[full]}" "${seconds[hyperband]}" <<'EOF'
import csv, statistics, sys
out, wall_full, wall_hb = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
def load(variant):
    return {r['job_id']: r for r in csv.DictReader(open(f'{out}/{variant}/results.csv'))}
full, hb = load('full'), load('hyperband')
assert full.keys() == hb.keys(), 'the two runs have other jobs'
def steps(rows): return sum(int(r['steps'] or 0) for r in rows.values())
def best(rows):
    ok = [r for r in rows.values() if r['status'] in ('succeeded', 'stopped') and r['best_dev_accuracy']]
    return max(ok, key=lambda r: (float(r['best_dev_accuracy']), -int(r['steps'])))
def ok_tests(rows):
    return [float(r['test_accuracy']) for r in rows.values() if r['status'] == 'succeeded' and r['test_accuracy']]
bf, bh = best(full), best(hb)
sf, sh = steps(full), steps(hb)
stopped = sum(r['status'] == 'stopped' for r in hb.values())
print(f"| sweep ({len(full)} jobs) | optimizer steps | wall s | stopped | best job (dev acc) | its test acc |")
print("|---|---|---|---|---|---|")
print(f"| full | {sf} | {wall_full:.0f} | 0 | {bf['job_id']} ({float(bf['best_dev_accuracy']):.4f}) | {float(bf['test_accuracy']):.4f} |")
print(f"| hyperband (eta 3) | {sh} | {wall_hb:.0f} | {stopped} | {bh['job_id']} ({float(bh['best_dev_accuracy']):.4f}) | {float(bh['test_accuracy']):.4f} |")
print(f"| ratio full / hyperband | {sf / sh:.2f}x | {wall_full / wall_hb:.2f}x | | | |")
print()
print(f"full run's best job kept by hyperband: {hb[bf['job_id']]['status']}"
      f"{'' if hb[bf['job_id']]['status'] != 'stopped' else ' (' + hb[bf['job_id']]['message'] + ')'}")
top = sorted(ok_tests(full), reverse=True)[:5]
print(f"full run: test accuracy of the 5 best-by-test jobs {', '.join(f'{t:.4f}' for t in top)}")
EOF

if [ -n "$long_study" ]; then
  echo
  "$replay" "$long_study" --type hyperband --min-iter 1 --eta 3
fi
