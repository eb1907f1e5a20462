#!/usr/bin/env bash
# The README's scheduling-overhead figures: 10,000 one-second `sleep` jobs on
# 100 workers (real gRPC clients on 127.0.0.1) against a `promptsweep coordinator`
# process, then the same jobs at 0 s to measure lease + result throughput alone.
#
#   bench/run_orchestrator_bench.sh [BUILD_DIR]     # ~2 min
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="${1:-$root/build}/bench/orchestrator_bench"
bin="${1:-$root/build}/promptsweep"
echo "== 10,000 jobs × 1 s on 100 workers (ideal makespan 100 s)"
"$bench" --promptsweep "$bin" --jobs 10000 --workers 100 --seconds 1
echo "== 10,000 jobs × 0 s on 100 workers (lease + result throughput)"
"$bench" --promptsweep "$bin" --jobs 10000 --workers 100 --seconds 0
