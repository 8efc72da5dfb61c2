//! Keeps the WLCS results from regressing: runs every test recorded in `passing.txt` through
//! the `wlcs` runner (Debian package `wlcs`) with this crate's integration library, and fails
//! if any of them does not pass. `scripts/wlcs.sh --survey` re-measures the whole suite.

use std::path::{Path, PathBuf};
use std::process::Command;

const RUNNER: &str = "/usr/lib/x86_64-linux-gnu/wlcs/wlcs";

/// The integration library, built for this run. `cargo test` builds only what the test binary
/// links, and a cdylib is never linked, so the test builds it with the same cargo, profile and
/// target directory (cargo has released its build lock by the time tests run).
fn integration_library() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let target_dir = profile_dir.parent().expect("target directory");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args([
            "build",
            "--quiet",
            "-p",
            "corral-agent-wlcs",
            "--target-dir",
        ])
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("running cargo build");
    assert!(
        status.success(),
        "building the WLCS integration library failed"
    );
    let library = profile_dir.join("libcorral_agent_wlcs.so");
    assert!(library.exists(), "{} was not built", library.display());
    library
}

#[test]
fn recorded_wlcs_tests_still_pass() {
    assert!(
        Path::new(RUNNER).exists(),
        "{RUNNER} is missing: run scripts/install-deps.sh (package wlcs)"
    );
    let list = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("passing.txt"))
        .expect("passing.txt");
    let tests: Vec<&str> = list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(!tests.is_empty());
    let runtime_dir = tempfile::tempdir().unwrap();
    let output = Command::new(RUNNER)
        .arg(integration_library())
        .arg(format!("--gtest_filter={}", tests.join(":")))
        .env("XDG_RUNTIME_DIR", runtime_dir.path())
        .output()
        .expect("running wlcs");
    let log = String::from_utf8_lossy(&output.stdout);
    let passed: Vec<&str> = log
        .lines()
        .filter_map(|l| l.strip_prefix("[       OK ] "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let missing: Vec<&&str> = tests.iter().filter(|t| !passed.contains(t)).collect();
    assert!(
        output.status.success() && missing.is_empty(),
        "WLCS tests recorded as passing did not pass: {missing:?}\n{}",
        log.lines().rev().take(60).collect::<Vec<_>>().join("\n")
    );
}
