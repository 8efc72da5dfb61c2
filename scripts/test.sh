#!/usr/bin/env bash
# Corral's whole test suite: formatting, lints (with and without the Xen channel), every test
# (the hostile-agent suite, the lock screen's PAM tests and the network namespaces need root),
# and a short fuzzing run of each fuzz target (protocol decoders, policy and config parsers).
# Run scripts/install-deps.sh first. FUZZ_SECONDS sets the fuzzing time per target (default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

# Each step says how much disk is left: a full run needs several GB (build artefacts of the
# workspace, then of each fuzz project).
step() { printf '\n== %s (disk free: %s)\n' "$*" "$(df -h --output=avail . | tail -n 1 | tr -d ' ')"; }

# On CI (a fresh clone, built once): no incremental caches, which only help rebuilds and would
# double the target directory.
if [ -n "${CI:-}" ]; then
    export CARGO_INCREMENTAL=0
fi

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p corral-protocol --features xen --all-targets --locked -- -D warnings

step "tests"
cargo test --workspace --locked
cargo test -p corral-protocol --features xen --locked --lib

# On CI the workspace's build artefacts are not needed again: free the disk for the fuzz builds
# (sanitizer builds of Smithay are large).
if [ -n "${CI:-}" ]; then
    cargo clean
fi

step "fuzz smoke (${FUZZ_SECONDS:-30} s per target)"
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: run scripts/install-deps.sh" >&2
    exit 1
fi
for crate in protocol domains compositor; do (
    cd "$crate"
    # cargo-fuzz needs nightly flags (sanitizers); RUSTC_BOOTSTRAP lets the stable toolchain
    # accept them.
    export RUSTC_BOOTSTRAP=1
    log=$(mktemp)
    for target in $(cargo fuzz list); do
        echo "-- fuzz target $target"
        if ! cargo fuzz run "$target" -- -max_total_time="${FUZZ_SECONDS:-30}" -print_final_stats=1 >"$log" 2>&1; then
            tail -n 60 "$log" >&2
            echo "fuzz target $target failed (crash or build error); artifacts in $crate/fuzz/artifacts/$target" >&2
            exit 1
        fi
        grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "$log" || true
    done
    rm -f "$log"
    # Same on CI for each fuzz project's own (sanitizer) build once its targets have run.
    if [ -n "${CI:-}" ]; then
        rm -rf fuzz/target
    fi
); done
echo
echo "all checks passed"
