//! Qube labels: the trusted colours of frames.
//!
//! Qubes' eight labels (FACTS.md), in the same order and with the same indexes. A label is part
//! of a qube's identity: it is attached to a channel when the channel is created (decision 2)
//! and nothing an agent sends can change it. The GUI domain itself is framed in black, like dom0.

use std::fmt;

/// An opaque sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rgb {
    pub r: u8,
    pub g: u8,
    pub b: u8,
}

impl Rgb {
    pub const fn new(r: u8, g: u8, b: u8) -> Self {
        Rgb { r, g, b }
    }

    pub const fn from_hex(hex: u32) -> Self {
        Rgb::new((hex >> 16) as u8, (hex >> 8) as u8, hex as u8)
    }

    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.r, self.g, self.b)
    }

    /// WCAG relative luminance, 0.0 (black) to 1.0 (white).
    pub fn luminance(self) -> f64 {
        fn channel(c: u8) -> f64 {
            let c = f64::from(c) / 255.0;
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        }
        0.2126 * channel(self.r) + 0.7152 * channel(self.g) + 0.0722 * channel(self.b)
    }

    /// Mixes `amount` (0.0..=1.0) of `other` into this colour.
    pub fn mix(self, other: Rgb, amount: f64) -> Rgb {
        let m =
            |a: u8, b: u8| (f64::from(a) * (1.0 - amount) + f64::from(b) * amount).round() as u8;
        Rgb::new(m(self.r, other.r), m(self.g, other.g), m(self.b, other.b))
    }

    /// As premultiplied, opaque ARGB8888 (`0xAARRGGBB`).
    pub fn argb(self) -> u32 {
        0xFF00_0000 | (u32::from(self.r) << 16) | (u32::from(self.g) << 8) | u32::from(self.b)
    }

    pub fn to_f32(self) -> [f32; 4] {
        [
            f32::from(self.r) / 255.0,
            f32::from(self.g) / 255.0,
            f32::from(self.b) / 255.0,
            1.0,
        ]
    }
}

pub const WHITE: Rgb = Rgb::new(0xff, 0xff, 0xff);
pub const BLACK: Rgb = Rgb::new(0, 0, 0);
/// Title text on dark labels.
pub const LIGHT_TEXT: Rgb = Rgb::new(0xff, 0xff, 0xff);
/// Title text on light labels.
pub const DARK_TEXT: Rgb = Rgb::new(0x10, 0x10, 0x10);

/// Text colour with the better contrast on `background` (dark on yellow, light on black).
pub fn text_colour_on(background: Rgb) -> Rgb {
    let contrast = |a: f64, b: f64| (a.max(b) + 0.05) / (a.min(b) + 0.05);
    let bg = background.luminance();
    if contrast(bg, DARK_TEXT.luminance()) >= contrast(bg, LIGHT_TEXT.luminance()) {
        DARK_TEXT
    } else {
        LIGHT_TEXT
    }
}

/// A label: index, name and colour, as in Qubes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Label {
    pub index: u32,
    pub name: &'static str,
    pub colour: Rgb,
}

/// Qubes' labels, index 1 to 8.
pub const LABELS: [Label; 8] = [
    Label {
        index: 1,
        name: "red",
        colour: Rgb::from_hex(0xcc0000),
    },
    Label {
        index: 2,
        name: "orange",
        colour: Rgb::from_hex(0xf57900),
    },
    Label {
        index: 3,
        name: "yellow",
        colour: Rgb::from_hex(0xedd400),
    },
    Label {
        index: 4,
        name: "green",
        colour: Rgb::from_hex(0x73d216),
    },
    Label {
        index: 5,
        name: "gray",
        colour: Rgb::from_hex(0x555555),
    },
    Label {
        index: 6,
        name: "blue",
        colour: Rgb::from_hex(0x3465a4),
    },
    Label {
        index: 7,
        name: "purple",
        colour: Rgb::from_hex(0x75507b),
    },
    Label {
        index: 8,
        name: "black",
        colour: Rgb::from_hex(0x000000),
    },
];

