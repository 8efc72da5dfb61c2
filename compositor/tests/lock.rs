//! The lock screen, end to end on the headless backend: a real `corral`, real agent processes
//! (this binary re-run as a protocol agent), real PAM with a real user, and a real GUI-domain
//! locker (swaylock, Debian package `swaylock`) on the trusted local socket.
//!
//! The PAM tests need root: they create a user with `useradd` and `chpasswd` and a PAM service
//! file `/etc/pam.d/corral-test-<pid>-<n>` (`pam-client` has no way to read services from
//! another directory), and remove both when the test ends. Without root, `useradd` or
//! swaylock they are skipped with a message, and fail under `CI`.

mod common;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{Corral, Image, agent, hex, skip, test_agent_command};
use corral::ipc::Request;
use corral::lock::ui::{LOCK_BACKGROUND, PANEL, PANEL_H, panel_rect};
use corral::lock::{Holder, LockInfo};

/// The entry point of the agent processes (does nothing when run as a test).
#[test]
fn test_agent_entry() {
    agent::main_if_agent();
}

/// Lines of an agent's log that are input: none of them may arrive while locked.
const INPUT: [&str; 5] = ["Key ", "KeyboardEnter", "Modifiers", "Pointer", "Clipboard"];

fn lock_state(corral: &Corral) -> LockInfo {
    serde_json::from_value(corral.request(&Request::LockState).unwrap()).unwrap()
}

fn lock(corral: &Corral) -> LockInfo {
    serde_json::from_value(corral.request(&Request::Lock).unwrap()).unwrap()
}

fn type_text(corral: &Corral, text: &str) {
    for ch in text.chars() {
        corral.key(&ch.to_string());
    }
}

fn rgb(c: corral::labels::Rgb) -> u32 {
    (u32::from(c.r) << 16) | (u32::from(c.g) << 8) | u32::from(c.b)
}

/// The input lines an agent logged after its first `after` lines.
fn input_since(corral: &Corral, qube: &str, after: usize) -> Vec<String> {
    corral
        .agent_log(qube)
        .into_iter()
        .skip(after)
        .filter(|l| INPUT.iter().any(|p| l.starts_with(p)))
        .collect()
}

/// Waits for the lock to take the keyboard from `qube`'s focused window; returns the log
/// length from which nothing may be input.
fn wait_keyboard_leave(corral: &Corral, qube: &str) -> usize {
    corral.wait_for(&format!("{qube}'s keyboard_leave"), || {
        let log = corral.agent_log(qube);
        log.iter()
            .position(|l| l.starts_with("KeyboardLeave"))
            .map(|_| log.len())
    })
}

/// Checks one output of a locked screenshot: the lock fill in the corners and the panel in the
/// middle, and none of `forbidden` anywhere on it.
fn assert_lock_screen(image: &Image, output: (i32, i32, i32, i32), forbidden: &[u32]) {
    let (ox, oy, w, h) = output;
    let fill = rgb(LOCK_BACKGROUND);
    for (x, y) in [
        (ox + 2, oy + 2),
        (ox + w - 3, oy + 2),
        (ox + 2, oy + h - 3),
        (ox + w - 3, oy + h - 3),
    ] {
        assert_eq!(image.rgb(x, y), fill, "lock fill at ({x}, {y})");
    }
    let p = panel_rect(corral::layout::Rect::new(0, 0, w, h));
    // A strip near the panel's bottom holds no text: plain panel colour.
    image.assert_all(
        "the lock panel",
        (ox + p.x + 8, oy + p.y + PANEL_H - 14, p.w - 16, 6),
        rgb(PANEL),
    );
    for y in oy..oy + h {
        for x in ox..ox + w {
            let px = image.rgb(x, y);
            assert!(
                !forbidden.contains(&px),
                "({x}, {y}) shows #{px:06x}, a qube's colour, while locked"
            );
        }
    }
}

