//! Qube names, validated with Qubes' rules.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Longest qube name, as in Qubes.
pub const MAX_NAME_LEN: usize = 31;

/// Names that mean something else in policy files or to the admin domain.
const RESERVED: &[&str] = &[
    "none", "default", "dom0", "adminvm", "anyvm", "dispvm", "corral",
];

/// A valid qube name: letters, digits, `-` and `_`, starting with a letter, at most 31 bytes,
/// not reserved.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct QubeName(String);

impl TryFrom<String> for QubeName {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        if s == ADMIN_NAME {
            return Ok(QubeName(s));
        }
        QubeName::new(&s)
    }
}

impl From<QubeName> for String {
    fn from(n: QubeName) -> String {
        n.0
    }
}

/// The name of the admin (GUI) domain, as in Qubes.
pub const ADMIN_NAME: &str = "dom0";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    #[error("a qube name cannot be empty")]
    Empty,
    #[error("qube name {0:?} is longer than {MAX_NAME_LEN} characters")]
    TooLong(String),
    #[error("qube name {0:?} must start with a letter")]
    BadStart(String),
    #[error("qube name {name:?} contains {ch:?}; only letters, digits, '-' and '_' are allowed")]
    BadCharacter { name: String, ch: char },
    #[error("{0:?} is reserved and cannot name a qube")]
    Reserved(String),
}

impl QubeName {
    pub fn new(untrusted_name: &str) -> Result<Self, NameError> {
        let name = untrusted_name;
        let Some(first) = name.chars().next() else {
            return Err(NameError::Empty);
        };
        if name.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong(name.to_owned()));
        }
        if !first.is_ascii_alphabetic() {
            return Err(NameError::BadStart(name.to_owned()));
        }
        if let Some(ch) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(NameError::BadCharacter {
                name: name.to_owned(),
                ch,
            });
        }
        if RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(NameError::Reserved(name.to_owned()));
        }
        Ok(QubeName(name.to_owned()))
    }

    /// The admin domain's name (`dom0`), which [`QubeName::new`] refuses.
    pub fn admin() -> Self {
        QubeName(ADMIN_NAME.to_owned())
    }

    /// Whether this is the admin domain's name.
    pub fn is_admin(&self) -> bool {
        self.0 == ADMIN_NAME
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QubeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_qubes_style_names() {
        for ok in ["work", "sys-net", "disp1234", "a", "Personal_2"] {
            assert!(QubeName::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_bad_names() {
        assert_eq!(QubeName::new(""), Err(NameError::Empty));
        assert!(matches!(
            QubeName::new("1work"),
            Err(NameError::BadStart(_))
        ));
        assert!(matches!(
            QubeName::new("-work"),
            Err(NameError::BadStart(_))
        ));
        assert!(matches!(
            QubeName::new("wo rk"),
            Err(NameError::BadCharacter { ch: ' ', .. })
        ));
        assert!(matches!(
            QubeName::new("wörk"),
            Err(NameError::BadCharacter { .. })
        ));
        assert!(matches!(
            QubeName::new(&"a".repeat(32)),
            Err(NameError::TooLong(_))
        ));
        assert!(QubeName::new(&"a".repeat(31)).is_ok());
        assert!(matches!(QubeName::new("dom0"), Err(NameError::Reserved(_))));
        assert!(matches!(QubeName::new("Dom0"), Err(NameError::Reserved(_))));
    }
}
