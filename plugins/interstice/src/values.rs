//! Arguments typed by people (on the command line, in the inspector), checked against a
//! reducer's or query's signature, and results shown back: integers, floats, bools and strings as they are; structs, enums,
//! vectors, options and tuples as JSON.
//!
//! JSON shapes: a struct is an object of its fields (`{"id": 1, "name": "a"}`); an enum variant
//! is its name for a unit variant (`"Red"`) or a one-entry object (`{"Labeled": "x"}`,
//! `{"Point": [1, 2]}`, `{"Named": {"x": 1}}`); a vector or tuple is an array; an option is
//! `null` or its value. A unit variant may also be typed bare (`Red`, no quotes): it cannot be
//! mistaken for anything else. An argument that does not parse is answered with an example of
//! the form expected ([`example`]).

use interstice_abi::{TypeKind, TypeSet, Value, ValueType, VariantFields};
use serde_json::{Map, Number, Value as Json};
use thiserror::Error;

/// Why a command-line argument is not a value of the expected type.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("argument `{name}` expects {expected}: {reason}")]
pub struct ArgError {
    /// The parameter.
    pub name: String,
    /// Its type, as the schema writes it.
    pub expected: String,
    /// What is wrong.
    pub reason: String,
}

/// Parses `text` as a value of `ty`: scalars as typed, anything else as JSON.
pub fn parse(text: &str, ty: &ValueType, types: &TypeSet) -> Result<Value, String> {
    match ty {
        ValueType::String => Ok(Value::String(text.to_string())),
        ValueType::Bool => match text {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("`{text}` is not true or false")),
        },
        ValueType::Unit => match text {
            "" | "()" | "null" => Ok(Value::Unit),
            _ => Err(format!("`{text}` is not ()")),
        },
        number if number.is_integer() || matches!(number, ValueType::F32 | ValueType::F64) => {
            let json: Json =
                serde_json::from_str(text).map_err(|_| format!("`{text}` is not a number"))?;
            from_json(&json, ty, types, 0)
        }
        _ => {
            if let Some(variant) = bare_unit_variant(text, ty, types) {
                return Ok(variant);
            }
            let json: Json = serde_json::from_str(text).map_err(|e| {
                format!(
                    "`{text}` is not JSON ({e}); expected something like {}",
                    example(ty, types)
                )
            })?;
            from_json(&json, ty, types, 0)
                .map_err(|e| format!("{e}; expected something like {}", example(ty, types)))
        }
    }
}

/// `text` as a unit variant of the enum `ty`, typed bare (`Red` rather than `"Red"`).
fn bare_unit_variant(text: &str, ty: &ValueType, types: &TypeSet) -> Option<Value> {
    let ValueType::Named(name) = ty else {
        return None;
    };
    let TypeKind::Enum(variants) = &types.get(name)?.kind else {
        return None;
    };
    let text = text.trim();
    let (index, _) = variants
        .iter()
        .enumerate()
        .find(|(_, v)| v.name == text && matches!(v.fields, VariantFields::Unit))?;
    Some(Value::Enum {
        variant: index as u32,
        payload: Box::new(Value::Unit),
    })
}

/// What an argument of type `ty` looks like, typed: `42`, `"text"`, `[1, 2]`, `{"id": 1}`, a
/// unit variant bare, another variant as `{"Variant": ...}`.
pub fn example(ty: &ValueType, types: &TypeSet) -> String {
    example_at(ty, types, 0)
}

