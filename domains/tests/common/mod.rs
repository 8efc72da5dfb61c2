//! A test fixture: a `corralctl daemon` with its own data and runtime directories, and a way to
//! run `corralctl` against it. Dropping it stops the daemon (which kills its qubes) and removes
//! the directories.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const CTL: &str = env!("CARGO_BIN_EXE_corralctl");

#[derive(Debug)]
pub struct Daemon {
    pub dir: PathBuf,
    child: Option<Child>,
}

pub fn require_bwrap() {
    assert!(
        Command::new("bwrap")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "bubblewrap (bwrap) is required: run scripts/install-deps.sh"
    );
}

impl Daemon {
    pub fn start(tag: &str) -> Daemon {
        Self::start_with_env(tag, &[])
    }

    pub fn start_with_env(tag: &str, env: &[(&str, &str)]) -> Daemon {
        Self::start_inner(tag, env, None)
    }

    /// A daemon running as `uid` (through `setpriv`), with directories it owns.
    pub fn start_as(tag: &str, uid: u32) -> Daemon {
        Self::start_inner(tag, &[], Some(uid))
    }

    fn start_inner(tag: &str, env: &[(&str, &str)], uid: Option<u32>) -> Daemon {
        require_bwrap();
        let dir = std::env::temp_dir().join(format!("corral-t-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut cmd = match uid {
            None => Command::new(CTL),
            Some(uid) => {
                std::os::unix::fs::chown(&dir, Some(uid), Some(uid)).unwrap();
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={uid}"))
                    .arg("--clear-groups")
                    .arg("--")
                    .arg(CTL);
                c
            }
        };
        let child = cmd
            .envs(env.iter().copied())
            .arg("daemon")
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--runtime-dir")
            .arg(dir.join("run"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::process::Stdio::from(
                std::fs::File::create(
                    std::env::temp_dir().join(format!("corral-t-{tag}-{}.log", std::process::id())),
                )
                .unwrap(),
            ))
            .spawn()
            .unwrap();
        let d = Daemon {
            dir,
            child: Some(child),
        };
        let t0 = Instant::now();
        while !d.socket().exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "daemon did not start"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        d
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("run/admin.sock")
    }

    pub fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Runs corralctl with `args`.
    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new(CTL)
            .env("CORRAL_ADMIN_SOCKET", self.socket())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs corralctl, asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.ctl(args);
        assert!(
            o.status.success(),
            "corralctl {args:?} failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Runs corralctl, asserting exit code `code`; returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let o = self.ctl(args);
        assert_eq!(
            o.status.code(),
            Some(code),
            "corralctl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stderr).unwrap()
    }

    /// `run -p QUBE CMD` and its stdout.
    pub fn sh(&self, qube: &str, cmd: &str) -> String {
        self.ok(&["run", "-p", qube, cmd])
    }

    /// A host template `host` as default, and an AppVM `work` (blue).
    pub fn with_work(self) -> Self {
        self.ok(&[
            "create",
            "host",
            "--class",
            "templatevm",
            "--label",
            "black",
        ]);
        self.ok(&["global-prefs", "default_template", "host"]);
        self.ok(&["create", "work", "--label", "blue"]);
        self
    }

    /// The cgroup directory of this daemon's qubes, if cgroups are in use.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for base in ["/sys/fs/cgroup/corral", "/sys/fs/cgroup/unified/corral"] {
            if let Ok(rd) = std::fs::read_dir(base) {
                for e in rd.flatten() {
                    out.push(e.path());
                }
            }
        }
        out
    }
}

impl Daemon {
    /// Stops the daemon (SIGTERM: it kills its qubes) and starts a new one on the same
    /// directories.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn_again();
    }

    /// SIGKILLs the daemon (a crash: it cannot clean up) and starts a new one on the same
    /// directories.
    pub fn crash_and_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        self.spawn_again();
    }

    fn spawn_again(&mut self) {
        let child = Command::new(CTL)
            .arg("daemon")
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .arg("--runtime-dir")
            .arg(self.dir.join("run"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let t0 = Instant::now();
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "daemon did not restart"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let t0 = Instant::now();
            while c.try_wait().ok().flatten().is_none() {
                if t0.elapsed() > Duration::from_secs(10) {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
        let mut log = self.dir.clone().into_os_string();
        log.push(".log");
        let _ = std::fs::remove_file(log);
    }
}

/// Host pids whose command line contains `marker`.
pub fn pids_with(marker: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(marker) && pid != std::process::id() as i32 {
                out.push(pid);
            }
        }
    }
    out
}

pub fn count_entries(p: &Path) -> usize {
    std::fs::read_dir(p).map(|r| r.count()).unwrap_or(0)
}
