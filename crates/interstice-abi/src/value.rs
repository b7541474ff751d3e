//! The dynamic value model.
//!
//! The host never needs to know a module's Rust types: rows, primary keys, index keys and
//! arguments are [`Value`]s, described by a [`ValueType`](crate::ValueType). Values have a total
//! order (floats by `total_cmp`) so that any value can be an index key and every iteration the
//! host does is deterministic.

use alloc::{boxed::Box, string::String, vec::Vec};
use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};

/// A dynamically typed Interstice value.
#[derive(Debug)]
pub enum Value {
    /// The unit value `()`; also the payload of unit enum variants.
    Unit,
    /// `bool`
    Bool(bool),
    /// `u8`
    U8(u8),
    /// `u16`
    U16(u16),
    /// `u32`
    U32(u32),
    /// `u64`
    U64(u64),
    /// `i8`
    I8(i8),
    /// `i16`
    I16(i16),
    /// `i32`
    I32(i32),
    /// `i64`
    I64(i64),
    /// `f32`
    F32(f32),
    /// `f64`
    F64(f64),
    /// `String`
    String(String),
    /// `Vec<T>`
    Vec(Vec<Value>),
    /// `Option<T>`
    Option(Option<Box<Value>>),
    /// A tuple `(A, B, ...)`.
    Tuple(Vec<Value>),
    /// A named struct: its fields in declaration order.
    Struct(Vec<Value>),
    /// An enum variant: its index in declaration order and its payload
    /// ([`Value::Unit`], or a [`Value::Tuple`] / [`Value::Struct`] of its fields).
    Enum {
        /// Index of the variant in declaration order.
        variant: u32,
        /// The variant's fields.
        payload: Box<Value>,
    },
}

impl Value {
    fn rank(&self) -> u8 {
        match self {
            Value::Unit => 0,
            Value::Bool(_) => 1,
            Value::U8(_) => 2,
            Value::U16(_) => 3,
            Value::U32(_) => 4,
            Value::U64(_) => 5,
            Value::I8(_) => 6,
            Value::I16(_) => 7,
            Value::I32(_) => 8,
            Value::I64(_) => 9,
            Value::F32(_) => 10,
            Value::F64(_) => 11,
            Value::String(_) => 12,
            Value::Vec(_) => 13,
            Value::Option(_) => 14,
            Value::Tuple(_) => 15,
            Value::Struct(_) => 16,
            Value::Enum { .. } => 17,
        }
    }

    /// The value as an `i128` if it is an integer; used for auto-increment counters.
    pub fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            Value::U8(v) => v.into(),
            Value::U16(v) => v.into(),
            Value::U32(v) => v.into(),
            Value::U64(v) => v.into(),
            Value::I8(v) => v.into(),
            Value::I16(v) => v.into(),
            Value::I32(v) => v.into(),
            Value::I64(v) => v.into(),
            _ => return None,
        })
    }

    /// An integer of the same kind as `self` holding `n`, or `None` if `self` is not an integer
    /// or `n` does not fit.
    pub fn with_integer(&self, n: i128) -> Option<Value> {
        Some(match self {
            Value::U8(_) => Value::U8(n.try_into().ok()?),
            Value::U16(_) => Value::U16(n.try_into().ok()?),
            Value::U32(_) => Value::U32(n.try_into().ok()?),
            Value::U64(_) => Value::U64(n.try_into().ok()?),
            Value::I8(_) => Value::I8(n.try_into().ok()?),
            Value::I16(_) => Value::I16(n.try_into().ok()?),
            Value::I32(_) => Value::I32(n.try_into().ok()?),
            Value::I64(_) => Value::I64(n.try_into().ok()?),
            _ => return None,
        })
    }
}

impl PartialEq for Value {
    /// Equal exactly when [`Ord::cmp`] says so (floats by their bits, as `total_cmp` orders
    /// them); the common scalars are compared here without the full ordering.
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        use Value::*;
        match (self, other) {
            (U32(a), U32(b)) => a == b,
            (U64(a), U64(b)) => a == b,
            (I32(a), I32(b)) => a == b,
            (I64(a), I64(b)) => a == b,
            (F32(a), F32(b)) => a.to_bits() == b.to_bits(),
            (F64(a), F64(b)) => a.to_bits() == b.to_bits(),
            (Bool(a), Bool(b)) => a == b,
            (String(a), String(b)) => a == b,
            _ => self.cmp(other) == Ordering::Equal,
        }
    }
}

