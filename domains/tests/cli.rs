//! `corralctl` as a user meets it: output formats, errors and exit codes.

mod common;

use std::process::Command;

use common::{CTL, Daemon};

const SUBCOMMANDS: &[&str] = &[
    "daemon",
    "ls",
    "create",
    "clone",
    "rename",
    "remove",
    "prefs",
    "features",
    "apps",
    "launch",
    "global-prefs",
    "label",
    "start",
    "shutdown",
    "kill",
    "pause",
    "unpause",
    "run",
    "template",
    "policy",
    "check-name",
];

#[test]
fn policy_check_prints_the_deciding_line_and_exits_by_decision() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let dir = tempfile_dir();
    for f in [
        "config/policy.d/50-clipboard.policy",
        "config/policy-examples/30-clipboard-seed001.policy",
    ] {
        let src = repo.join(f);
        std::fs::copy(&src, dir.join(src.file_name().unwrap())).unwrap();
    }
    let check = |source: &str, target: &str| {
        let o = Command::new(CTL)
            .args([
                "policy",
                "check",
                "corral.ClipboardPaste",
                source,
                target,
                "--policy-dir",
            ])
            .arg(&dir)
            .output()
            .unwrap();
        (o.status.code(), String::from_utf8(o.stdout).unwrap())
    };
    let (code, text) = check("personal", "untrusted");
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(": allow") && text.contains("30-clipboard-seed001.policy:"),
        "{text}"
    );
    let (code, text) = check("untrusted", "personal");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains(": deny"), "{text}");
    // Qubes outside the example keep the shipped default.
    let (code, text) = check("vault", "banking");
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(": ask") && text.contains("50-clipboard.policy:"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("corralctl-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_subcommand_has_help() {
    for sub in SUBCOMMANDS {
        let o = Command::new(CTL).args([sub, "--help"]).output().unwrap();
        assert!(o.status.success(), "{sub} --help");
        let text = String::from_utf8(o.stdout).unwrap();
        assert!(text.contains("Usage: corralctl"), "{sub}: {text}");
    }
    let o = Command::new(CTL).arg("--help").output().unwrap();
    let text = String::from_utf8(o.stdout).unwrap();
    for sub in SUBCOMMANDS {
        assert!(text.contains(sub), "top-level help lacks {sub}");
    }
}

#[test]
fn usage_errors_exit_2_and_no_manager_exits_3() {
    let o = Command::new(CTL).args(["create"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = Command::new(CTL).args(["frobnicate"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = Command::new(CTL)
        .args(["--socket", "/nonexistent/corral.sock", "ls"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    let e = String::from_utf8(o.stderr).unwrap();
    assert!(
        e.contains("cannot reach the domain manager") && e.contains("corralctl daemon"),
        "{e}"
    );
}

#[test]
fn refusals_are_clear_and_exit_1() {
    let d = Daemon::start("cli-errors").with_work();
    let cases: &[(&[&str], &str)] = &[
        (&["prefs", "nope"], "no such qube: nope"),
        (
            &["create", "1bad", "--label", "red"],
            "must start with a letter",
        ),
        (&["create", "dom0", "--label", "red"], "reserved"),
        (&["create", "x", "--label", "mauve"], "no such label: mauve"),
        (
            &["create", "x", "--template", "work", "--label", "red"],
            "template work is a AppVM, but must be a TemplateVM",
        ),
        (
            &["create", "x", "--template", "ghost", "--label", "red"],
            "template ghost does not exist",
        ),
        (&["create", "work", "--label", "red"], "already exists"),
        (
            &["create", "x", "--class", "adminvm", "--label", "red"],
            "exactly one AdminVM",
        ),
        (
            &["prefs", "work", "netvm", "host"],
            "does not provide network",
        ),
        (
            &["prefs", "work", "memory", "lots"],
            "memory must be a whole number",
        ),
        (&["prefs", "work", "colour"], "no such property: colour"),
        (&["prefs", "work", "name", "x"], "read-only"),
        (&["features", "work", "nope"], "no such feature: nope"),
        (&["shutdown", "work"], "work is not running"),
        (&["unpause", "work"], "work is not running"),
        (
            &["run", "--dispvm", "-p", "true"],
            "no global default_dispvm",
        ),
        (&["label", "add", "Bad", "#000000"], "label name"),
        (
            &["global-prefs", "default_netvm", "work"],
            "provides_network",
        ),
    ];
    for (args, want) in cases {
        let e = d.fails(args, 1);
        assert!(
            e.starts_with("corralctl: ") && e.contains(want),
            "{args:?}: {e}"
        );
    }
}

#[test]
fn ls_prefs_features_and_labels_read_like_qubes() {
    let d = Daemon::start("cli-out").with_work();
    let ls = d.ok(&["ls"]);
    let lines: Vec<&str> = ls.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("STATE") && lines[0].contains("CLASS")
    );
    assert!(lines[1].starts_with("dom0") && lines[1].contains("AdminVM"));
    // Columns are aligned: STATE starts at the same offset on every line.
    let col = lines[0].find("STATE").unwrap();
    for l in &lines[1..] {
        assert!(
            l[col..].starts_with("Halted") || l[col..].starts_with("Running"),
            "{ls}"
        );
    }
    let json: serde_json::Value = serde_json::from_str(&d.ok(&["ls", "--json"])).unwrap();
    let work = json
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "work")
        .unwrap();
    assert_eq!(work["label"], "blue");
    assert_eq!(work["color"], "#3465a4");
    assert_eq!(work["template"], "host");

    let prefs = d.ok(&["prefs", "work"]);
    assert!(
        prefs
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["memory", "D", "400"]),
        "{prefs}"
    );
    assert!(
        prefs
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["label", "-", "blue"])
    );
    d.ok(&["prefs", "work", "memory", "1024"]);
    assert_eq!(d.ok(&["prefs", "work", "memory"]), "1024\n");
    d.ok(&["prefs", "work", "label", "green"]);
    assert_eq!(d.ok(&["prefs", "work", "label"]), "green\n");

    d.ok(&["features", "work", "gui", "1"]);
    d.ok(&["features", "work", "menu-items", "firefox.desktop"]);
    assert_eq!(d.ok(&["features", "work", "gui"]), "1\n");
    assert!(
        d.ok(&["features", "work"])
            .contains("menu-items  firefox.desktop")
    );
    d.ok(&["features", "work", "gui", "--delete"]);
    assert!(!d.ok(&["features", "work"]).contains("gui"));

    d.ok(&["label", "add", "teal", "#008080"]);
    let labels = d.ok(&["label", "list"]);
    assert!(
        labels
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["9", "teal", "#008080"]),
        "{labels}"
    );
    assert!(
        labels
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["6", "blue", "#3465a4"])
    );
    d.ok(&["prefs", "work", "label", "teal"]);
    assert_eq!(d.ok(&["template", "list"]), "host\n");
    assert!(
        d.ok(&["global-prefs"])
            .contains("default_template  -  host")
    );
}

#[test]
fn run_pass_io_joins_stdio_and_returns_the_exit_status() {
    let d = Daemon::start("cli-run").with_work();
    let mut child = Command::new(CTL)
        .env("CORRAL_ADMIN_SOCKET", d.socket())
        .args([
            "run",
            "-p",
            "work",
            "--",
            "sh",
            "-c",
            "tr a-z A-Z; echo err >&2; exit 42",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(42));
    assert_eq!(o.stdout, b"HELLO\n");
    assert_eq!(o.stderr, b"err\n");
    // A command killed by a signal: 128 + N, as a shell reports it.
    assert_eq!(
        d.ctl(&["run", "-p", "work", "kill -9 $$"]).status.code(),
        Some(137)
    );
    // A missing command fails inside the qube (env's 127).
    assert_eq!(
        d.ctl(&["run", "-p", "work", "--", "no-such-command"])
            .status
            .code(),
        Some(127)
    );
    // Without -p, run returns at once and the command keeps running in the qube.
    d.ok(&["run", "work", "sleep 0.2; echo done > ~/bg"]);
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert_eq!(d.sh("work", "cat ~/bg"), "done\n");
}

#[test]
fn the_api_refuses_oversized_and_malformed_requests() {
    use std::io::{BufRead, BufReader, Write};
    let d = Daemon::start("cli-api").with_work();
    let mut s = std::os::unix::net::UnixStream::connect(d.socket()).unwrap();
    s.write_all(b"{\"op\":\"frob\"}\n").unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(
        line.contains("\"bad-request\"") && line.contains("frob"),
        "{line}"
    );
    s.write_all(b"{\"op\":\"list\"}\n").unwrap();
    line.clear();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("{\"ok\":["), "{line}");
    // A line over the limit is refused and the connection closed.
    let big = vec![b'x'; corral_domains::api::MAX_REQUEST + 10_000];
    let _ = s.write_all(&big);
    line.clear();
    r.read_line(&mut line).unwrap();
    assert!(line.contains("longer than"), "{line}");
    // The manager still serves others.
    assert!(d.ok(&["ls"]).contains("work"));
}