/// Colours that only a qube window puts on screen: its label's frame and its agent's pixels.
fn qube_colours(qubes: &[(&str, &str)]) -> Vec<u32> {
    let mut out = Vec::new();
    for (name, label) in qubes {
        out.push(rgb(corral::labels::Label::parse(label).unwrap().colour));
        let (bg, square, _) = agent::colours(name);
        out.extend([bg, square]);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// A PAM test user

static USERS: Mutex<()> = Mutex::new(());
static NEXT_USER: AtomicU32 = AtomicU32::new(0);

/// A user with a known password and a PAM service checking it with pam_unix, both removed on
/// drop. Needs root and the shadow tools.
struct PamUser {
    name: String,
    password: String,
    service: String,
}

impl PamUser {
    /// A user checked by pam_unix alone: the password in /etc/shadow, no delay after a failure.
    fn create() -> Option<PamUser> {
        PamUser::with_service(
            "# corral lock tests; removed when the test ends\n\
             auth    required pam_unix.so nodelay\n\
             account required pam_unix.so\n",
        )
    }

    /// A user, and a PAM service with `body` as its file.
    fn with_service(body: &str) -> Option<PamUser> {
        if !rustix::process::geteuid().is_root() {
            skip("creating a PAM test user needs root");
            return None;
        }
        for tool in ["useradd", "chpasswd", "userdel"] {
            if which(tool).is_none() {
                skip(&format!("{tool} is not installed (Debian package passwd)"));
                return None;
            }
        }
        let n = NEXT_USER.fetch_add(1, Ordering::Relaxed);
        let name = format!("crllock{}x{n}", std::process::id());
        let service = format!("corral-test-{}-{n}", std::process::id());
        let password = format!("lock{n}pass9");
        let _guard = USERS.lock().unwrap_or_else(|e| e.into_inner());
        let _ = Command::new("userdel").arg(&name).output();
        let out = Command::new("useradd")
            .args(["--no-create-home", "--shell", "/usr/sbin/nologin"])
            .arg(&name)
            .output()
            .expect("running useradd");
        assert!(
            out.status.success(),
            "useradd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let user = PamUser {
            name,
            password,
            service,
        };
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .expect("running chpasswd");
        writeln!(
            chpasswd.stdin.take().unwrap(),
            "{}:{}",
            user.name,
            user.password
        )
        .unwrap();
        assert!(chpasswd.wait().unwrap().success(), "chpasswd failed");
        std::fs::write(user.service_path(), body).expect("writing the test PAM service");
        Some(user)
    }

    fn service_path(&self) -> String {
        format!("/etc/pam.d/{}", self.service)
    }

    fn args(&self) -> Vec<String> {
        vec![
            "--lock-user".into(),
            self.name.clone(),
            "--lock-pam-service".into(),
            self.service.clone(),
        ]
    }
}

impl Drop for PamUser {
    fn drop(&mut self) {
        let _guard = USERS.lock().unwrap_or_else(|e| e.into_inner());
        let _ = std::fs::remove_file(self.service_path());
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}

fn which(tool: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

fn start(tag: &str, sizes: &[&str], qubes: &[&str], extra: &[String]) -> Corral {
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    Corral::start_with(tag, sizes, qubes, &test_agent_command(), &extra)
}

// ---------------------------------------------------------------------------------------------

#[test]
fn a_wrong_password_keeps_the_lock_and_the_right_one_unlocks() {
    let Some(user) = PamUser::create() else {
        return;
    };
    let corral = start("lock-pam", &["1280x720"], &["work:blue"], &user.args());
    let work = corral.wait_window("work");
    corral.focus(work.id);
    corral.key("a");
    corral.wait_for("work's key", || {
        corral
            .agent_log("work")
            .iter()
            .any(|l| l == "Key 1 30 0")
            .then_some(())
    });

    let info = lock(&corral);
    assert!(info.locked);
    assert_eq!(info.holder, Some(Holder::Builtin));
    assert_eq!(info.user, user.name);
    let from = wait_keyboard_leave(&corral, "work");

    type_text(&corral, "wrongpass");
    assert_eq!(lock_state(&corral).typed, 9);
    corral.key("Return");
    let info = corral.wait_for("the wrong password's verdict", || {
        let i = lock_state(&corral);
        (!i.checking && i.failures == 1).then_some(i)
    });
    assert!(info.locked, "a wrong password unlocked");
    assert_eq!(info.typed, 0);
    assert_eq!(info.message.as_deref(), Some("Wrong password"));
    let shot = corral.screenshot("lock-wrong-password");
    assert_lock_screen(&shot, (0, 0, 1280, 720), &qube_colours(&[("work", "blue")]));

    type_text(&corral, &user.password);
    // Nothing typed so far reached the qube.
    assert_eq!(input_since(&corral, "work", from), Vec::<String>::new());
    corral.key("Return");
    corral.wait_for("the unlock", || (!lock_state(&corral).locked).then_some(()));
    let info = lock_state(&corral);
    assert_eq!((info.holder, info.failures, info.typed), (None, 0, 0));

    // Focus is back where the user left it: the next key reaches work again.
    corral.key("b");
    corral.wait_for("work's key after unlocking", || {
        corral
            .agent_log("work")
            .iter()
            .any(|l| l == "Key 1 48 0")
            .then_some(())
    });
    let after = input_since(&corral, "work", from);
    assert!(after[0].starts_with("KeyboardEnter"), "{after:?}");
    // The password's keys never reached it (the letters of both passwords).
    for code in [17, 19, 24, 49, 34, 25, 30, 31, 38, 18] {
        assert!(
            !after
                .iter()
                .any(|l| l.starts_with(&format!("Key 1 {code} "))),
            "work saw key {code} of the password: {after:?}"
        );
    }
    let shot = corral.screenshot("lock-unlocked");
    assert_eq!(shot.rgb(work.x + 50, work.y + 50), agent::colours("work").0);
}

#[test]
fn a_failing_password_check_leaves_the_screen_locked() {
    // No such user: PAM fails, whatever this machine's stack is; nothing needs root.
    let extra = vec![
        "--lock-user".to_string(),
        "corral-no-such-user-7".to_string(),
        "--lock-pam-service".to_string(),
        "corral-no-such-service".to_string(),
    ];
    let corral = start("lock-pamfail", &["1024x768"], &["work:green"], &extra);
    corral.wait_window("work");
    lock(&corral);
    for attempt in 1..=2 {
        type_text(&corral, "anything");
        corral.key("Return");
        let info = corral.wait_for("the check's verdict", || {
            let i = lock_state(&corral);
            (!i.checking && i.failures == attempt).then_some(i)
        });
        assert!(info.locked);
        assert!(info.message.is_some());
    }
    // An empty password is not even tried.
    corral.key("Return");
    let info = lock_state(&corral);
    assert!(info.locked && !info.checking && info.failures == 2);
}

#[test]
fn no_qube_gets_keys_or_pointer_while_locked() {
    let corral = start(
        "lock-input",
        &["1600x900"],
        &["work:blue", "personal:yellow"],
        &[],
    );
    let work = corral.wait_window("work");
    let personal = corral.wait_window("personal");
    corral.focus(work.id);
    corral.key("a");
    corral.wait_for("work's key", || {
        corral
            .agent_log("work")
            .iter()
            .any(|l| l == "Key 1 30 0")
            .then_some(())
    });
    // The lock shortcut (keybindings.lock, Super+L by default).
    corral.key("super+l");
    let info = corral.wait_for("the lock", || {
        Some(lock_state(&corral)).filter(|i| i.locked)
    });
    assert_eq!(info.holder, Some(Holder::Builtin));
    let from_work = wait_keyboard_leave(&corral, "work");
    let from_personal = corral.agent_log("personal").len();

    // Keys, shortcuts, clicks on both windows' content and title bars, scrolling, focus by IPC.
    type_text(&corral, "secret");
    for combo in [
        "ctrl+shift+v",
        "ctrl+shift+c",
        "alt+Tab",
        "super+2",
        "super+q",
        "Escape",
    ] {
        corral.key(combo);
    }
    for w in [&work, &personal] {
        corral.pointer(f64::from(w.x + 30), f64::from(w.y + 30), true);
        corral.pointer(f64::from(w.x + 60), f64::from(w.frame.y + 6), true);
    }
    let refused = corral.request(&Request::Focus { id: personal.id });
    assert!(refused.is_err(), "focus by IPC while locked: {refused:?}");
    type_text(&corral, "more");
    assert_eq!(lock_state(&corral).typed, 4);
    // Give anything wrongly sent time to arrive, then check nothing did.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        input_since(&corral, "work", from_work),
        Vec::<String>::new()
    );
    assert_eq!(
        input_since(&corral, "personal", from_personal),
        Vec::<String>::new()
    );
    assert!(lock_state(&corral).locked);
    // The windows are where they were: no shortcut ran.
    let now = corral.windows();
    for w in [&work, &personal] {
        let n = now
            .iter()
            .find(|n| n.id == w.id)
            .expect("window still there");
        assert_eq!(
            (n.x, n.y, n.workspace, n.visible),
            (w.x, w.y, w.workspace, w.visible)
        );
    }
}

#[test]
fn the_lock_screen_shows_no_qube_content() {
    let corral = start(
        "lock-shot",
        &["1280x720", "1024x768"],
        &["work:blue", "personal:yellow"],
        &[],
    );
    let work = corral.wait_window("work");
    corral.wait_window("personal");
    let forbidden = qube_colours(&[("work", "blue"), ("personal", "yellow")]);
    // Before: the qubes' colours are on screen (so the check below can fail).
    let before = corral.screenshot("lock-before");
    assert_eq!(
        before.rgb(work.x + 50, work.y + 50),
        agent::colours("work").0
    );
    assert_eq!(
        before.rgb(work.frame.x + 1, work.frame.y + 1),
        hex("#3465a4")
    );

    lock(&corral);
    type_text(&corral, "abc");
    let shot = corral.screenshot("lock-screen");
    assert_eq!((shot.width, shot.height), (1280 + 1024, 768));
    assert_lock_screen(&shot, (0, 0, 1280, 720), &forbidden);
    assert_lock_screen(&shot, (1280, 0, 1024, 768), &forbidden);
    // Three dots in the field, on each output: the INK pixels there are 3 discs.
    let ink = rgb(corral::lock::ui::INK);
    let count = |ox: i32, w: i32, h: i32| {
        let p = panel_rect(corral::layout::Rect::new(0, 0, w, h));
        shot.pixels(ox + p.x + 26, p.y + 86, p.w - 52, 32)
            .into_iter()
            .filter(|px| *px == ink)
            .count()
    };
    let three = count(0, 1280, 720);
    assert!(three > 60, "{three} dot pixels");
    assert_eq!(count(1280, 1024, 768), three);
    corral.key("BackSpace");
    let shot = corral.screenshot("lock-screen-two-dots");
    let p = panel_rect(corral::layout::Rect::new(0, 0, 1280, 720));
    let two = shot
        .pixels(p.x + 26, p.y + 86, p.w - 52, 32)
        .into_iter()
        .filter(|px| *px == ink)
        .count();
    assert_eq!(two * 3, three * 2);
}

#[test]
fn an_output_added_while_locked_shows_the_lock_screen() {
    let corral = start("lock-hotplug", &["1280x720"], &["work:red"], &[]);
    corral.wait_window("work");
    lock(&corral);
    corral
        .request(&Request::AddOutput {
            width: 800,
            height: 600,
        })
        .unwrap();
    let outputs = corral.request(&Request::Outputs).unwrap();
    assert_eq!(outputs.as_array().unwrap().len(), 2, "{outputs}");
    let shot = corral.screenshot("lock-hotplug");
    assert_eq!((shot.width, shot.height), (1280 + 800, 720));
    let forbidden = qube_colours(&[("work", "red")]);
    assert_lock_screen(&shot, (1280, 0, 800, 600), &forbidden);
    assert_lock_screen(&shot, (0, 0, 1280, 720), &forbidden);
    assert!(lock_state(&corral).locked);
}

#[test]
fn idle_time_locks_the_session() {
    let extra = vec!["--idle-lock".to_string(), "1".to_string()];
    let corral = start("lock-idle", &["1024x768"], &["work:orange"], &extra);
    corral.wait_window("work");
    let info = corral.wait_for("the idle lock", || {
        Some(lock_state(&corral)).filter(|i| i.locked)
    });
    assert_eq!(info.holder, Some(Holder::Builtin));
    assert_eq!(info.idle_timeout_ms, Some(1000));
}

#[test]
fn the_config_files_idle_time_locks_the_session_and_the_flag_wins() {
    let dir = common::TempDir::new("lock-idle-config");
    let config = dir.0.join("config.toml");
    std::fs::write(&config, "[security]\nidle_lock_seconds = 1\n").unwrap();
    let path = config.to_str().unwrap().to_owned();
    let corral = start(
        "lock-idle-config",
        &["1024x768"],
        &["work:orange"],
        &["--config".into(), path.clone()],
    );
    corral.wait_window("work");
    let info = corral.wait_for("the idle lock", || {
        Some(lock_state(&corral)).filter(|i| i.locked)
    });
    assert_eq!(info.idle_timeout_ms, Some(1000));
    drop(corral);
    // `--idle-lock` wins over the file.
    let corral = start(
        "lock-idle-flag",
        &["1024x768"],
        &["work:orange"],
        &["--config".into(), path, "--idle-lock".into(), "600".into()],
    );
    corral.wait_window("work");
    let info = lock_state(&corral);
    assert!(!info.locked);
    assert_eq!(info.idle_timeout_ms, Some(600_000));
}

// ---------------------------------------------------------------------------------------------
// GUI-domain lockers (ext-session-lock-v1): swaylock

/// A swaylock process on the compositor's GUI socket, killed on drop.
struct Locker(Child);

impl Drop for Locker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn swaylock(corral: &Corral, socket: &str, colour: &str) -> Locker {
    let child = Command::new("swaylock")
        .args(["--color", colour, "--no-unlock-indicator"])
        .env("WAYLAND_DISPLAY", socket)
        .env("XDG_RUNTIME_DIR", corral.dir.0.join("runtime"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(corral.dir.0.join(format!("swaylock-{colour}.log"))).unwrap())
        .spawn()
        .expect("starting swaylock");
    Locker(child)
}

fn have_swaylock() -> bool {
    if which("swaylock").is_some() {
        return true;
    }
    skip("swaylock is not installed (Debian package swaylock)");
    false
}

#[test]
fn a_killed_locker_leaves_the_session_locked_and_a_new_one_takes_over() {
    if !have_swaylock() {
        return;
    }
    let socket = format!("corral-lock-{}", std::process::id());
    let extra = vec!["--gui-socket".to_string(), socket.clone()];
    let corral = start("lock-locker", &["1024x768"], &["work:blue"], &extra);
    let work = corral.wait_window("work");
    corral.focus(work.id);
    let forbidden = qube_colours(&[("work", "blue")]);

    let mut first = swaylock(&corral, &socket, "00ff00");
    corral.wait_for("swaylock's lock", || {
        let i = lock_state(&corral);
        (i.locked && i.holder == Some(Holder::Locker) && i.locker_surfaces == 1).then_some(())
    });
    let from = wait_keyboard_leave(&corral, "work");
    // swaylock's own surface covers the output.
    corral.wait_for("swaylock's green", || {
        let shot = corral.screenshot("lock-swaylock");
        (shot.rgb(5, 5) == 0x00ff00 && shot.rgb(1018, 762) == 0x00ff00).then_some(())
    });
    // Keys go to swaylock, not to the qube.
    type_text(&corral, "xyz");
    assert_eq!(
        lock_state(&corral).typed,
        0,
        "keys reached the built-in field"
    );

    // The locker dies: still locked, the built-in lock screen takes over.
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let info = corral.wait_for("the abandoned lock", || {
        Some(lock_state(&corral)).filter(|i| i.holder == Some(Holder::Abandoned))
    });
    assert!(info.locked);
    let shot = corral.screenshot("lock-locker-killed");
    assert_lock_screen(&shot, (0, 0, 1024, 768), &forbidden);
    type_text(&corral, "ab");
    assert_eq!(lock_state(&corral).typed, 2, "the built-in field took over");
    corral.key("Escape");

    // A new locker may take over the abandoned lock.
    let second = swaylock(&corral, &socket, "0000ff");
    corral.wait_for("the second swaylock", || {
        let i = lock_state(&corral);
        (i.locked && i.holder == Some(Holder::Locker) && i.locker_surfaces == 1).then_some(())
    });
    corral.wait_for("swaylock's blue", || {
        (corral.screenshot("lock-swaylock-2").rgb(5, 5) == 0x0000ff).then_some(())
    });
    drop(second);
    corral.wait_for("abandoned again", || {
        Some(lock_state(&corral)).filter(|i| i.holder == Some(Holder::Abandoned))
    });
    assert!(lock_state(&corral).locked);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(input_since(&corral, "work", from), Vec::<String>::new());
}

#[test]
fn a_locker_cannot_take_over_the_built_in_lock() {
    if !have_swaylock() {
        return;
    }
    let socket = format!("corral-lock-b-{}", std::process::id());
    let extra = vec!["--gui-socket".to_string(), socket.clone()];
    let corral = start("lock-refuse", &["1024x768"], &["work:blue"], &extra);
    corral.wait_window("work");
    lock(&corral);
    let mut locker = swaylock(&corral, &socket, "00ff00");
    // Refused with `finished`: swaylock gives up and exits with an error.
    let status = corral.wait_for("swaylock to give up", || locker.0.try_wait().unwrap());
    assert!(!status.success());
    let info = lock_state(&corral);
    assert!(info.locked);
    assert_eq!(info.holder, Some(Holder::Builtin));
    assert_eq!(
        corral.screenshot("lock-refused").rgb(5, 5),
        rgb(LOCK_BACKGROUND)
    );
}

#[test]
fn corral_msg_lock_and_lock_state() {
    let corral = start("lock-cli", &["1024x768"], &[], &[]);
    let msg = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_corral"))
            .arg("msg")
            .arg("--socket")
            .arg(&corral.socket)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<LockInfo>(&out.stdout).unwrap()
    };
    let before = msg(&["lock-state"]);
    assert!(!before.locked && before.holder.is_none());
    let after = msg(&["lock"]);
    assert!(after.locked);
    assert_eq!(after.holder, Some(Holder::Builtin));
    type_text(&corral, "hunter2");
    let state = Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(["msg", "--socket"])
        .arg(&corral.socket)
        .arg("lock-state")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&state.stdout);
    // The count, never the text.
    assert!(text.contains("\"typed\": 7"), "{text}");
    assert!(!text.contains("hunter"), "{text}");
}

#[test]
fn the_shipped_pam_service_unlocks_with_the_users_password() {
    // config/pam.d/corral as this machine would install it (under a test name).
    let body = include_str!("../../config/pam.d/corral");
    let Some(user) = PamUser::with_service(body) else {
        return;
    };
    let corral = start("lock-shipped-pam", &["1024x768"], &[], &user.args());
    lock(&corral);
    type_text(&corral, &user.password);
    corral.key("Return");
    corral.wait_for("the unlock", || (!lock_state(&corral).locked).then_some(()));
}
