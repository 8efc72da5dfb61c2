//! The compositor's config file: one TOML file the user can read, diff and keep in git.
//!
//! - Found at `--config PATH`, else `$XDG_CONFIG_HOME/corral/config.toml` (or
//!   `~/.config/corral/config.toml`), else `/etc/corral/config.toml`, else the built-in default:
//!   the text of `config/corral.toml`, which `corral print-default-config` prints.
//! - Parsed with serde and toml; unknown keys, wrong types and out-of-range values are errors
//!   located as `FILE:LINE:COLUMN` with the offending line ([`ConfigError`]).
//! - Reloaded live (see [`live`]): a good edit applies at once, a bad one keeps the last good
//!   config and raises a notification naming the file, line, column and what was expected.
//! - Every key, its type, default and effect is in [`reference::KEYS`], which
//!   docs/configuration.md and `config/corral.toml` are tested against.

pub mod apply;
pub mod bindings;
pub mod error;
pub mod jitter;
pub mod live;
pub mod reference;
pub mod schema;
pub mod theme;
pub mod values;

use std::path::{Path, PathBuf};

pub use error::ConfigError;
pub use schema::Config;
pub use theme::{Look, Theme};

/// The documented default file (`config/corral.toml`), built in.
pub const DEFAULT_CONFIG_TEXT: &str = include_str!("../../../config/corral.toml");

/// The system-wide config file.
pub const SYSTEM_CONFIG: &str = "/etc/corral/config.toml";

/// `$XDG_CONFIG_HOME/corral`, else `~/.config/corral`.
pub fn user_config_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })?;
    Some(base.join("corral"))
}

/// Where the config comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    BuiltIn,
}

impl Source {
    /// The search order: an explicit path, the user's file, the system's, the built-in text.
    pub fn find(explicit: Option<&Path>) -> Source {
        if let Some(p) = explicit {
            return Source::File(p.to_path_buf());
        }
        let user = user_config_dir().map(|d| d.join("config.toml"));
        for candidate in user.into_iter().chain([PathBuf::from(SYSTEM_CONFIG)]) {
            if candidate.exists() {
                return Source::File(candidate);
            }
        }
        Source::BuiltIn
    }

    pub fn describe(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::BuiltIn => "<built-in default>".into(),
        }
    }

    /// The file's text.
    pub fn read(&self) -> Result<String, ConfigError> {
        match self {
            Source::File(p) => std::fs::read_to_string(p)
                .map_err(|e| ConfigError::unreadable(&p.display().to_string(), &e)),
            Source::BuiltIn => Ok(DEFAULT_CONFIG_TEXT.to_owned()),
        }
    }
}

/// A config that parsed and checked, with its theme.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub theme: Theme,
    /// Where the theme came from.
    pub theme_file: String,
    pub look: Look,
    pub bindings: bindings::Bindings,
    /// Allowed but probably not meant (an unbound clipboard shortcut...).
    pub warnings: Vec<String>,
}

impl Loaded {
    /// The built-in defaults with the built-in default theme, without reading any file (so
    /// it cannot fail, whatever is in the user's folders).
    pub fn builtin() -> Loaded {
        Loaded {
            config: Config::default(),
            theme: Theme::default(),
            theme_file: "<built-in theme default>".into(),
            look: Look::default(),
            bindings: bindings::Bindings::default(),
            warnings: Vec::new(),
        }
    }
}

/// Reads, parses and checks the config at `source`, and loads its theme.
pub fn load(source: &Source) -> Result<Loaded, ConfigError> {
    let text = source.read()?;
    load_text(&source.describe(), &text)
}

