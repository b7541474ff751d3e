//! [`Reader`]: a cursor over bytes being decoded, bounding every length by what remains and
//! nesting by [`MAX_DEPTH`].

use super::{DecodeError, MAX_DEPTH, MAX_ZERO_SIZED_ELEMENTS};
use alloc::string::String;

/// A cursor over bytes being decoded.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    input: &'a [u8],
    depth: u32,
    /// Zero-sized elements the rest of the decode may still claim (see
    /// [`MAX_ZERO_SIZED_ELEMENTS`]): shared by every sequence of one value.
    zero_sized_left: u64,
}

impl<'a> Reader<'a> {
    /// A reader over `input`.
    #[inline]
    pub fn new(input: &'a [u8]) -> Self {
        Reader {
            input,
            depth: 0,
            zero_sized_left: MAX_ZERO_SIZED_ELEMENTS,
        }
    }

    /// Bytes not read yet.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.input.len()
    }

    /// Errors unless every byte was read.
    #[inline]
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.input.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    /// Reads one byte.
    #[inline]
    pub fn byte(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self.input.split_first().ok_or(DecodeError::UnexpectedEnd)?;
        self.input = rest;
        Ok(b)
    }

    /// Reads `n` bytes.
    #[inline]
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.input.len() {
            return Err(DecodeError::UnexpectedEnd);
        }
        let (head, rest) = self.input.split_at(n);
        self.input = rest;
        Ok(head)
    }

    /// Reads exactly `N` bytes.
    #[inline]
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let (head, rest) = self
            .input
            .split_first_chunk::<N>()
            .ok_or(DecodeError::UnexpectedEnd)?;
        self.input = rest;
        Ok(*head)
    }

    /// Reads a varint of at most `max_bits` significant bits.
    #[inline]
    pub fn varint(&mut self, max_bits: u32) -> Result<u64, DecodeError> {
        let mut result: u64 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            if shift >= 64 {
                return Err(DecodeError::VarintOverflow);
            }
            let chunk = u64::from(b & 0x7f);
            if shift > 0 && chunk.leading_zeros() < shift {
                return Err(DecodeError::VarintOverflow);
            }
            result |= chunk << shift;
            if b & 0x80 == 0 {
                // A last group of zeros adds nothing: the writer could have stopped before it.
                // Only the shortest form is accepted, so every value has one encoding (the
                // change feed hands a guest's own bytes on as the row's encoding).
                if b == 0 && shift > 0 {
                    return Err(DecodeError::NonMinimalVarint);
                }
                break;
            }
            shift += 7;
        }
        if max_bits < 64 && result >> max_bits != 0 {
            return Err(DecodeError::IntegerOutOfRange);
        }
        Ok(result)
    }

    /// Reads a zig-zag varint of at most `bits` bits.
    #[inline]
    pub fn signed(&mut self, bits: u32) -> Result<i64, DecodeError> {
        let raw = self.varint(bits)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// Reads a length that must be satisfiable by the remaining input when each element takes
    /// at least `min_elem_size` bytes. Elements that may take no input are bounded by what is
    /// left of the reader's zero-sized budget ([`MAX_ZERO_SIZED_ELEMENTS`]); the values they
    /// decode to are charged to it one by one ([`Reader::zero_sized`]).
    #[inline]
    pub fn length(&mut self, min_elem_size: usize) -> Result<usize, DecodeError> {
        let n = self.varint(64)?;
        let bound = match self.input.len().checked_div(min_elem_size) {
            Some(bound) => bound as u64,
            None => self.zero_sized_left,
        };
        if n > bound {
            return Err(DecodeError::LengthTooLarge(n));
        }
        Ok(n as usize)
    }

    /// Charges `n` values that took no input (units, empty structs and tuples) to the reader's
    /// zero-sized budget: whatever the type (`Vec<()>`, a struct of 1,024 unit fields), one
    /// decode builds at most [`MAX_ZERO_SIZED_ELEMENTS`] of them.
    #[inline]
    pub fn zero_sized(&mut self, n: u64) -> Result<(), DecodeError> {
        match self.zero_sized_left.checked_sub(n) {
            Some(left) => {
                self.zero_sized_left = left;
                Ok(())
            }
            None => Err(DecodeError::LengthTooLarge(n)),
        }
    }

    /// Reads a length-prefixed UTF-8 string.
    pub fn string(&mut self) -> Result<String, DecodeError> {
        let n = self.length(1)?;
        let bytes = self.bytes(n)?;
        core::str::from_utf8(bytes)
            .map(String::from)
            .map_err(|_| DecodeError::InvalidUtf8)
    }

    /// Reads a bool byte.
    #[inline]
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(DecodeError::InvalidBool(b)),
        }
    }

    /// Reads an option tag.
    #[inline]
    pub fn option_tag(&mut self) -> Result<bool, DecodeError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(DecodeError::InvalidOptionTag(b)),
        }
    }

    /// Enters one level of nesting.
    #[inline]
    pub fn enter(&mut self) -> Result<(), DecodeError> {
        if self.depth >= MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        self.depth += 1;
        Ok(())
    }

    /// Leaves one level of nesting.
    #[inline]
    pub fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }
}
