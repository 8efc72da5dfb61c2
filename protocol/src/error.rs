//! Errors of decoding and of the session rules.
//!
//! Every error here is a protocol violation: the receiver ends that peer's connection and says
//! why. The `Display` text is written for the person who reads the notification or the log.

use thiserror::Error;

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("unknown message type {0:#06x}")]
    UnknownType(u32),
    #[error("message body of {length} bytes is larger than the {max} bytes allowed for {message}")]
    BodyTooLarge {
        message: &'static str,
        length: usize,
        max: usize,
    },
    #[error("message ended early: needed {needed} more bytes, {available} left")]
    Truncated { needed: usize, available: usize },
    #[error("{count} bytes left over after the message's last field")]
    TrailingBytes { count: usize },
    #[error("{field} is {length} bytes long; at most {max} are allowed")]
    TooLong {
        field: &'static str,
        length: usize,
        max: usize,
    },
    #[error("{field} has {count} entries; at most {max} are allowed")]
    TooMany {
        field: &'static str,
        count: usize,
        max: usize,
    },
    #[error("{field}: {reason}")]
    InvalidValue { field: &'static str, reason: String },
}

impl DecodeError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        DecodeError::InvalidValue {
            field,
            reason: reason.into(),
        }
    }
}
