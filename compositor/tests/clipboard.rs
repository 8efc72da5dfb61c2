//! The global clipboard end to end: a real `corral` (headless) with real agent processes.
//!
//! - The hostile and timing cases use the protocol test agent of `common/agent.rs` (its
//!   behaviour is chosen by the qube's name: `laggard`, `unasked`, `bigcopy`, `mute`), which
//!   logs every message it receives, so a test sees exactly what reached each qube.
//! - `wl_copy_in_one_qube_reaches_wl_paste_in_another` runs the real `corral-agent` with real
//!   `wl-copy` / `wl-paste` (skipped with a message when they are missing; fails under CI).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::agent::{BIG_COPY, clipboard_text};
use common::{Corral, TempDir};
use corral::clipboard::ClipboardInfo;
use corral::ipc::Request;

#[test]
fn test_agent_entry() {
    common::agent::main_if_agent();
}

/// A policy directory with these files.
fn policy_dir(files: &[(&str, &str)]) -> TempDir {
    let dir = TempDir::new("policy");
    for (name, text) in files {
        std::fs::write(dir.0.join(name), text).unwrap();
    }
    dir
}

const DEFAULT_POLICY: (&str, &str) = (
    "50-clipboard.policy",
    "corral.ClipboardPaste * @anyvm @anyvm ask\n",
);

fn start(tag: &str, qubes: &[&str], policy: &Path, extra: &[&str]) -> Corral {
    let mut args = vec!["--policy-dir", policy.to_str().unwrap()];
    args.extend_from_slice(extra);
    Corral::start_with(
        tag,
        &["1600x900"],
        qubes,
        &common::test_agent_command(),
        &args,
    )
}

fn clipboard(corral: &Corral) -> ClipboardInfo {
    serde_json::from_value(corral.request(&Request::Clipboard).unwrap()).unwrap()
}

fn focus(corral: &Corral, qube: &str) {
    let w = corral.wait_window(qube);
    corral.focus(w.id);
}

/// Waits for a toast whose headline contains `text`; returns (headline, detail).
fn toast(corral: &Corral, text: &str) -> (String, String) {
    corral.wait_for(&format!("a notification {text:?}"), || {
        corral
            .notifications()
            .into_iter()
            .find(|n| n.headline.contains(text))
            .map(|n| (n.headline, n.detail))
    })
}

fn lines(corral: &Corral, qube: &str, prefix: &str) -> Vec<String> {
    corral
        .agent_log(qube)
        .into_iter()
        .filter(|l| l.starts_with(prefix))
        .collect()
}

/// The serials of the copy requests `qube` received.
fn requests(corral: &Corral, qube: &str) -> Vec<u32> {
    lines(corral, qube, "ClipboardRequest ")
        .iter()
        .map(|l| l["ClipboardRequest ".len()..].parse().unwrap())
        .collect()
}

fn paste_line(text: &str) -> String {
    format!("ClipboardPaste text {} {text:?}", text.len())
}

/// Copies from `qube`'s window and waits for the "Copied" toast; returns the request serial.
fn copy_from(corral: &Corral, qube: &str) -> u32 {
    focus(corral, qube);
    let before = requests(corral, qube).len();
    corral.key("ctrl+shift+c");
    let serial = corral.wait_for("the copy request", || {
        requests(corral, qube).get(before).copied()
    });
    corral.wait_for("the copy to land", || {
        (clipboard(corral).source.as_deref() == Some(qube)).then_some(())
    });
    serial
}

fn paste_into(corral: &Corral, qube: &str) {
    focus(corral, qube);
    corral.key("ctrl+shift+v");
}

/// Gives the compositor time to act on anything in flight (a paste that should not happen).
fn settle() {
    std::thread::sleep(Duration::from_millis(400));
}

