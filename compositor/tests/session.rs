//! The installed session pieces and the udev backend's start, with real processes: the
//! `.desktop` file (checked by `desktop-file-validate`), `scripts/corral-session`,
//! `scripts/install.sh` into a staging directory, and `corral --backend udev` on a machine
//! where it must fail with a clear message.
//!
//! Nothing here opens a real GPU or takes a real seat: libseat is pointed at a seatd socket that
//! does not exist (no seat), or at its `noop` backend together with `CORRAL_DRM_DEVICE=/dev/null`
//! (a seat, but no DRM device) — safe on a developer's machine inside a running desktop too.

mod common;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TempDir, skip};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn corral() -> &'static str {
    env!("CARGO_BIN_EXE_corral")
}

/// Runs a command with no stdin and a 20 s limit; returns (exit code, stdout, stderr).
fn run(cmd: &mut Command) -> (i32, String, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the command");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code().unwrap_or(-1), out, err)
}

fn runtime_dir(dir: &TempDir) -> PathBuf {
    let runtime = dir.0.join("runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    runtime
}

/// `corral --backend udev` in a private runtime directory, with the given environment.
fn corral_udev(dir: &TempDir, env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(corral());
    cmd.args(["--backend", "udev", "--ipc-socket"])
        .arg(dir.0.join("ipc.sock"))
        .env("XDG_RUNTIME_DIR", runtime_dir(dir))
        .env_remove("CORRAL_DRM_DEVICE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

fn validate_desktop_file(path: &Path) {
    match Command::new("desktop-file-validate").arg(path).output() {
        Ok(out) => assert!(
            out.status.success() && out.stdout.is_empty(),
            "desktop-file-validate {}: {}{}",
            path.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => skip("desktop-file-validate is missing (Debian: desktop-file-utils)"),
    }
}

fn desktop_key(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_owned)
}

#[test]
fn the_session_desktop_file_is_valid_and_runs_corral_session() {
    let path = repo().join("config/corral.desktop");
    validate_desktop_file(&path);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("[Desktop Entry]\n"));
    assert_eq!(desktop_key(&text, "Type").as_deref(), Some("Application"));
    assert_eq!(desktop_key(&text, "Name").as_deref(), Some("Corral"));
    assert_eq!(
        desktop_key(&text, "Exec").as_deref(),
        Some("corral-session")
    );
    assert_eq!(
        desktop_key(&text, "TryExec").as_deref(),
        Some("corral-session")
    );
}

#[test]
fn udev_without_a_seat_fails_with_a_clear_message() {
    let dir = TempDir::new("udev-noseat");
    // libseat's seatd backend, pointed at a socket that does not exist: no seat, anywhere.
    let (code, _, err) = corral_udev(
        &dir,
        &[
            ("LIBSEAT_BACKEND", "seatd"),
            ("SEATD_SOCK", "/nonexistent/corral-test/seatd.sock"),
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("corral: the udev backend found no seat to take"),
        "{err}"
    );
    assert!(err.contains("seatd") && err.contains("logind"), "{err}");
    assert!(err.contains("--backend winit"), "{err}");
    // It failed before serving anything.
    assert!(!dir.0.join("ipc.sock").exists());
}

#[test]
fn udev_with_a_device_that_is_not_a_gpu_fails_with_a_clear_message() {
    let dir = TempDir::new("udev-notdrm");
    let (code, _, err) = corral_udev(
        &dir,
        &[
            ("LIBSEAT_BACKEND", "noop"),
            ("CORRAL_DRM_DEVICE", "/dev/null"),
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("corral: /dev/null is not a DRM device node"),
        "{err}"
    );
}

#[test]
fn udev_without_a_gpu_fails_with_a_clear_message() {
    let has_gpu = std::fs::read_dir("/dev/dri").is_ok_and(|mut d| {
        d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("card")))
    });
    if has_gpu {
        // Never take a real GPU from a test (it would blank the screen of a running desktop).
        eprintln!("skipped: this machine has a GPU (/dev/dri/card*); the check needs none");
        return;
    }
    let dir = TempDir::new("udev-nogpu");
    let (code, _, err) = corral_udev(&dir, &[("LIBSEAT_BACKEND", "noop")]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "corral: the udev backend found no DRM device (a GPU with KMS, /dev/dri/card*) on seat"
        ),
        "{err}"
    );
    assert!(err.contains("--backend headless"), "{err}");
}

#[test]
fn help_names_the_udev_backend() {
    let (code, out, _) = run(Command::new(corral()).arg("--help"));
    assert_eq!(code, 0);
    assert!(out.contains("udev"), "{out}");
    // Not a value clap would refuse.
    let dir = TempDir::new("udev-value");
    let (code, _, err) = corral_udev(
        &dir,
        &[
            ("LIBSEAT_BACKEND", "seatd"),
            ("SEATD_SOCK", "/nonexistent/corral-test/seatd.sock"),
        ],
    );
    assert_eq!(code, 1);
    assert!(!err.contains("invalid value"), "{err}");
}

fn session_script() -> PathBuf {
    repo().join("scripts/corral-session")
}

#[test]
fn corral_session_runs_corral_on_udev_with_the_domain_manager() {
    let dir = TempDir::new("session-print");
    let (code, out, err) = run(Command::new(session_script())
        .args(["--print", "--gui-socket", "--border", "6"])
        .env("CORRAL_BIN", corral())
        .env("XDG_RUNTIME_DIR", runtime_dir(&dir)));
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec![
            corral(),
            "--backend",
            "udev",
            "--domains",
            "--gui-socket",
            "--border",
            "6"
        ]
    );

    // Without CORRAL_BIN: the corral next to the script.
    let bin = dir.0.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(session_script(), bin.join("corral-session")).unwrap();
    std::os::unix::fs::symlink(corral(), bin.join("corral")).unwrap();
    let (code, out, err) = run(Command::new(bin.join("corral-session"))
        .arg("--print")
        .env_remove("CORRAL_BIN")
        .env("XDG_RUNTIME_DIR", runtime_dir(&dir)));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().next(),
        Some(bin.join("corral").to_str().unwrap())
    );

    let (code, out, _) = run(Command::new(session_script()).arg("--help"));
    assert_eq!(code, 0);
    assert!(out.contains("corral --backend udev --domains"), "{out}");
}

