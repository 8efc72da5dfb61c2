//! The config file: parsing and validation with located errors, the command line
//! (`validate-config`, `print-default-config`), and the checks that keep the code, the
//! documented default file `config/corral.toml` and docs/configuration.md from drifting apart.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use corral::config::reference::{KEYS, markdown, range};
use corral::config::schema::{Config, Output, QubeLimits};
use corral::config::{ConfigError, DEFAULT_CONFIG_TEXT, load_text, parse};

fn err(text: &str) -> ConfigError {
    match load_text("config.toml", text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

fn ok(text: &str) -> Config {
    match load_text("config.toml", text) {
        Ok(l) => l.config,
        Err(e) => panic!("refused:\n{text}\n{e}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing and validation

#[test]
fn an_empty_file_is_the_default_and_a_full_one_parses() {
    assert_eq!(ok(""), Config::default());
    assert_eq!(ok(DEFAULT_CONFIG_TEXT), Config::default());
    let c = ok(r##"
theme = "high-contrast"
[input]
keyboard_layout = "de"
repeat_rate = 0
natural_scrolling = true
[input.qube_keyboard_layout]
work = "fr"
[[output]]
match = "headless-1"
mode = "1024x768@60"
position = [0, 0]
scale = 1.5
transform = "90"
[[output]]
match = "headless-2"
enabled = false
[keybindings]
copy = ["super+c"]
paste = ["super+v"]
workspace = ["ctrl+alt+{n}"]
close = []
[decorations]
border_width = 8
title_format = "{title} — {qube}"
utf8_titles = false
[clipboard]
text_max_bytes = 256000
wipe_after_seconds = 60
[security]
fullscreen_allowed = ["media"]
input_jitter_ms = 5000
[security.qube_limits.untrusted]
windows = 8
[labels]
blue = "#0000ff"
teal = "#008080"
[frame]
background = "#000000"
[notifications]
stripe_width = 4
"##);
    assert_eq!(c.theme, "high-contrast");
    assert_eq!(c.input.qube_keyboard_layout["work"], "fr");
    assert_eq!(c.outputs.len(), 2);
    assert_eq!(
        Output::parse_mode(c.outputs[0].mode.as_deref().unwrap()),
        Ok((1024, 768, Some(60)))
    );
    assert!(!c.outputs[1].enabled);
    assert!(c.keybindings.close.is_empty());
    assert_eq!(c.decorations.border_width.get(), 8);
    assert_eq!(c.security.input_jitter_ms.get(), 5000);
    let limits = c.security.session_limits("untrusted");
    assert_eq!(limits.max_windows, 8);
    assert_eq!(c.security.session_limits("work").max_windows, 256);
}

#[test]
fn unknown_keys_are_errors_with_line_and_column() {
    let e = err("theme = \"default\"\n\n[decorations]\nborder_widht = 3\n");
    assert_eq!((e.file.as_str(), e.line, e.column), ("config.toml", 4, 1));
    assert!(e.message.contains("unknown field `border_widht`"), "{e}");
    assert!(
        e.message.contains("border_width"),
        "says what is expected: {e}"
    );
    assert_eq!(e.source_line.as_deref(), Some("border_widht = 3"));
    // Unknown tables too, and at the top level.
    let e = err("[decoration]\nborder_width = 3\n");
    assert_eq!(e.line, 1, "{e}");
    assert!(e.message.contains("unknown field `decoration`"), "{e}");
    let e = err("[security.limits]\nwindowz = 3\n");
    assert_eq!((e.line, e.column), (2, 1), "{e}");
    let e = err("[[output]]\nmatch = \"x\"\nrotation = \"90\"\n");
    assert_eq!((e.line, e.column), (3, 1), "{e}");
}

#[test]
fn wrong_types_are_errors_under_the_value() {
    let e = err("[decorations]\nborder_width = \"4\"\n");
    assert_eq!((e.line, e.column), (2, 16), "{e}");
    assert!(e.message.contains("invalid type"), "{e}");
    assert!(
        e.message.contains("i64"),
        "says an integer was expected: {e}"
    );
    let e = err("[input]\nnatural_scrolling = \"yes\"\n");
    assert_eq!((e.line, e.column), (2, 21), "{e}");
    assert!(e.message.contains("bool"), "{e}");
    let e = err("[keybindings]\ncopy = \"ctrl+shift+c\"\n");
    assert_eq!((e.line, e.column), (2, 8), "{e}");
    assert!(e.message.contains("sequence"), "{e}");
    let e = err("theme = 3\n");
    assert_eq!((e.line, e.column), (1, 9), "{e}");
}

#[test]
fn out_of_range_values_say_the_range() {
    let e = err("[decorations]\ntitle_height = 24\nborder_width = 40\n");
    assert_eq!((e.line, e.column, e.caret_len), (3, 16, 2), "{e}");
    assert_eq!(
        e.message,
        "40 is out of range: expected an integer from 1 to 32"
    );
    assert_eq!(
        e.to_string(),
        "config.toml:3:16: 40 is out of range: expected an integer from 1 to 32\n  |\n3 | border_width = 40\n  |                ^^"
    );
    let e = err("[security]\ninput_jitter_ms = 5001\n");
    assert!(e.message.contains("from 0 to 5000"), "{e}");
    let e = err("[[output]]\nmatch = \"a\"\nscale = 0.2\n");
    assert_eq!((e.line, e.column), (3, 9), "{e}");
    assert!(e.message.contains("from 0.25 to 4"), "{e}");
    let e = err("[input]\nrepeat_delay = 50\n");
    assert!(e.message.contains("from 100 to 2000"), "{e}");
}

#[test]
fn bad_values_of_every_kind_are_located() {
    let cases: &[(&str, (usize, usize), &str)] = &[
        (
            "[labels]\nblue = \"blue\"\n",
            (2, 8),
            "expected \"#rrggbb\"",
        ),
        ("[frame]\nbackground = \"#12345\"\n", (2, 14), "#rrggbb"),
        (
            "[keybindings]\ncopy = [\"ctrl+shift+c\", \"hyper+c\"]\n",
            (2, 25),
            "unknown modifier",
        ),
        (
            "[keybindings]\nlock = [\"super+nosuchkey\"]\n",
            (2, 9),
            "unknown key",
        ),
        ("[keybindings]\nworkspace = [\"super+1\"]\n", (2, 14), "{n}"),
        (
            "[decorations]\ntitle_format = \"{title}\"\n",
            (2, 16),
            "must contain {qube}",
        ),
        (
            "[[output]]\nmatch = \"a\"\ntransform = \"45\"\n",
            (3, 13),
            "unknown variant `45`",
        ),
        (
            "[[output]]\nmatch = \"a\"\nmode = \"huge\"\n",
            (3, 8),
            "WIDTHxHEIGHT",
        ),
        (
            "[[output]]\nmatch = \"a\"\n[[output]]\nmatch = \"a\"\n",
            (4, 9),
            "a second [[output]]",
        ),
        ("theme = \"../../etc/passwd\"\n", (1, 9), "not a theme name"),
        (
            "theme = \"nosuchtheme\"\n",
            (0, 0),
            "no theme named \"nosuchtheme\"",
        ),
        ("[labels]\nBlue = \"#000000\"\n", (2, 8), "not a label name"),
        (
            "[input]\nkeyboard_layout = \"nosuchlayout\"\n",
            (2, 19),
            "XKB cannot compile",
        ),
        (
            "[decorations]\nfont = \"/nonexistent.ttf\"\n",
            (2, 8),
            "cannot read font",
        ),
        ("[decorations]\nfont_size = 30.0\n", (2, 13), "does not fit"),
        (
            "[keybindings]\nclose = [\"super+l\"]\n",
            (2, 10),
            "already bound to lock",
        ),
        (
            "[keybindings]\ncopy = [\"super+3\"]\n",
            (2, 9),
            "already bound",
        ),
        (
            "theme = \"default\"\ntheme = \"x\"\n",
            (2, 1),
            "duplicate key",
        ),
        ("[input\n", (1, 7), ""),
    ];
    for (text, (line, column), needle) in cases {
        let e = err(text);
        assert_eq!(
            (e.line, e.column),
            (*line, *column),
            "wrong place for:\n{text}\n{e}"
        );
        assert!(
            e.message.contains(needle),
            "{needle:?} not in the message for:\n{text}\n{e}"
        );
    }
}

#[test]
fn the_caret_line_shows_the_offending_line() {
    let e = err("# comment\n[keybindings]\n  paste = [\"ctrl+shift+\"]\n");
    let shown = e.to_string();
    assert!(shown.starts_with("config.toml:3:12: "), "{shown}");
    assert!(
        shown.contains("\n3 |   paste = [\"ctrl+shift+\"]\n"),
        "{shown}"
    );
    assert!(shown.ends_with("|            ^^^^^^^^^^^^^"), "{shown}");
}

#[test]
fn unbinding_the_clipboard_shortcuts_warns() {
    let loaded = load_text("c", "[keybindings]\ncopy = []\n").unwrap();
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.contains("keybindings.copy")),
        "{:?}",
        loaded.warnings
    );
    let loaded = load_text("c", "[keybindings]\nscreenshot = [\"a\"]\n").unwrap();
    assert!(
        loaded.warnings.iter().any(|w| w.contains("typing key")),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn bindings_from_the_file_decide_what_is_reserved() {
    use corral::input::Action;
    use smithay::input::keyboard::{ModifiersState, keysyms};
    let loaded = load_text(
        "c",
        "[keybindings]\nworkspace = [\"ctrl+alt+{n}\"]\nclose = [\"super+w\", \"ctrl+alt+q\"]\n",
    )
    .unwrap();
    let b = &loaded.bindings;
    let ctrl_alt = ModifiersState {
        ctrl: true,
        alt: true,
        ..Default::default()
    };
    assert_eq!(
        b.action(&ctrl_alt, keysyms::KEY_3, keysyms::KEY_3),
        Some(Action::Workspace(3))
    );
    assert_eq!(
        b.action(&ctrl_alt, keysyms::KEY_q, keysyms::KEY_q),
        Some(Action::Close)
    );
    // Shift turns 1 into !: the raw keysym still matches.
    let super_shift = ModifiersState {
        logo: true,
        shift: true,
        ..Default::default()
    };
    assert_eq!(
        b.action(&super_shift, keysyms::KEY_exclam, keysyms::KEY_1),
        Some(Action::MoveToWorkspace(1))
    );
    // super+2 is no longer bound but still reserved (never reaches a qube).
    let sup = ModifiersState {
        logo: true,
        ..Default::default()
    };
    assert_eq!(
        b.action(&sup, keysyms::KEY_2, keysyms::KEY_2),
        Some(Action::None)
    );
    // Ctrl+Alt+a is nobody's: it goes to the qube.
    assert_eq!(b.action(&ctrl_alt, keysyms::KEY_a, keysyms::KEY_a), None);
    assert_eq!(
        b.action(
            &ModifiersState::default(),
            keysyms::KEY_Print,
            keysyms::KEY_Print
        ),
        Some(Action::Screenshot)
    );
}

// ---------------------------------------------------------------------------------------------
// Command line

fn corral(args: &[&str], env: &[(&str, &Path)]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_corral"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("corral-config-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn print_default_config_prints_the_documented_file() {
    let (ok, out, _) = corral(&["print-default-config"], &[]);
    assert!(ok);
    let file = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/corral.toml"),
    )
    .unwrap();
    assert_eq!(out, file);
}

#[test]
fn validate_config_says_ok_or_shows_the_error() {
    let dir = TempDir::new("validate");
    let good = dir.0.join("good.toml");
    std::fs::write(&good, "[decorations]\nborder_width = 6\n").unwrap();
    let (ok, out, _) = corral(&["validate-config", good.to_str().unwrap()], &[]);
    assert!(ok);
    assert_eq!(out.trim(), "ok");

    let bad = dir.0.join("bad.toml");
    std::fs::write(&bad, "[decorations]\nborder_width = 60\n").unwrap();
    let (ok, out, err) = corral(&["validate-config", bad.to_str().unwrap()], &[]);
    assert!(!ok);
    assert!(out.is_empty());
    assert_eq!(
        err,
        format!(
            "{}:2:16: 60 is out of range: expected an integer from 1 to 32\n  |\n2 | border_width = 60\n  |                ^^\n",
            bad.display()
        )
    );

    let (ok, _, err) = corral(&["validate-config", "/nonexistent/c.toml"], &[]);
    assert!(!ok);
    assert!(
        err.contains("/nonexistent/c.toml: cannot read the file"),
        "{err}"
    );
}

#[test]
fn validate_config_follows_the_search_order_and_checks_themes() {
    let dir = TempDir::new("search");
    let home = dir.0.join("xdg");
    let corral_dir = home.join("corral");
    std::fs::create_dir_all(corral_dir.join("themes")).unwrap();
    // No file: the built-in default (or /etc's, which this machine does not have).
    if !Path::new("/etc/corral/config.toml").exists() {
        let (ok, out, _) = corral(&["validate-config"], &[("XDG_CONFIG_HOME", &home)]);
        assert!(ok);
        assert_eq!(out.trim(), "ok");
    }
    // The user's file, naming a theme in the user's theme folder that is broken.
    std::fs::write(corral_dir.join("config.toml"), "theme = \"mine\"\n").unwrap();
    std::fs::write(
        corral_dir.join("themes/mine.toml"),
        "name = \"Mine\"\n[frame]\nbackground = \"black\"\n",
    )
    .unwrap();
    let (ok, _, err) = corral(&["validate-config"], &[("XDG_CONFIG_HOME", &home)]);
    assert!(!ok);
    let theme = corral_dir.join("themes/mine.toml");
    assert!(
        err.starts_with(&format!("{}:3:14: ", theme.display())),
        "a theme error is located in the theme file: {err}"
    );
    assert!(err.contains("#rrggbb"), "{err}");
    // Fixed theme: ok; and the user's theme shadows the built-in ones.
    std::fs::write(
        corral_dir.join("themes/mine.toml"),
        "[frame]\nbackground = \"#000000\"\n",
    )
    .unwrap();
    let (ok, out, err) = corral(&["validate-config"], &[("XDG_CONFIG_HOME", &home)]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "ok");
}

// ---------------------------------------------------------------------------------------------
// The code, config/corral.toml and docs/configuration.md agree

/// Leaves of a JSON tree as (path, value): tables are walked, an array of tables becomes
/// `name[]` (its first element), anything else is a leaf.
fn leaves(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, serde_json::Value>) {
    match v {
        serde_json::Value::Object(map) if !map.is_empty() || prefix.is_empty() => {
            for (k, v) in map {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&p, v, out);
            }
        }
        serde_json::Value::Array(items) if items.first().is_some_and(|i| i.is_object()) => {
            leaves(&format!("{prefix}[]"), &items[0], out);
        }
        other => {
            out.insert(prefix.to_owned(), other.clone());
        }
    }
}

/// A value as the reference writes it (TOML).
fn show(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "unset".into(),
        serde_json::Value::String(s) => format!("{s:?}"),
        serde_json::Value::Number(n) if n.is_f64() => format!("{:?}", n.as_f64().unwrap()),
        serde_json::Value::Array(items) => format!(
            "[{}]",
            items.iter().map(show).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

/// The default config with one of each repeated thing (an output, a qube's limits and layout,
/// a label), so every key of the schema shows up.
fn sample() -> Config {
    let mut c = Config::default();
    c.outputs.push(Output::default());
    c.security
        .qube_limits
        .insert("<qube>".into(), QubeLimits::default());
    c.input
        .qube_keyboard_layout
        .insert("<qube>".into(), "us".into());
    c.labels.insert(
        "<label>".into(),
        corral::config::values::Colour::hex(0x123456),
    );
    c
}

#[test]
fn every_schema_key_is_in_the_reference_and_back() {
    let mut schema = BTreeMap::new();
    leaves("", &serde_json::to_value(sample()).unwrap(), &mut schema);
    let schema: BTreeSet<&str> = schema.keys().map(String::as_str).collect();
    let reference: BTreeSet<&str> = KEYS.iter().map(|k| k.path).collect();
    assert_eq!(
        reference.len(),
        KEYS.len(),
        "a key is in the reference twice"
    );
    let missing: Vec<_> = schema.difference(&reference).collect();
    let extra: Vec<_> = reference.difference(&schema).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "keys in the code but not the reference: {missing:?}; in the reference but not the code: {extra:?}"
    );
}

#[test]
fn reference_defaults_are_the_code_defaults() {
    let mut defaults = BTreeMap::new();
    leaves("", &serde_json::to_value(sample()).unwrap(), &mut defaults);
    for key in KEYS {
        let value = &defaults[key.path];
        if key.default == "required" || (key.path.contains('<') && !value.is_null()) {
            continue;
        }
        let shown = show(value);
        assert!(
            shown == key.default || (shown == "unset" && key.default.starts_with("unset")),
            "{}: the reference says {}, the code {shown}",
            key.path,
            key.default
        );
    }
}

#[test]
fn the_default_file_shows_every_default() {
    let file: toml::Value = toml::from_str(DEFAULT_CONFIG_TEXT).unwrap();
    let mut in_file = BTreeMap::new();
    leaves("", &serde_json::to_value(file).unwrap(), &mut in_file);
    for (path, value) in &in_file {
        let key = KEYS
            .iter()
            .find(|k| k.path == path)
            .unwrap_or_else(|| panic!("config/corral.toml has {path}, which the reference lacks"));
        assert_eq!(
            show(value),
            key.default,
            "config/corral.toml and the reference disagree on {path}"
        );
    }
    for key in KEYS {
        let concrete = !key.default.starts_with("unset") && key.default != "required";
        if concrete && !key.path.contains("[]") {
            assert!(
                in_file.contains_key(key.path),
                "config/corral.toml does not show {} = {}",
                key.path,
                key.default
            );
        }
    }
    // Every optional key is shown in a comment.
    for key in KEYS {
        let last = key.path.rsplit('.').next().unwrap();
        if key.path.contains('<') || key.path.starts_with("frame") || key.path.starts_with("notif")
        {
            continue;
        }
        assert!(
            DEFAULT_CONFIG_TEXT.contains(last),
            "config/corral.toml never mentions {}",
            key.path
        );
    }
}

/// A config that sets `path` to `value`.
fn snippet(path: &str, value: &str) -> String {
    let path = path.replace("<qube>", "work").replace("<label>", "teal");
    let (table, key) = path.rsplit_once('.').unwrap_or(("", &path));
    let mut text = String::new();
    if let Some(t) = table.strip_suffix("[]") {
        text.push_str(&format!("[[{t}]]\nmatch = \"headless-1\"\n"));
    } else if !table.is_empty() {
        text.push_str(&format!("[{table}]\n"));
    }
    // The title text must fit the title bar: give the one room for the other.
    if path == "decorations.font_size" {
        text.push_str("title_height = 64\n");
    }
    if path == "decorations.title_height" {
        text.push_str("font_size = 6.0\n");
    }
    text.push_str(&format!("{key} = {value}\n"));
    text
}

#[test]
fn the_ranges_in_the_reference_are_the_ranges_enforced() {
    let mut checked = 0;
    for key in KEYS {
        let Some((min, max)) = range(key.ty) else {
            continue;
        };
        let integer = key.ty.contains("integer");
        let fmt = |v: f64| {
            let v = if integer {
                format!("{}", v as i64)
            } else {
                format!("{v:?}")
            };
            if key.ty.starts_with('[') {
                format!("[{v}, 0]")
            } else {
                v
            }
        };
        let step = if integer { 1.0 } else { 0.01 };
        for inside in [min, max] {
            let text = snippet(key.path, &fmt(inside));
            if let Err(e) = parse("c", &text) {
                panic!(
                    "{}: {inside} is in the documented range but refused:\n{text}\n{e}",
                    key.path
                );
            }
        }
        for outside in [min - step, max + step] {
            let text = snippet(key.path, &fmt(outside));
            assert!(
                parse("c", &text).is_err(),
                "{}: {outside} is outside the documented range but accepted:\n{text}",
                key.path
            );
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} ranged keys");
}

const BEGIN: &str = "<!-- BEGIN KEYS: generated from compositor/src/config/reference.rs -->\n";
const END: &str = "<!-- END KEYS -->";

#[test]
fn docs_configuration_md_is_the_reference() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let (start, end) = (
        doc.find(BEGIN)
            .expect("docs/configuration.md lacks the BEGIN KEYS marker"),
        doc.find(END)
            .expect("docs/configuration.md lacks the END KEYS marker"),
    );
    let generated = markdown();
    let current = &doc[start + BEGIN.len()..end];
    if current != generated {
        if std::env::var_os("CORRAL_UPDATE_DOCS").is_some() {
            let new = format!("{}{BEGIN}{generated}{}", &doc[..start], &doc[end..]);
            std::fs::write(&path, new).unwrap();
            return;
        }
        panic!(
            "docs/configuration.md and compositor/src/config/reference.rs disagree; fix the \
             reference, then run CORRAL_UPDATE_DOCS=1 cargo test -p corral --test config"
        );
    }
    // The themes' keys are documented too.
    for key in [
        "focus_underline",
        "attention_mix_percent",
        "stripe_width",
        "empty_fill",
    ] {
        assert!(doc.contains(key));
        assert!(corral::config::theme::DEFAULT_THEME_TEXT.contains(key));
    }
}
