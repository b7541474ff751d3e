//! Type descriptions: what a [`Value`](crate::Value) may hold.
//!
//! Primitive and container types are spelled out in [`ValueType`]; structs and enums are
//! [`TypeDef`]s referred to by name ([`ValueType::Named`]) and collected in a [`TypeSet`], so a
//! recursive type is described once.

use alloc::{boxed::Box, collections::BTreeMap, string::String, vec::Vec};
use core::fmt;
use serde::{Deserialize, Serialize};

/// The type of a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