#[test]
fn copy_then_paste_delivers_to_the_focused_qube_once_and_wipes() {
    let policy = policy_dir(&[DEFAULT_POLICY]);
    let corral = start(
        "clip-once",
        &["work:blue", "personal:yellow", "bystander:green"],
        &policy.0,
        &[],
    );
    corral.wait_window("bystander");
    let serial = copy_from(&corral, "work");
    let secret = clipboard_text("work", serial);
    let (headline, _) = toast(&corral, "Copied");
    assert_eq!(headline, format!("Copied {} bytes from work", secret.len()));
    let info = clipboard(&corral);
    assert_eq!(info.kind.as_deref(), Some("text"));
    assert_eq!(info.size, Some(secret.len()));
    assert!(info.age_ms.is_some());
    // The panel shows where the clipboard's content came from, in that qube's colour.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let image = corral.screenshot("clipboard-panel");
    let m = corral::panel::clipboard_marker(1600);
    image.assert_all(
        "the panel's clipboard marker",
        (m.x, m.y, m.w, m.h),
        0x3465a4,
    );
    // The state is shown, the content never.
    let json = serde_json::to_string(&corral.request(&Request::Clipboard).unwrap()).unwrap();
    assert!(!json.contains("secret"), "{json}");

    paste_into(&corral, "personal");
    corral.wait_for("the paste in personal", || {
        (lines(&corral, "personal", "ClipboardPaste") == [paste_line(&secret)]).then_some(())
    });
    let (_, detail) = toast(&corral, "Pasted into personal");
    assert!(detail.contains("Clipboard wiped"), "{detail}");
    assert!(clipboard(&corral).empty);

    // A second paste finds nothing.
    corral.key("ctrl+shift+v");
    toast(&corral, "Nothing to paste");
    settle();
    assert_eq!(lines(&corral, "personal", "ClipboardPaste").len(), 1);
    // Only the focused qubes were involved: one request to work, one paste to personal.
    assert_eq!(requests(&corral, "work"), [serial]);
    assert!(lines(&corral, "work", "ClipboardPaste").is_empty());
    assert!(lines(&corral, "personal", "ClipboardRequest").is_empty());
    assert!(lines(&corral, "bystander", "Clipboard").is_empty());
    // The shortcut's keys were not forwarded: no c (46) or v (47) reached either qube.
    for qube in ["work", "personal"] {
        for l in lines(&corral, qube, "Key ") {
            assert!(
                !l.starts_with("Key 1 46 ") && !l.starts_with("Key 1 47 "),
                "{qube}: {l}"
            );
        }
    }
}

#[test]
fn keep_after_paste_and_paste_back_into_the_source_is_refused() {
    let policy = policy_dir(&[DEFAULT_POLICY]);
    let corral = start(
        "clip-keep",
        &["work:blue", "personal:yellow", "vault:black"],
        &policy.0,
        &["--clipboard-keep"],
    );
    let serial = copy_from(&corral, "work");
    let secret = clipboard_text("work", serial);
    // Back into work: refused, with a warning.
    corral.key("ctrl+shift+v");
    toast(&corral, "Not pasted back into work");
    paste_into(&corral, "personal");
    paste_into(&corral, "vault");
    corral.wait_for("two pastes", || {
        (lines(&corral, "vault", "ClipboardPaste") == [paste_line(&secret)]).then_some(())
    });
    assert_eq!(
        lines(&corral, "personal", "ClipboardPaste"),
        [paste_line(&secret)]
    );
    assert!(lines(&corral, "work", "ClipboardPaste").is_empty());
    assert!(!clipboard(&corral).empty);
}

#[test]
fn a_deny_rule_sends_nothing_and_names_its_line() {
    let policy = policy_dir(&[
        (
            "10-deny.policy",
            "# work may not paste into personal\n\
             corral.ClipboardPaste * work personal deny\n",
        ),
        DEFAULT_POLICY,
    ]);
    let corral = start(
        "clip-deny",
        &["work:blue", "personal:yellow", "untrusted:red"],
        &policy.0,
        &[],
    );
    copy_from(&corral, "work");
    paste_into(&corral, "personal");
    let (headline, _) = toast(&corral, "denied by policy");
    let file = policy.0.join("10-deny.policy");
    assert_eq!(
        headline,
        format!(
            "Paste from work to personal denied by policy ({}:2)",
            file.display()
        )
    );
    settle();
    assert!(lines(&corral, "personal", "ClipboardPaste").is_empty());
    // A denial does not use up the copy: another qube may still receive it.
    assert!(!clipboard(&corral).empty);
    paste_into(&corral, "untrusted");
    corral.wait_for("the paste in untrusted", || {
        (lines(&corral, "untrusted", "ClipboardPaste").len() == 1).then_some(())
    });
}

