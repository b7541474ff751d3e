//! Type descriptions: what a [`Value`](crate::Value) may hold.
//!
//! Primitive and container types are spelled out in [`ValueType`]; structs and enums are
//! [`TypeDef`]s referred to by name ([`ValueType::Named`]) and collected in a [`TypeSet`], so a
//! recursive type is described once.

use crate::limits::{MAX_TUPLE_ARITY, MAX_TYPE_DEPTH};
use alloc::{boxed::Box, collections::BTreeMap, string::String, vec::Vec};
use core::fmt;
use serde::de::{self, DeserializeSeed, EnumAccess, SeqAccess, VariantAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// The type of a value.
///
/// Its `Deserialize` is written by hand (the encoding is the derived one's): it counts nesting
/// and refuses types deeper than [`MAX_TYPE_DEPTH`] and tuples wider than [`MAX_TUPLE_ARITY`]
/// before recursing, whatever the format, so no input can overflow the decoding stack.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum ValueType {
    /// `()`
    Unit,
    /// `bool`
    Bool,
    /// `u8`
    U8,
    /// `u16`
    U16,
    /// `u32`
    U32,
    /// `u64`
    U64,
    /// `i8`
    I8,
    /// `i16`
    I16,
    /// `i32`
    I32,
    /// `i64`
    I64,
    /// `f32`
    F32,
    /// `f64`
    F64,
    /// `String`
    String,
    /// `Vec<T>`
    Vec(Box<ValueType>),
    /// `Option<T>`
    Option(Box<ValueType>),
    /// `(A, B, ...)`
    Tuple(Vec<ValueType>),
    /// A struct or enum defined in the module's [`TypeSet`].
    Named(String),
}

impl ValueType {
    /// Whether this is one of the integer types (the ones `auto_inc` accepts).
    pub fn is_integer(&self) -> bool {
        matches!(
            self,
            ValueType::U8
                | ValueType::U16
                | ValueType::U32
                | ValueType::U64
                | ValueType::I8
                | ValueType::I16
                | ValueType::I32
                | ValueType::I64
        )
    }
}

/// The variant names, in declaration order (their index is the wire encoding).
const VARIANTS: &[&str] = &[
    "Unit", "Bool", "U8", "U16", "U32", "U64", "I8", "I16", "I32", "I64", "F32", "F64", "String",
    "Vec", "Option", "Tuple", "Named",
];

/// The variants without data, by index.
const SCALARS: [ValueType; 13] = [
    ValueType::Unit,
    ValueType::Bool,
    ValueType::U8,
    ValueType::U16,
    ValueType::U32,
    ValueType::U64,
    ValueType::I8,
    ValueType::I16,
    ValueType::I32,
    ValueType::I64,
    ValueType::F32,
    ValueType::F64,
    ValueType::String,
];

impl<'de> Deserialize<'de> for ValueType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        TypeAt { depth: 0 }.deserialize(deserializer)
    }
}

/// Decodes a `ValueType` found `depth` levels inside another one.
#[derive(Clone, Copy)]
struct TypeAt {
    depth: u32,
}

impl<'de> DeserializeSeed<'de> for TypeAt {
    type Value = ValueType;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<ValueType, D::Error> {
        if self.depth >= MAX_TYPE_DEPTH {
            return Err(de::Error::custom(format_args!(
                "type nested deeper than {MAX_TYPE_DEPTH} levels"
            )));
        }
        deserializer.deserialize_enum("ValueType", VARIANTS, self)
    }
}

impl<'de> Visitor<'de> for TypeAt {
    type Value = ValueType;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value type")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<ValueType, A::Error> {
        let (index, variant) = data.variant::<VariantIndex>()?;
        let inner = TypeAt {
            depth: self.depth + 1,
        };
        match index.0 {
            i @ 0..=12 => {
                variant.unit_variant()?;
                Ok(SCALARS[i].clone())
            }
            13 => Ok(ValueType::Vec(Box::new(
                variant.newtype_variant_seed(inner)?,
            ))),
            14 => Ok(ValueType::Option(Box::new(
                variant.newtype_variant_seed(inner)?,
            ))),
            15 => Ok(ValueType::Tuple(
                variant.newtype_variant_seed(TupleAt(inner))?,
            )),
            _ => Ok(ValueType::Named(variant.newtype_variant()?)),
        }
    }
}

/// The element types of a tuple type, each one level deeper.
struct TupleAt(TypeAt);

impl<'de> DeserializeSeed<'de> for TupleAt {
    type Value = Vec<ValueType>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for TupleAt {
    type Value = Vec<ValueType>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of element types")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut elements = Vec::new();
        while let Some(element) = seq.next_element_seed(self.0)? {
            if elements.len() == MAX_TUPLE_ARITY {
                return Err(de::Error::custom(format_args!(
                    "tuple type of more than {MAX_TUPLE_ARITY} elements"
                )));
            }
            elements.push(element);
        }
        Ok(elements)
    }
}

