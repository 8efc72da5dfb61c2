//! The config file's schema. Every table denies unknown keys (a typo is an error, never a
//! silently ignored setting) and every key has a default, so a file only says what it changes.
//! The defaults here are the values `config/corral.toml` shows; a test holds them equal, and
//! another holds them equal to docs/configuration.md (see [`super::reference`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::values::{Colour, Combo, Float, Int, TitleFormat};

/// Largest clipboard cap (the protocol's hard maximum, 16 MiB).
pub const CLIPBOARD_MAX: i64 = corral_protocol::limits::MAX_CLIPBOARD_BYTES as i64;

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Theme name: a file `NAME.toml` in the theme folders.
    pub theme: String,
    /// Where the `screenshot` shortcut saves PNG files; empty: `$XDG_PICTURES_DIR`, else
    /// `~/Pictures`, else the home folder.
    pub screenshot_dir: String,
    pub input: Input,
    #[serde(rename = "output")]
    pub outputs: Vec<Output>,
    pub keybindings: Keybindings,
    pub decorations: Decorations,
    pub clipboard: Clipboard,
    pub security: Security,
    /// Label colours over the theme's; a new name adds a custom label.
    pub labels: BTreeMap<String, Colour>,
    pub frame: FrameOverrides,
    pub notifications: NotificationOverrides,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            theme: "default".into(),
            screenshot_dir: String::new(),
            input: Input::default(),
            outputs: Vec::new(),
            keybindings: Keybindings::default(),
            decorations: Decorations::default(),
            clipboard: Clipboard::default(),
            security: Security::default(),
            labels: BTreeMap::new(),
            frame: FrameOverrides::default(),
            notifications: NotificationOverrides::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Input {
    pub keyboard_layout: String,
    pub keyboard_variant: String,
    pub keyboard_options: String,
    pub keyboard_model: String,
    /// Key repeats per second; 0 turns repeat off.
    pub repeat_rate: Int<0, 100>,
    /// Milliseconds before a held key repeats.
    pub repeat_delay: Int<100, 2000>,
    pub pointer_acceleration: Float<-1000, 1000>,
    pub natural_scrolling: bool,
    /// Qube name → XKB layout sent to that qube instead of `keyboard_layout`.
    pub qube_keyboard_layout: BTreeMap<String, String>,
}

impl Default for Input {
    fn default() -> Self {
        Input {
            keyboard_layout: String::new(),
            keyboard_variant: String::new(),
            keyboard_options: String::new(),
            keyboard_model: String::new(),
            repeat_rate: Int(30),
            repeat_delay: Int(400),
            pointer_acceleration: Float(0.0),
            natural_scrolling: false,
            qube_keyboard_layout: BTreeMap::new(),
        }
    }
}

/// How an output is rotated or flipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Transform {
    #[default]
    #[serde(rename = "normal")]
    Normal,
    #[serde(rename = "90")]
    R90,
    #[serde(rename = "180")]
    R180,
    #[serde(rename = "270")]
    R270,
    #[serde(rename = "flipped")]
    Flipped,
    #[serde(rename = "flipped-90")]
    Flipped90,
    #[serde(rename = "flipped-180")]
    Flipped180,
    #[serde(rename = "flipped-270")]
    Flipped270,
}

impl Transform {
    /// Whether width and height swap.
    pub fn swaps_axes(self) -> bool {
        matches!(
            self,
            Transform::R90 | Transform::R270 | Transform::Flipped90 | Transform::Flipped270
        )
    }
}

/// One `[[output]]`: settings for the output whose connector name (or `make model`) is
/// `match`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Output {
    #[serde(rename = "match")]
    pub matches: String,
    /// `WIDTHxHEIGHT` or `WIDTHxHEIGHT@HZ`; unset: the preferred mode.
    pub mode: Option<String>,
    /// `[x, y]` of the top-left corner in the global space; unset: left to right.
    pub position: Option<[Int<-32768, 32768>; 2]>,
    pub scale: Float<250, 4000>,
    pub transform: Transform,
    pub enabled: bool,
}

impl Default for Output {
    fn default() -> Self {
        Output {
            matches: String::new(),
            mode: None,
            position: None,
            scale: Float(1.0),
            transform: Transform::Normal,
            enabled: true,
        }
    }
}