#[test]
fn a_policy_with_an_error_denies_everything_and_names_the_line() {
    let policy = policy_dir(&[
        DEFAULT_POLICY,
        (
            "60-typo.policy",
            "# a typo further down still breaks everything\n\n\
             corral.ClipboardPaste * @anyvm @anyvm alow\n",
        ),
    ]);
    let corral = start(
        "clip-broken",
        &["work:blue", "personal:yellow"],
        &policy.0,
        &[],
    );
    copy_from(&corral, "work");
    paste_into(&corral, "personal");
    let (headline, detail) = toast(&corral, "denied by policy");
    let at = format!("{}:3", policy.0.join("60-typo.policy").display());
    assert!(headline.contains(&at), "{headline}");
    assert!(
        detail.contains("invalid") && detail.contains("expected allow, deny or ask"),
        "{detail}"
    );
    settle();
    assert!(lines(&corral, "personal", "ClipboardPaste").is_empty());
}

#[test]
fn a_late_reply_is_dropped_and_only_the_newest_request_counts() {
    let policy = policy_dir(&[DEFAULT_POLICY]);
    let corral = start(
        "clip-late",
        &["laggard:orange", "work:blue", "personal:yellow"],
        &policy.0,
        &[],
    );
    // laggard is asked first and answers 1.5 s later; meanwhile work is asked and answers.
    focus(&corral, "laggard");
    corral.key("ctrl+shift+c");
    corral.wait_for("laggard's request", || {
        (!requests(&corral, "laggard").is_empty()).then_some(())
    });
    let work_serial = copy_from(&corral, "work");
    // laggard's answer to its older request arrives now: dropped.
    std::thread::sleep(Duration::from_millis(2000));
    let info = clipboard(&corral);
    assert_eq!(info.source.as_deref(), Some("work"));
    assert_eq!(info.size, Some(clipboard_text("work", work_serial).len()));
    paste_into(&corral, "personal");
    corral.wait_for("work's data in personal", || {
        (lines(&corral, "personal", "ClipboardPaste")
            == [paste_line(&clipboard_text("work", work_serial))])
        .then_some(())
    });

    // Twice from laggard: both answers come late, only the second request's is taken.
    focus(&corral, "laggard");
    corral.key("ctrl+shift+c");
    corral.wait_for("the first request", || {
        (requests(&corral, "laggard").len() == 2).then_some(())
    });
    corral.key("ctrl+shift+c");
    let serials = corral.wait_for("the second request", || {
        let r = requests(&corral, "laggard");
        (r.len() == 3).then_some(r)
    });
    corral.wait_for("laggard's newest answer", || {
        (clipboard(&corral).source.as_deref() == Some("laggard")).then_some(())
    });
    settle();
    paste_into(&corral, "personal");
    let newest = clipboard_text("laggard", serials[2]);
    corral.wait_for("laggard's newest answer in personal", || {
        (lines(&corral, "personal", "ClipboardPaste").last() == Some(&paste_line(&newest)))
            .then_some(())
    });
    assert_eq!(lines(&corral, "personal", "ClipboardPaste").len(), 2);
}

#[test]
fn unasked_data_is_dropped_and_reaches_nobody() {
    let policy = policy_dir(&[DEFAULT_POLICY]);
    let corral = start(
        "clip-unasked",
        &["unasked:red", "personal:yellow"],
        &policy.0,
        &[],
    );
    corral.wait_window("unasked");
    corral.wait_window("personal");
    // Let it spray its unasked replies over a few frames.
    std::thread::sleep(Duration::from_millis(800));
    assert!(clipboard(&corral).empty);
    paste_into(&corral, "personal");
    toast(&corral, "Nothing to paste");
    settle();
    assert!(lines(&corral, "personal", "ClipboardPaste").is_empty());
    // The qube is not cut off for it (unasked answers are discarded, not a violation).
    assert!(corral.qubes().iter().any(|q| q.name == "unasked"));
}

#[test]
fn an_oversized_reply_is_refused_whole_and_wipes_the_older_copy() {
    let policy = policy_dir(&[DEFAULT_POLICY]);
    let corral = start(
        "clip-big",
        &["work:blue", "bigcopy:purple", "personal:yellow"],
        &policy.0,
        &[],
    );
    copy_from(&corral, "work");
    focus(&corral, "bigcopy");
    corral.key("ctrl+shift+c");
    let (_, detail) = toast(&corral, "Copy from bigcopy refused: too large");
    assert!(
        detail.contains(&corral::clipboard::format_size(BIG_COPY)),
        "{detail}"
    );
    // Nothing partial is kept, and work's older copy is not pasted in its place (QSB-11).
    assert!(clipboard(&corral).empty);
    paste_into(&corral, "personal");
    toast(&corral, "Nothing to paste");
    settle();
    assert!(lines(&corral, "personal", "ClipboardPaste").is_empty());
}

