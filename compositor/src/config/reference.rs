//! The reference of every config key: path, type, default, effect. docs/configuration.md
//! carries [`markdown`]'s output between two markers, and tests hold this table equal to the
//! schema (every field has a row, every row a field, defaults equal `Config::default()`),
//! to `config/corral.toml`, to the doc, and the ranges it states to what the parser enforces.
//! Regenerate the doc's section with `CORRAL_UPDATE_DOCS=1 cargo test -p corral --test config`.

/// One key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// Dotted path; `[]` marks an array of tables, `<qube>`/`<label>` a name the user picks.
    pub path: &'static str,
    /// `integer, MIN to MAX`, `number, MIN to MAX`, `boolean`, `string`, `colour`, `key list`...
    pub ty: &'static str,
    /// As TOML, or `unset` (the key is optional and has no value by default), or `required`.
    pub default: &'static str,
    pub effect: &'static str,
}

const fn k(
    path: &'static str,
    ty: &'static str,
    default: &'static str,
    effect: &'static str,
) -> Key {
    Key {
        path,
        ty,
        default,
        effect,
    }
}

const THEME: &str = "unset (the theme's)";

pub const KEYS: &[Key] = &[
    k(
        "theme",
        "string",
        "\"default\"",
        "Theme file `NAME.toml` from `~/.config/corral/themes/`, `/usr/share/corral/themes/`, or the built-in `default` / `high-contrast`.",
    ),
    k(
        "screenshot_dir",
        "string",
        "\"\"",
        "Folder the `screenshot` shortcut saves PNG files to; empty: `$XDG_PICTURES_DIR`, else `~/Pictures`, else the home folder.",
    ),
    k(
        "input.keyboard_layout",
        "string",
        "\"\"",
        "XKB layout (`us`, `de`, `fr,us`...); empty: XKB's default (`XKB_DEFAULT_LAYOUT` or `us`). Live: new keymap sent to every qube.",
    ),
    k(
        "input.keyboard_variant",
        "string",
        "\"\"",
        "XKB variant (`dvorak`, `nodeadkeys`...).",
    ),
    k(
        "input.keyboard_options",
        "string",
        "\"\"",
        "XKB options (`caps:escape,compose:ralt`...).",
    ),
    k(
        "input.keyboard_model",
        "string",
        "\"\"",
        "XKB model (`pc105`...).",
    ),
    k(
        "input.repeat_rate",
        "integer, 0 to 100",
        "30",
        "Key repeats per second for GUI-domain apps; 0 turns repeat off. Apps in qubes repeat at their agent's own rate (the protocol does not carry repeat settings yet).",
    ),
    k(
        "input.repeat_delay",
        "integer, 100 to 2000",
        "400",
        "Milliseconds a key is held before it repeats (GUI-domain apps, as `repeat_rate`).",
    ),
    k(
        "input.pointer_acceleration",
        "number, -1 to 1",
        "0.0",
        "Pointer acceleration for libinput devices (the udev backend; new devices after a reload). The headless and winit backends have no devices to apply it to.",
    ),
    k(
        "input.natural_scrolling",
        "boolean",
        "false",
        "Reverse the scroll direction sent to windows.",
    ),
    k(
        "input.qube_keyboard_layout.<qube>",
        "string",
        "unset",
        "XKB layout sent to this qube instead of `keyboard_layout` (with `keyboard_model` and `keyboard_options`, no variant). Shortcuts are still read with the main layout.",
    ),
    k(
        "output[].match",
        "string",
        "required",
        "Which output this `[[output]]` is for: its name (`headless-1`, `headless-2`... on the headless backend; a connector like `HDMI-A-1`, or the monitor's `MAKE MODEL` from its EDID, on the udev backend). Not applied on winit.",
    ),
    k(
        "output[].mode",
        "string",
        "unset",
        "`WIDTHxHEIGHT` or `WIDTHxHEIGHT@HZ`; unset: the preferred mode (headless: `--size`).",
    ),
    k(
        "output[].position",
        "[integer, integer], -32768 to 32768",
        "unset",
        "Top-left corner in the global space; unset: placed right of the previous output.",
    ),
    k(
        "output[].scale",
        "number, 0.25 to 4",
        "1.0",
        "Scale factor (fractional allowed). Validated and kept; no backend draws at a scale other than 1 yet.",
    ),
    k(
        "output[].transform",
        "string",
        "\"normal\"",
        "`normal`, `90`, `180`, `270`, `flipped`, `flipped-90`, `flipped-180`, `flipped-270`; 90 and 270 swap width and height of the output's area.",
    ),
    k(
        "output[].enabled",
        "boolean",
        "true",
        "`false` turns the output off (at least one stays on).",
    ),
    k(
        "keybindings.copy",
        "key list",
        "[\"ctrl+shift+c\"]",
        "Copy the focused qube's selection into the global clipboard.",
    ),
    k(
        "keybindings.paste",
        "key list",
        "[\"ctrl+shift+v\"]",
        "Paste the global clipboard into the focused qube (policy-checked).",
    ),
    k(
        "keybindings.launcher",
        "key list",
        "[\"super+space\"]",
        "Open the launcher on the trusted layer (search every qube's apps).",
    ),
    k(
        "keybindings.switcher",
        "key list",
        "[\"alt+Tab\", \"alt+shift+Tab\", \"super+Tab\", \"super+shift+Tab\"]",
        "Focus the next window.",
    ),
    k(
        "keybindings.lock",
        "key list",
        "[\"super+l\"]",
        "Lock the screen ([lock.md](lock.md)).",
    ),
    k(
        "keybindings.close",
        "key list",
        "[\"super+q\"]",
        "Ask the focused window's qube to close it.",
    ),
    k(
        "keybindings.maximize",
        "key list",
        "[\"super+Up\"]",
        "Maximise or restore the focused window.",
    ),
    k(
        "keybindings.minimize",
        "key list",
        "[\"super+Down\"]",
        "Minimise the focused window.",
    ),
    k(
        "keybindings.fullscreen",
        "key list",
        "[\"super+f\"]",
        "Toggle fullscreen of the focused window; drawn maximised with its frame kept (decision 4).",
    ),
    k(
        "keybindings.screenshot",
        "key list",
        "[\"Print\"]",
        "Save a screenshot of all outputs to `screenshot_dir`.",
    ),
    k(
        "keybindings.move_left",
        "key list",
        "[\"super+ctrl+Left\"]",
        "Move the focused window 32 pixels left.",
    ),
    k(
        "keybindings.move_right",
        "key list",
        "[\"super+ctrl+Right\"]",
        "Move the focused window 32 pixels right.",
    ),
    k(
        "keybindings.move_up",
        "key list",
        "[\"super+ctrl+Up\"]",
        "Move the focused window 32 pixels up.",
    ),
    k(
        "keybindings.move_down",
        "key list",
        "[\"super+ctrl+Down\"]",
        "Move the focused window 32 pixels down.",
    ),
    k(
        "keybindings.grow_width",
        "key list",
        "[\"super+shift+Right\"]",
        "Make the focused window 32 pixels wider.",
    ),
    k(
        "keybindings.shrink_width",
        "key list",
        "[\"super+shift+Left\"]",
        "Make the focused window 32 pixels narrower.",
    ),
    k(
        "keybindings.grow_height",
        "key list",
        "[\"super+shift+Down\"]",
        "Make the focused window 32 pixels taller.",
    ),
    k(
        "keybindings.shrink_height",
        "key list",
        "[\"super+shift+Up\"]",
        "Make the focused window 32 pixels shorter.",
    ),
    k(
        "keybindings.workspace",
        "key list with {n}",
        "[\"super+{n}\"]",
        "Switch to workspace n (1 to 9).",
    ),
    k(
        "keybindings.move_to_workspace",
        "key list with {n}",
        "[\"super+shift+{n}\"]",
        "Move the focused window to workspace n (1 to 9).",
    ),
    k(
        "decorations.border_width",
        "integer, 1 to 32",
        "4",
        "Frame border in the label colour, pixels. Never 0: the frame is how you tell qubes apart.",
    ),
    k(
        "decorations.title_height",
        "integer, 12 to 64",
        "24",
        "Title bar height, pixels.",
    ),
    k(
        "decorations.popup_border_width",
        "integer, 1 to 16",
        "2",
        "Border of popups and menus in the label colour, pixels.",
    ),
    k(
        "decorations.font",
        "string",
        "\"\"",
        "Title and notification font: empty for the bundled DejaVu Sans, else the path of a TrueType/OpenType file.",
    ),
    k(
        "decorations.font_size",
        "number, 6 to 48",
        "15.0",
        "Title text size, pixels; at most `title_height`.",
    ),
    k(
        "decorations.title_format",
        "string",
        "\"[{qube}] {title}\"",
        "Title bar text. Must contain `{qube}` (the trusted qube name); `{title}` is the window's sanitised title.",
    ),
    k(
        "decorations.utf8_titles",
        "boolean",
        "true",
        "Show titles in (sanitised) UTF-8; `false`: only printable ASCII, anything else becomes `_` (Qubes' default).",
    ),
    k(
        "clipboard.text_max_bytes",
        "integer, 256 to 16777216",
        "65536",
        "Largest text a qube may copy to the global clipboard. `--clipboard-text-max` overrides.",
    ),
    k(
        "clipboard.png_max_bytes",
        "integer, 256 to 16777216",
        "4194304",
        "Largest PNG image a qube may copy. `--clipboard-png-max` overrides.",
    ),
    k(
        "clipboard.copy_timeout_ms",
        "integer, 10 to 60000",
        "5000",
        "How long a qube has to answer a copy; a later answer is dropped. `--clipboard-timeout-ms` overrides.",
    ),
    k(
        "clipboard.paste_once",
        "boolean",
        "true",
        "Wipe the global clipboard after a paste (one copy pastes once). `--clipboard-keep` overrides.",
    ),
    k(
        "clipboard.wipe_after_seconds",
        "integer, 0 to 86400",
        "0",
        "Wipe the global clipboard this long after a copy; 0: never. `--clipboard-wipe-after` overrides.",
    ),
    k(
        "clipboard.ask_is_allow",
        "boolean",
        "true",
        "`ask` in the paste policy counts as allow for the shortcut (as in Qubes). `--clipboard-ask-denies` overrides.",
    ),
    k(
        "clipboard.policy_dir",
        "string",
        "\"\"",
        "Folder of `*.policy` files deciding pastes; empty: `/etc/corral/policy.d` (a debug build in a checkout: `config/policy.d`). `--policy-dir` overrides.",
    ),
    k(
        "security.fullscreen_allowed",
        "string list",
        "[]",
        "Qubes whose fullscreen requests are meant to be honoured. Not yet different from the others: every fullscreen request is drawn maximised with the frame kept (decision 4); the request is only logged as allowed.",
    ),
    k(
        "security.input_jitter_ms",
        "integer, 0 to 5000",
        "0",
        "Random delay, up to this many milliseconds, added to key and button events sent to qubes (order kept) to blur keystroke timing.",
    ),
    k(
        "security.idle_lock_seconds",
        "integer, 0 to 86400",
        "0",
        "Lock the session after this many seconds without keyboard or pointer input; 0: never. `--idle-lock SECONDS` overrides.",
    ),
    k(
        "security.allow_input_injection",
        "boolean",
        "false",
        "Accept `corral msg key`/`pointer` on backends other than headless (`--allow-input-injection` also does).",
    ),
    k(
        "security.limits.windows",
        "integer, 1 to 4096",
        "256",
        "Most windows a qube may have open.",
    ),
    k(
        "security.limits.shared_memory_mib",
        "integer, 1 to 16384",
        "1024",
        "Most shared memory a qube may hand the compositor, MiB.",
    ),
    k(
        "security.limits.messages_per_second",
        "integer, 100 to 1000000",
        "20000",
        "Sustained GUI messages per second a qube may send (bursts twice that).",
    ),
    k(
        "security.qube_limits.<qube>.windows",
        "integer, 1 to 4096",
        "unset",
        "`limits.windows` for this qube.",
    ),
    k(
        "security.qube_limits.<qube>.shared_memory_mib",
        "integer, 1 to 16384",
        "unset",
        "`limits.shared_memory_mib` for this qube.",
    ),
    k(
        "security.qube_limits.<qube>.messages_per_second",
        "integer, 100 to 1000000",
        "unset",
        "`limits.messages_per_second` for this qube.",
    ),
    k(
        "labels.<label>",
        "colour",
        THEME,
        "Colour of a label over the theme's; a new name adds a custom label (qubes from the domain store with that label name are drawn in it).",
    ),
    k(
        "frame.background",
        "colour",
        THEME,
        "Colour behind every window.",
    ),
    k(
        "frame.empty_fill",
        "colour",
        THEME,
        "A window's interior before its first content arrives.",
    ),
    k(
        "frame.title_text_light",
        "colour",
        THEME,
        "Title text on dark labels.",
    ),
    k(
        "frame.title_text_dark",
        "colour",
        THEME,
        "Title text on light labels.",
    ),
    k(
        "frame.focus_underline",
        "integer, 0 to 8",
        THEME,
        "Pixels of the line under the focused window's title.",
    ),
    k(
        "frame.attention_mix_percent",
        "integer, 0 to 100",
        THEME,
        "How far the title bar of a window asking for attention pulses toward white.",
    ),
    k(
        "notifications.background",
        "colour",
        THEME,
        "Notification box.",
    ),
    k(
        "notifications.edge",
        "colour",
        THEME,
        "Notification outline.",
    ),
    k("notifications.headline", "colour", THEME, "Headline text."),
    k("notifications.detail", "colour", THEME, "Detail text."),
    k(
        "notifications.stripe_width",
        "integer, 1 to 32",
        THEME,
        "Stripe in the qube's label colour, pixels.",
    ),
];

/// `(min, max)` of a type like `integer, 1 to 32` or `number, 0.25 to 4`.
pub fn range(ty: &str) -> Option<(f64, f64)> {
    let (_, r) = ty.split_once(", ")?;
    let (a, b) = r.split_once(" to ")?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The section a key's table is documented under.
fn section(path: &str) -> &str {
    match path.split_once('.') {
        None => "",
        Some((first, _)) => first.trim_end_matches("[]"),
    }
}

/// The reference tables of docs/configuration.md.
pub fn markdown() -> String {
    let mut out = String::new();
    let mut current: Option<&str> = None;
    for key in KEYS {
        let s = section(key.path);
        if current != Some(s) {
            current = Some(s);
            let title = match s {
                "" => "Top level".to_owned(),
                "output" => "`[[output]]`".to_owned(),
                s => format!("`[{s}]`"),
            };
            out.push_str(&format!(
                "\n### {title}\n\n| key | type | default | effect |\n|---|---|---|---|\n"
            ));
        }
        let cell = |s: &str| s.replace('|', "\\|");
        out.push_str(&format!(
            "| `{}` | {} | `{}` | {} |\n",
            key.path,
            cell(key.ty),
            cell(key.default),
            cell(key.effect)
        ));
    }
    out
}
