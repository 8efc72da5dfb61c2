//! Qube labels: Qubes' eight built-in colours plus custom ones.

use serde::{Deserialize, Serialize};

use crate::model::ModelError;

/// A label: an index (1–8 built in, above 8 custom), a name and an `#rrggbb` colour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub index: u32,
    pub name: String,
    pub color: String,
}

/// Qubes' built-in labels, index, name and colour as in Qubes OS 4.3.
pub const BUILTIN: [(u32, &str, &str); 8] = [
    (1, "red", "#cc0000"),
    (2, "orange", "#f57900"),
    (3, "yellow", "#edd400"),
    (4, "green", "#73d216"),
    (5, "gray", "#555555"),
    (6, "blue", "#3465a4"),
    (7, "purple", "#75507b"),
    (8, "black", "#000000"),
];

/// The built-in labels as values.
pub fn builtin_labels() -> Vec<Label> {
    BUILTIN
        .iter()
        .map(|&(index, name, color)| Label {
            index,
            name: name.to_owned(),
            color: color.to_owned(),
        })
        .collect()
}

/// Checks a custom label's name (lowercase letters, digits, `-`, 1–31 bytes) and colour
/// (`#rrggbb`).
pub fn check_custom(name: &str, color: &str) -> Result<(), ModelError> {
    let name_ok = !name.is_empty()
        && name.len() <= 31
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !name_ok {
        return Err(ModelError::Invalid(format!(
            "label name {name:?} must be 1-31 lowercase letters, digits or '-', starting with a letter"
        )));
    }
    let color_ok = color.len() == 7
        && color.starts_with('#')
        && color[1..].chars().all(|c| c.is_ascii_hexdigit());
    if !color_ok {
        return Err(ModelError::Invalid(format!(
            "label colour {color:?} must be #rrggbb"
        )));
    }
    Ok(())
}
