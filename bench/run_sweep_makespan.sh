#!/usr/bin/env bash
# Makespan of a sweep with `promptsweep run --workers W`, variants side by side
# in one run (alternating, fresh output directory each): an older promptsweep
# binary (e.g. built from the commit before one-pass evaluation: per-label
# evaluation rows), this build with --pack 1 (one-pass evaluation), and this
# build with --pack K. Prints a Markdown table: seconds, jobs/min, ratio to
# the first variant, and whether every variant gave the same best dev and test
# accuracy per job (packing: equal up to float rounding).
#
#   bench/run_sweep_makespan.sh [SWEEP.yaml] [WORKERS] [PACK]
#     SWEEP    default: configs/init-vs-length.yaml cut to seed 0: 16 jobs (4 prompt lengths x 4 inits)
#              (SMALL=0 runs the whole 48-job sweep: ~10-15 min per variant here)
#   Env: OLD=path/to/older/promptsweep (optional), PROMPTSWEEP (this build),
#        THREADS (per worker, default 1), REPS (default 1).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${PROMPTSWEEP:-$root/build/promptsweep}"
workers="${2:-2}"
pack="${3:-4}"
threads="${THREADS:-1}"
reps="${REPS:-1}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

sweep="${1:-}"
if [ -z "$sweep" ]; then
  sweep="$tmp/sweep.yaml"
  # Absolute paths (the copy lives elsewhere); seed 0.
  sed -e "s#\.\./#$root/#g" "$root/configs/init-vs-length.yaml" >"$sweep"
  if [ "${SMALL:-1}" = 1 ]; then
    sed -i -e 's/^seeds: .*/seeds: [0]/' -e 's/^name: .*/name: makespan/' "$sweep"
  fi
fi
jobs=$("$bin" plan "$sweep" --json | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["jobs"]))')

variants=()
[ -n "${OLD:-}" ] && variants+=("old|$OLD|")
variants+=("pack1|$bin|--pack 1" "pack$pack|$bin|--pack $pack")

declare -A seconds
for rep in $(seq "$reps"); do
  for variant in "${variants[@]}"; do
    IFS='|' read -r name binary flags <<<"$variant"
    out="$tmp/$name-$rep"
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    "$binary" run "$sweep" --workers "$workers" --threads "$threads" -o "$out" $flags --quiet >"$tmp/$name.log" 2>&1 ||
      { echo "$name failed:" >&2; tail -20 "$tmp/$name.log" >&2; exit 1; }
    end=$(date +%s.%N)
    seconds[$name]="${seconds[$name]:-} $(echo "$end - $start" | bc)"
    cp "$out/results.csv" "$tmp/$name.results.csv"
  done
done

echo "sweep: $jobs jobs ($(basename "$sweep")), run --workers $workers --threads $threads, $reps rep(s); $(nproc) cores"
echo
echo "| variant | makespan s | jobs/min | vs first |"
echo "|---|---|---|---|"
first=""
for variant in "${variants[@]}"; do
  IFS='|' read -r name _ _ <<<"$variant"
  median=$(printf '%s\n' ${seconds[$name]} | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  [ -z "$first" ] && first=$median
  printf '| %s | %.1f | %.2f | %.2fx |\n' "$name" "$median" "$(echo "$jobs * 60 / $median" | bc -l)" \
    "$(echo "$first / $median" | bc -l)"
done
echo
/usr/bin/python3 - "$tmp" "${variants[@]}" <<'PY'
import csv, sys
tmp, variants = sys.argv[1], [v.split("|")[0] for v in sys.argv[2:]]
def load(name):
    with open(f"{tmp}/{name}.results.csv") as f:
        rows = list(csv.DictReader(f))
    cols = [c for c in rows[0] if c.startswith("best_dev_") or c.startswith("test_")]
    return {r["job_id"]: tuple(r[c] for c in cols) for r in rows}, cols
base, cols = load(variants[0])
for name in variants[1:]:
    other, _ = load(name)
    same = sum(1 for j in base if other.get(j) == base[j])
    print(f"{name}: {same}/{len(base)} jobs with the same {', '.join(cols)} as {variants[0]}")
PY
