//! Little-endian primitives: a bounds-checked reader over an untrusted body and a writer.
//!
//! The reader never panics and never allocates more than the caller allowed: every length read
//! from the wire is compared against a bound before any buffer of that length exists.

use crate::error::DecodeError;

/// Cursor over one message body received from a peer.
#[derive(Debug)]
pub struct Reader<'a> {
    untrusted_body: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    pub fn new(untrusted_body: &'a [u8]) -> Self {
        Self {
            untrusted_body,
            position: 0,
        }
    }

    pub fn remaining(&self) -> usize {
        self.untrusted_body.len() - self.position
    }

    pub fn bytes(&mut self, count: usize) -> Result<&'a [u8], DecodeError> {
        if count > self.remaining() {
            return Err(DecodeError::Truncated {
                needed: count,
                available: self.remaining(),
            });
        }
        let slice = &self.untrusted_body[self.position..self.position + count];
        self.position += count;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_le_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A boolean is one byte, 0 or 1; anything else is an impossible value.
    pub fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(DecodeError::invalid(field, format!("boolean byte {other}"))),
        }
    }

    /// A `u32` length followed by that many bytes, refused before reading if above `max`.
    pub fn length_prefixed(
        &mut self,
        field: &'static str,
        max: usize,
    ) -> Result<&'a [u8], DecodeError> {
        let untrusted_len = self.u32()? as usize;
        if untrusted_len > max {
            return Err(DecodeError::TooLong {
                field,
                length: untrusted_len,
                max,
            });
        }
        self.bytes(untrusted_len)
    }

    /// A `u32` element count, refused if above `max` or if the body cannot hold that many
    /// elements of at least `min_element_bytes` each (so a count never drives an allocation
    /// larger than the bytes actually received).
    pub fn count(
        &mut self,
        field: &'static str,
        max: usize,
        min_element_bytes: usize,
    ) -> Result<usize, DecodeError> {
        let untrusted_count = self.u32()? as usize;
        if untrusted_count > max {
            return Err(DecodeError::TooMany {
                field,
                count: untrusted_count,
                max,
            });
        }
        let needed = untrusted_count.saturating_mul(min_element_bytes.max(1));
        if needed > self.remaining() {
            return Err(DecodeError::Truncated {
                needed,
                available: self.remaining(),
            });
        }
        Ok(untrusted_count)
    }

    /// Ends decoding: trailing bytes mean the peer and we disagree about the layout.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                count: self.remaining(),
            })
        }
    }
}

/// Appends little-endian values to a message body.
#[derive(Debug, Default)]
pub struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, value: u8) {
        self.buf.push(value);
    }
    pub fn u16(&mut self, value: u16) {
        self.buf.extend_from_slice(&value.to_le_bytes());
    }
    pub fn u32(&mut self, value: u32) {
        self.buf.extend_from_slice(&value.to_le_bytes());
    }
    pub fn i32(&mut self, value: i32) {
        self.buf.extend_from_slice(&value.to_le_bytes());
    }
    pub fn u64(&mut self, value: u64) {
        self.buf.extend_from_slice(&value.to_le_bytes());
    }
    pub fn bool(&mut self, value: bool) {
        self.buf.push(u8::from(value));
    }
    /// Writes a `u32` length and the bytes. Callers only pass values that passed validation, so
    /// the length always fits the field's limit (and therefore a `u32`).
    pub fn length_prefixed(&mut self, bytes: &[u8]) {
        self.u32(len_u32(bytes.len()));
        self.buf.extend_from_slice(bytes);
    }
    pub fn count(&mut self, count: usize) {
        self.u32(len_u32(count));
    }
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }
}

/// Converts a length that validated types keep far below `u32::MAX`.
pub(crate) fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}