impl Eq for Value {}

impl PartialOrd for Value {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Clone for Value {
    /// Keys and rows are mostly numbers: those are copied here, the rest in `clone_composite`.
    #[inline]
    fn clone(&self) -> Self {
        use Value::*;
        match *self {
            U32(v) => U32(v),
            U64(v) => U64(v),
            I32(v) => I32(v),
            I64(v) => I64(v),
            F32(v) => F32(v),
            F64(v) => F64(v),
            Bool(v) => Bool(v),
            _ => self.clone_composite(),
        }
    }
}

impl Value {
    #[inline(never)]
    fn clone_composite(&self) -> Value {
        use Value::*;
        match self {
            Unit => Unit,
            Bool(v) => Bool(*v),
            U8(v) => U8(*v),
            U16(v) => U16(*v),
            U32(v) => U32(*v),
            U64(v) => U64(*v),
            I8(v) => I8(*v),
            I16(v) => I16(*v),
            I32(v) => I32(*v),
            I64(v) => I64(*v),
            F32(v) => F32(*v),
            F64(v) => F64(*v),
            String(v) => String(v.clone()),
            Vec(v) => Vec(v.clone()),
            Option(v) => Option(v.clone()),
            Tuple(v) => Tuple(v.clone()),
            Struct(v) => Struct(v.clone()),
            Enum { variant, payload } => Enum {
                variant: *variant,
                payload: payload.clone(),
            },
        }
    }

