//! Sanitised text: titles, application ids, names shown to the user.
//!
//! A qube chooses these strings, so they are hostile. [`SanitizedText`] can only be built by
//! [`SanitizedText::sanitize`], which guarantees: valid UTF-8; no control characters (tab and
//! line breaks become a space, the rest are dropped); no bidirectional embeddings, overrides,
//! isolates or marks; no zero-width or other invisible formatting characters; no tag characters;
//! at most the field's byte limit, truncated on a character boundary. What is left is text that
//! renders as what it says.

use std::fmt;

use crate::error::DecodeError;

/// Text that passed [`SanitizedText::sanitize`]. The inner string is private so no other path
/// can produce one.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct SanitizedText(String);

impl SanitizedText {
    /// Sanitises `input` and truncates it to at most `max_bytes` bytes on a character boundary.
    pub fn sanitize(input: &str, max_bytes: usize) -> Self {
        let mut out = String::with_capacity(input.len().min(max_bytes));
        for ch in input.chars() {
            let replacement = match ch {
                '\t' | '\n' | '\r' | '\u{2028}' | '\u{2029}' | '\u{0085}' => Some(' '),
                c if is_forbidden(c) => None,
                c => Some(c),
            };
            if let Some(c) = replacement {
                if out.len() + c.len_utf8() > max_bytes {
                    break;
                }
                out.push(c);
            }
        }
        SanitizedText(out)
    }

    /// Decodes a wire string: invalid UTF-8 is a protocol violation (an honest agent converts
    /// before sending); everything else is sanitised, never refused.
    pub(crate) fn from_wire(
        field: &'static str,
        untrusted_bytes: &[u8],
        max_bytes: usize,
    ) -> Result<Self, DecodeError> {
        let untrusted_str = std::str::from_utf8(untrusted_bytes)
            .map_err(|e| DecodeError::invalid(field, format!("not valid UTF-8 ({e})")))?;
        Ok(Self::sanitize(untrusted_str, max_bytes))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SanitizedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for SanitizedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for SanitizedText {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Characters that never reach the screen from a qube.
pub fn is_forbidden(c: char) -> bool {
    let cp = c as u32;
    c.is_control()
        // Bidirectional marks, embeddings, overrides and isolates: they reorder what follows
        // and can make "[work]" read as something else.
        || matches!(cp, 0x061C | 0x200E | 0x200F | 0x202A..=0x202E | 0x2066..=0x2069)
        // Zero-width and invisible formatting characters.
        || matches!(cp, 0x00AD | 0x034F | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
            | 0x200B..=0x200D | 0x2060..=0x2064 | 0x206A..=0x206F | 0x3164 | 0xFE00..=0xFE0F
            | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFFB)
        // The rest of Unicode's format characters (category Cf): prepended concatenation marks,
        // Egyptian hieroglyph and shorthand format controls, musical symbol formatting.
        || matches!(cp, 0x0600..=0x0605 | 0x06DD | 0x070F | 0x0890 | 0x0891 | 0x08E2 | 0x110BD
            | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A)
        // Tag characters and variation selectors supplement.
        || matches!(cp, 0xE0000..=0xE007F | 0xE0100..=0xE01EF)
        // Private use and noncharacters render as nothing or as anything a font wants.
        || matches!(cp, 0xE000..=0xF8FF | 0xF0000..=0x10FFFF | 0xFDD0..=0xFDEF)
        || (cp & 0xFFFE) == 0xFFFE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_plain_text() {
        assert_eq!(
            SanitizedText::sanitize("Document.odt — LibreOffice", 256).as_str(),
            "Document.odt — LibreOffice"
        );
    }

    #[test]
    fn strips_bidi_override_that_would_reverse_a_label() {
        let t = SanitizedText::sanitize("\u{202E}]krow[ evil", 256);
        assert_eq!(t.as_str(), "]krow[ evil");
    }

    #[test]
    fn strips_isolates_zero_width_and_tags() {
        let t = SanitizedText::sanitize("a\u{2066}b\u{200B}c\u{FEFF}d\u{E0041}e\u{2069}", 256);
        assert_eq!(t.as_str(), "abcde");
    }

    #[test]
    fn control_characters_and_escape_sequences_are_neutralised() {
        let t = SanitizedText::sanitize("line1\nline2\t\x1b[31mred\x07\u{9b}", 256);
        assert_eq!(t.as_str(), "line1 line2 [31mred");
    }

    #[test]
    fn truncates_on_character_boundary() {
        // "é" is 2 bytes: 5 of them are 10 bytes; a 9-byte limit keeps 4.
        let t = SanitizedText::sanitize("ééééé", 9);
        assert_eq!(t.as_str(), "éééé");
    }

    #[test]
    fn invalid_utf8_from_the_wire_is_refused() {
        assert!(SanitizedText::from_wire("title", b"ab\xffcd", 256).is_err());
    }
}
