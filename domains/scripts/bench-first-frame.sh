#!/usr/bin/env bash
# Time from `corralctl run QUBE weston-simple-shm` to its first frame on screen in a headless
# `corral --domains` (throwaway data and runtime directories): for a halted qube (start
# included), a running one, and a fresh disposable (`run --dispvm`). Medians over N runs.
# The measuring code is the ignored test `first_frame_benchmark` in compositor/tests/domains.rs.
# Usage: domains/scripts/bench-first-frame.sh [N] [--release]
# Needs root (or unprivileged user namespaces), bwrap and weston-simple-shm.
set -euo pipefail
N=${1:-15}
PROFILE=()
[ "${2:-}" = "--release" ] && PROFILE=(--release)
cd "$(dirname "$0")/../.."
# corral-agent and corralctl must sit next to corral.
cargo build -q "${PROFILE[@]}" -p corral -p corral-domains -p corral-agent
CORRAL_BENCH_N=$N cargo test -q "${PROFILE[@]}" -p corral --test domains -- \
    --ignored --nocapture --test-threads=1 first_frame_benchmark
