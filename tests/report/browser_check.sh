#!/usr/bin/env bash
# Opens a `promptsweep report` HTML file in headless Chromium and checks it:
# tests/report/check_report.js, injected as the first script of a copy, waits for
# the page's ready flag and writes a verdict (errors, plots drawn per section
# against data-expected-plots, table sort and filters) into the DOM, which
# --dump-dom hands back. Chromium's own log is searched for uncaught errors too.
# Writes OUT_DIR/verdict.json (the verdict plus "built_ms" and "ready_ms", the real
# time from navigation to the tables being usable and to the last plot drawn, and
# "stderr_errors") and
# OUT_DIR/report.png (a full-height screenshot of the original report), prints
# one line per section, exits 1 naming what failed.
#
# WebGL (parcoords, scattergl) runs on SwiftShader: --use-angle=swiftshader
# --enable-unsafe-swiftshader. Virtual time (--virtual-time-budget) lets the page
# finish however slow the machine is; `timeout` bounds each Chromium run.
#
# Usage: browser_check.sh REPORT.html OUT_DIR
#   CHROMIUM (default: chromium), REPORT_CHECK_TIMEOUT (seconds per run, default 240),
#   REPORT_CHECK_SCREENSHOT (0: no screenshot)
set -uo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 REPORT.html OUT_DIR" >&2
  exit 2
fi
report=$1
out=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
chromium=${CHROMIUM:-chromium}
limit=${REPORT_CHECK_TIMEOUT:-240}
fail() { echo "FAIL $(basename "$report"): $*" >&2; exit 1; }

[ -f "$report" ] || fail "no such file: $report"
command -v "$chromium" >/dev/null || fail "no '$chromium' on PATH (apt-get install chromium, or set CHROMIUM)"
mkdir -p "$out" || fail "cannot create $out"
out=$(cd "$out" && pwd)
report_abs=$(cd "$(dirname "$report")" && pwd)/$(basename "$report")
work=$(mktemp -d "$out/chromium.XXXXXX") || fail "mktemp failed"
trap 'rm -rf "$work"' EXIT

copy=$work/report-checked.html
# Injects the checker right after the first <head> (case-insensitive, at most once).
awk -v checker="$here/check_report.js" '
  !done && match(tolower($0), /<head[^>]*>/) {
    print substr($0, 1, RSTART + RLENGTH - 1)
    print "<script>"
    while ((getline line < checker) > 0) print line
    print "</script>"
    print substr($0, RSTART + RLENGTH)
    done = 1
    next
  }
  { print }
  END { if (!done) exit 3 }' "$report_abs" >"$copy" || fail "the report has no <head> to inject the checker into"

flags=(--headless --no-sandbox --disable-gpu-sandbox --use-angle=swiftshader --enable-unsafe-swiftshader
       --no-first-run --no-default-browser-check --disable-extensions --disable-background-networking
       --disable-component-update --disable-sync --mute-audio --hide-scrollbars --force-device-scale-factor=1
       --enable-logging=stderr --v=0)

# 1. The check: the DOM after the page is ready and the checker has run.
# (Paths, not file:// URLs, so that spaces need no escaping.)
timeout -k 10 "$limit" "$chromium" "${flags[@]}" --user-data-dir="$work/check" \
  --window-size=1400,1000 --virtual-time-budget=150000 --dump-dom "$copy" \
  >"$work/dom.html" 2>"$out/chromium-check.log"
rc=$?
[ $rc -eq 124 ] || [ $rc -eq 137 ] && fail "chromium did not finish within ${limit} s (see $out/chromium-check.log)"
verdict=$(sed -n 's:.*<pre id="report-check">\([^<]*\)</pre>.*:\1:p' "$work/dom.html" | head -1)

# Real time from navigation to the moment MARK (built: tables usable; ready: every
# plot drawn), from the log's timestamps ([pid:tid:MMDD/HHMMSS.micro:...]) plus the
# page clock at the checker's start; the page's own clock runs on virtual time.
elapsed_ms() {
  awk -v mark="PSCHECK $1" '
    function secs(line,   t) { match(line, /\/[0-9][0-9][0-9][0-9][0-9][0-9]\.[0-9]+:/); t = substr(line, RSTART + 1, RLENGTH - 2);
      return substr(t, 1, 2) * 3600 + substr(t, 3, 2) * 60 + substr(t, 5) }
    /PSCHECK start/ && !s { s = secs($0); match($0, /PSCHECK start [0-9.]+/); p = substr($0, RSTART + 14, RLENGTH - 14) }
    index($0, mark) && !r { r = secs($0) }
    END { if (s && r) { d = r - s; if (d < 0) d += 86400; printf "%d", d * 1000 + p } else printf "null" }' "$out/chromium-check.log"
}
ready_ms=$(elapsed_ms ready)
built_ms=$(elapsed_ms built)

