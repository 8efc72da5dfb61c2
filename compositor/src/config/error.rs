//! Located errors: every problem in a config or theme file is reported as
//! `FILE:LINE:COLUMN: what was expected`, followed by the offending line and a caret under the
//! value, the same way on the command line (`corral validate-config`), in the log and (first
//! line only) in the notification a failed live reload raises.

use std::fmt;
use std::ops::Range;

/// A problem in a config or theme file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file as the user named it (or `<built-in default>`).
    pub file: String,
    /// 1-based line; 0 when the problem has no place in the file (it could not be read).
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong and what was expected.
    pub message: String,
    /// The offending line, when there is one.
    pub source_line: Option<String>,
    /// How many characters the caret underlines.
    pub caret_len: usize,
}

impl ConfigError {
    /// An error at `span` (byte offsets into `text`), or at the start of the file.
    pub fn at(file: &str, text: &str, span: Option<Range<usize>>, message: &str) -> ConfigError {
        let span = span.unwrap_or(0..0);
        let start = floor_char_boundary(text, span.start.min(text.len()));
        let end = floor_char_boundary(text, span.end.clamp(start, text.len()));
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line = text[..start].matches('\n').count() + 1;
        let column = text[line_start..start].chars().count() + 1;
        // A CRLF line's \r goes, unless the error is at or after it (a lone \r).
        let raw = &text[line_start..line_end];
        let source_line = match raw.strip_suffix('\r') {
            Some(trimmed) if start < line_start + trimmed.len() => trimmed,
            _ => raw,
        }
        .to_owned();
        let caret_len = text[start..end.min(line_end)].chars().count().max(1);
        ConfigError {
            file: file.to_owned(),
            line,
            column,
            message: clean_message(message),
            source_line: Some(source_line),
            caret_len,
        }
    }

    /// A file that could not be read.
    pub fn unreadable(file: &str, error: &std::io::Error) -> ConfigError {
        ConfigError {
            file: file.to_owned(),
            line: 0,
            column: 0,
            message: format!("cannot read the file: {error}"),
            source_line: None,
            caret_len: 0,
        }
    }

    /// One line for a notification, which has room for about 90 characters: the file's name
    /// without its folder, `:LINE:COLUMN: message` (the log has the full path).
    pub fn short_headline(&self) -> String {
        let name = std::path::Path::new(&self.file)
            .file_name()
            .map_or(self.file.clone(), |n| n.to_string_lossy().into_owned());
        ConfigError {
            file: name,
            ..self.clone()
        }
        .headline()
    }

    /// One line: `FILE:LINE:COLUMN: message`.
    pub fn headline(&self) -> String {
        if self.line == 0 {
            format!("{}: {}", self.file, self.message)
        } else {
            format!(
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.headline())?;
        if let Some(source) = &self.source_line {
            let number = self.line.to_string();
            let pad = " ".repeat(number.len());
            // Tabs and other control or direction-changing characters are shown as one space,
            // so the caret lines up and the line reads as it is.
            let shown: String = source
                .chars()
                .map(|c| {
                    if c.is_control()
                        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
                    {
                        ' '
                    } else {
                        c
                    }
                })
                .collect();
            write!(
                f,
                "\n{pad} |\n{number} | {shown}\n{pad} | {}{}",
                " ".repeat(self.column - 1),
                "^".repeat(self.caret_len)
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// The largest char boundary at or before `i`.
fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// toml's messages sometimes end with a newline or embed the location themselves; keep one
/// line of what was wrong.
fn clean_message(message: &str) -> String {
    let first = message.trim().lines().next().unwrap_or("").trim();
    if first.is_empty() {
        "invalid value".to_owned()
    } else {
        first.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_and_caret() {
        let text = "a = 1\n[decorations]\nborder_width = 40\n";
        let start = text.find("40").unwrap();
        let e = ConfigError::at("c.toml", text, Some(start..start + 2), "too wide");
        assert_eq!((e.line, e.column, e.caret_len), (3, 16, 2));
        assert_eq!(e.headline(), "c.toml:3:16: too wide");
        assert_eq!(
            e.to_string(),
            "c.toml:3:16: too wide\n  |\n3 | border_width = 40\n  |                ^^"
        );
    }

    #[test]
    fn a_lone_carriage_return_stays_in_the_shown_line() {
        let e = ConfigError::at("c", "ab\rc", Some(3..4), "x");
        assert_eq!((e.line, e.column), (1, 4));
        assert_eq!(e.source_line.as_deref(), Some("ab\rc"));
        assert!(e.to_string().ends_with("1 | ab c\n  |    ^"));
        let e = ConfigError::at("c", "ab\r\n", Some(0..1), "x");
        assert_eq!(e.source_line.as_deref(), Some("ab"));
    }

    #[test]
    fn spans_past_the_end_or_inside_a_character_do_not_panic() {
        let text = "é = 1";
        let e = ConfigError::at("c", text, Some(1..99), "x");
        assert_eq!((e.line, e.column), (1, 1));
        let e = ConfigError::at("c", "", Some(5..9), "x");
        assert_eq!((e.line, e.column, e.caret_len), (1, 1, 1));
    }
}