/// The GUI domain's own label (black, like dom0).
pub const GUI_DOMAIN_LABEL: Label = LABELS[7];

impl Label {
    /// Looks a label up by name (`blue`, also `grey`) or index (`6`).
    pub fn parse(untrusted: &str) -> Result<Label, String> {
        let wanted = untrusted.trim().to_ascii_lowercase();
        let wanted = if wanted == "grey" { "gray" } else { &wanted };
        if let Ok(index) = wanted.parse::<u32>() {
            return LABELS
                .iter()
                .find(|l| l.index == index)
                .copied()
                .ok_or_else(|| format!("there is no label with index {index} (1 to 8)"));
        }
        LABELS
            .iter()
            .find(|l| l.name == wanted)
            .copied()
            .ok_or_else(|| {
                let names: Vec<&str> = LABELS.iter().map(|l| l.name).collect();
                format!(
                    "unknown label {untrusted:?}; labels are {}",
                    names.join(", ")
                )
            })
    }

    /// A label from the domain store (trusted): a built-in one by its index, a custom one with
    /// its own name and `#rrggbb` colour (an unparsable colour, which the store's validation
    /// rules out, draws gray).
    pub fn from_store(index: u32, name: &str, colour: &str) -> Label {
        if let Some(l) = LABELS.iter().find(|l| l.index == index && l.name == name) {
            return *l;
        }
        let colour = colour
            .strip_prefix('#')
            .filter(|h| h.len() == 6)
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .map_or(LABELS[4].colour, Rgb::from_hex);
        Label {
            index,
            name: intern(name),
            colour,
        }
    }

    pub fn text_colour(self) -> Rgb {
        text_colour_on(self.colour)
    }
}

/// Custom label names live as long as the compositor; each distinct name is stored once (the
/// store allows few, short ones).
fn intern(name: &str) -> &'static str {
    static NAMES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut names = NAMES.lock().unwrap();
    if let Some(n) = names.iter().find(|n| **n == name) {
        return n;
    }
    let n: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.push(n);
    n
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_dark_on_light_labels_and_light_on_dark_ones() {
        let text = |name: &str| Label::parse(name).unwrap().text_colour();
        assert_eq!(text("yellow"), DARK_TEXT);
        assert_eq!(text("green"), DARK_TEXT);
        assert_eq!(text("orange"), DARK_TEXT);
        assert_eq!(text("black"), LIGHT_TEXT);
        assert_eq!(text("blue"), LIGHT_TEXT);
        assert_eq!(text("red"), LIGHT_TEXT);
        assert_eq!(text("purple"), LIGHT_TEXT);
        assert_eq!(text("gray"), LIGHT_TEXT);
    }

    #[test]
    fn store_labels_map_to_drawn_labels() {
        assert_eq!(Label::from_store(6, "blue", "#3465a4"), LABELS[5]);
        let custom = Label::from_store(9, "teal", "#008080");
        assert_eq!((custom.index, custom.name), (9, "teal"));
        assert_eq!(custom.colour, Rgb::from_hex(0x008080));
        // The same custom name is stored once.
        assert!(std::ptr::eq(
            custom.name,
            Label::from_store(9, "teal", "#008080").name
        ));
        assert_eq!(
            Label::from_store(10, "odd", "nope").colour,
            LABELS[4].colour
        );
    }

    #[test]
    fn labels_parse_by_name_and_index() {
        assert_eq!(
            Label::parse("blue").unwrap().colour,
            Rgb::from_hex(0x3465a4)
        );
        assert_eq!(Label::parse("6").unwrap().name, "blue");
        assert_eq!(Label::parse("Grey").unwrap().name, "gray");
        assert!(Label::parse("pink").is_err());
        assert!(Label::parse("9").is_err());
    }
}
