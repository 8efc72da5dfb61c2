#!/bin/sh
# Installs Corral: the binaries, the session entry point and its .desktop file, the themes, the
# default config and the default policy files. See docs/session.md.
#
#   cargo build --release --workspace && sudo scripts/install.sh
#   scripts/install.sh --destdir /tmp/pkgroot --bin-dir target/debug     # staging, no root
#
# Where things go ($DESTDIR in front of each):
#   $PREFIX/bin/           corral, corral-agent, corralctl (from --bin-dir), corral-session
#   /usr/share/wayland-sessions/corral.desktop    (Exec= the installed corral-session)
#   /usr/share/corral/themes/                     (where corral looks for installed themes)
#   /etc/corral/config.toml, /etc/corral/policy.d/  (never overwritten: local edits stay;
#                                                    the shipped version lands next to it as .new)
#   /etc/pam.d/corral                             (the lock screen's PAM service; same rule)
set -eu

usage() {
    cat <<'EOF'
Usage: scripts/install.sh [--prefix DIR] [--destdir DIR] [--bin-dir DIR] [--session-dir DIR]

  --prefix DIR       binaries go to DIR/bin [default: $PREFIX, else /usr/local]
  --destdir DIR      stage everything under DIR (packaging) [default: $DESTDIR, else none]
  --bin-dir DIR      where the built binaries are [default: target/release]
  --session-dir DIR  where display managers look for sessions
                     [default: /usr/share/wayland-sessions]
EOF
}

repo=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
prefix=${PREFIX:-/usr/local}
destdir=${DESTDIR:-}
bindir_src=$repo/target/release
sessiondir=/usr/share/wayland-sessions

need_value() {
    [ $# -ge 2 ] || { echo "install.sh: $1 needs a value" >&2; exit 2; }
}
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) need_value "$@"; prefix=$2; shift 2 ;;
        --destdir) need_value "$@"; destdir=$2; shift 2 ;;
        --bin-dir) need_value "$@"; bindir_src=$2; shift 2 ;;
        --session-dir) need_value "$@"; sessiondir=$2; shift 2 ;;
        --help|-h) usage; exit 0 ;;
        *) echo "install.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done
case "$prefix" in
    /*) ;;
    *) echo "install.sh: --prefix must be an absolute path, not $prefix" >&2; exit 2 ;;
esac

missing=
for b in corral corral-agent corralctl; do
    [ -x "$bindir_src/$b" ] || missing="$missing $b"
done
if [ -n "$missing" ]; then
    echo "install.sh: missing in $bindir_src:$missing (run: cargo build --release --workspace)" >&2
    exit 1
fi

say() { printf 'install: %s\n' "$*"; }

# install(1) -D is GNU; plain mkdir + install keeps this portable.
put() { # MODE SRC DEST
    mkdir -p -- "$(dirname -- "$3")"
    install -m "$1" -- "$2" "$3"
    say "$3"
}

# A config file the administrator may have edited: installed only where there is none, else
# the shipped version goes next to it as FILE.new.
put_config() { # SRC DEST
    if [ -e "$2" ] && ! cmp -s -- "$1" "$2"; then
        put 0644 "$1" "$2.new"
    else
        put 0644 "$1" "$2"
    fi
}

bin=$destdir$prefix/bin
for b in corral corral-agent corralctl; do
    put 0755 "$bindir_src/$b" "$bin/$b"
done
put 0755 "$repo/scripts/corral-session" "$bin/corral-session"

# The session file names the installed entry point by its full path: display managers do not
# all search /usr/local/bin.
session=$destdir$sessiondir/corral.desktop
mkdir -p -- "$(dirname -- "$session")"
sed -e "s|^Exec=.*|Exec=$prefix/bin/corral-session|" \
    -e "s|^TryExec=.*|TryExec=$prefix/bin/corral-session|" \
    "$repo/config/corral.desktop" >"$session.tmp"
chmod 0644 "$session.tmp"
mv -f -- "$session.tmp" "$session"
say "$session"

for t in "$repo"/themes/*.toml; do
    put 0644 "$t" "$destdir/usr/share/corral/themes/$(basename -- "$t")"
done

put_config "$repo/config/corral.toml" "$destdir/etc/corral/config.toml"
for p in "$repo"/config/policy.d/*.policy; do
    put_config "$p" "$destdir/etc/corral/policy.d/$(basename -- "$p")"
done
put_config "$repo/config/pam.d/corral" "$destdir/etc/pam.d/corral"

say "done. Log out and pick \"Corral\" in your display manager, or run corral-session from a text console."
