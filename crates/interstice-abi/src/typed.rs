//! [`IntersticeType`]: how a Rust type describes, encodes and decodes itself.
//!
//! `#[interstice_type]` and `#[table]` derive it for structs and enums; this module implements it
//! for the primitive and container types a module may use. Guests use it to encode rows and
//! arguments, hosts (games) to read rows with the module's own Rust types.

use crate::codec::{DecodeError, Reader, write_signed, write_str, write_varint};
use crate::types::{TypeSet, ValueType};
use alloc::{boxed::Box, string::String, vec::Vec};

/// A Rust type that can cross the guest/host boundary.
pub trait IntersticeType: Sized {
    /// The type's description.
    fn value_type() -> ValueType;

    /// Adds the named types this type refers to (itself included) to `types`.
    fn register_types(types: &mut TypeSet) {
        let _ = types;
    }

    /// Appends the encoding of `self`.
    fn encode(&self, out: &mut Vec<u8>);

    /// Decodes one value.
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Encodes into a new buffer.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes from exactly `bytes`.
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let v = Self::decode(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

macro_rules! unsigned {
    ($($t:ty => $vt:ident, $bits:expr);* $(;)?) => {$(
        impl IntersticeType for $t {
            fn value_type() -> ValueType { ValueType::$vt }
            #[inline]
            fn encode(&self, out: &mut Vec<u8>) { write_varint(out, u64::from(*self)) }
            #[inline]
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(r.varint($bits)? as $t)
            }
        }
    )*};
}
unsigned!(u16 => U16, 16; u32 => U32, 32; u64 => U64, 64);

macro_rules! signed {
    ($($t:ty => $vt:ident, $bits:expr);* $(;)?) => {$(
        impl IntersticeType for $t {
            fn value_type() -> ValueType { ValueType::$vt }
            #[inline]
            fn encode(&self, out: &mut Vec<u8>) { write_signed(out, i64::from(*self)) }
            #[inline]
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(r.signed($bits)? as $t)
            }
        }
    )*};
}
signed!(i16 => I16, 16; i32 => I32, 32; i64 => I64, 64);

impl IntersticeType for u8 {
    fn value_type() -> ValueType {
        ValueType::U8
    }
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(*self)
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.byte()
    }
}

impl IntersticeType for i8 {
    fn value_type() -> ValueType {
        ValueType::I8
    }
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(*self as u8)
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.byte()? as i8)
    }
}

impl IntersticeType for bool {
    fn value_type() -> ValueType {
        ValueType::Bool
    }
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self))
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.bool()
    }
}

impl IntersticeType for f32 {
    fn value_type() -> ValueType {
        ValueType::F32
    }
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes())
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let b = r.bytes(4)?;
        Ok(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

impl IntersticeType for f64 {
    fn value_type() -> ValueType {
        ValueType::F64
    }
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes())
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(r.bytes(8)?);
        Ok(f64::from_le_bytes(a))
    }
}

impl IntersticeType for String {
    fn value_type() -> ValueType {
        ValueType::String
    }
    fn encode(&self, out: &mut Vec<u8>) {
        write_str(out, self)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.string()
    }
}

impl IntersticeType for () {
    fn value_type() -> ValueType {
        ValueType::Unit
    }
    fn encode(&self, _out: &mut Vec<u8>) {}
    fn decode(_r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(())
    }
}

impl<T: IntersticeType> IntersticeType for Vec<T> {
    fn value_type() -> ValueType {
        ValueType::Vec(Box::new(T::value_type()))
    }
    fn register_types(types: &mut TypeSet) {
        T::register_types(types)
    }
    fn encode(&self, out: &mut Vec<u8>) {
        write_varint(out, self.len() as u64);
        for item in self {
            item.encode(out);
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.enter()?;
        // Each element takes at least one byte unless the element type is zero-sized; the
        // reader bounds the zero-sized case separately.
        let min = if matches!(T::value_type(), ValueType::Unit) {
            0
        } else {
            1
        };
        let n = r.length(min)?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(T::decode(r)?);
        }
        r.leave();
        Ok(items)
    }
}

impl<T: IntersticeType> IntersticeType for Option<T> {
    fn value_type() -> ValueType {
        ValueType::Option(Box::new(T::value_type()))
    }
    fn register_types(types: &mut TypeSet) {
        T::register_types(types)
    }
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                v.encode(out);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if r.option_tag()? {
            r.enter()?;
            let v = T::decode(r)?;
            r.leave();
            Ok(Some(v))
        } else {
            Ok(None)
        }
    }
}

impl<T: IntersticeType> IntersticeType for Box<T> {
    fn value_type() -> ValueType {
        T::value_type()
    }
    fn register_types(types: &mut TypeSet) {
        T::register_types(types)
    }
    fn encode(&self, out: &mut Vec<u8>) {
        (**self).encode(out)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        T::decode(r).map(Box::new)
    }
}

macro_rules! tuple {
    ($($name:ident),+) => {
        impl<$($name: IntersticeType),+> IntersticeType for ($($name,)+) {
            fn value_type() -> ValueType {
                ValueType::Tuple(alloc::vec![$($name::value_type()),+])
            }
            fn register_types(types: &mut TypeSet) {
                $($name::register_types(types);)+
            }
            #[allow(non_snake_case)]
            fn encode(&self, out: &mut Vec<u8>) {
                let ($($name,)+) = self;
                $($name.encode(out);)+
            }
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(($($name::decode(r)?,)+))
            }
        }
    };
}
tuple!(A);
tuple!(A, B);
tuple!(A, B, C);
tuple!(A, B, C, D);
tuple!(A, B, C, D, E);
tuple!(A, B, C, D, E, F);
tuple!(A, B, C, D, E, F, G);
tuple!(A, B, C, D, E, F, G, H);

/// Encodes a list of arguments (a tuple of values) — what a reducer or query call carries.
pub trait Args {
    /// The argument types, in order.
    fn arg_types() -> Vec<ValueType>;
    /// Appends the encoding of every argument.
    fn encode_args(&self, out: &mut Vec<u8>);
}

impl Args for () {
    fn arg_types() -> Vec<ValueType> {
        Vec::new()
    }
    fn encode_args(&self, _out: &mut Vec<u8>) {}
}

macro_rules! args_tuple {
    ($($name:ident),+) => {
        impl<$($name: IntersticeType),+> Args for ($($name,)+) {
            fn arg_types() -> Vec<ValueType> {
                alloc::vec![$($name::value_type()),+]
            }
            #[allow(non_snake_case)]
            fn encode_args(&self, out: &mut Vec<u8>) {
                let ($($name,)+) = self;
                $($name.encode(out);)+
            }
        }
    };
}
args_tuple!(A);
args_tuple!(A, B);
args_tuple!(A, B, C);
args_tuple!(A, B, C, D);
args_tuple!(A, B, C, D, E);
args_tuple!(A, B, C, D, E, F);
args_tuple!(A, B, C, D, E, F, G);
args_tuple!(A, B, C, D, E, F, G, H);
