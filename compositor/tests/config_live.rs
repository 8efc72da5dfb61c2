//! Live reload in a running headless compositor: saving the config file changes what is on
//! screen (border colour, border width, output size, keybindings); a file with an error keeps
//! the last good config and raises a notification naming the file, line and column.

mod common;

use std::path::Path;

use common::{Corral, TempDir, assert_frame_border, test_agent_command};

#[test]
fn test_agent_entry() {
    common::agent::main_if_agent();
}

/// Saves the way many editors do: a new file renamed over the old one (a new inode).
fn save_by_rename(path: &Path, text: &str) {
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn saving_the_config_recolours_frames_and_a_bad_edit_keeps_the_last_good_one() {
    let dir = TempDir::new("config-live-file");
    let file = dir.0.join("config.toml");
    std::fs::write(&file, "[decorations]\nborder_width = 6\n").unwrap();
    let corral = Corral::start_with(
        "config-live",
        &["1280x800"],
        &["work:blue"],
        &test_agent_command(),
        &["--config", file.to_str().unwrap()],
    );
    let w = corral.wait_window("work");
    let image = corral.screenshot("config-live-1-start");
    assert_frame_border(&image, &w, 6, 0x3465a4);

    // A good edit: blue is now magenta.
    save_by_rename(
        &file,
        "[decorations]\nborder_width = 6\n\n[labels]\nblue = \"#ff00ff\"\n",
    );
    corral.wait_for("the border in the new colour", || {
        let image = corral.screenshot("config-live-2-recoloured");
        (image.rgb(w.frame.x + 1, w.frame.y + 1) == 0xff00ff).then_some(())
    });
    let w = corral.wait_window("work");
    assert_eq!(w.colour, "#ff00ff", "IPC reports the colour drawn");
    let image = corral.screenshot("config-live-2-recoloured");
    assert_frame_border(&image, &w, 6, 0xff00ff);

    // A bad edit, written in place: a label colour that is a number.
    std::fs::write(
        &file,
        "[decorations]\nborder_width = 6\n\n[labels]\nblue = \"#00ff00\"\nteal = 1\n",
    )
    .unwrap();
    let toast = corral.wait_for("the config error notification", || {
        corral
            .notifications()
            .into_iter()
            .find(|n| n.headline.contains("Config error"))
    });
    assert_eq!(toast.headline, "Config error: kept the last good config");
    let place = "config.toml:6:8: ";
    assert!(
        toast.detail.starts_with(place),
        "the notification names file, line and column: {toast:?}"
    );
    assert!(
        toast.detail.contains("expected a string"),
        "and what was expected: {toast:?}"
    );
    // Nothing of the bad file applied: still magenta (not green), still 6 pixels.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let image = corral.screenshot("config-live-3-bad-edit");
    assert_frame_border(&image, &w, 6, 0xff00ff);
    let log = std::fs::read_to_string(&corral.log).unwrap();
    assert!(log.contains("config not reloaded, keeping the last good one"));
    assert!(log.contains("teal = 1"), "the log shows the offending line");

    // Fixed: wider border, green, a smaller output, and workspaces on ctrl+alt.
    save_by_rename(
        &file,
        concat!(
            "[decorations]\nborder_width = 10\n\n[labels]\nblue = \"#00ff00\"\n\n",
            "[[output]]\nmatch = \"headless-1\"\nmode = \"1024x768\"\n\n",
            "[keybindings]\nworkspace = [\"ctrl+alt+{n}\"]\n\n",
            "[input]\nkeyboard_layout = \"de\"\n",
        ),
    );
    corral.wait_for("the border 10 pixels wide and green", || {
        let w = corral.wait_window("work");
        (w.colour == "#00ff00" && w.frame.width == w.width + 20).then_some(())
    });
    let w = corral.wait_window("work");
    // The error notification is gone by itself after its time (it would cover the frame).
    corral.wait_for("the notification to expire", || {
        corral.notifications().is_empty().then_some(())
    });
    let image = corral.screenshot("config-live-4-fixed");
    assert_eq!(
        (image.width, image.height),
        (1024, 768),
        "the output took its mode"
    );
    assert_frame_border(&image, &w, 10, 0x00ff00);

    // The new keyboard layout went to the qube (a second keymap after the first one).
    corral.wait_for("a new keymap sent to the qube", || {
        let log = corral.agent_log("work");
        (log.iter()
            .filter(|l| l.eq_ignore_ascii_case("keymap"))
            .count()
            >= 2)
            .then_some(())
    });

    // The new workspace binding works, and the old one no longer switches.
    corral.key("super+2");
    assert!(corral.wait_window("work").visible, "super+2 is unbound now");
    corral.key("ctrl+alt+2");
    corral.wait_for("workspace 2 (work's window hidden)", || {
        corral
            .windows()
            .into_iter()
            .find(|x| x.id == w.id)
            .is_some_and(|x| !x.visible)
            .then_some(())
    });
    // Neither shortcut reached the qube.
    let log = corral.agent_log("work");
    assert!(
        !log.iter()
            .any(|l| l.starts_with("Key ") && l.split(' ').nth(2) == Some("3")),
        "the qube saw the 2 of a reserved shortcut: {log:?}"
    );
}

#[test]
fn input_jitter_keeps_every_key_in_order() {
    let dir = TempDir::new("config-jitter-file");
    let file = dir.0.join("config.toml");
    std::fs::write(&file, "[security]\ninput_jitter_ms = 150\n").unwrap();
    let corral = Corral::start_with(
        "config-jitter",
        &["1280x800"],
        &["work:blue"],
        &test_agent_command(),
        &["--config", file.to_str().unwrap()],
    );
    let w = corral.wait_window("work");
    corral.focus(w.id);
    for key in ["a", "b", "c", "d", "e", "f", "g", "h"] {
        corral.key(key);
    }
    // Focus moves away while keys may still be held back: the leave must come after them.
    corral.pointer(1270.0, 790.0, true);
    let keys = |log: &[String]| -> Vec<String> {
        log.iter()
            .filter(|l| l.starts_with("Key ") || l.starts_with("KeyboardLeave"))
            .cloned()
            .collect()
    };
    let got = corral.wait_for("16 key events and the leave", || {
        let k = keys(&corral.agent_log("work"));
        (k.len() >= 17).then_some(k)
    });
    let codes = [30, 48, 46, 32, 18, 33, 34, 35];
    let mut expected = Vec::new();
    for c in codes {
        expected.push(format!("{c} 1"));
        expected.push(format!("{c} 0"));
    }
    let seen: Vec<String> = got[..16]
        .iter()
        .map(|l| l.split(' ').skip(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        seen, expected,
        "every press before its release, in typing order"
    );
    assert!(
        got[16].starts_with("KeyboardLeave"),
        "keyboard_leave came after the delayed keys: {got:?}"
    );
}

#[test]
fn corral_msg_reload_config_answers_with_the_error_or_the_file() {
    let dir = TempDir::new("config-reload-file");
    let file = dir.0.join("config.toml");
    std::fs::write(&file, "theme = \"default\"\n").unwrap();
    let corral = Corral::start_with(
        "config-reload",
        &["800x600"],
        &[],
        &test_agent_command(),
        &["--config", file.to_str().unwrap()],
    );
    std::fs::write(
        &file,
        "theme = \"default\"\n[decorations]\ntitle_height = 99\n",
    )
    .unwrap();
    let e = corral
        .request(&corral::ipc::Request::ReloadConfig)
        .expect_err("a bad file is refused");
    let e = format!("{e:#}");
    assert!(
        e.contains(&format!("{}:3:16: 99 is out of range", file.display())),
        "{e}"
    );
    std::fs::write(&file, "theme = \"high-contrast\"\n").unwrap();
    let ok = corral.request(&corral::ipc::Request::ReloadConfig).unwrap();
    assert_eq!(ok["config"], file.display().to_string());
    // The high-contrast theme is drawn: its black desktop.
    let image = corral.screenshot("config-reload-high-contrast");
    assert_eq!(image.rgb(400, 500), 0x000000);
}

#[test]
fn a_broken_file_at_start_runs_the_default_and_says_where_the_error_is() {
    let dir = TempDir::new("config-broken-file");
    let file = dir.0.join("config.toml");
    std::fs::write(
        &file,
        "[decorations]\nborder_width = 6\nborder_colour = \"red\"\n",
    )
    .unwrap();
    let corral = Corral::start_with(
        "config-broken",
        &["1280x800"],
        &["work:blue"],
        &test_agent_command(),
        &["--config", file.to_str().unwrap()],
    );
    let toast = corral.wait_for("the config error notification", || {
        corral
            .notifications()
            .into_iter()
            .find(|n| n.headline.contains("Config error"))
    });
    assert_eq!(
        toast.headline,
        "Config error: running with the built-in default"
    );
    assert!(
        toast
            .detail
            .starts_with("config.toml:3:1: unknown field `border_colour`"),
        "{toast:?}"
    );
    // The default border (4), not the file's 6.
    let w = corral.wait_window("work");
    assert_eq!(w.frame.width, w.width + 8);
    // Fixing the file applies it.
    save_by_rename(&file, "[decorations]\nborder_width = 6\n");
    corral.wait_for("the fixed file applied", || {
        let w = corral.wait_window("work");
        (w.frame.width == w.width + 12).then_some(())
    });
}

#[test]
fn decorations_from_the_file_shape_the_frame_and_title() {
    let dir = TempDir::new("config-decorations-file");
    let file = dir.0.join("config.toml");
    std::fs::write(
        &file,
        "[decorations]\nborder_width = 3\ntitle_height = 32\nfont_size = 20.0\ntitle_format = \"{title} · {qube}\"\n",
    )
    .unwrap();
    let corral = Corral::start_with(
        "config-decorations",
        &["1280x800"],
        &["work:green"],
        &test_agent_command(),
        &["--config", file.to_str().unwrap()],
    );
    let w = corral.wait_window("work");
    assert_eq!(w.display_title, "Test window · work");
    assert_eq!(
        (w.frame.width, w.frame.height),
        (w.width + 6, w.height + 32 + 6)
    );
    let image = corral.screenshot("config-decorations");
    assert_frame_border(&image, &w, 3, 0x73d216);
    // --border on the command line wins over the file.
    drop(corral);
    let corral = Corral::start_with(
        "config-decorations-flag",
        &["1280x800"],
        &["work:green"],
        &test_agent_command(),
        &["--config", file.to_str().unwrap(), "--border", "9"],
    );
    let w = corral.wait_window("work");
    assert_eq!(w.frame.width, w.width + 18);
}

#[test]
fn clipboard_settings_come_from_the_file_and_flags_win() {
    let dir = TempDir::new("config-clipboard-file");
    let file = dir.0.join("config.toml");
    let policy = dir.0.join("policy.d");
    std::fs::create_dir_all(&policy).unwrap();
    std::fs::write(
        &file,
        format!(
            "[clipboard]\ntext_max_bytes = 70000\npaste_once = false\npolicy_dir = \"{}\"\n",
            policy.display()
        ),
    )
    .unwrap();
    let corral = Corral::start_with(
        "config-clipboard",
        &["1280x800"],
        &["bigcopy:purple"],
        &test_agent_command(),
        &["--config", file.to_str().unwrap()],
    );
    let info = |c: &Corral| -> corral::clipboard::ClipboardInfo {
        serde_json::from_value(c.request(&corral::ipc::Request::Clipboard).unwrap()).unwrap()
    };
    let i = info(&corral);
    assert_eq!(i.policy_dir, policy.display().to_string());
    assert!(i.keep_after_paste);
    // 64 KiB + 1 is over the default cap but under the file's.
    let w = corral.wait_window("bigcopy");
    corral.focus(w.id);
    corral.key("ctrl+shift+c");
    let size = corral.wait_for("the copy", || info(&corral).size);
    assert_eq!(size, common::agent::BIG_COPY);
    drop(corral);

    // The flag wins: the default cap again refuses it.
    let corral = Corral::start_with(
        "config-clipboard-flag",
        &["1280x800"],
        &["bigcopy:purple"],
        &test_agent_command(),
        &[
            "--config",
            file.to_str().unwrap(),
            "--clipboard-text-max",
            "65536",
        ],
    );
    let w = corral.wait_window("bigcopy");
    corral.focus(w.id);
    corral.key("ctrl+shift+c");
    corral.wait_for("the refusal", || {
        corral
            .notifications()
            .into_iter()
            .find(|n| n.headline.contains("too large"))
    });
    assert!(info(&corral).empty);
}

#[test]
fn per_qube_limits_from_the_file_apply_to_that_qube_only() {
    let dir = TempDir::new("config-limits-file");
    let file = dir.0.join("config.toml");
    // `popper` opens a popup after its first frame: a second window, over its limit of one.
    std::fs::write(&file, "[security.qube_limits.popper]\nwindows = 1\n").unwrap();
    let corral = Corral::start_with(
        "config-limits",
        &["1600x900"],
        &["popper:red", "work:blue"],
        &test_agent_command(),
        &["--config", file.to_str().unwrap()],
    );
    let toast = corral.wait_for("popper cut off", || {
        corral
            .notifications()
            .into_iter()
            .find(|n| n.headline.contains("[popper] was cut off"))
    });
    assert!(toast.detail.contains("window"), "{toast:?}");
    // work, with the default limits, is untouched.
    corral.wait_window("work");
    assert!(corral.qubes().iter().any(|q| q.name == "work"));
    assert!(!corral.qubes().iter().any(|q| q.name == "popper"));
}