    #[inline(never)]
    fn cmp_composite(&self, other: &Self) -> Ordering {
        use Value::*;
        match (self, other) {
            (Unit, Unit) => Ordering::Equal,
            (Bool(a), Bool(b)) => a.cmp(b),
            (U8(a), U8(b)) => a.cmp(b),
            (U16(a), U16(b)) => a.cmp(b),
            (U32(a), U32(b)) => a.cmp(b),
            (U64(a), U64(b)) => a.cmp(b),
            (I8(a), I8(b)) => a.cmp(b),
            (I16(a), I16(b)) => a.cmp(b),
            (I32(a), I32(b)) => a.cmp(b),
            (I64(a), I64(b)) => a.cmp(b),
            (F32(a), F32(b)) => a.total_cmp(b),
            (F64(a), F64(b)) => a.total_cmp(b),
            (String(a), String(b)) => a.cmp(b),
            (Vec(a), Vec(b)) | (Tuple(a), Tuple(b)) | (Struct(a), Struct(b)) => a.cmp(b),
            (Option(a), Option(b)) => a.cmp(b),
            (
                Enum {
                    variant: va,
                    payload: pa,
                },
                Enum {
                    variant: vb,
                    payload: pb,
                },
            ) => va.cmp(vb).then_with(|| pa.cmp(pb)),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl Ord for Value {
    /// Keys are mostly numbers: two of the same kind are compared here, the rest in
    /// `cmp_composite`.
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        use Value::*;
        match (self, other) {
            (U32(a), U32(b)) => a.cmp(b),
            (U64(a), U64(b)) => a.cmp(b),
            (I32(a), I32(b)) => a.cmp(b),
            (I64(a), I64(b)) => a.cmp(b),
            _ => self.cmp_composite(other),
        }
    }
}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u8(self.rank());
        match self {
            Value::Unit => {}
            Value::Bool(v) => v.hash(state),
            Value::U8(v) => v.hash(state),
            Value::U16(v) => v.hash(state),
            Value::U32(v) => v.hash(state),
            Value::U64(v) => v.hash(state),
            Value::I8(v) => v.hash(state),
            Value::I16(v) => v.hash(state),
            Value::I32(v) => v.hash(state),
            Value::I64(v) => v.hash(state),
            Value::F32(v) => v.to_bits().hash(state),
            Value::F64(v) => v.to_bits().hash(state),
            Value::String(v) => v.hash(state),
            Value::Vec(v) | Value::Tuple(v) | Value::Struct(v) => v.hash(state),
            Value::Option(v) => v.hash(state),
            Value::Enum { variant, payload } => {
                variant.hash(state);
                payload.hash(state);
            }
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list(
            f: &mut fmt::Formatter<'_>,
            open: &str,
            items: &[Value],
            close: &str,
        ) -> fmt::Result {
            f.write_str(open)?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{item}")?;
            }
            f.write_str(close)
        }
        match self {
            Value::Unit => f.write_str("()"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::U8(v) => write!(f, "{v}"),
            Value::U16(v) => write!(f, "{v}"),
            Value::U32(v) => write!(f, "{v}"),
            Value::U64(v) => write!(f, "{v}"),
            Value::I8(v) => write!(f, "{v}"),
            Value::I16(v) => write!(f, "{v}"),
            Value::I32(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            Value::F32(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
            Value::String(v) => write!(f, "{v:?}"),
            Value::Vec(v) => list(f, "[", v, "]"),
            Value::Option(None) => f.write_str("None"),
            Value::Option(Some(v)) => write!(f, "Some({v})"),
            Value::Tuple(v) => list(f, "(", v, ")"),
            Value::Struct(v) => list(f, "{", v, "}"),
            Value::Enum { variant, payload } => match payload.as_ref() {
                Value::Unit => write!(f, "#{variant}"),
                p => write!(f, "#{variant}{p}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_have_a_total_order() {
        assert!(Value::F64(-0.0) < Value::F64(0.0));
        assert_eq!(Value::F64(f64::NAN), Value::F64(f64::NAN));
        assert!(Value::F32(1.0) < Value::F32(f32::INFINITY));
    }

    /// One value of every kind, with neighbours for the common scalars.
    fn samples() -> Vec<Value> {
        use alloc::string::ToString;
        use alloc::vec;
        let mut values = vec![
            Value::Unit,
            Value::Bool(false),
            Value::Bool(true),
            Value::U8(7),
            Value::U16(7),
            Value::I8(-7),
            Value::I16(-7),
            Value::String("a".to_string()),
            Value::String("b".to_string()),
            Value::Vec(vec![Value::U32(1)]),
            Value::Option(None),
            Value::Option(Some(Box::new(Value::U32(1)))),
            Value::Tuple(vec![Value::U32(1), Value::String("x".to_string())]),
            Value::Struct(vec![Value::F32(1.0)]),
            Value::Enum {
                variant: 1,
                payload: Box::new(Value::Unit),
            },
        ];
        for n in [0u32, 1, u32::MAX] {
            values.extend([
                Value::U32(n),
                Value::U64(u64::from(n) << 8),
                Value::I32(n as i32),
                Value::I64(-i64::from(n)),
                Value::F32(n as f32),
                Value::F64(-f64::from(n)),
            ]);
        }
        values.extend([
            Value::F32(-0.0),
            Value::F32(f32::NAN),
            Value::F64(-0.0),
            Value::F64(f64::NAN),
        ]);
        values
    }

    #[test]
    fn fast_paths_agree_with_the_full_comparison_and_clone() {
        let values = samples();
        for a in &values {
            assert_eq!(a.clone().cmp_composite(a), Ordering::Equal, "{a:?}");
            for b in &values {
                let full = a.cmp_composite(b);
                assert_eq!(a.cmp(b), full, "{a:?} vs {b:?}");
                assert_eq!(a == b, full == Ordering::Equal, "{a:?} == {b:?}");
                assert_eq!(a.partial_cmp(b), Some(full));
            }
        }
    }

    #[test]
    fn integers_round_trip_through_auto_inc_helpers() {
        let v = Value::U8(0);
        assert_eq!(v.with_integer(255), Some(Value::U8(255)));
        assert_eq!(v.with_integer(256), None);
        assert_eq!(Value::I64(-5).as_i128(), Some(-5));
        assert_eq!(Value::String("x".into()).as_i128(), None);
    }
}