#[test]
fn a_qube_that_does_not_answer_times_out_and_the_timed_wipe_empties_the_buffer() {
    let policy = policy_dir(&[DEFAULT_POLICY]);
    let corral = start(
        "clip-timeout",
        &["mute:gray", "work:blue"],
        &policy.0,
        &[
            "--clipboard-timeout-ms",
            "300",
            "--clipboard-wipe-after",
            "1",
        ],
    );
    focus(&corral, "mute");
    corral.key("ctrl+shift+c");
    toast(&corral, "Copy from mute timed out");
    copy_from(&corral, "work");
    toast(&corral, "Clipboard wiped");
    assert!(clipboard(&corral).empty);
}

#[test]
fn png_images_go_through_the_same_path_and_a_bad_one_is_refused() {
    let policy = policy_dir(&[
        (
            "10-deny.policy",
            "corral.ClipboardPaste * pngcopy work deny\n",
        ),
        DEFAULT_POLICY,
    ]);
    let corral = start(
        "clip-png",
        &[
            "pngcopy:green",
            "badpng:red",
            "personal:yellow",
            "work:blue",
        ],
        &policy.0,
        &[],
    );
    copy_from(&corral, "pngcopy");
    let size = common::agent::png_bytes().len();
    let info = clipboard(&corral);
    assert_eq!((info.kind.as_deref(), info.size), (Some("png"), Some(size)));
    // The same policy applies to images.
    paste_into(&corral, "work");
    toast(&corral, "Paste from pngcopy to work denied by policy");
    paste_into(&corral, "personal");
    corral.wait_for("the image in personal", || {
        (lines(&corral, "personal", "ClipboardPaste") == [format!("ClipboardPaste png {size}")])
            .then_some(())
    });
    assert!(lines(&corral, "work", "ClipboardPaste").is_empty());
    focus(&corral, "badpng");
    corral.key("ctrl+shift+c");
    toast(&corral, "Copy from badpng refused: malformed");
    assert!(clipboard(&corral).empty);
}

#[test]
fn corral_msg_clipboard_shows_the_state_and_caps_are_bounded() {
    let policy = policy_dir(&[DEFAULT_POLICY]);
    let corral = start("clip-cli", &["work:blue"], &policy.0, &[]);
    let msg = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_corral"))
            .arg("msg")
            .arg("--socket")
            .arg(&corral.socket)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(msg(&["clipboard"]).trim(), "empty");
    let serial = copy_from(&corral, "work");
    let line = msg(&["clipboard"]);
    let size = clipboard_text("work", serial).len();
    assert!(
        line.starts_with(&format!("{size} bytes of text from work, copied ")),
        "{line}"
    );
    let json: serde_json::Value = serde_json::from_str(&msg(&["clipboard", "--json"])).unwrap();
    assert_eq!(json["source"], "work");
    assert_eq!(json["kind"], "text");
    assert_eq!(json["size"], size);
    assert!(json["age_ms"].is_u64());
    assert!(!json.to_string().contains("secret"));
    // A cap above the protocol's hard maximum is refused at start.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(["--clipboard-text-max", "99999999"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("between 256 and 16777216"), "{err}");
}

// --- real clients -------------------------------------------------------------------------

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}

/// What `wl-copy` puts on work's clipboard: UTF-8, a tab, a newline, no trailing newline.
const REAL_TEXT: &str = "héllo wörld\tfrom work\nline 2 — ✓";

