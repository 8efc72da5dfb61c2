#!/usr/bin/env bash
# Corral's demo session: the compositor with two qubes, `work` (blue) and `personal` (yellow),
# each running real apps (weston-simple-shm and the foot terminal) through its own corral-agent,
# plus a terminal of the GUI domain itself (framed black).
#
# With a display (DISPLAY or WAYLAND_DISPLAY set) it opens in a window of your desktop and runs
# until you close it. Without one it runs headless, waits for the windows, prints what is on
# screen (`corral msg windows`), saves a screenshot to corral-demo.png and stops.
#
# `work` and `personal` are development qubes: plain processes with a channel whose identity
# the compositor assigned (--dev-qube). Headless, the demo also creates a real qube, `mail`
# (green): a bubblewrap sandbox from the `host` template, whose terminal is launched from the
# desktop (`corral msg launch`, what the launcher does), through the embedded domain manager.
# Its data lives in a temporary directory and goes with the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

cargo build --release --quiet -p corral -p corral-agent -p corral-domains
bin=$PWD/target/release
agent="$bin/corral-agent --gui-fd {fd} --exec weston-simple-shm --exec foot"
qubes=(--dev-qube work:blue --dev-qube personal:yellow)

if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
    echo "demo: opening Corral in a window; close it to end the demo"
    exec "$bin/corral" --backend winit "${qubes[@]}" --dev-agent-command "$agent" \
        --gui-socket --gui-exec foot
fi

runtime=$(mktemp -d)
corral_pid=
cleanup() {
    [ -n "$corral_pid" ] && kill "$corral_pid" 2>/dev/null && wait "$corral_pid" 2>/dev/null
    rm -rf "$runtime"
}
trap cleanup EXIT
export XDG_RUNTIME_DIR=$runtime
export XDG_DATA_HOME=$runtime/data
export XDG_CONFIG_HOME=$runtime/config
unset CORRAL_DATA_DIR CORRAL_RUNTIME_DIR CORRAL_ADMIN_SOCKET
chmod 0700 "$runtime"
socket=$runtime/corral-ipc.sock

echo "demo: no display here, so Corral runs headless (1600x900)"
"$bin/corral" --backend headless --size 1600x900 --ipc-socket "$socket" "${qubes[@]}" \
    --dev-agent-command "$agent" --gui-socket --gui-exec foot 2>"$runtime/corral.log" &
corral_pid=$!

# Two qubes with two apps each, plus the GUI domain's terminal.
want=5
for _ in $(seq 1 100); do
    [ -S "$runtime/corral/admin.sock" ] && break
    sleep 0.05
done
# A real sandboxed qube, its terminal launched from the desktop.
if "$bin/corralctl" create host --class templatevm --label black >/dev/null \
    && "$bin/corralctl" create mail --template host --label green >/dev/null \
    && "$bin/corral" msg --socket "$socket" launch mail foot >/dev/null; then
    want=6
else
    echo "demo: the sandboxed qube 'mail' could not start (bubblewrap needs root or user" >&2
    echo "      namespaces; see docs/domains.md); showing the development qubes only" >&2
fi
for _ in $(seq 1 200); do
    count=$("$bin/corral" msg --socket "$socket" windows --json 2>/dev/null | grep -o '"id"' | wc -l || true)
    [ "$count" -ge "$want" ] && break
    sleep 0.1
done
if [ "${count:-0}" -lt "$want" ]; then
    echo "demo: only ${count:-0} of $want windows appeared; the compositor's log:" >&2
    tail -n 30 "$runtime/corral.log" >&2
    exit 1
fi
sleep 0.5 # let the apps draw a few frames
echo
"$bin/corral" msg --socket "$socket" windows
"$bin/corral" msg --socket "$socket" screenshot "$PWD/corral-demo.png"
echo
echo "demo: screenshot written to $PWD/corral-demo.png"