impl Output {
    /// `(width, height, refresh Hz)` of `mode`.
    pub fn parse_mode(mode: &str) -> Result<(i32, i32, Option<u32>), String> {
        let bad = || {
            format!(
                "{mode:?} is not a mode: expected WIDTHxHEIGHT or WIDTHxHEIGHT@HZ (like \"1920x1080@60\"), sizes 64 to 16384"
            )
        };
        let (size, hz) = match mode.split_once('@') {
            Some((s, hz)) => (
                s,
                Some(
                    hz.parse::<u32>()
                        .ok()
                        .filter(|h| (1..=1000).contains(h))
                        .ok_or_else(bad)?,
                ),
            ),
            None => (mode, None),
        };
        let (w, h) = crate::cli::parse_size(size).map_err(|_| bad())?;
        Ok((w, h, hz))
    }
}

/// Shortcut lists; an empty list unbinds the action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Keybindings {
    pub copy: Vec<Combo<false>>,
    pub paste: Vec<Combo<false>>,
    pub launcher: Vec<Combo<false>>,
    pub switcher: Vec<Combo<false>>,
    pub lock: Vec<Combo<false>>,
    pub close: Vec<Combo<false>>,
    pub maximize: Vec<Combo<false>>,
    pub minimize: Vec<Combo<false>>,
    pub fullscreen: Vec<Combo<false>>,
    pub screenshot: Vec<Combo<false>>,
    pub move_left: Vec<Combo<false>>,
    pub move_right: Vec<Combo<false>>,
    pub move_up: Vec<Combo<false>>,
    pub move_down: Vec<Combo<false>>,
    pub grow_width: Vec<Combo<false>>,
    pub shrink_width: Vec<Combo<false>>,
    pub grow_height: Vec<Combo<false>>,
    pub shrink_height: Vec<Combo<false>>,
    pub workspace: Vec<Combo<true>>,
    pub move_to_workspace: Vec<Combo<true>>,
}

fn combos<const N: bool>(list: &[&str]) -> Vec<Combo<N>> {
    list.iter()
        .map(|c| Combo::parse(c).expect("built-in combinations parse"))
        .collect()
}

