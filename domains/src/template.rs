//! Building Debian templates with debootstrap.
//!
//! `debootstrap --variant=minbase SUITE ROOT MIRROR` fills the template's root volume; its
//! `I: Retrieving`/`I: Validating`/`I: Extracting`/`I: Unpacking`/`I: Configuring` lines are
//! turned into progress reports. The record is written only after debootstrap succeeded and the
//! tree was synced, so a crash or a failure leaves no half template (the partial tree has no
//! record and is collected at the next open, or removed at once on failure).
//!
//! `CORRAL_DEBOOTSTRAP` names another program with the same interface (tests use a fake).

use std::fs;
use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

/// The Debian release a plain `template install debian` builds.
pub const DEFAULT_SUITE: &str = "bookworm";
/// The mirror it uses.
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";
/// Extra packages a template needs to be useful as a qube.
pub const EXTRA_PACKAGES: &str = "procps,ca-certificates";

/// Progress of a debootstrap run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// The current phase (`retrieving`, `extracting`, …).
    pub phase: String,
    /// Packages handled in this phase.
    pub done: u32,
}

impl Progress {
    /// Feeds one output line; returns whether the progress changed.
    pub fn feed(&mut self, line: &str) -> bool {
        let Some(rest) = line.strip_prefix("I: ") else {
            return false;
        };
        let phase = rest
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let per_package = [
            "retrieving",
            "validating",
            "extracting",
            "unpacking",
            "configuring",
        ];
        if per_package.contains(&phase.as_str()) {
            if self.phase != phase {
                self.phase = phase;
                self.done = 0;
            }
            self.done += 1;
        } else {
            self.phase = rest.trim().to_owned();
            self.done = 0;
        }
        true
    }

    /// One line for a progress display.
    pub fn line(&self) -> String {
        if self.done > 0 {
            format!("{} {} packages", self.phase, self.done)
        } else {
            self.phase.clone()
        }
    }
}

/// Runs debootstrap into `root` (which must not exist), reporting progress. On failure the
/// partial tree is removed and the last lines of debootstrap's output are in the error.
pub fn debootstrap(
    root: &Path,
    suite: &str,
    mirror: &str,
    progress: &mut dyn FnMut(&str),
) -> io::Result<()> {
    let prog = std::env::var_os("CORRAL_DEBOOTSTRAP").unwrap_or_else(|| "debootstrap".into());
    if let Some(parent) = root.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut cmd = Command::new(&prog);
    // SAFETY: only async-signal-safe calls between fork and exec (see reset_signals); without
    // it debootstrap would inherit the daemon's blocked SIGTERM/SIGINT.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            crate::sandbox::reset_signals();
            Ok(())
        });
    }
    let mut child = cmd
        .arg("--variant=minbase")
        .arg(format!("--include={EXTRA_PACKAGES}"))
        .arg(suite)
        .arg(root)
        .arg(mirror)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot run {}: {e}", prog.to_string_lossy()),
            )
        })?;
    // debootstrap writes progress to stderr and stdout; merge them through a thread.
    let err = child.stderr.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let tx2 = tx.clone();
    let t = std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx2.send(l);
        }
    });
    let out = child.stdout.take().expect("piped");
    let t2 = std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let mut p = Progress::default();
    let mut tail: Vec<String> = Vec::new();
    for line in rx {
        if p.feed(&line) {
            progress(&p.line());
        }
        tail.push(line);
        if tail.len() > 8 {
            tail.remove(0);
        }
    }
    let _ = t.join();
    let _ = t2.join();
    let st = child.wait()?;
    if !st.success() {
        let _ = fs::remove_dir_all(root);
        return Err(io::Error::other(format!(
            "debootstrap failed ({st}): {}",
            tail.join(" | ")
        )));
    }
    add_qube_user(root)?;
    let d = fs::File::open(root)?;
    rustix::fs::syncfs(&d)?;
    Ok(())
}

/// Adds the qube user (uid 1000, home /home/user) to a Debian root if missing.
pub fn add_qube_user(root: &Path) -> io::Result<()> {
    let uid = crate::sandbox::QUBE_UID;
    let passwd = root.join("etc/passwd");
    let text = fs::read_to_string(&passwd).unwrap_or_default();
    if !text.lines().any(|l| l.starts_with("user:")) {
        fs::write(
            &passwd,
            format!("{text}user:x:{uid}:{uid}:user:/home/user:/bin/bash\n"),
        )?;
        let group = root.join("etc/group");
        let g = fs::read_to_string(&group).unwrap_or_default();
        fs::write(&group, format!("{g}user:x:{uid}:\n"))?;
    }
    fs::create_dir_all(root.join("home/user"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_counts_packages_per_phase() {
        let mut p = Progress::default();
        assert!(!p.feed("W: something"));
        assert!(p.feed("I: Retrieving InRelease "));
        assert!(p.feed("I: Retrieving libc6 2.36-9"));
        assert_eq!(p.line(), "retrieving 2 packages");
        p.feed("I: Extracting base-files...");
        assert_eq!(p.line(), "extracting 1 packages");
        p.feed("I: Base system installed successfully.");
        assert_eq!(p.line(), "Base system installed successfully.");
    }
}
