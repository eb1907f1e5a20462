#!/usr/bin/env bash
# The README's screenshot of a sweep report: `promptsweep report` of the
# shipped quickstart sweep (deploy/quickstart.sh leaves it in build/quickstart),
# the top of the page (header, best job, results table) rendered by headless
# chromium 1280 CSS px wide at 0.6 device pixels per CSS pixel: a small PNG.
#
#   tools/report/screenshot.sh [OUT_DIR] [PNG]   # defaults: build/quickstart, docs/report-quickstart.png
#
# Environment: PROMPTSWEEP (the binary), CHROMIUM (default chromium).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${PROMPTSWEEP:-$root/build/promptsweep}
out=${1:-$root/build/quickstart}
png=${2:-$root/docs/report-quickstart.png}
chromium=${CHROMIUM:-chromium}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$bin" report "$out" -o "$work/report.html"
timeout -k 10 240 "$chromium" --headless --no-sandbox --disable-gpu-sandbox --use-angle=swiftshader \
  --enable-unsafe-swiftshader --no-first-run --disable-extensions --hide-scrollbars --force-device-scale-factor=0.6 \
  --user-data-dir="$work/profile" --window-size=1280,1500 --virtual-time-budget=60000 \
  --screenshot="$png" "file://$work/report.html" >/dev/null 2>"$work/chromium.log" ||
  { cat "$work/chromium.log" >&2; exit 1; }
echo "screenshot: $png ($(stat -c %s "$png") bytes)"
