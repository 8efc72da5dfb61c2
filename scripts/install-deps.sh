#!/usr/bin/env bash
# Installs everything Corral needs to build, run its demo and run its tests on Debian 12.
# Safe to run again. Uses sudo for apt-get when not run as root.
set -euo pipefail

# Debian packages:
# - build-essential, pkg-config: C toolchain for -sys crates
# - libxen-dev: the `xen` channel is built and linted against the real Xen libraries
# - curl, ca-certificates: rustup, when Rust is missing
# - libxkbcommon-dev, libpixman-1-dev: corral-agent (Smithay's keyboard handling and its
#   CPU renderer link against them)
# - libwayland-dev: the agent's WLCS integration links libwayland-client/-server (wlcs crate)
# - xwayland: corral-agent --xwayland runs X11 apps through it
# - weston, foot, fonts-dejavu-core, gtk-3-examples, wl-clipboard, xterm: real apps the
#   agent's integration tests run (weston-simple-shm, a terminal and its font, a GTK 3 app,
#   wl-copy/wl-paste, an X11 terminal)
# - wlcs: the Wayland Conformance Test Suite runner (scripts/wlcs.sh)
# - libegl1, libgles2, libgl1-mesa-dri: corral's winit backend draws with GLES through EGL
#   (Mesa's llvmpipe where there is no GPU)
# - xvfb: corral's winit backend is tested nested in a virtual X server
# - bubblewrap: the sandbox backend runs each qube in a bwrap sandbox (domains/)
# - debootstrap: `corralctl template install debian` builds Debian templates with it
# - procps: `ps`, used inside qubes by the sandbox isolation tests
# - socat: servers and clients inside the network tests' namespaces
# - nftables, iproute2: the network chain (sys-net, sys-firewall, per-qube firewall rules) and
#   its tests in network namespaces
# - waypipe: the benchmark compares the qube channel with waypipe 0.8.4
# - libpam0g-dev, libclang-dev: the lock screen authenticates with PAM (pam-sys runs bindgen)
# - libdbus-1-dev, dbus-daemon: the lock screen listens to logind (lock before suspend); its
#   test runs a private bus
# - swaylock: a GUI-domain locker (ext-session-lock-v1) in the lock screen's tests
# - libudev-dev, libinput-dev, libgbm-dev, libseat-dev, libdrm-dev: `--backend udev` (DRM/KMS,
#   GBM, libinput, libseat) is built and linted everywhere, though it runs only on a real seat
# - desktop-file-utils: the session's .desktop file is validated in the tests
# - libnotify-bin: notify-send, run inside test qubes to send real desktop notifications
# - openvpn: the VPN qube's real client (and the test's server); slirp4netns: sys-net's uplink
#   when the domain manager is not root
PACKAGES=(build-essential pkg-config libxen-dev curl ca-certificates libxkbcommon-dev libpixman-1-dev libwayland-dev xwayland weston foot fonts-dejavu-core gtk-3-examples wl-clipboard xterm wlcs libegl1 libgles2 libgl1-mesa-dri xvfb bubblewrap debootstrap procps nftables iproute2 socat waypipe libpam0g-dev libclang-dev libdbus-1-dev dbus-daemon swaylock libudev-dev libinput-dev libgbm-dev libseat-dev libdrm-dev desktop-file-utils libnotify-bin openvpn openssl slirp4netns)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -q
    as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Rust 1.88 or newer (edition 2024 with let-chains). Debian's rustc is too old; use rustup.
if ! command -v cargo >/dev/null 2>&1; then
    if [ -f "$HOME/.cargo/env" ]; then
        # shellcheck disable=SC1091
        . "$HOME/.cargo/env"
    else
        echo "install-deps: installing Rust with rustup"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component clippy,rustfmt
        # shellcheck disable=SC1091
        . "$HOME/.cargo/env"
    fi
fi
rust_minor=$(rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
if [ "$rust_minor" -lt 88 ]; then
    echo "install-deps: rustc $(rustc --version) is older than 1.88; run 'rustup update stable'" >&2
    exit 1
fi

# cargo-fuzz drives the protocol fuzz targets in the test suite.
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "install-deps: installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi
echo "install-deps: ok"
