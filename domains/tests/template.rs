//! `corralctl template install debian` against a fake debootstrap (the real one needs a mirror
//! and minutes; see docs/domains.md for a real run), then an AppVM on the new template.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::{CTL, Daemon};

/// A fake debootstrap: prints debootstrap-style progress and builds a tiny root whose /usr is a
/// copy of links to the host's tools (so the template really has its own /usr).
const FAKE: &str = r#"#!/bin/sh
set -e
suite=$(for a in "$@"; do case "$a" in --*) ;; *) echo "$a";; esac; done | sed -n 1p)
root=$(for a in "$@"; do case "$a" in --*) ;; *) echo "$a";; esac; done | sed -n 2p)
echo "I: Retrieving InRelease"
echo "I: Retrieving libc6"
echo "I: Retrieving coreutils"
echo "I: Extracting libc6..."
if [ "$suite" = fail ]; then mkdir -p "$root/partial"; echo "E: Couldn't download packages" >&2; exit 1; fi
mkdir -p "$root/etc" "$root/usr/bin" "$root/usr/lib" "$root/usr/lib64" "$root/tmp" "$root/home"
ln -s usr/bin "$root/bin"; ln -s usr/lib "$root/lib"; ln -s usr/lib64 "$root/lib64"
for t in sh dash env cat hostname id sleep; do cp -L /usr/bin/$t "$root/usr/bin/"; done
for lib in $(ldd /usr/bin/dash /usr/bin/env /usr/bin/cat /usr/bin/hostname /usr/bin/id /usr/bin/sleep | grep -o '/[^ ]*' | grep -v ':$' | sort -u); do
  cp -L --parents "$lib" "$root/"
done
echo "fake-debian" > "$root/etc/debian_version"
printf 'root:x:0:0::/root:/bin/sh\n' > "$root/etc/passwd"
echo "I: Base system installed successfully."
"#;

#[test]
fn template_install_debian_with_progress_then_an_appvm_uses_it() {
    let fake = std::env::temp_dir().join(format!("corral-fake-debootstrap-{}", std::process::id()));
    struct RemoveOnDrop(std::path::PathBuf);
    impl Drop for RemoveOnDrop {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _guard = RemoveOnDrop(fake.clone());
    std::fs::write(&fake, FAKE).unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let d = Daemon::start_with_env(
        "template-install",
        &[("CORRAL_DEBOOTSTRAP", fake.to_str().unwrap())],
    );

    let o = Command::new(CTL)
        .env("CORRAL_ADMIN_SOCKET", d.socket())
        .args([
            "template",
            "install",
            "debian",
            "--mirror",
            "http://mirror.invalid/debian",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("debian-12: retrieving 3 packages"), "{err}");
    assert!(
        err.contains("debian-12: Base system installed successfully."),
        "{err}"
    );
    assert_eq!(d.ok(&["template", "list"]), "debian-12\n");
    d.ok(&[
        "create",
        "deb-work",
        "--template",
        "debian-12",
        "--label",
        "orange",
    ]);
    // The AppVM sees the template's own /usr, not the host's.
    assert_eq!(
        d.sh("deb-work", "cat /etc/debian_version; id -un"),
        "fake-debian\nuser\n"
    );

    // A failed build leaves no record and no volume, and says why.
    let vols = common::count_entries(&d.data().join("volumes"));
    let e = d.fails(
        &[
            "template", "install", "debian", "--name", "broken", "--suite", "fail",
        ],
        1,
    );
    assert!(
        e.contains("debootstrap failed") && e.contains("Couldn't download"),
        "{e}"
    );
    assert_eq!(common::count_entries(&d.data().join("volumes")), vols);
    assert_eq!(d.ok(&["template", "list"]), "debian-12\n");
    let e = d.fails(&["template", "install", "debian", "--name", "debian-12"], 1);
    assert!(e.contains("already exists"), "{e}");
    let e = d.fails(&["template", "install", "ubuntu"], 2);
    assert!(e.contains("unknown distribution"), "{e}");
}