fn example_at(ty: &ValueType, types: &TypeSet, depth: u32) -> String {
    // Examples stay short: deep or recursive types end in `...`.
    if depth > 3 {
        return "...".into();
    }
    let d = depth + 1;
    match ty {
        ValueType::Unit => "null".into(),
        ValueType::Bool => "true".into(),
        ValueType::F32 | ValueType::F64 => "1.5".into(),
        ValueType::String => "\"text\"".into(),
        integer if integer.is_integer() => "1".into(),
        ValueType::Vec(inner) => format!("[{}]", example_at(inner, types, d)),
        ValueType::Option(inner) => format!("null or {}", example_at(inner, types, d)),
        ValueType::Tuple(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|t| example_at(t, types, d))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ValueType::Named(name) => match types.get(name).map(|def| &def.kind) {
            Some(TypeKind::Struct(fields)) => format!(
                "{{{}}}",
                fields
                    .iter()
                    .map(|f| format!("\"{}\": {}", f.name, example_at(&f.ty, types, d)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some(TypeKind::Enum(variants)) => {
                let forms: Vec<String> = variants
                    .iter()
                    .take(3)
                    .map(|v| match &v.fields {
                        VariantFields::Unit => v.name.clone(),
                        VariantFields::Tuple(items) if items.len() == 1 => {
                            format!("{{\"{}\": {}}}", v.name, example_at(&items[0], types, d))
                        }
                        VariantFields::Tuple(items) => format!(
                            "{{\"{}\": {}}}",
                            v.name,
                            example_at(&ValueType::Tuple(items.clone()), types, d)
                        ),
                        VariantFields::Named(fields) => format!(
                            "{{\"{}\": {{{}}}}}",
                            v.name,
                            fields
                                .iter()
                                .map(|f| format!("\"{}\": {}", f.name, example_at(&f.ty, types, d)))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    })
                    .collect();
                let more = if variants.len() > 3 { " or ..." } else { "" };
                format!("{}{more}", forms.join(" or "))
            }
            None => format!("a {name}"),
        },
        _ => "a value".into(),
    }
}

/// Arguments typed by people nest no deeper than decoded ones (serde_json stops at 128).
use interstice_abi::limits::MAX_DEPTH;

fn int<T: TryFrom<i128>>(json: &Json, what: &str) -> Result<T, String> {
    let n: i128 = match json {
        Json::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .ok_or_else(|| format!("{n} is not an integer"))?,
        other => return Err(format!("{other} is not a number")),
    };
    T::try_from(n).map_err(|_| format!("{n} does not fit in {what}"))
}

fn float(json: &Json) -> Result<f64, String> {
    json.as_f64()
        .ok_or_else(|| format!("{json} is not a number"))
}

/// Converts JSON to a value of `ty`.
pub fn from_json(
    json: &Json,
    ty: &ValueType,
    types: &TypeSet,
    depth: u32,
) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err("nested too deeply".into());
    }
    let d = depth + 1;
    Ok(match ty {
        ValueType::Unit => match json {
            Json::Null => Value::Unit,
            other => return Err(format!("{other} is not null")),
        },
        ValueType::Bool => Value::Bool(
            json.as_bool()
                .ok_or_else(|| format!("{json} is not true or false"))?,
        ),
        ValueType::U8 => Value::U8(int(json, "u8")?),
        ValueType::U16 => Value::U16(int(json, "u16")?),
        ValueType::U32 => Value::U32(int(json, "u32")?),
        ValueType::U64 => Value::U64(int(json, "u64")?),
        ValueType::I8 => Value::I8(int(json, "i8")?),
        ValueType::I16 => Value::I16(int(json, "i16")?),
        ValueType::I32 => Value::I32(int(json, "i32")?),
        ValueType::I64 => Value::I64(int(json, "i64")?),
        ValueType::F32 => Value::F32(float(json)? as f32),
        ValueType::F64 => Value::F64(float(json)?),
        ValueType::String => Value::String(
            json.as_str()
                .ok_or_else(|| format!("{json} is not a string"))?
                .to_string(),
        ),
        ValueType::Vec(inner) => Value::Vec(
            json.as_array()
                .ok_or_else(|| format!("{json} is not an array"))?
                .iter()
                .map(|item| from_json(item, inner, types, d))
                .collect::<Result<_, _>>()?,
        ),
        ValueType::Option(inner) => match json {
            Json::Null => Value::Option(None),
            other => Value::Option(Some(Box::new(from_json(other, inner, types, d)?))),
        },
        ValueType::Tuple(items) => {
            let array = json
                .as_array()
                .ok_or_else(|| format!("{json} is not an array"))?;
            if array.len() != items.len() {
                return Err(format!(
                    "a tuple of {} items, not {}",
                    items.len(),
                    array.len()
                ));
            }
            Value::Tuple(
                array
                    .iter()
                    .zip(items)
                    .map(|(item, ty)| from_json(item, ty, types, d))
                    .collect::<Result<_, _>>()?,
            )
        }
        ValueType::Named(name) => {
            let def = types
                .get(name)
                .ok_or_else(|| format!("the schema does not define `{name}`"))?;
            match &def.kind {
                TypeKind::Struct(fields) => struct_from_json(json, name, fields, types, d)?,
                TypeKind::Enum(variants) => enum_from_json(json, name, variants, types, d)?,
            }
        }
    })
}

/// Converts a JSON object to a struct `name` of `fields` (every field, no other).
fn struct_from_json(
    json: &Json,
    name: &str,
    fields: &[interstice_abi::FieldDef],
    types: &TypeSet,
    depth: u32,
) -> Result<Value, String> {
    let object = json
        .as_object()
        .ok_or_else(|| format!("{json} is not an object with the fields of {name}"))?;
    if let Some(extra) = object
        .keys()
        .find(|k| !fields.iter().any(|f| &f.name == *k))
    {
        return Err(format!("{name} has no field `{extra}`"));
    }
    Ok(Value::Struct(
        fields
            .iter()
            .map(|f| {
                let field = object
                    .get(&f.name)
                    .ok_or_else(|| format!("{name} needs field `{}`", f.name))?;
                from_json(field, &f.ty, types, depth)
                    .map_err(|e| format!("field `{}`: {e}", f.name))
            })
            .collect::<Result<_, _>>()?,
    ))
}

/// Converts `"Variant"` or `{"Variant": data}` to a variant of enum `name`.
fn enum_from_json(
    json: &Json,
    name: &str,
    variants: &[interstice_abi::VariantDef],
    types: &TypeSet,
    d: u32,
) -> Result<Value, String> {
    let (variant_name, payload) = match json {
        Json::String(s) => (s.as_str(), None),
        Json::Object(o) if o.len() == 1 => {
            let (k, v) = o.iter().next().ok_or("empty object")?;
            (k.as_str(), Some(v))
        }
        other => {
            return Err(format!(
                "{other} is not a variant of {name} (\"Variant\" or {{\"Variant\": ...}})"
            ));
        }
    };
    let (index, variant) = variants
        .iter()
        .enumerate()
        .find(|(_, v)| v.name == variant_name)
        .ok_or_else(|| format!("{name} has no variant `{variant_name}`"))?;
    let payload = match (&variant.fields, payload) {
        (VariantFields::Unit, None | Some(Json::Null)) => Value::Unit,
        (VariantFields::Tuple(items), Some(p)) if items.len() == 1 => {
            Value::Tuple(vec![from_json(p, &items[0], types, d)?])
        }
        (VariantFields::Tuple(items), Some(p)) => {
            from_json(p, &ValueType::Tuple(items.clone()), types, d)?
        }
        (VariantFields::Named(fields), Some(Json::Object(o))) => Value::Struct(
            fields
                .iter()
                .map(|f| {
                    let field = o.get(&f.name).ok_or_else(|| {
                        format!("{name}::{variant_name} needs field `{}`", f.name)
                    })?;
                    from_json(field, &f.ty, types, d)
                })
                .collect::<Result<_, _>>()?,
        ),
        _ => {
            return Err(format!(
                "variant `{variant_name}` of {name} takes other data"
            ));
        }
    };
    Ok(Value::Enum {
        variant: index as u32,
        payload: Box::new(payload),
    })
}

/// A value as JSON, with the schema's names for fields and variants.
pub fn to_json(value: &Value, ty: &ValueType, types: &TypeSet) -> Json {
    match (value, ty) {
        (Value::Unit, _) => Json::Null,
        (Value::Bool(b), _) => Json::Bool(*b),
        (Value::U8(n), _) => Json::from(*n),
        (Value::U16(n), _) => Json::from(*n),
        (Value::U32(n), _) => Json::from(*n),
        (Value::U64(n), _) => Json::from(*n),
        (Value::I8(n), _) => Json::from(*n),
        (Value::I16(n), _) => Json::from(*n),
        (Value::I32(n), _) => Json::from(*n),
        (Value::I64(n), _) => Json::from(*n),
        (Value::F32(x), _) => Number::from_f64(f64::from(*x)).map_or(Json::Null, Json::Number),
        (Value::F64(x), _) => Number::from_f64(*x).map_or(Json::Null, Json::Number),
        (Value::String(s), _) => Json::String(s.clone()),
        (Value::Vec(items), ValueType::Vec(inner)) => {
            Json::Array(items.iter().map(|v| to_json(v, inner, types)).collect())
        }
        (Value::Option(None), _) => Json::Null,
        (Value::Option(Some(v)), ValueType::Option(inner)) => to_json(v, inner, types),
        (Value::Tuple(items), ValueType::Tuple(tys)) => Json::Array(
            items
                .iter()
                .zip(tys)
                .map(|(v, t)| to_json(v, t, types))
                .collect(),
        ),
        (Value::Struct(fields), ValueType::Named(name)) => match types.get(name).map(|d| &d.kind) {
            Some(TypeKind::Struct(defs)) => Json::Object(
                fields
                    .iter()
                    .zip(defs)
                    .map(|(v, f)| (f.name.clone(), to_json(v, &f.ty, types)))
                    .collect::<Map<_, _>>(),
            ),
            _ => Json::Null,
        },
        (Value::Enum { variant, payload }, ValueType::Named(name)) => {
            let Some(TypeKind::Enum(variants)) = types.get(name).map(|d| &d.kind) else {
                return Json::Null;
            };
            let Some(v) = variants.get(*variant as usize) else {
                return Json::Null;
            };
            let data = match (&v.fields, payload.as_ref()) {
                (VariantFields::Unit, _) => return Json::String(v.name.clone()),
                (VariantFields::Tuple(items), Value::Tuple(values)) if items.len() == 1 => values
                    .first()
                    .map_or(Json::Null, |x| to_json(x, &items[0], types)),
                (VariantFields::Tuple(items), value) => {
                    to_json(value, &ValueType::Tuple(items.clone()), types)
                }
                (VariantFields::Named(fields), Value::Struct(values)) => Json::Object(
                    values
                        .iter()
                        .zip(fields)
                        .map(|(x, f)| (f.name.clone(), to_json(x, &f.ty, types)))
                        .collect(),
                ),
                _ => Json::Null,
            };
            let mut object = Map::new();
            object.insert(v.name.clone(), data);
            Json::Object(object)
        }
        _ => Json::Null,
    }
}

/// A value for people: strings unquoted at the top level, everything else as JSON.
pub fn display(value: &Value, ty: &ValueType, types: &TypeSet) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Unit => "()".into(),
        _ => {
            let json = to_json(value, ty, types);
            serde_json::to_string_pretty(&json).unwrap_or_else(|_| json.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use interstice_abi::{FieldDef, TypeDef, VariantDef};

    fn types() -> TypeSet {
        let mut types = TypeSet::new();
        let _ = types.insert(TypeDef {
            name: "Item".into(),
            kind: TypeKind::Struct(vec![
                FieldDef {
                    name: "id".into(),
                    ty: ValueType::U64,
                },
                FieldDef {
                    name: "tags".into(),
                    ty: ValueType::Vec(Box::new(ValueType::String)),
                },
            ]),
        });
        let _ = types.insert(TypeDef {
            name: "Kind".into(),
            kind: TypeKind::Enum(vec![
                VariantDef {
                    name: "Plain".into(),
                    fields: VariantFields::Unit,
                },
                VariantDef {
                    name: "Labeled".into(),
                    fields: VariantFields::Tuple(vec![ValueType::String]),
                },
            ]),
        });
        types
    }

    #[test]
    fn scalars_and_json_round_trip_through_the_schema() {
        let t = types();
        assert_eq!(parse("42", &ValueType::U8, &t), Ok(Value::U8(42)));
        assert!(
            parse("300", &ValueType::U8, &t)
                .unwrap_err()
                .contains("fit")
        );
        assert!(parse("x", &ValueType::I32, &t).is_err());
        assert_eq!(
            parse("hello world", &ValueType::String, &t),
            Ok(Value::String("hello world".into()))
        );
        let item = ValueType::Named("Item".into());
        let v = parse(r#"{"id": 7, "tags": ["a"]}"#, &item, &t).unwrap();
        assert_eq!(
            v,
            Value::Struct(vec![
                Value::U64(7),
                Value::Vec(vec![Value::String("a".into())])
            ])
        );
        assert_eq!(
            to_json(&v, &item, &t),
            serde_json::json!({"id": 7, "tags": ["a"]})
        );
        assert!(
            parse(r#"{"id": 7}"#, &item, &t)
                .unwrap_err()
                .contains("needs field `tags`")
        );
        let kind = ValueType::Named("Kind".into());
        let labeled = parse(r#"{"Labeled": "x"}"#, &kind, &t).unwrap();
        assert_eq!(
            to_json(&labeled, &kind, &t),
            serde_json::json!({"Labeled": "x"})
        );
        assert_eq!(
            to_json(&parse(r#""Plain""#, &kind, &t).unwrap(), &kind, &t),
            serde_json::json!("Plain")
        );
        let maybe = ValueType::Option(Box::new(ValueType::I64));
        assert_eq!(parse("null", &maybe, &t), Ok(Value::Option(None)));
    }

    #[test]
    fn a_unit_variant_may_be_typed_bare_and_mistakes_show_the_expected_form() {
        let t = types();
        let kind = ValueType::Named("Kind".into());
        assert_eq!(parse("Plain", &kind, &t), parse(r#""Plain""#, &kind, &t));
        assert!(parse("Plain", &kind, &t).is_ok());
        // A variant with data is not a bare word.
        let labeled = parse("Labeled", &kind, &t).unwrap_err();
        assert!(
            labeled.contains(r#"Plain or {"Labeled": "text"}"#),
            "{labeled}"
        );
        let nothing = parse("Nope", &kind, &t).unwrap_err();
        assert!(
            nothing.contains("expected something like Plain or"),
            "{nothing}"
        );
        let item = ValueType::Named("Item".into());
        let wrong = parse(r#"{"id": 7}"#, &item, &t).unwrap_err();
        assert!(
            wrong.contains(r#"expected something like {"id": 1, "tags": ["text"]}"#),
            "{wrong}"
        );
        assert_eq!(
            example(&ValueType::Option(Box::new(kind.clone())), &t),
            r#"null or Plain or {"Labeled": "text"}"#
        );
    }
}