/// Starts corral with `corral-agent` in `work` (`weston-simple-shm` plus `wl-copy` of
/// [`REAL_TEXT`]) and in the other qubes (`weston-simple-shm` plus a loop writing `wl-paste`'s
/// output to `<dir>/<qube>.paste` every 100 ms, for at most 40 s).
///
/// With `gui`, the GUI domain gets apps too (on `--gui-socket`): `weston-simple-shm`,
/// `wl-copy` of [`GUI_TEXT`] (its 1×1 window sets the selection once focused), and a `wl-paste`
/// started once `<dir>/paste-now` exists, writing to `<dir>/gui.paste`.
fn start_real(tag: &str, qubes: &[&str], policy: &Path, gui: bool) -> Option<(Corral, TempDir)> {
    let agent = Path::new(env!("CARGO_BIN_EXE_corral")).with_file_name("corral-agent");
    if !agent.is_file() {
        common::skip(&format!("{} is not built", agent.display()));
        return None;
    }
    for app in ["weston-simple-shm", "wl-copy", "wl-paste"] {
        if on_path(app).is_none() {
            common::skip(&format!("{app} is not installed"));
            return None;
        }
    }
    let work = TempDir::new(&format!("{tag}-files"));
    std::fs::set_permissions(&work.0, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let runtime = work.0.join("runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::set_permissions(
        &runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let text_file = work.0.join("copy.txt");
    std::fs::write(&text_file, REAL_TEXT).unwrap();
    let script = work.0.join("qube.sh");
    let dir = work.0.display();
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             # $1: the qube's name.\n\
             if [ \"$1\" = work ]; then\n\
             \x20 wl-copy < '{text}'\n\
             \x20 exit 0\n\
             fi\n\
             i=0\n\
             # Ends with the test (its directory goes), or after 40 s.\n\
             while [ -d '{dir}' ] && [ $i -lt 400 ]; do\n\
             \x20 if wl-paste -n > '{dir}/'\"$1\".tmp 2>/dev/null; then\n\
             \x20   mv '{dir}/'\"$1\".tmp '{dir}/'\"$1\".paste\n\
             \x20 fi\n\
             \x20 sleep 0.1\n\
             \x20 i=$((i+1))\n\
             done\n",
            text = text_file.display()
        ),
    )
    .unwrap();
    let command = format!(
        "env XDG_RUNTIME_DIR={} '{}' --gui-fd {{fd}} --exec weston-simple-shm --exec \"sh {} {{name}}\"",
        runtime.display(),
        agent.display(),
        script.display()
    );
    let gui_script = work.0.join("gui.sh");
    std::fs::write(
        &gui_script,
        format!(
            "#!/bin/sh\n\
             if [ \"$1\" = copy ]; then exec wl-copy '{GUI_TEXT}'; fi\n\
             i=0\n\
             while [ -d '{dir}' ] && [ ! -e '{dir}/paste-now' ] && [ $i -lt 400 ]; do sleep 0.1; i=$((i+1)); done\n\
             [ -e '{dir}/paste-now' ] || exit 0\n\
             wl-paste -n > '{dir}/gui.tmp' && mv '{dir}/gui.tmp' '{dir}/gui.paste'\n"
        ),
    )
    .unwrap();
    let mut args = vec![
        "--policy-dir".to_string(),
        policy.to_str().unwrap().to_string(),
    ];
    if gui {
        for a in [
            "--gui-socket".to_string(),
            "--gui-exec".to_string(),
            "weston-simple-shm".to_string(),
            "--gui-exec".to_string(),
            format!("sh {} copy", gui_script.display()),
            "--gui-exec".to_string(),
            format!("sh {} paste", gui_script.display()),
        ] {
            args.push(a);
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let corral = Corral::start_with(tag, &["1600x900"], qubes, &command, &args);
    Some((corral, work))
}

/// What `wl-copy` in the GUI domain copies.
const GUI_TEXT: &str = "from the GUI domain ✓";

fn real_window(corral: &Corral, qube: &str) -> u64 {
    corral.wait_for(&format!("simple-shm in {qube}"), || {
        corral
            .windows()
            .into_iter()
            .find(|w| w.qube == qube && w.title.contains("simple-shm") && w.has_content)
            .map(|w| w.id)
    })
}

#[test]
fn wl_copy_in_one_qube_reaches_wl_paste_in_another() {
    let policy = policy_dir(&[
        (
            "10-deny.policy",
            "corral.ClipboardPaste * work untrusted deny\n",
        ),
        DEFAULT_POLICY,
    ]);
    let Some((corral, files)) = start_real(
        "clip-real",
        &["work:blue", "personal:yellow", "untrusted:red"],
        &policy.0,
        false,
    ) else {
        return;
    };
    let work = real_window(&corral, "work");
    let personal = real_window(&corral, "personal");
    let untrusted = real_window(&corral, "untrusted");
    let pasted = |qube: &str| std::fs::read(files.0.join(format!("{qube}.paste"))).ok();
    // wl-copy has run once work's window is up; give it a moment to own the selection.
    let copy = || {
        corral.focus(work);
        corral.key("ctrl+shift+c");
        // The request is outstanding from the key on; wait for its answer (data or empty).
        let info = corral.wait_for("work's answer", || {
            let info = clipboard(&corral);
            info.pending_from.is_none().then_some(info)
        });
        if info.source.is_none() {
            std::thread::sleep(Duration::from_millis(200));
        }
        info
    };
    let info = corral.wait_for("a copy from work", || {
        let info = copy();
        (info.source.as_deref() == Some("work")).then_some(info)
    });
    assert_eq!(info.size, Some(REAL_TEXT.len()));
    assert_eq!(info.kind.as_deref(), Some("text"));

    // Denied into untrusted: nothing arrives there, and the user is told which line.
    corral.focus(untrusted);
    corral.key("ctrl+shift+v");
    toast(&corral, "Paste from work to untrusted denied by policy");

    corral.focus(personal);
    corral.key("ctrl+shift+v");
    let got = corral.wait_for("wl-paste in personal", || {
        pasted("personal").filter(|b| !b.is_empty())
    });
    assert_eq!(
        got,
        REAL_TEXT.as_bytes(),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    toast(&corral, "Pasted into personal");
    // Paste-once: the buffer is gone, a second paste into untrusted's neighbour delivers nothing.
    assert!(clipboard(&corral).empty);
    corral.key("ctrl+shift+v");
    toast(&corral, "Nothing to paste");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        pasted("untrusted").unwrap_or_default(),
        Vec::<u8>::new(),
        "untrusted must never see the data"
    );
}

/// A window of the GUI domain's `wl-clipboard` helper surface (wl-copy / wl-paste), if shown.
fn wl_clipboard_window(corral: &Corral) -> Option<u64> {
    corral
        .windows()
        .into_iter()
        .find(|w| w.qube == "corral" && w.title == "wl-clipboard")
        .map(|w| w.id)
}

/// Copies from work (its `wl-copy` may need a moment to own the selection).
fn copy_real_work(corral: &Corral, work: u64) {
    corral.wait_for("a copy from work", || {
        corral.focus(work);
        corral.key("ctrl+shift+c");
        let info = corral.wait_for("work's answer", || {
            let info = clipboard(corral);
            info.pending_from.is_none().then_some(info)
        });
        if info.source.is_none() {
            std::thread::sleep(Duration::from_millis(200));
        }
        (info.source.as_deref() == Some("work")).then_some(())
    });
}

#[test]
fn the_gui_domains_own_apps_copy_and_paste_as_adminvm() {
    // The shipped default, which names @adminvm on both sides.
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/policy.d/50-clipboard.policy"),
    )
    .unwrap();
    let policy = policy_dir(&[("50-clipboard.policy", &shipped)]);
    let Some((corral, files)) = start_real(
        "clip-gui",
        &["work:blue", "personal:yellow"],
        &policy.0,
        true,
    ) else {
        return;
    };
    let work = real_window(&corral, "work");
    let personal = real_window(&corral, "personal");
    let gui_app = real_window(&corral, "corral");
    let read = |name: &str| std::fs::read(files.0.join(name)).ok();

    // wl-copy in the GUI domain takes the selection once its surface has focus.
    let helper = corral.wait_for("wl-copy's surface", || wl_clipboard_window(&corral));
    corral.focus(helper);
    corral.wait_for("wl-copy to set the selection", || {
        wl_clipboard_window(&corral).is_none().then_some(())
    });
    // GUI domain -> personal.
    corral.focus(gui_app);
    corral.key("ctrl+shift+c");
    corral.wait_for("the GUI domain's selection in the global clipboard", || {
        (clipboard(&corral).source.as_deref() == Some("corral")).then_some(())
    });
    toast(&corral, "from corral");
    corral.focus(personal);
    corral.key("ctrl+shift+v");
    let got = corral.wait_for("wl-paste in personal", || {
        read("personal.paste").filter(|b| !b.is_empty())
    });
    assert_eq!(got, GUI_TEXT.as_bytes());

    // work -> GUI domain.
    copy_real_work(&corral, work);
    corral.focus(gui_app);
    corral.key("ctrl+shift+v");
    toast(&corral, "Pasted into corral");
    std::fs::write(files.0.join("paste-now"), b"").unwrap();
    let helper = corral.wait_for("wl-paste's surface", || wl_clipboard_window(&corral));
    corral.focus(helper);
    let got = corral.wait_for("wl-paste in the GUI domain", || read("gui.paste"));
    assert_eq!(
        got,
        REAL_TEXT.as_bytes(),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
}
