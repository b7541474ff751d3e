//! The wire encoding of values.
//!
//! It is byte-for-byte postcard's serde format (varint lengths and integers, zig-zag signed
//! integers, little-endian floats, enum variants as varint indexes), so a guest may encode with
//! [`IntersticeType`](crate::IntersticeType) and a host decode with a [`ValueType`] — or either
//! side use postcard directly. Decoding never trusts the input: every length is checked against
//! the bytes that remain before anything is allocated, and nesting depth is bounded.

use crate::types::{FieldDef, TypeKind, TypeSet, ValueType, VariantFields};
use crate::value::Value;
use alloc::{boxed::Box, string::String, vec::Vec};
use core::fmt;

pub use crate::limits::{MAX_DEPTH, MAX_ZERO_SIZED_ELEMENTS};

mod reader;
pub use reader::Reader;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended before the value did.
    UnexpectedEnd,
    /// A varint was longer than its type allows.
    VarintOverflow,
    /// A varint was not in its shortest form.
    NonMinimalVarint,
    /// An integer did not fit its type.
    IntegerOutOfRange,
    /// A `bool` byte other than 0 or 1.
    InvalidBool(u8),
    /// An `Option` tag other than 0 or 1.
    InvalidOptionTag(u8),
    /// A string that is not UTF-8.
    InvalidUtf8,
    /// An enum variant index past the last variant.
    InvalidVariant {
        /// The enum's name.
        enum_name: String,
        /// The index found.
        variant: u32,
    },
    /// A sequence claims more elements than the input can hold.
    LengthTooLarge(u64),
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A named type that the type set does not define.
    UnknownType(String),
    /// Bytes were left after the value.
    TrailingBytes(usize),
    /// A value of another shape was expected (typed decoding of a dynamic value).
    Mismatch(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnexpectedEnd => f.write_str("input ended early"),
            DecodeError::VarintOverflow => f.write_str("varint too long"),
            DecodeError::NonMinimalVarint => f.write_str("varint not in its shortest form"),
            DecodeError::IntegerOutOfRange => f.write_str("integer out of range"),
            DecodeError::InvalidBool(b) => write!(f, "invalid bool byte {b}"),
            DecodeError::InvalidOptionTag(b) => write!(f, "invalid option tag {b}"),
            DecodeError::InvalidUtf8 => f.write_str("string is not valid UTF-8"),
            DecodeError::InvalidVariant { enum_name, variant } => {
                write!(f, "enum {enum_name} has no variant {variant}")
            }
            DecodeError::LengthTooLarge(n) => write!(f, "length {n} exceeds the input"),
            DecodeError::TooDeep => write!(f, "nesting deeper than {MAX_DEPTH}"),
            DecodeError::UnknownType(n) => write!(f, "unknown type {n}"),
            DecodeError::TrailingBytes(n) => write!(f, "{n} trailing bytes"),
            DecodeError::Mismatch(what) => write!(f, "expected {what}"),
        }
    }
}

/// A value does not match the type it is encoded as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeMismatch {
    /// The type that was expected.
    pub expected: ValueType,
}

impl fmt::Display for TypeMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "value does not match type {}", self.expected)
    }
}

