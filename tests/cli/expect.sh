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

# Prints the closing line ctest shows and exits non-zero on any failure.
finish() {
  echo "$pass passed, $failures failed"
  [ "$failures" -eq 0 ]
}
