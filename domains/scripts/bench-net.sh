#!/usr/bin/env bash
# Measures the network chain's costs with throwaway daemons, directories and a throwaway
# "internet" namespace (documentation addresses; nothing leaves the machine; needs root):
#  - `run -p work -- true` with work, sys-firewall and sys-net halted: the whole chain started,
#    with and without network.json (the difference is the plumbing and the rulesets);
#  - a firewall change on a running qube (add + del: two rulesets applied);
#  - the first TCP exchange from a just-started chain.
# Usage: domains/scripts/bench-net.sh [N] [path/to/corralctl]
set -euo pipefail
N=${1:-10}
C=${2:-target/debug/corralctl}
NS=corral-bench-net-$$
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" addr add 198.51.100.10/32 dev lo
ip netns exec "$NS" socat TCP4-LISTEN:80,bind=198.51.100.10,fork,reuseaddr EXEC:cat &
SP=$!
DIRS=()
DPS=()
cleanup() {
	for p in "${DPS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	kill "$SP" 2>/dev/null || true
	ip netns del "$NS" 2>/dev/null || true
	for d in "${DIRS[@]}"; do rm -rf "$d"; done
}
trap cleanup EXIT
ms() { date +%s%N; }
stats() { sort -n | awk '{a[NR]=$1; s+=$1} END {printf "median %.1f ms  mean %.1f ms  min %.1f  max %.1f  (n=%d)\n", a[int((NR+1)/2)], s/NR, a[1], a[NR], NR}'; }
elapsed() { echo $(( ($(ms)-$1)/1000 )) | awk '{print $1/1000}'; }

daemon() { # $1 = with network (1/0); sets D
	D=$(mktemp -d /tmp/corral-bench-net.XXXXXX)
	DIRS+=("$D")
	mkdir -p "$D/data"
	if [ "$1" = 1 ]; then
		cat >"$D/data/network.json" <<EOF
{"uplink": {"qube": "sys-net", "netns": "/run/netns/$NS", "outer": "192.0.2.1", "inner": "192.0.2.2", "prefix_len": 24}}
EOF
	fi
	export CORRAL_ADMIN_SOCKET=$D/run/admin.sock
	"$C" daemon --data-dir "$D/data" --runtime-dir "$D/run" 2>"$D/daemon.log" &
	DPS+=($!)
	while [ ! -S "$CORRAL_ADMIN_SOCKET" ]; do sleep 0.01; done
	"$C" create host --class templatevm --label black
	"$C" global-prefs default_template host
	"$C" create sys-net --label red
	"$C" prefs sys-net provides_network True
	"$C" prefs sys-net netvm none
	"$C" create sys-firewall --label green --netvm sys-net
	"$C" prefs sys-firewall provides_network True
	"$C" global-prefs default_netvm sys-firewall
	"$C" create work --label blue
}
chain_down() { "$C" shutdown --wait work; "$C" shutdown --wait sys-firewall; "$C" shutdown --wait sys-net; }

for net in 0 1; do
	daemon $net
	echo -n "network=$net  run -p work true, chain halted:   "
	for _ in $(seq "$N"); do t=$(ms); "$C" run -p work -- true; elapsed "$t"; chain_down; done | stats
done
echo -n "network=1  firewall add + del on a running qube: "
"$C" start work
for _ in $(seq "$N"); do
	t=$(ms)
	"$C" firewall work add --before 0 drop proto=tcp dstports=81
	"$C" firewall work del 0
	elapsed "$t"
done | stats
echo -n "network=1  chain start + first TCP echo:         "
for _ in $(seq "$N"); do
	chain_down
	t=$(ms)
	"$C" run -p work 'echo x | socat -t 1 - TCP4:198.51.100.10:80' >/dev/null
	elapsed "$t"
done | stats