/// A `ValueType` variant, by index (postcard) or by name (TOML, JSON).
struct VariantIndex(usize);

impl<'de> Deserialize<'de> for VariantIndex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(VariantVisitor)
    }
}

struct VariantVisitor;

impl<'de> Visitor<'de> for VariantVisitor {
    type Value = VariantIndex;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value type variant")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<VariantIndex, E> {
        match usize::try_from(v) {
            Ok(i) if i < VARIANTS.len() => Ok(VariantIndex(i)),
            _ => Err(E::invalid_value(
                de::Unexpected::Unsigned(v),
                &"a variant index below 17",
            )),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<VariantIndex, E> {
        VARIANTS
            .iter()
            .position(|name| *name == v)
            .map(VariantIndex)
            .ok_or_else(|| E::unknown_variant(v, VARIANTS))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<VariantIndex, E> {
        match core::str::from_utf8(v) {
            Ok(s) => self.visit_str(s),
            Err(_) => Err(E::invalid_value(de::Unexpected::Bytes(v), &self)),
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueType::Unit => f.write_str("()"),
            ValueType::Bool => f.write_str("bool"),
            ValueType::U8 => f.write_str("u8"),
            ValueType::U16 => f.write_str("u16"),
            ValueType::U32 => f.write_str("u32"),
            ValueType::U64 => f.write_str("u64"),
            ValueType::I8 => f.write_str("i8"),
            ValueType::I16 => f.write_str("i16"),
            ValueType::I32 => f.write_str("i32"),
            ValueType::I64 => f.write_str("i64"),
            ValueType::F32 => f.write_str("f32"),
            ValueType::F64 => f.write_str("f64"),
            ValueType::String => f.write_str("String"),
            ValueType::Vec(t) => write!(f, "Vec<{t}>"),
            ValueType::Option(t) => write!(f, "Option<{t}>"),
            ValueType::Tuple(ts) => {
                f.write_str("(")?;
                for (i, t) in ts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                if ts.len() == 1 {
                    f.write_str(",")?;
                }
                f.write_str(")")
            }
            ValueType::Named(n) => f.write_str(n),
        }
    }
}

/// A named field of a struct, a table row, a struct-like enum variant or a function.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FieldDef {
    /// The field's name.
    pub name: String,
    /// The field's type.
    pub ty: ValueType,
}

/// The fields of an enum variant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VariantFields {
    /// `A`
    Unit,
    /// `B(String, u32)`
    Tuple(Vec<ValueType>),
    /// `C { x: f32 }`
    Named(Vec<FieldDef>),
}

/// One variant of an enum.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VariantDef {
    /// The variant's name.
    pub name: String,
    /// Its fields.
    pub fields: VariantFields,
}

/// What a named type is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TypeKind {
    /// A struct with named fields.
    Struct(Vec<FieldDef>),
    /// An enum whose variants may carry data.
    Enum(Vec<VariantDef>),
}

/// A named struct or enum, as declared with `#[interstice_type]` or `#[table]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TypeDef {
    /// The type's name (the Rust identifier).
    pub name: String,
    /// Its shape.
    pub kind: TypeKind,
}

/// The named types a module declares, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TypeSet {
    types: BTreeMap<String, TypeDef>,
}

/// Two different definitions under one type name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictingType(pub String);

impl TypeSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a type of that name is present.
    pub fn contains(&self, name: &str) -> bool {
        self.types.contains_key(name)
    }

    /// Looks a type up by name.
    pub fn get(&self, name: &str) -> Option<&TypeDef> {
        self.types.get(name)
    }

    /// Adds a definition; adding the same definition twice is fine, two different ones under
    /// one name are an error.
    pub fn insert(&mut self, def: TypeDef) -> Result<(), ConflictingType> {
        match self.types.get(&def.name) {
            Some(existing) if *existing == def => Ok(()),
            Some(_) => Err(ConflictingType(def.name)),
            None => {
                self.types.insert(def.name.clone(), def);
                Ok(())
            }
        }
    }

    /// Merges another set into this one.
    pub fn extend(&mut self, other: TypeSet) -> Result<(), ConflictingType> {
        for (_, def) in other.types {
            self.insert(def)?;
        }
        Ok(())
    }

    /// All definitions, ordered by name.
    pub fn iter(&self) -> impl Iterator<Item = &TypeDef> {
        self.types.values()
    }

    /// Number of definitions.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// Every `Named` reference inside `ty` that this set cannot resolve.
    pub fn first_unresolved<'a>(&self, ty: &'a ValueType) -> Option<&'a str> {
        match ty {
            ValueType::Named(n) if !self.contains(n) => Some(n),
            ValueType::Vec(t) | ValueType::Option(t) => self.first_unresolved(t),
            ValueType::Tuple(ts) => ts.iter().find_map(|t| self.first_unresolved(t)),
            _ => None,
        }
    }
}