/// Appends the postcard varint of `v`.
#[inline]
pub fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends the zig-zag varint of `v`.
#[inline]
pub fn write_signed(out: &mut Vec<u8>, v: i64) {
    write_varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Appends a length-prefixed string.
#[inline]
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    write_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Types visited by one [`min_size`] before it settles for a lower bound.
const MIN_SIZE_STEPS: u32 = 256;

/// Smallest number of bytes any value of `ty` takes (0 for zero-sized ones), or a lower bound
/// of it: the walk through struct fields stops after `MIN_SIZE_STEPS` (256) types, so a type set
/// whose structs fan out (1,024 fields of a type of 1,024 fields of ...) costs no more than a
/// small one. A lower bound only loosens the length check it serves.
pub fn min_size(ty: &ValueType, types: &TypeSet) -> usize {
    fn inner(ty: &ValueType, types: &TypeSet, steps: &mut u32) -> usize {
        if *steps == 0 {
            return 0;
        }
        *steps -= 1;
        match ty {
            ValueType::Unit => 0,
            ValueType::Tuple(ts) => ts.iter().map(|t| inner(t, types, steps)).sum(),
            ValueType::F32 => 4,
            ValueType::F64 => 8,
            ValueType::Named(n) => match types.get(n).map(|d| &d.kind) {
                Some(TypeKind::Struct(fields)) => {
                    fields.iter().map(|f| inner(&f.ty, types, steps)).sum()
                }
                _ => 1,
            },
            _ => 1,
        }
    }
    let mut steps = MIN_SIZE_STEPS;
    inner(ty, types, &mut steps)
}

/// Encodes `value` as `ty`, appending to `out`.
///
/// Scalars are encoded inline (a row is mostly scalars, and rows are encoded on every scan
/// and change); everything else in `encode_composite`.
#[inline(always)]
pub fn encode_value(
    value: &Value,
    ty: &ValueType,
    types: &TypeSet,
    out: &mut Vec<u8>,
) -> Result<(), TypeMismatch> {
    match (ty, value) {
        (ValueType::U32, Value::U32(v)) => write_varint(out, u64::from(*v)),
        (ValueType::U64, Value::U64(v)) => write_varint(out, *v),
        (ValueType::I32, Value::I32(v)) => write_signed(out, i64::from(*v)),
        (ValueType::I64, Value::I64(v)) => write_signed(out, *v),
        (ValueType::F32, Value::F32(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (ValueType::F64, Value::F64(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (ValueType::Bool, Value::Bool(b)) => out.push(u8::from(*b)),
        _ => return encode_composite(value, ty, types, out),
    }
    Ok(())
}

/// Encodes a row's `values` as the struct of `fields`, appending to `out`: [`encode_value`]
/// for each field, inlined into the loop (a scan encodes every field of every row it returns).
pub fn encode_fields(
    values: &[Value],
    fields: &[FieldDef],
    types: &TypeSet,
    out: &mut Vec<u8>,
) -> Result<(), TypeMismatch> {
    if values.len() != fields.len() {
        return Err(TypeMismatch {
            expected: ValueType::Tuple(fields.iter().map(|f| f.ty.clone()).collect()),
        });
    }
    for (value, field) in values.iter().zip(fields) {
        encode_value(value, &field.ty, types, out)?;
    }
    Ok(())
}

/// [`encode_value`] for everything but the most common scalars.
#[inline(never)]
fn encode_composite(
    value: &Value,
    ty: &ValueType,
    types: &TypeSet,
    out: &mut Vec<u8>,
) -> Result<(), TypeMismatch> {
    let mismatch = || TypeMismatch {
        expected: ty.clone(),
    };
    match (ty, value) {
        (ValueType::Unit, Value::Unit) => {}
        (ValueType::Bool, Value::Bool(b)) => out.push(u8::from(*b)),
        (ValueType::U8, Value::U8(v)) => out.push(*v),
        (ValueType::I8, Value::I8(v)) => out.push(*v as u8),
        (ValueType::U16, Value::U16(v)) => write_varint(out, u64::from(*v)),
        (ValueType::U32, Value::U32(v)) => write_varint(out, u64::from(*v)),
        (ValueType::U64, Value::U64(v)) => write_varint(out, *v),
        (ValueType::I16, Value::I16(v)) => write_signed(out, i64::from(*v)),
        (ValueType::I32, Value::I32(v)) => write_signed(out, i64::from(*v)),
        (ValueType::I64, Value::I64(v)) => write_signed(out, *v),
        (ValueType::F32, Value::F32(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (ValueType::F64, Value::F64(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (ValueType::String, Value::String(s)) => write_str(out, s),
        (ValueType::Vec(t), Value::Vec(items)) => {
            write_varint(out, items.len() as u64);
            for item in items {
                encode_value(item, t, types, out)?;
            }
        }
        (ValueType::Option(_), Value::Option(None)) => out.push(0),
        (ValueType::Option(t), Value::Option(Some(v))) => {
            out.push(1);
            encode_value(v, t, types, out)?;
        }
        (ValueType::Tuple(ts), Value::Tuple(items)) if ts.len() == items.len() => {
            for (t, item) in ts.iter().zip(items) {
                encode_value(item, t, types, out)?;
            }
        }
        (ValueType::Named(name), _) => {
            let def = types.get(name).ok_or_else(mismatch)?;
            match (&def.kind, value) {
                (TypeKind::Struct(fields), Value::Struct(items)) if fields.len() == items.len() => {
                    for (f, item) in fields.iter().zip(items) {
                        encode_value(item, &f.ty, types, out)?;
                    }
                }
                (TypeKind::Enum(variants), Value::Enum { variant, payload }) => {
                    let def = variants.get(*variant as usize).ok_or_else(mismatch)?;
                    write_varint(out, u64::from(*variant));
                    match (&def.fields, payload.as_ref()) {
                        (VariantFields::Unit, Value::Unit) => {}
                        (VariantFields::Tuple(ts), Value::Tuple(items))
                            if ts.len() == items.len() =>
                        {
                            for (t, item) in ts.iter().zip(items) {
                                encode_value(item, t, types, out)?;
                            }
                        }
                        (VariantFields::Named(fs), Value::Struct(items))
                            if fs.len() == items.len() =>
                        {
                            for (f, item) in fs.iter().zip(items) {
                                encode_value(item, &f.ty, types, out)?;
                            }
                        }
                        _ => return Err(mismatch()),
                    }
                }
                _ => return Err(mismatch()),
            }
        }
        _ => return Err(mismatch()),
    }
    Ok(())
}

/// Decodes one value of type `ty`.
///
/// Scalars are decoded inline (a row is mostly scalars, and rows are decoded on every insert
/// and update); everything else in `decode_composite`.
#[inline]
pub fn decode_value(
    ty: &ValueType,
    types: &TypeSet,
    r: &mut Reader<'_>,
) -> Result<Value, DecodeError> {
    Ok(match ty {
        ValueType::U32 => Value::U32(r.varint(32)? as u32),
        ValueType::U64 => Value::U64(r.varint(64)?),
        ValueType::I32 => Value::I32(r.signed(32)? as i32),
        ValueType::I64 => Value::I64(r.signed(64)?),
        ValueType::F32 => {
            let b = r.bytes(4)?;
            Value::F32(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        }
        ValueType::Bool => Value::Bool(r.bool()?),
        _ => return decode_composite(ty, types, r),
    })
}

/// [`decode_value`] for everything but the most common scalars.
#[inline(never)]
fn decode_composite(
    ty: &ValueType,
    types: &TypeSet,
    r: &mut Reader<'_>,
) -> Result<Value, DecodeError> {
    Ok(match ty {
        ValueType::Unit => {
            r.zero_sized(1)?;
            Value::Unit
        }
        ValueType::Bool => Value::Bool(r.bool()?),
        ValueType::U8 => Value::U8(r.byte()?),
        ValueType::I8 => Value::I8(r.byte()? as i8),
        ValueType::U16 => Value::U16(r.varint(16)? as u16),
        ValueType::U32 => Value::U32(r.varint(32)? as u32),
        ValueType::U64 => Value::U64(r.varint(64)?),
        ValueType::I16 => Value::I16(r.signed(16)? as i16),
        ValueType::I32 => Value::I32(r.signed(32)? as i32),
        ValueType::I64 => Value::I64(r.signed(64)?),
        ValueType::F32 => {
            let b = r.bytes(4)?;
            Value::F32(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        }
        ValueType::F64 => {
            let b = r.bytes(8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Value::F64(f64::from_le_bytes(a))
        }
        ValueType::String => Value::String(r.string()?),
        ValueType::Vec(t) => {
            r.enter()?;
            let n = r.length(min_size(t, types))?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(decode_value(t, types, r)?);
            }
            r.leave();
            Value::Vec(items)
        }
        ValueType::Option(t) => {
            if r.option_tag()? {
                r.enter()?;
                let v = decode_value(t, types, r)?;
                r.leave();
                Value::Option(Some(Box::new(v)))
            } else {
                Value::Option(None)
            }
        }
        ValueType::Tuple(ts) => {
            r.enter()?;
            let items = decode_all(ts.iter(), types, r)?;
            r.leave();
            Value::Tuple(items)
        }
        ValueType::Named(name) => {
            let def = types
                .get(name)
                .ok_or_else(|| DecodeError::UnknownType(name.clone()))?;
            r.enter()?;
            let v = match &def.kind {
                TypeKind::Struct(fields) => {
                    Value::Struct(decode_all(fields.iter().map(|f| &f.ty), types, r)?)
                }
                TypeKind::Enum(variants) => {
                    let index = r.varint(32)? as u32;
                    let variant = variants.get(index as usize).ok_or_else(|| {
                        DecodeError::InvalidVariant {
                            enum_name: name.clone(),
                            variant: index,
                        }
                    })?;
                    let payload = match &variant.fields {
                        VariantFields::Unit => Value::Unit,
                        VariantFields::Tuple(ts) => Value::Tuple(decode_all(ts.iter(), types, r)?),
                        VariantFields::Named(fs) => {
                            Value::Struct(decode_all(fs.iter().map(|f| &f.ty), types, r)?)
                        }
                    };
                    Value::Enum {
                        variant: index,
                        payload: Box::new(payload),
                    }
                }
            };
            r.leave();
            v
        }
    })
}

fn decode_all<'t>(
    tys: impl ExactSizeIterator<Item = &'t ValueType>,
    types: &TypeSet,
    r: &mut Reader<'_>,
) -> Result<Vec<Value>, DecodeError> {
    if tys.len() == 0 {
        // An empty struct or tuple takes no input: it counts like a unit.
        r.zero_sized(1)?;
    }
    let mut items = Vec::with_capacity(tys.len());
    for t in tys {
        items.push(decode_value(t, types, r)?);
    }
    Ok(items)
}

/// Decodes exactly one struct with these fields from `bytes` into `out` (cleared first),
/// rejecting trailing bytes: what [`decode_exact`] does for a named struct type, without looking
/// the type up by name, and into a vector the caller had — a host that keeps the vectors of rows
/// it dropped decodes new rows (on every insert and update) without allocating.
#[allow(
    unsafe_code,
    reason = "decodes into spare capacity without initialising it twice"
)]
pub fn decode_fields_into(
    fields: &[FieldDef],
    types: &TypeSet,
    bytes: &[u8],
    out: &mut Vec<Value>,
) -> Result<(), DecodeError> {
    out.clear();
    out.reserve(fields.len());
    let mut r = Reader::new(bytes);
    r.enter()?;
    // Each value is written straight into the row's memory, the common scalars without going
    // through `decode_value`: a `Value` returned or pushed is built on the stack piece by piece
    // and then copied whole, and reading it back whole stalls the CPU's store forwarding —
    // on every field of every row, this was most of the time a row took to decode.
    let mut written = 0;
    let decoded = (|| {
        for (slot, field) in out.spare_capacity_mut().iter_mut().zip(fields) {
            match field.ty {
                ValueType::U32 => slot.write(Value::U32(r.varint(32)? as u32)),
                ValueType::U64 => slot.write(Value::U64(r.varint(64)?)),
                ValueType::I32 => slot.write(Value::I32(r.signed(32)? as i32)),
                ValueType::I64 => slot.write(Value::I64(r.signed(64)?)),
                ValueType::F32 => slot.write(Value::F32(f32::from_le_bytes(r.array()?))),
                ValueType::F64 => slot.write(Value::F64(f64::from_le_bytes(r.array()?))),
                ValueType::Bool => slot.write(Value::Bool(r.bool()?)),
                _ => slot.write(decode_composite(&field.ty, types, &mut r)?),
            };
            written += 1;
        }
        Ok(())
    })();
    // SAFETY: the first `written` slots were initialised above, and `reserve` made room for
    // all of them.
    unsafe { out.set_len(written) };
    decoded?;
    r.leave();
    r.finish()
}

/// Decodes exactly one value of type `ty` from `bytes`, rejecting trailing bytes.
pub fn decode_exact(ty: &ValueType, types: &TypeSet, bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut r = Reader::new(bytes);
    let v = decode_value(ty, types, &mut r)?;
    r.finish()?;
    Ok(v)
}

/// Packs a guest pointer and length into one `u64` (pointer in the high half).
#[inline]
pub const fn pack(ptr: u32, len: u32) -> u64 {
    ((ptr as u64) << 32) | len as u64
}

/// Splits a value made by [`pack`].
#[inline]
pub const fn unpack(packed: u64) -> (u32, u32) {
    ((packed >> 32) as u32, packed as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_rejects_overlong_input() {
        let mut r = Reader::new(&[0xff; 11]);
        assert_eq!(r.varint(64), Err(DecodeError::VarintOverflow));
        let mut r = Reader::new(&[0xff, 0xff, 0x03]);
        assert_eq!(r.varint(16), Ok(u64::from(u16::MAX)));
        let mut r = Reader::new(&[0xff, 0xff, 0x04]);
        assert_eq!(r.varint(16), Err(DecodeError::IntegerOutOfRange));
    }

    #[test]
    fn varint_accepts_only_the_shortest_form() {
        for (bytes, value) in [
            (&[0x00][..], Ok(0)),
            (&[0x7f], Ok(127)),
            (&[0x80, 0x01], Ok(128)),
            (&[0x80, 0x00], Err(DecodeError::NonMinimalVarint)),
            (&[0x85, 0x00], Err(DecodeError::NonMinimalVarint)),
            (&[0xff, 0x80, 0x00], Err(DecodeError::NonMinimalVarint)),
        ] {
            assert_eq!(Reader::new(bytes).varint(64), value, "{bytes:?}");
        }
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            assert_eq!(Reader::new(&out).varint(64), Ok(v));
        }
    }

    #[test]
    fn lengths_are_bounded_by_the_input() {
        let mut bytes = Vec::new();
        write_varint(&mut bytes, u64::MAX);
        let err = decode_exact(
            &ValueType::Vec(alloc::boxed::Box::new(ValueType::U64)),
            &TypeSet::new(),
            &bytes,
        );
        assert!(matches!(err, Err(DecodeError::LengthTooLarge(_))));
        let err = decode_exact(&ValueType::String, &TypeSet::new(), &[5, b'a']);
        assert!(matches!(err, Err(DecodeError::LengthTooLarge(5))));
    }

    #[test]
    fn nesting_is_bounded() {
        let mut ty = ValueType::U8;
        for _ in 0..100 {
            ty = ValueType::Option(alloc::boxed::Box::new(ty));
        }
        let bytes = [1u8; 101];
        assert_eq!(
            decode_exact(&ty, &TypeSet::new(), &bytes),
            Err(DecodeError::TooDeep)
        );
    }

    #[test]
    fn pack_round_trips() {
        assert_eq!(unpack(pack(0x7fff_0000, 12)), (0x7fff_0000, 12));
    }
}
