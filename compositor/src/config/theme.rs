//! Themes: label palettes, frame and notification styles, in TOML files found by name in the
//! user's `$XDG_CONFIG_HOME/corral/themes/`, then `/usr/share/corral/themes/`, then the
//! source tree's `themes/` (development). `default` and `high-contrast` are also built into
//! the binary, so it works anywhere. The config file's `[labels]`, `[frame]` and
//! `[notifications]` override the theme key by key.
//!
//! What is drawn reads the effective [`Look`] through [`look`]; a live reload swaps it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use super::schema::{Config, Decorations};
use super::values::{Colour, Int};
use crate::labels::{LABELS, Label, Rgb};

pub const DEFAULT_THEME_TEXT: &str = include_str!("../../../themes/default.toml");
pub const HIGH_CONTRAST_THEME_TEXT: &str = include_str!("../../../themes/high-contrast.toml");

/// Where installed themes live.
pub const SYSTEM_THEME_DIR: &str = "/usr/share/corral/themes";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Theme {
    /// A human name.
    pub name: String,
    /// Label name → colour. Labels a theme leaves out keep Qubes' colours.
    pub labels: BTreeMap<String, Colour>,
    pub frame: FrameStyle,
    pub notifications: NotificationStyle,
}

impl Default for Theme {
    fn default() -> Self {
        Theme {
            name: "Default".into(),
            labels: LABELS
                .iter()
                .map(|l| (l.name.to_owned(), Colour(l.colour)))
                .collect(),
            frame: FrameStyle::default(),
            notifications: NotificationStyle::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FrameStyle {
    /// Behind every window.
    pub background: Colour,
    /// A window's interior before its content arrives (QSB-39).
    pub empty_fill: Colour,
    /// Title text on dark labels.
    pub title_text_light: Colour,
    /// Title text on light labels.
    pub title_text_dark: Colour,
    /// Pixels of the line under the focused window's title.
    pub focus_underline: Int<0, 8>,
    /// How much white the title bar of a window asking for attention pulses to.
    pub attention_mix_percent: Int<0, 100>,
}

impl Default for FrameStyle {
    fn default() -> Self {
        FrameStyle {
            background: Colour::hex(0x202226),
            empty_fill: Colour::hex(0x808080),
            title_text_light: Colour::hex(0xffffff),
            title_text_dark: Colour::hex(0x101010),
            focus_underline: Int(2),
            attention_mix_percent: Int(45),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationStyle {
    pub background: Colour,
    pub edge: Colour,
    pub headline: Colour,
    pub detail: Colour,
    pub stripe_width: Int<1, 32>,
}

impl Default for NotificationStyle {
    fn default() -> Self {
        NotificationStyle {
            background: Colour::hex(0x18181a),
            edge: Colour::hex(0xd0d0d0),
            headline: Colour::hex(0xffffff),
            detail: Colour::hex(0xc8c8c8),
            stripe_width: Int(8),
        }
    }
}

/// What everything drawn reads: the theme with the config's overrides, and the decorations.
#[derive(Debug, Clone, PartialEq)]
pub struct Look {
    pub labels: BTreeMap<String, Rgb>,
    pub frame: FrameStyle,
    pub notifications: NotificationStyle,
    pub decorations: Decorations,
}

impl Default for Look {
    fn default() -> Self {
        Look::new(&Theme::default(), &Config::default())
    }
}

impl Look {
    pub fn new(theme: &Theme, config: &Config) -> Look {
        let mut labels: BTreeMap<String, Rgb> = LABELS
            .iter()
            .map(|l| (l.name.to_owned(), l.colour))
            .collect();
        for (name, c) in theme.labels.iter().chain(&config.labels) {
            labels.insert(name.clone(), c.0);
        }
        let mut frame = theme.frame;
        let f = &config.frame;
        let set = |dst: &mut Colour, src: Option<Colour>| {
            if let Some(c) = src {
                *dst = c;
            }
        };
        set(&mut frame.background, f.background);
        set(&mut frame.empty_fill, f.empty_fill);
        set(&mut frame.title_text_light, f.title_text_light);
        set(&mut frame.title_text_dark, f.title_text_dark);
        if let Some(v) = f.focus_underline {
            frame.focus_underline = v;
        }
        if let Some(v) = f.attention_mix_percent {
            frame.attention_mix_percent = v;
        }
        let mut notifications = theme.notifications;
        let n = &config.notifications;
        set(&mut notifications.background, n.background);
        set(&mut notifications.edge, n.edge);
        set(&mut notifications.headline, n.headline);
        set(&mut notifications.detail, n.detail);
        if let Some(v) = n.stripe_width {
            notifications.stripe_width = v;
        }
        Look {
            labels,
            frame,
            notifications,
            decorations: config.decorations.clone(),
        }
    }

    /// The colour a label is drawn in: the theme's for its name, else its own (a custom label
    /// from the domain store brings its colour).
    pub fn label_colour(&self, label: &Label) -> Rgb {
        self.labels.get(label.name).copied().unwrap_or(label.colour)
    }

    /// Title text colour with the better contrast on `background`.
    pub fn text_on(&self, background: Rgb) -> Rgb {
        let contrast = |a: f64, b: f64| (a.max(b) + 0.05) / (a.min(b) + 0.05);
        let bg = background.luminance();
        let (dark, light) = (self.frame.title_text_dark.0, self.frame.title_text_light.0);
        if contrast(bg, dark.luminance()) >= contrast(bg, light.luminance()) {
            dark
        } else {
            light
        }
    }
}

static LOOK: RwLock<Option<Arc<Look>>> = RwLock::new(None);

/// The look everything is drawn with now.
pub fn look() -> Arc<Look> {
    if let Some(l) = LOOK.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return l.clone();
    }
    let l = Arc::new(Look::default());
    *LOOK.write().unwrap_or_else(|e| e.into_inner()) = Some(l.clone());
    l
}

/// Swaps the look (at start and on every good reload).
pub fn set_look(look: Look) {
    *LOOK.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(look));
}

/// The folders searched for `NAME.toml`, first match wins.
pub fn theme_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(config) = super::user_config_dir() {
        dirs.push(config.join("themes"));
    }
    dirs.push(PathBuf::from(SYSTEM_THEME_DIR));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../themes");
    if cfg!(debug_assertions) && repo.is_dir() {
        dirs.push(repo);
    }
    dirs
}

/// Theme names are file names without folders or dots in front.
pub fn valid_theme_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Finds and parses the theme `name`: a file in [`theme_dirs`], else a built-in one. An
/// invalid theme file is an error located in that file.
pub fn load_theme(name: &str) -> Result<(Theme, String), ConfigError> {
    for dir in theme_dirs() {
        let path = dir.join(format!("{name}.toml"));
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let file = path.display().to_string();
                return parse_theme(&file, &text).map(|t| (t, file));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(ConfigError::unreadable(&path.display().to_string(), &e)),
        }
    }
    let builtin = match name {
        "default" => DEFAULT_THEME_TEXT,
        "high-contrast" => HIGH_CONTRAST_THEME_TEXT,
        _ => {
            return Err(ConfigError {
                file: name.into(),
                line: 0,
                column: 0,
                message: format!(
                    "no theme named {name:?} in {} (built in: default, high-contrast)",
                    theme_dirs()
                        .iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                source_line: None,
                caret_len: 0,
            });
        }
    };
    let file = format!("<built-in theme {name}>");
    parse_theme(&file, builtin).map(|t| (t, file))
}

/// Parses a theme file.
pub fn parse_theme(file: &str, text: &str) -> Result<Theme, ConfigError> {
    let theme: Theme =
        toml::from_str(text).map_err(|e| ConfigError::at(file, text, e.span(), e.message()))?;
    for name in theme.labels.keys() {
        if !super::valid_label_name(name) {
            return Err(super::locate(
                file,
                text,
                &["labels", name],
                &format!(
                    "{name:?} is not a label name: expected 1 to 32 lowercase letters, digits or -"
                ),
            ));
        }
    }
    Ok(theme)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_theme_file_is_the_built_in_default() {
        assert_eq!(
            parse_theme("default.toml", DEFAULT_THEME_TEXT).unwrap(),
            Theme::default()
        );
    }

    #[test]
    fn high_contrast_differs_and_keeps_every_label() {
        let hc = parse_theme("high-contrast.toml", HIGH_CONTRAST_THEME_TEXT).unwrap();
        assert_ne!(hc, Theme::default());
        for l in LABELS {
            assert!(hc.labels.contains_key(l.name), "{} missing", l.name);
        }
    }

    #[test]
    fn overrides_win_over_the_theme() {
        let mut config = Config::default();
        config.labels.insert("blue".into(), Colour::hex(0x0000ff));
        config.labels.insert("teal".into(), Colour::hex(0x008080));
        config.frame.background = Some(Colour::hex(0x010203));
        let look = Look::new(&Theme::default(), &config);
        assert_eq!(look.labels["blue"], Rgb::from_hex(0x0000ff));
        assert_eq!(look.labels["teal"], Rgb::from_hex(0x008080));
        assert_eq!(look.labels["red"], Rgb::from_hex(0xcc0000));
        assert_eq!(look.frame.background, Colour::hex(0x010203));
    }

    #[test]
    fn theme_names_cannot_leave_the_theme_folder() {
        assert!(valid_theme_name("high-contrast"));
        assert!(!valid_theme_name("../etc/passwd"));
        assert!(!valid_theme_name(".hidden"));
        assert!(!valid_theme_name(""));
    }
}