# Uncaught errors and console errors Chromium logged (the checker records the page's own).
grep -E 'CONSOLE|Uncaught' "$out/chromium-check.log" | grep -v PSCHECK |
  grep -E 'Uncaught|ERROR:CONSOLE|console\.error|Error:|WebGL: (INVALID|CONTEXT_LOST)' >"$work/stderr_errors.txt"
stderr_errors=$(wc -l <"$work/stderr_errors.txt" | tr -d ' ')

if [ -n "$verdict" ]; then
  verdict=${verdict%\}}",\"built_ms\":$built_ms,\"ready_ms\":$ready_ms,\"stderr_errors\":$stderr_errors}"
  [ "$stderr_errors" -eq 0 ] || verdict=${verdict/\"ok\":true/\"ok\":false}
  printf '%s\n' "$verdict" >"$out/verdict.json"
fi

# 2. A screenshot of the original (also when the check failed), as tall as the page
# (capped); REPORT_CHECK_SCREENSHOT=0 skips it (one chromium run instead of two).
if [ "${REPORT_CHECK_SCREENSHOT:-1}" != 0 ]; then
  height=$(sed -n 's/.*"page_height":\([0-9]*\).*/\1/p' <<<"$verdict")
  height=${height:-3000}
  [ "$height" -gt 16000 ] && height=16000
  [ "$height" -lt 600 ] && height=600
  timeout -k 10 "$limit" "$chromium" "${flags[@]}" --user-data-dir="$work/shot" \
    --window-size=1400,"$height" --virtual-time-budget=150000 --screenshot="$out/report.png" "$report_abs" \
    >/dev/null 2>"$out/chromium-screenshot.log" || echo "warning: the screenshot run failed (see $out/chromium-screenshot.log)" >&2
fi

if [ -z "$verdict" ]; then
  [ -s "$work/stderr_errors.txt" ] && { echo "chromium logged:" >&2; head -20 "$work/stderr_errors.txt" | sed 's/^/    /' >&2; }
  fail "no verdict in the page (chromium exit $rc; see $out/chromium-check.log)"
fi

# 3. Summary: one line per section, then the outcome.
field() { sed -n "s/.*\"$1\":\\(\"[^\"]*\"\\|[a-z0-9.]*\\).*/\\1/p" <<<"$verdict" | tr -d '"'; }
sections=$(sed -n 's/.*"sections":{\(.*\)},"sort".*/\1/p' <<<"$verdict")
name=$(basename "$report")
grep -oE '"[a-z_-]+":\{"expected":[^}]*\}' <<<"$sections" | while read -r s; do
  id=$(sed -E 's/^"([^"]+)".*/\1/' <<<"$s")
  e=$(sed -E 's/.*"expected":([^,}]*).*/\1/' <<<"$s")
  d=$(sed -E 's/.*"drawn":([^,}]*).*/\1/' <<<"$s")
  w=$(sed -E 's/.*"wanted":([^,}]*).*/\1/' <<<"$s")
  mark=ok
  { [ "$d" != "$e" ] || [ "$e" != "$w" ]; } && mark=FAIL
  printf '%-5s %s %-11s plots drawn %s of %s (data calls for %s)\n' "$mark" "$name" "$id" "$d" "$e" "$w"
done
echo "      $name sort: $(field sort); filter: $(field filter); controls: $(field controls); jobs: $(field jobs); tables in $built_ms ms, plots in $ready_ms ms; $(stat -c %s "$report_abs") bytes"
if [ "$(field ok)" != "true" ]; then
  echo "FAIL $name: see $out/verdict.json" >&2
  sed -n 's/.*"errors":\[\(..*\)\],"sections".*/\1/p' <<<"$verdict" | sed 's/","/"\n"/g' | head -20 | sed 's/^/    /' >&2
  [ "$stderr_errors" -eq 0 ] || { echo "    chromium logged:" >&2; head -20 "$work/stderr_errors.txt" | sed 's/^/    /' >&2; }
  exit 1
fi
echo "PASS  $name"