impl Default for Keybindings {
    fn default() -> Self {
        Keybindings {
            copy: combos(&["ctrl+shift+c"]),
            paste: combos(&["ctrl+shift+v"]),
            launcher: combos(&["super+space"]),
            switcher: combos(&["alt+Tab", "alt+shift+Tab", "super+Tab", "super+shift+Tab"]),
            lock: combos(&["super+l"]),
            close: combos(&["super+q"]),
            maximize: combos(&["super+Up"]),
            minimize: combos(&["super+Down"]),
            fullscreen: combos(&["super+f"]),
            screenshot: combos(&["Print"]),
            move_left: combos(&["super+ctrl+Left"]),
            move_right: combos(&["super+ctrl+Right"]),
            move_up: combos(&["super+ctrl+Up"]),
            move_down: combos(&["super+ctrl+Down"]),
            grow_width: combos(&["super+shift+Right"]),
            shrink_width: combos(&["super+shift+Left"]),
            grow_height: combos(&["super+shift+Down"]),
            shrink_height: combos(&["super+shift+Up"]),
            workspace: combos(&["super+{n}"]),
            move_to_workspace: combos(&["super+shift+{n}"]),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Decorations {
    pub border_width: Int<1, 32>,
    pub title_height: Int<12, 64>,
    pub popup_border_width: Int<1, 16>,
    /// Empty: the bundled DejaVu Sans; else the path of a TrueType or OpenType file.
    pub font: String,
    pub font_size: Float<6000, 48000>,
    pub title_format: TitleFormat,
    /// Show titles in UTF-8 (sanitised); off: only printable ASCII, the rest becomes `_`.
    pub utf8_titles: bool,
}

impl Default for Decorations {
    fn default() -> Self {
        Decorations {
            border_width: Int(4),
            title_height: Int(24),
            popup_border_width: Int(2),
            font: String::new(),
            font_size: Float(15.0),
            title_format: TitleFormat("[{qube}] {title}".into()),
            utf8_titles: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Clipboard {
    pub text_max_bytes: Int<256, CLIPBOARD_MAX>,
    pub png_max_bytes: Int<256, CLIPBOARD_MAX>,
    pub copy_timeout_ms: Int<10, 60000>,
    pub paste_once: bool,
    /// 0: never.
    pub wipe_after_seconds: Int<0, 86400>,
    pub ask_is_allow: bool,
    /// Empty: the default policy folder.
    pub policy_dir: String,
}

impl Default for Clipboard {
    fn default() -> Self {
        Clipboard {
            text_max_bytes: Int(corral_protocol::limits::DEFAULT_CLIPBOARD_TEXT_BYTES as i64),
            png_max_bytes: Int(crate::clipboard::DEFAULT_CLIPBOARD_PNG_BYTES as i64),
            copy_timeout_ms: Int(crate::clipboard::DEFAULT_COPY_TIMEOUT.as_millis() as i64),
            paste_once: true,
            wipe_after_seconds: Int(0),
            ask_is_allow: true,
            policy_dir: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Security {
    /// Qubes whose fullscreen requests are honoured.
    pub fullscreen_allowed: Vec<String>,
    /// Upper bound of a random delay added to each key and button event sent to a qube.
    pub input_jitter_ms: Int<0, 5000>,
    /// Seconds without keyboard or pointer input before the session locks; 0: never.
    pub idle_lock_seconds: Int<0, 86_400>,
    pub allow_input_injection: bool,
    pub limits: Limits,
    /// Qube name → limits over `limits`.
    pub qube_limits: BTreeMap<String, QubeLimits>,
}

impl Default for Security {
    fn default() -> Self {
        Security {
            fullscreen_allowed: Vec::new(),
            input_jitter_ms: Int(0),
            idle_lock_seconds: Int(0),
            allow_input_injection: false,
            limits: Limits::default(),
            qube_limits: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub windows: Int<1, 4096>,
    pub shared_memory_mib: Int<1, 16384>,
    pub messages_per_second: Int<100, 1_000_000>,
}

impl Default for Limits {
    fn default() -> Self {
        let d = corral_protocol::session::SessionLimits::default();
        Limits {
            windows: Int(d.max_windows as i64),
            shared_memory_mib: Int((d.max_pool_bytes / (1024 * 1024)) as i64),
            messages_per_second: Int(i64::from(d.max_messages_per_second)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct QubeLimits {
    pub windows: Option<Int<1, 4096>>,
    pub shared_memory_mib: Option<Int<1, 16384>>,
    pub messages_per_second: Option<Int<100, 1_000_000>>,
}

impl Security {
    /// The session limits for a qube's channel.
    pub fn session_limits(&self, qube: &str) -> corral_protocol::session::SessionLimits {
        let over = self.qube_limits.get(qube).copied().unwrap_or_default();
        let windows = over.windows.unwrap_or(self.limits.windows).get();
        let shm = over
            .shared_memory_mib
            .unwrap_or(self.limits.shared_memory_mib)
            .get();
        let rate = over
            .messages_per_second
            .unwrap_or(self.limits.messages_per_second)
            .get();
        corral_protocol::session::SessionLimits {
            max_windows: windows as usize,
            max_pool_bytes: shm as u64 * 1024 * 1024,
            max_messages_per_second: rate as u32,
            message_burst: (rate as u32).saturating_mul(2),
            ..Default::default()
        }
    }
}

/// `[frame]`: the theme's frame style, key by key.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct FrameOverrides {
    pub background: Option<Colour>,
    pub empty_fill: Option<Colour>,
    pub title_text_light: Option<Colour>,
    pub title_text_dark: Option<Colour>,
    pub focus_underline: Option<Int<0, 8>>,
    pub attention_mix_percent: Option<Int<0, 100>>,
}

/// `[notifications]`: the theme's notification style, key by key.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationOverrides {
    pub background: Option<Colour>,
    pub edge: Option<Colour>,
    pub headline: Option<Colour>,
    pub detail: Option<Colour>,
    pub stripe_width: Option<Int<1, 32>>,
}
