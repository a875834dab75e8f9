#!/usr/bin/env bash
# run.sh: run the unit tests (cmocka, one binary per module) and the end-to-end tests
# (node:test against the built binary), print each runner's summary, then one total line.
# Usage: tests/run.sh [unit|e2e]...   (default: both)
# Env: UNIT_DIR (where test_* binaries are), PARLEY_BIN (binary the e2e tests start).
set -uo pipefail
cd "$(dirname "$0")/.."
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
passed=0 failed=0 status=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

run_unit() {
  local dir=${UNIT_DIR:-build/asan} n=0
  for t in "$dir"/test_*; do
    [[ -x $t && -f $t ]] || continue
    n=$((n + 1))
    "$t" >"$log" 2>&1
    local rc=$?
    local p f
    p=$(grep -oE '\[  PASSED  \] [0-9]+' "$log" | awk '{s+=$NF} END {print s+0}')
    f=$(grep -oE '\[  FAILED  \] [0-9]+' "$log" | awk '{s+=$NF} END {print s+0}')
    if ((rc != 0 && f == 0)); then f=1; fi # crashed or sanitizer report
    passed=$((passed + p)) failed=$((failed + f))
    if ((rc != 0)); then status=1; cat "$log"; fi
    printf '%-28s %3d passed, %d failed\n' "$(basename "$t")" "$p" "$f"
  done
  if ((n == 0)); then echo "no unit test binaries in $dir" >&2; status=1; fi
}

# --test-force-exit: a file whose tests are done exits even if a failed after-hook left a
# server or child process open (that used to hang the whole run instead of failing it).
run_e2e() {
  [[ -d tests/e2e/node_modules ]] || { echo "tests/e2e/node_modules missing: run scripts/deps.sh test" >&2; status=1; return; }
  export PARLEY_BIN=${PARLEY_BIN:-$PWD/build/asan/parley}
  (cd tests/e2e && node --test --test-concurrency=1 --test-force-exit --test-reporter=tap ./*.test.mjs) >"$log" 2>&1
  local rc=$?
  local p f
  p=$(grep -E '^# pass ' "$log" | awk '{print $3}')
  f=$(grep -E '^# fail ' "$log" | awk '{print $3}')
  p=${p:-0} f=${f:-0}
  if ((rc != 0)); then
    status=1
    grep -vE '^\s*(duration_ms|\.\.\.|---|type:)' "$log" | grep -B2 -A30 -E '^\s*not ok' | head -300
    if ((f == 0)); then f=1; fi
  fi
  passed=$((passed + p)) failed=$((failed + f))
  grep -E '^# (tests|pass|fail|skipped|duration_ms)' "$log"
  printf '%-28s %3d passed, %d failed\n' "e2e (node:test)" "$p" "$f"
}

for what in "${@:-unit e2e}"; do
  for w in $what; do
    case $w in
      unit) run_unit ;;
      e2e) run_e2e ;;
      *) echo "run.sh: unknown suite $w" >&2; exit 2 ;;
    esac
  done
done
echo "$passed passed, $failed failed"
exit $status
