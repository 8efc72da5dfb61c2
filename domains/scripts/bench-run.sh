#!/usr/bin/env bash
# Measures `corralctl run -p` latency: to a running qube, to a halted one (start included),
# and `run --dispvm` (create + start + run + destroy). Uses a throwaway daemon and directories.
# Usage: domains/scripts/bench-run.sh [N] [path/to/corralctl]
set -euo pipefail
N=${1:-20}
C=${2:-target/debug/corralctl}
D=$(mktemp -d /tmp/corral-bench.XXXXXX)
export CORRAL_ADMIN_SOCKET=$D/run/admin.sock
"$C" daemon --data-dir "$D/data" --runtime-dir "$D/run" 2>"$D/daemon.log" &
DP=$!
trap 'kill $DP; wait $DP 2>/dev/null; rm -rf "$D"' EXIT
while [ ! -S "$CORRAL_ADMIN_SOCKET" ]; do sleep 0.01; done
"$C" create host --class templatevm --label black
"$C" create work --template host --label blue
"$C" create dvm --template host --label red
"$C" prefs dvm template_for_dispvms True
"$C" global-prefs default_dispvm dvm
ms() { date +%s%N; }
stats() { sort -n | awk '{a[NR]=$1; s+=$1} END {printf "median %.1f ms  mean %.1f ms  min %.1f  max %.1f  (n=%d)\n", a[int((NR+1)/2)], s/NR, a[1], a[NR], NR}'; }
"$C" start work
echo -n "run -p in a running qube:   "
for _ in $(seq "$N"); do t=$(ms); "$C" run -p work -- true; echo $(( ($(ms)-t)/1000 )) | awk '{print $1/1000}'; done | stats
echo -n "run -p in a halted qube:    "
for _ in $(seq "$N"); do "$C" shutdown --wait work; t=$(ms); "$C" run -p work -- true; echo $(( ($(ms)-t)/1000 )) | awk '{print $1/1000}'; done | stats
echo -n "run --dispvm -p (to exit):  "
for _ in $(seq "$N"); do t=$(ms); "$C" run --dispvm -p -- true; echo $(( ($(ms)-t)/1000 )) | awk '{print $1/1000}'; done | stats
"$C" shutdown --wait work
echo -n "shutdown --wait:            "
for _ in $(seq "$N"); do "$C" start work; t=$(ms); "$C" shutdown --wait work; echo $(( ($(ms)-t)/1000 )) | awk '{print $1/1000}'; done | stats
echo -n "pause + unpause:            "
"$C" start work
for _ in $(seq "$N"); do t=$(ms); "$C" pause work; "$C" unpause work; echo $(( ($(ms)-t)/1000 )) | awk '{print $1/1000}'; done | stats
