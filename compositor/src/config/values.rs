//! Value types of the config file that check themselves while they are parsed, so a bad value
//! is reported by toml with its exact span (and so as `FILE:LINE:COLUMN`): integers and
//! numbers in a range, `#rrggbb` colours, key combinations, the title format.

use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use crate::labels::Rgb;

/// An integer from `MIN` to `MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Int<const MIN: i64, const MAX: i64>(pub i64);

impl<const MIN: i64, const MAX: i64> Int<MIN, MAX> {
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl<'de, const MIN: i64, const MAX: i64> Deserialize<'de> for Int<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        if (MIN..=MAX).contains(&v) {
            Ok(Int(v))
        } else {
            Err(de::Error::custom(format!(
                "{v} is out of range: expected an integer from {MIN} to {MAX}"
            )))
        }
    }
}

impl<const MIN: i64, const MAX: i64> Serialize for Int<MIN, MAX> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.0)
    }
}

/// A number from `MIN_MILLI / 1000` to `MAX_MILLI / 1000` (const generics cannot be floats).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Float<const MIN_MILLI: i64, const MAX_MILLI: i64>(pub f64);

impl<const MIN_MILLI: i64, const MAX_MILLI: i64> Float<MIN_MILLI, MAX_MILLI> {
    pub const fn get(self) -> f64 {
        self.0
    }
}

impl<'de, const MIN_MILLI: i64, const MAX_MILLI: i64> Deserialize<'de>
    for Float<MIN_MILLI, MAX_MILLI>
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // serde's f64 also takes integers, so `scale = 2` works.
        let v = f64::deserialize(d)?;
        let (min, max) = (MIN_MILLI as f64 / 1000.0, MAX_MILLI as f64 / 1000.0);
        if v.is_finite() && (min..=max).contains(&v) {
            Ok(Float(v))
        } else {
            Err(de::Error::custom(format!(
                "{v} is out of range: expected a number from {min} to {max}"
            )))
        }
    }
}

impl<const MIN_MILLI: i64, const MAX_MILLI: i64> Serialize for Float<MIN_MILLI, MAX_MILLI> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

/// An opaque colour written `"#rrggbb"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Colour(pub Rgb);

impl Colour {
    pub const fn hex(v: u32) -> Colour {
        Colour(Rgb::from_hex(v))
    }

    pub fn parse(s: &str) -> Result<Colour, String> {
        s.strip_prefix('#')
            .filter(|h| h.len() == 6 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .map(Colour::hex)
            .ok_or_else(|| format!("{s:?} is not a colour: expected \"#rrggbb\", like \"#3465a4\""))
    }
}

impl<'de> Deserialize<'de> for Colour {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Colour::parse(&s).map_err(de::Error::custom)
    }
}

impl Serialize for Colour {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.hex())
    }
}

/// Modifiers of a key combination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Mods {
    pub ctrl: bool,
    pub alt: bool,
    pub shift: bool,
    pub logo: bool,
}

/// The key of a combination: one keysym, or `{n}`, the digits 1 to 9 (workspace bindings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ComboKey {
    Sym(u32),
    Digit,
}

/// A key combination such as `ctrl+shift+c`, `super+Up`, `Print`; with `N` true it must use
/// `{n}` for the key (`super+{n}`), which stands for 1 to 9.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Combo<const N: bool> {
    pub text: String,
    pub mods: Mods,
    pub key: ComboKey,
}

impl<const N: bool> Combo<N> {
    pub fn parse(text: &str) -> Result<Self, String> {
        use smithay::input::keyboard::{keysyms, xkb};
        let parts: Vec<&str> = text.split('+').map(str::trim).collect();
        if text.trim().is_empty() || parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "{text:?} is not a key combination: expected modifiers and a key joined by +, like \"super+shift+Right\""
            ));
        }
        let (key, modifiers) = parts.split_last().expect("split gives one part at least");
        let mut mods = Mods::default();
        for m in modifiers {
            let flag = match m.to_ascii_lowercase().as_str() {
                "ctrl" | "control" => &mut mods.ctrl,
                "alt" | "mod1" => &mut mods.alt,
                "shift" => &mut mods.shift,
                "super" | "logo" | "mod4" | "meta" => &mut mods.logo,
                _ => {
                    return Err(format!(
                        "unknown modifier {m:?} in {text:?}: expected ctrl, alt, shift or super"
                    ));
                }
            };
            if *flag {
                return Err(format!("modifier {m:?} appears twice in {text:?}"));
            }
            *flag = true;
        }
        let key = if *key == "{n}" {
            if !N {
                return Err(format!(
                    "{text:?}: {{n}} is only for the workspace bindings"
                ));
            }
            ComboKey::Digit
        } else {
            if N {
                return Err(format!(
                    "{text:?} must use {{n}} for the workspace number, like \"super+{{n}}\""
                ));
            }
            let sym = xkb::keysym_from_name(key, xkb::KEYSYM_CASE_INSENSITIVE).raw();
            if sym == keysyms::KEY_NoSymbol {
                return Err(format!(
                    "unknown key {key:?} in {text:?}: expected an XKB key name such as a, 1, F1, Return, Tab, Print, Up"
                ));
            }
            ComboKey::Sym(normalise_sym(sym))
        };
        Ok(Combo {
            text: text.to_owned(),
            mods,
            key,
        })
    }
}

