#!/usr/bin/env bash
# Runs the Wayland Conformance Test Suite (Debian package `wlcs`) against corral-agent.
#
#   scripts/wlcs.sh            run the recorded passing list (gui-agent/wlcs/passing.txt);
#                              fails if any of them fails (CI runs the same list through the
#                              test gui-agent/wlcs/tests/passing_list.rs)
#   scripts/wlcs.sh --survey   run every WLCS test on its own (a crash or hang cannot hide
#                              others) and write gui-agent/wlcs/survey.txt: one
#                              "RESULT test-name" line per test; RESULT is PASS, FAIL, SKIP
#                              (the agent lacks the extension), CRASH (timeout or signal) or
#                              DISABLED (WLCS's own DISABLED_ tests, never run)
#
# The integration is the shared library of gui-agent/wlcs; see docs/wlcs.md.
set -euo pipefail
cd "$(dirname "$0")/.."

runner=/usr/lib/x86_64-linux-gnu/wlcs/wlcs
if [ ! -x "$runner" ]; then
    echo "wlcs.sh: $runner is missing; run scripts/install-deps.sh (package wlcs)" >&2
    exit 1
fi
cargo build --quiet -p corral-agent-wlcs
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -E 's/.*"target_directory":"([^"]*)".*/\1/')
integration="$target_dir/debug/libcorral_agent_wlcs.so"
runtime_dir=$(mktemp -d)
trap 'rm -rf "$runtime_dir"' EXIT
export XDG_RUNTIME_DIR="$runtime_dir"
# A private copy: a cargo build running meanwhile cannot swap the library under the runner.
cp "$integration" "$runtime_dir/integration.so"
integration="$runtime_dir/integration.so"

if [ "${1:-}" = "--survey" ]; then
    out=gui-agent/wlcs/survey.txt
    : > "$out.tmp"
    # gtest prints "Suite." lines, then the tests indented; parameterised names carry a
    # "  # GetParam() = ..." comment that is not part of the name.
    "$runner" "$integration" --gtest_list_tests | awk '
        /^[^ ]/ { suite = $1; next }
        /^  / { print suite $1 }' > "$runtime_dir/all.txt"
    total=$(wc -l < "$runtime_dir/all.txt")
    echo "wlcs.sh: surveying $total tests, one process each"
    while read -r test; do
        log="$runtime_dir/one.log"
        if timeout 20 "$runner" "$integration" --gtest_filter="$test" > "$log" 2>&1; then
            if grep -q '^\[     SKIP \]' "$log"; then echo "SKIP $test"
            elif grep -q '^\[       OK \]' "$log"; then echo "PASS $test"
            else echo "DISABLED $test"; fi
        else
            status=$?
            if grep -q '^\[  FAILED  \]' "$log"; then echo "FAIL $test"; else echo "CRASH $test (exit $status)"; fi
        fi
    done < "$runtime_dir/all.txt" >> "$out.tmp"
    sort -k2 "$out.tmp" > "$out" && rm "$out.tmp"
    awk '{ n[$1]++ } END { for (r in n) printf "%s %d\n", r, n[r] }' "$out" | sort
    echo "wlcs.sh: wrote $out; update gui-agent/wlcs/passing.txt and docs/wlcs.md from it"
    exit 0
fi

list=gui-agent/wlcs/passing.txt
filter=$(grep -v '^#' "$list" | grep -v '^$' | paste -sd ':' -)
count=$(grep -v '^#' "$list" | grep -vc '^$')
echo "wlcs.sh: running the $count WLCS tests recorded as passing"
log="$runtime_dir/run.log"
status=0
timeout 600 "$runner" "$integration" --gtest_filter="$filter" > "$log" 2>&1 || status=$?
passed=$(grep -c '^\[       OK \]' "$log" || true)
failed=$(grep -c '^\[  FAILED  \] [^ ]* (' "$log" || true)
grep '^\[  FAILED  \] [^ ]* (' "$log" || true
echo "$passed passed, $failed failed"
if [ "$status" -ne 0 ] || [ "$passed" -ne "$count" ]; then
    tail -40 "$log" >&2
    echo "wlcs.sh: a test recorded as passing did not pass (exit $status)" >&2
    exit 1
fi