/// Parses and checks `text` (named `file` in errors), and loads its theme.
pub fn load_text(file: &str, text: &str) -> Result<Loaded, ConfigError> {
    let config = parse(file, text)?;
    let bindings = bindings::compile(&config.keybindings).map_err(|e| {
        // Point at whichever of the two is in the file (the other may be a default).
        let (action, index) = if has_key(text, &["keybindings", e.action]) {
            (e.action, e.index)
        } else {
            e.other
        };
        locate(
            file,
            text,
            &["keybindings", action, &index.to_string()],
            &e.message,
        )
    })?;
    let (theme, theme_file) = theme::load_theme(&config.theme)?;
    let look = Look::new(&theme, &config);
    let warnings = bindings::warnings(&config.keybindings);
    Ok(Loaded {
        config,
        theme,
        theme_file,
        look,
        bindings,
        warnings,
    })
}

/// Parses `text` and checks what one value alone cannot say.
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
    let config: Config = toml::from_str(text).map_err(|e| {
        let span = e.span().map(|s| narrow_to_item(text, s, e.message()));
        ConfigError::at(file, text, span, e.message())
    })?;
    check(file, text, &config)?;
    Ok(config)
}

/// toml puts an error in one item of an array under the whole array; when the message quotes
/// the bad item (ours do) and it appears once in the array, point at that item instead.
fn narrow_to_item(
    text: &str,
    span: std::ops::Range<usize>,
    message: &str,
) -> std::ops::Range<usize> {
    let Some(inner) = text.get(span.clone()) else {
        return span;
    };
    if !inner.starts_with('[') {
        return span;
    }
    let quoted: Vec<&str> = message.split('"').skip(1).step_by(2).collect();
    let mut best: Option<std::ops::Range<usize>> = None;
    for q in quoted {
        let needle = format!("\"{q}\"");
        if inner.matches(&needle).count() == 1
            && let Some(at) = inner.find(&needle)
            && best.as_ref().is_none_or(|b| b.len() < needle.len())
        {
            best = Some(span.start + at..span.start + at + needle.len());
        }
    }
    best.unwrap_or(span)
}

/// Label names, as in the domain store.
pub fn valid_label_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn check(file: &str, text: &str, c: &Config) -> Result<(), ConfigError> {
    let err = |path: &[&str], msg: String| Err(locate(file, text, path, &msg));
    if !theme::valid_theme_name(&c.theme) {
        return err(
            &["theme"],
            format!(
                "{:?} is not a theme name: expected a file name like \"high-contrast\"",
                c.theme
            ),
        );
    }
    for name in c.labels.keys() {
        if !valid_label_name(name) {
            return err(
                &["labels", name],
                format!(
                    "{name:?} is not a label name: expected 1 to 32 lowercase letters, digits or -"
                ),
            );
        }
    }
    for (i, o) in c.outputs.iter().enumerate() {
        let index = i.to_string();
        if o.matches.trim().is_empty() {
            return err(
                &["output", &index],
                "this [[output]] has no `match`: expected the connector name (like \"HDMI-A-1\" or \"headless-1\") or \"MAKE MODEL\"".into(),
            );
        }
        if c.outputs[..i].iter().any(|p| p.matches == o.matches) {
            return err(
                &["output", &index, "match"],
                format!(
                    "a second [[output]] for {:?}: expected one per output",
                    o.matches
                ),
            );
        }
        if let Some(mode) = &o.mode
            && let Err(e) = schema::Output::parse_mode(mode)
        {
            return err(&["output", &index, "mode"], e);
        }
    }
    let i = &c.input;
    if let Err(e) = compile_keymap(
        &i.keyboard_model,
        &i.keyboard_layout,
        &i.keyboard_variant,
        &i.keyboard_options,
    ) {
        return err(&["input", "keyboard_layout"], e);
    }
    for (qube, layout) in &i.qube_keyboard_layout {
        if let Err(e) = compile_keymap(&i.keyboard_model, layout, "", &i.keyboard_options) {
            return err(&["input", "qube_keyboard_layout", qube], e);
        }
    }
    if !c.decorations.font.is_empty()
        && let Err(e) = crate::render::text::load_font_file(Path::new(&c.decorations.font))
    {
        return err(&["decorations", "font"], e);
    }
    let d = &c.decorations;
    if f64::from(d.title_height.get() as i32) < d.font_size.get() {
        return err(
            &["decorations", "font_size"],
            format!(
                "font_size {} does not fit a title bar {} pixels high: expected at most title_height",
                d.font_size.get(),
                d.title_height.get()
            ),
        );
    }
    Ok(())
}

