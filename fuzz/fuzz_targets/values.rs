//! Values decoded against a schema's types (reducer arguments, rows, keys): every value has
//! exactly one encoding, so whatever decodes re-encodes to the very same bytes.
#![no_main]

use interstice_abi::codec::{decode_exact, encode_value};
use interstice_abi::types::{FieldDef, TypeDef, TypeKind, TypeSet, ValueType, VariantDef, VariantFields};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn types() -> &'static (TypeSet, Vec<ValueType>) {
    static TYPES: OnceLock<(TypeSet, Vec<ValueType>)> = OnceLock::new();
    TYPES.get_or_init(|| {
        let mut types = TypeSet::new();
        let field = |name: &str, ty: ValueType| FieldDef {
            name: name.into(),
            ty,
        };
        types
            .insert(TypeDef {
                name: "Point".into(),
                kind: TypeKind::Struct(vec![
                    field("x", ValueType::F32),
                    field("label", ValueType::Option(Box::new(ValueType::String))),
                ]),
            })
            .unwrap();
        types
            .insert(TypeDef {
                name: "Shape".into(),
                kind: TypeKind::Enum(vec![
                    VariantDef {
                        name: "Empty".into(),
                        fields: VariantFields::Unit,
                    },
                    VariantDef {
                        name: "Dot".into(),
                        fields: VariantFields::Tuple(vec![ValueType::Named("Point".into())]),
                    },
                    VariantDef {
                        name: "Poly".into(),
                        fields: VariantFields::Named(vec![
                            field("points", ValueType::Vec(Box::new(ValueType::Named("Point".into())))),
                            field("closed", ValueType::Bool),
                        ]),
                    },
                ]),
            })
            .unwrap();
        // A recursive type: nesting is bounded by the decoder, not by the type.
        types
            .insert(TypeDef {
                name: "Tree".into(),
                kind: TypeKind::Struct(vec![
                    field("value", ValueType::I64),
                    field("children", ValueType::Vec(Box::new(ValueType::Named("Tree".into())))),
                ]),
            })
            .unwrap();
        let candidates = vec![
            ValueType::U64,
            ValueType::I32,
            ValueType::F64,
            ValueType::String,
            ValueType::Vec(Box::new(ValueType::U8)),
            ValueType::Vec(Box::new(ValueType::Unit)),
            ValueType::Vec(Box::new(ValueType::Vec(Box::new(ValueType::Unit)))),
            ValueType::Tuple(vec![ValueType::U16, ValueType::Option(Box::new(ValueType::I8))]),
            ValueType::Named("Shape".into()),
            ValueType::Named("Tree".into()),
            ValueType::Vec(Box::new(ValueType::Named("Shape".into()))),
        ];
        (types, candidates)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let (types, candidates) = types();
    let ty = &candidates[usize::from(pick) % candidates.len()];
    if let Ok(value) = decode_exact(ty, types, bytes) {
        let mut out = Vec::new();
        encode_value(&value, ty, types, &mut out).expect("a decoded value encodes");
        assert_eq!(out, bytes, "one encoding per value");
    }
});