#[test]
fn corral_session_refuses_clearly() {
    let dir = TempDir::new("session-errors");
    // No corral anywhere: a copy of the script alone, a PATH without corral.
    let lonely = dir.0.join("lonely");
    std::fs::create_dir_all(&lonely).unwrap();
    std::fs::copy(session_script(), lonely.join("corral-session")).unwrap();
    let (code, _, err) = run(Command::new(lonely.join("corral-session"))
        .env_remove("CORRAL_BIN")
        .env("PATH", "/usr/bin:/bin")
        .env("XDG_RUNTIME_DIR", runtime_dir(&dir)));
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("cannot find the corral binary"), "{err}");

    let (code, _, err) = run(Command::new(session_script())
        .env("CORRAL_BIN", corral())
        .env_remove("XDG_RUNTIME_DIR"));
    assert_eq!(code, 1);
    assert!(err.contains("XDG_RUNTIME_DIR is not set"), "{err}");

    let (code, _, err) = run(Command::new(session_script())
        .env("CORRAL_BIN", corral())
        .env("CORRAL_SESSION_LOG", "syslog")
        .env("XDG_RUNTIME_DIR", runtime_dir(&dir)));
    assert_eq!(code, 2);
    assert!(err.contains("must be journal, file or stderr"), "{err}");
}

#[test]
fn corral_session_logs_to_a_file_without_journald_and_keeps_the_last_log() {
    let dir = TempDir::new("session-log");
    let state = dir.0.join("state");
    let start = || {
        run(Command::new(session_script())
            .env("CORRAL_BIN", corral())
            .env("CORRAL_SESSION_LOG", "file")
            .env("XDG_STATE_HOME", &state)
            .env("XDG_RUNTIME_DIR", runtime_dir(&dir))
            // A seat, but a "GPU" that is not one: corral stops right after starting.
            .env("LIBSEAT_BACKEND", "noop")
            .env("CORRAL_DRM_DEVICE", "/dev/null"))
    };
    let (code, out, err) = start();
    // The session's exit status is corral's.
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.is_empty() && err.is_empty(), "{out}{err}");
    let log = state.join("corral/session.log");
    let first = std::fs::read_to_string(&log).unwrap();
    assert!(
        first.contains("/dev/null is not a DRM device node"),
        "{first}"
    );
    let (code, _, _) = start();
    assert_eq!(code, 1);
    assert_eq!(
        std::fs::read_to_string(state.join("corral/session.log.old")).unwrap(),
        first
    );
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("not a DRM device node")
    );
}