/// Compiles an XKB keymap from RMLVO names; empty names take XKB's defaults (and the
/// `XKB_DEFAULT_*` variables).
pub fn compile_keymap(
    model: &str,
    layout: &str,
    variant: &str,
    options: &str,
) -> Result<String, String> {
    use smithay::input::keyboard::xkb;
    let mut context = xkb::Context::new(xkb::CONTEXT_NO_FLAGS);
    // Our own error says what is wrong; libxkbcommon's would only add noise on stderr.
    context.set_log_level(xkb::LogLevel::Critical);
    let options = (!options.is_empty()).then(|| options.to_owned());
    let keymap = xkb::Keymap::new_from_names(
        &context,
        "",
        model,
        layout,
        variant,
        options,
        xkb::KEYMAP_COMPILE_NO_FLAGS,
    )
    .ok_or_else(|| {
        format!(
            "XKB cannot compile layout {layout:?} (variant {variant:?}): expected a layout from /usr/share/X11/xkb/rules/evdev.lst, like \"us\" or \"de\""
        )
    })?;
    Ok(keymap.get_as_string(xkb::KEYMAP_FORMAT_TEXT_V1))
}

/// Whether `text` has the table or key `path`.
fn has_key(text: &str, path: &[&str]) -> bool {
    let Ok(root) = toml::de::DeTable::parse(text) else {
        return false;
    };
    let mut table = root.get_ref();
    for (i, segment) in path.iter().enumerate() {
        let Some((_, v)) = table.iter().find(|(k, _)| k.get_ref().as_ref() == *segment) else {
            return false;
        };
        if i + 1 == path.len() {
            return true;
        }
        match v.get_ref() {
            toml::de::DeValue::Table(t) => table = t,
            _ => return false,
        }
    }
    true
}

/// An error at the key `path` (table names, keys, array indexes) of `text`: under its value
/// when the key is there, else under the nearest table that is.
pub fn locate(file: &str, text: &str, path: &[&str], message: &str) -> ConfigError {
    use toml::de::{DeTable, DeValue};
    let shown = path
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(".");
    let message = format!("{shown}: {message}");
    let Ok(root) = DeTable::parse(text) else {
        return ConfigError::at(file, text, None, &message);
    };
    let mut span = None;
    let mut table = Some(root.get_ref());
    let mut value: Option<&toml::Spanned<DeValue<'_>>> = None;
    for segment in path {
        let next = if let Some(t) = table {
            t.iter()
                .find(|(k, _)| k.get_ref().as_ref() == *segment)
                .map(|(_, v)| v)
        } else if let Some(DeValue::Array(a)) = value.map(|v| v.get_ref()) {
            segment.parse::<usize>().ok().and_then(|i| a.get(i))
        } else {
            None
        };
        let Some(next) = next else {
            break;
        };
        span = Some(next.span());
        value = Some(next);
        table = match next.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => None,
        };
    }
    ConfigError::at(file, text, span, &message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_file_is_the_default_config() {
        let parsed = parse("corral.toml", DEFAULT_CONFIG_TEXT).unwrap();
        assert_eq!(parsed, Config::default());
        let loaded = load(&Source::BuiltIn).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    }

    #[test]
    fn locate_finds_values_tables_and_array_items() {
        let text = "theme = \"x\"\n[[output]]\nmatch = \"a\"\n[[output]]\nmode = \"1x1\"\n";
        let e = locate("f", text, &["output", "1", "mode"], "bad");
        assert_eq!((e.line, e.column), (5, 8));
        assert_eq!(e.message, "output.1.mode: bad");
        let e = locate("f", text, &["theme"], "bad");
        assert_eq!((e.line, e.column), (1, 9));
    }
}