/// Letters compare in lower case; Shift+Tab's ISO_Left_Tab is Tab.
pub fn normalise_sym(sym: u32) -> u32 {
    use smithay::input::keyboard::keysyms;
    if (keysyms::KEY_A..=keysyms::KEY_Z).contains(&sym) {
        sym + (keysyms::KEY_a - keysyms::KEY_A)
    } else if sym == keysyms::KEY_ISO_Left_Tab {
        keysyms::KEY_Tab
    } else {
        sym
    }
}

impl<'de, const N: bool> Deserialize<'de> for Combo<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Combo::parse(&s).map_err(de::Error::custom)
    }
}

impl<const N: bool> Serialize for Combo<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<const N: bool> fmt::Display for Combo<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The title bar text: `{qube}` (required, so no title bar can hide which qube a window
/// belongs to) and `{title}`, the window's sanitised title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TitleFormat(pub String);

impl TitleFormat {
    pub fn parse(s: &str) -> Result<TitleFormat, String> {
        if !s.contains("{qube}") {
            return Err(format!(
                "{s:?} must contain {{qube}}: the qube's name is always shown (like \"[{{qube}}] {{title}}\")"
            ));
        }
        if s.len() > 128 || s.chars().any(char::is_control) {
            return Err(format!(
                "{s:?}: expected at most 128 bytes and no control characters"
            ));
        }
        let rest = s.replace("{qube}", "").replace("{title}", "");
        if rest.contains('{') || rest.contains('}') {
            return Err(format!(
                "{s:?}: the only placeholders are {{qube}} and {{title}}"
            ));
        }
        Ok(TitleFormat(s.to_owned()))
    }

    /// The title bar text. When the window has no title, `{title}` and the separator before it
    /// go (`[work]`, not `[work] `).
    pub fn render(&self, qube: &str, title: &str) -> String {
        if title.is_empty() {
            let cut = self.0.replace("{title}", "");
            let text = cut.replace("{qube}", qube);
            text.trim_matches([' ', '-', '—', ':', '|']).to_owned()
        } else {
            // {title} last, so a qube's title cannot inject a {qube}.
            self.0.replace("{qube}", qube).replacen("{title}", title, 1)
        }
    }
}

impl<'de> Deserialize<'de> for TitleFormat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TitleFormat::parse(&s).map_err(de::Error::custom)
    }
}

impl Serialize for TitleFormat {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smithay::input::keyboard::keysyms;

    #[test]
    fn combos() {
        let c = Combo::<false>::parse("ctrl+shift+C").unwrap();
        assert_eq!(c.key, ComboKey::Sym(keysyms::KEY_c));
        assert!(c.mods.ctrl && c.mods.shift && !c.mods.alt && !c.mods.logo);
        assert_eq!(
            Combo::<false>::parse("super+Up").unwrap().key,
            ComboKey::Sym(keysyms::KEY_Up)
        );
        assert_eq!(
            Combo::<false>::parse("Print").unwrap().key,
            ComboKey::Sym(keysyms::KEY_Print)
        );
        assert_eq!(
            Combo::<true>::parse("super+shift+{n}").unwrap().key,
            ComboKey::Digit
        );
        assert!(Combo::<false>::parse("super+{n}").is_err());
        assert!(Combo::<true>::parse("super+1").is_err());
        assert!(Combo::<false>::parse("hyper+a").is_err());
        assert!(Combo::<false>::parse("ctrl+ctrl+a").is_err());
        assert!(Combo::<false>::parse("ctrl+").is_err());
        assert!(Combo::<false>::parse("ctrl+nosuchkey").is_err());
        assert!(Combo::<false>::parse("").is_err());
    }

    #[test]
    fn title_format() {
        let f = TitleFormat::parse("[{qube}] {title}").unwrap();
        assert_eq!(f.render("work", "Doc"), "[work] Doc");
        assert_eq!(f.render("work", ""), "[work]");
        assert_eq!(f.render("work", "{qube}"), "[work] {qube}");
        let f = TitleFormat::parse("{title} — {qube}").unwrap();
        assert_eq!(f.render("work", ""), "work");
        assert!(TitleFormat::parse("{title}").is_err());
        assert!(TitleFormat::parse("{qube} {name}").is_err());
    }
}