#[test]
fn install_sh_stages_everything_under_destdir() {
    let bin_dir = Path::new(corral()).parent().unwrap().to_path_buf();
    for b in ["corral-agent", "corralctl"] {
        if !bin_dir.join(b).exists() {
            skip(&format!(
                "{b} is not built in {} (cargo build --workspace)",
                bin_dir.display()
            ));
            return;
        }
    }
    let dir = TempDir::new("install");
    let root = dir.0.join("root");
    let install = |extra: &[&str]| {
        run(Command::new(repo().join("scripts/install.sh"))
            .arg("--destdir")
            .arg(&root)
            .arg("--bin-dir")
            .arg(&bin_dir)
            .args(extra))
    };
    let (code, out, err) = install(&[]);
    assert_eq!(code, 0, "{out}{err}");

    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    for b in ["corral", "corral-agent", "corralctl", "corral-session"] {
        let p = root.join("usr/local/bin").join(b);
        assert_eq!(mode(&p), 0o755, "{}", p.display());
    }
    assert_eq!(
        std::fs::read(root.join("usr/local/bin/corral")).unwrap(),
        std::fs::read(corral()).unwrap()
    );
    let session = root.join("usr/share/wayland-sessions/corral.desktop");
    assert_eq!(mode(&session), 0o644);
    validate_desktop_file(&session);
    let text = std::fs::read_to_string(&session).unwrap();
    assert_eq!(
        desktop_key(&text, "Exec").as_deref(),
        Some("/usr/local/bin/corral-session")
    );
    assert_eq!(
        desktop_key(&text, "TryExec").as_deref(),
        Some("/usr/local/bin/corral-session")
    );
    for theme in ["default.toml", "high-contrast.toml"] {
        assert_eq!(
            std::fs::read(root.join("usr/share/corral/themes").join(theme)).unwrap(),
            std::fs::read(repo().join("themes").join(theme)).unwrap()
        );
    }
    let config = root.join("etc/corral/config.toml");
    assert_eq!(
        std::fs::read(&config).unwrap(),
        std::fs::read(repo().join("config/corral.toml")).unwrap()
    );
    assert!(
        root.join("etc/corral/policy.d/50-clipboard.policy")
            .exists()
    );
    // The lock screen's PAM service (without it PAM falls back to /etc/pam.d/other).
    assert_eq!(
        std::fs::read(root.join("etc/pam.d/corral")).unwrap(),
        std::fs::read(repo().join("config/pam.d/corral")).unwrap()
    );

    // The installed entry point finds the installed corral next to it.
    let (code, out, err) = run(Command::new(root.join("usr/local/bin/corral-session"))
        .arg("--print")
        .env_remove("CORRAL_BIN")
        .env("XDG_RUNTIME_DIR", runtime_dir(&dir)));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().next(),
        Some(root.join("usr/local/bin/corral").to_str().unwrap())
    );

    // Again, over a config the administrator edited: the edit stays, the shipped file lands
    // next to it.
    std::fs::write(&config, "theme = \"high-contrast\"\n").unwrap();
    let (code, out, err) = install(&["--prefix", "/opt/corral"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "theme = \"high-contrast\"\n"
    );
    assert_eq!(
        std::fs::read(root.join("etc/corral/config.toml.new")).unwrap(),
        std::fs::read(repo().join("config/corral.toml")).unwrap()
    );
    assert!(root.join("opt/corral/bin/corral").exists());
    let text = std::fs::read_to_string(&session).unwrap();
    assert_eq!(
        desktop_key(&text, "Exec").as_deref(),
        Some("/opt/corral/bin/corral-session")
    );

    // Refusals.
    let (code, _, err) = install(&["--prefix", "relative/dir"]);
    assert_eq!(code, 2);
    assert!(err.contains("absolute path"), "{err}");
    let (code, _, err) = run(Command::new(repo().join("scripts/install.sh"))
        .arg("--destdir")
        .arg(&root)
        .arg("--bin-dir")
        .arg(dir.0.join("nothing-here")));
    assert_eq!(code, 1);
    assert!(err.contains("missing in"), "{err}");
}
