//! Property tests of the value codec: round trips, agreement with postcard, and robustness
//! against arbitrary input.

use interstice_abi::codec::{decode_exact, encode_value};
use interstice_abi::types::{
    FieldDef, TypeDef, TypeKind, TypeSet, ValueType, VariantDef, VariantFields,
};
use interstice_abi::{IntersticeType, Value};
use proptest::prelude::*;

/// A type set with one struct and one enum whose variants carry data.
fn named_types() -> TypeSet {
    let mut types = TypeSet::new();
    types
        .insert(TypeDef {
            name: "Point".into(),
            kind: TypeKind::Struct(vec![
                FieldDef {
                    name: "x".into(),
                    ty: ValueType::F32,
                },
                FieldDef {
                    name: "label".into(),
                    ty: ValueType::Option(Box::new(ValueType::String)),
                },
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
                        FieldDef {
                            name: "points".into(),
                            ty: ValueType::Vec(Box::new(ValueType::Named("Point".into()))),
                        },
                        FieldDef {
                            name: "closed".into(),
                            ty: ValueType::Bool,
                        },
                    ]),
                },
            ]),
        })
        .unwrap();
    types
}

fn arb_type() -> impl Strategy<Value = ValueType> {
    let leaf = prop_oneof![
        Just(ValueType::Unit),
        Just(ValueType::Bool),
        Just(ValueType::U8),
        Just(ValueType::U16),
        Just(ValueType::U32),
        Just(ValueType::U64),
        Just(ValueType::I8),
        Just(ValueType::I16),
        Just(ValueType::I32),
        Just(ValueType::I64),
        Just(ValueType::F32),
        Just(ValueType::F64),
        Just(ValueType::String),
        Just(ValueType::Named("Point".into())),
        Just(ValueType::Named("Shape".into())),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| ValueType::Vec(Box::new(t))),
            inner.clone().prop_map(|t| ValueType::Option(Box::new(t))),
            prop::collection::vec(inner, 0..4).prop_map(ValueType::Tuple),
        ]
    })
}

fn arb_point() -> BoxedStrategy<Value> {
    (any::<f32>(), prop::option::of(".{0,8}"))
        .prop_map(|(x, label)| {
            Value::Struct(vec![
                Value::F32(x),
                Value::Option(label.map(|l| Box::new(Value::String(l)))),
            ])
        })
        .boxed()
}

fn arb_value(ty: &ValueType) -> BoxedStrategy<Value> {
    match ty {
        ValueType::Unit => Just(Value::Unit).boxed(),
        ValueType::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        ValueType::U8 => any::<u8>().prop_map(Value::U8).boxed(),
        ValueType::U16 => any::<u16>().prop_map(Value::U16).boxed(),
        ValueType::U32 => any::<u32>().prop_map(Value::U32).boxed(),
        ValueType::U64 => any::<u64>().prop_map(Value::U64).boxed(),
        ValueType::I8 => any::<i8>().prop_map(Value::I8).boxed(),
        ValueType::I16 => any::<i16>().prop_map(Value::I16).boxed(),
        ValueType::I32 => any::<i32>().prop_map(Value::I32).boxed(),
        ValueType::I64 => any::<i64>().prop_map(Value::I64).boxed(),
        ValueType::F32 => any::<f32>().prop_map(Value::F32).boxed(),
        ValueType::F64 => any::<f64>().prop_map(Value::F64).boxed(),
        ValueType::String => ".{0,12}".prop_map(Value::String).boxed(),
        ValueType::Vec(t) => prop::collection::vec(arb_value(t), 0..5)
            .prop_map(Value::Vec)
            .boxed(),
        ValueType::Option(t) => prop::option::of(arb_value(t))
            .prop_map(|v| Value::Option(v.map(Box::new)))
            .boxed(),
        ValueType::Tuple(ts) => ts
            .iter()
            .map(arb_value)
            .collect::<Vec<_>>()
            .prop_map(Value::Tuple)
            .boxed(),
        ValueType::Named(n) if n == "Point" => arb_point(),
        ValueType::Named(_) => prop_oneof![
            Just(Value::Enum {
                variant: 0,
                payload: Box::new(Value::Unit)
            }),
            arb_point().prop_map(|p| Value::Enum {
                variant: 1,
                payload: Box::new(Value::Tuple(vec![p]))
            }),
            (prop::collection::vec(arb_point(), 0..3), any::<bool>()).prop_map(|(ps, closed)| {
                Value::Enum {
                    variant: 2,
                    payload: Box::new(Value::Struct(vec![Value::Vec(ps), Value::Bool(closed)])),
                }
            }),
        ]
        .boxed(),
    }
}

fn typed_value() -> impl Strategy<Value = (ValueType, Value)> {
    arb_type().prop_flat_map(|ty| arb_value(&ty).prop_map(move |v| (ty.clone(), v)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn dynamic_values_round_trip((ty, value) in typed_value()) {
        let types = named_types();
        let mut bytes = Vec::new();
        encode_value(&value, &ty, &types, &mut bytes).expect("value matches its type");
        let back = decode_exact(&ty, &types, &bytes).expect("decodes");
        prop_assert_eq!(&back, &value);
        // One extra byte is always an error, never silently ignored.
        bytes.push(0);
        prop_assert!(decode_exact(&ty, &types, &bytes).is_err());
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(ty in arb_type(), bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode_exact(&ty, &named_types(), &bytes);
    }

    #[test]
    fn typed_encoding_matches_postcard(
        a in any::<u8>(), b in any::<u16>(), c in any::<u32>(), d in any::<u64>(),
        e in any::<i8>(), f in any::<i16>(), g in any::<i32>(), h in any::<i64>(),
    ) {
        let tuple = (a, b, c, d, e, f, g, h);
        prop_assert_eq!(tuple.to_bytes(), postcard::to_allocvec(&tuple).unwrap());
        prop_assert_eq!(<(u8, u16, u32, u64, i8, i16, i32, i64)>::from_bytes(&tuple.to_bytes()).unwrap(), tuple);
    }

    #[test]
    fn typed_containers_match_postcard(
        s in ".{0,20}", v in prop::collection::vec(any::<u32>(), 0..10),
        o in prop::option::of(any::<i64>()), x in any::<f32>(), y in any::<f64>(), t in any::<bool>(),
    ) {
        let value = (s, v, o, x, y, t);
        let ours = value.to_bytes();
        prop_assert_eq!(&ours, &postcard::to_allocvec(&value).unwrap());
        let back = <(String, Vec<u32>, Option<i64>, f32, f64, bool)>::from_bytes(&ours).unwrap();
        prop_assert_eq!(back.0, value.0);
        prop_assert_eq!(back.1, value.1);
        prop_assert_eq!(back.2, value.2);
        prop_assert_eq!(back.3.to_bits(), value.3.to_bits());
        prop_assert_eq!(back.4.to_bits(), value.4.to_bits());
        prop_assert_eq!(back.5, value.5);
    }

    #[test]
    fn typed_and_dynamic_codecs_agree(v in prop::collection::vec(prop::option::of(".{0,6}"), 0..6), n in any::<i32>()) {
        let value = (v.clone(), n);
        let ty = <(Vec<Option<String>>, i32)>::value_type();
        let dynamic = decode_exact(&ty, &TypeSet::new(), &value.to_bytes()).unwrap();
        let mut again = Vec::new();
        encode_value(&dynamic, &ty, &TypeSet::new(), &mut again).unwrap();
        prop_assert_eq!(again, value.to_bytes());
    }
}

#[test]
fn a_value_of_the_wrong_type_is_refused() {
    let mut out = Vec::new();
    let err = encode_value(&Value::U8(1), &ValueType::String, &TypeSet::new(), &mut out);
    assert!(err.is_err());
    let err = encode_value(
        &Value::Enum {
            variant: 9,
            payload: Box::new(Value::Unit),
        },
        &ValueType::Named("Shape".into()),
        &named_types(),
        &mut out,
    );
    assert!(err.is_err());
}

#[test]
fn module_schemas_round_trip_through_postcard() {
    use interstice_abi::schema::*;
    let mut schema = ModuleSchema {
        abi_version: interstice_abi::ABI_VERSION,
        name: "m".into(),
        version: "1.0.0".into(),
        visibility: Visibility::Public,
        authorities: vec![Authority::Gpu],
        types: named_types(),
        ..ModuleSchema::default()
    };
    schema
        .types
        .insert(TypeDef {
            name: "Row".into(),
            kind: TypeKind::Struct(vec![
                FieldDef {
                    name: "id".into(),
                    ty: ValueType::U64,
                },
                FieldDef {
                    name: "shape".into(),
                    ty: ValueType::Named("Shape".into()),
                },
            ]),
        })
        .unwrap();
    schema.tables.push(TableSchema {
        name: "row".into(),
        row_type: "Row".into(),
        fields: vec![
            FieldDef {
                name: "id".into(),
                ty: ValueType::U64,
            },
            FieldDef {
                name: "shape".into(),
                ty: ValueType::Named("Shape".into()),
            },
        ],
        primary_key: 0,
        primary_key_auto_inc: true,
        indexes: vec![IndexSchema {
            field: 1,
            kind: IndexKind::BTree,
            unique: false,
            auto_inc: false,
        }],
        persistence: Persistence::Stateful,
    });
    schema.reducers.push(ReducerSchema {
        name: "on_row".into(),
        args: vec![FieldDef {
            name: "row".into(),
            ty: ValueType::Named("Row".into()),
        }],
        on: Some(EventSpec::parse("m.row.insert").unwrap()),
    });
    schema.validate().expect("valid");
    let bytes = postcard::to_allocvec(&schema).unwrap();
    let back: ModuleSchema = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, schema);
    // Bindings are the same schema as TOML.
    let binding = Binding {
        module: schema.clone(),
    };
    let text = toml::to_string_pretty(&binding).unwrap();
    let back: Binding = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(back, binding);
    let node = interstice_abi::NodeBinding {
        node: interstice_abi::NodeDependency {
            name: "far".into(),
            address: "127.0.0.1:8080".into(),
        },
        modules: vec![schema.clone()],
    };
    let text = toml::to_string_pretty(&node).unwrap();
    let back: interstice_abi::NodeBinding =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(back, node);
    let public = schema.to_public().expect("public module");
    assert!(
        public.reducers.is_empty(),
        "subscribers are not part of the public view"
    );

    let mut bad = schema.clone();
    bad.tables[0].primary_key = 7;
    assert!(bad.validate().is_err());
    let mut bad = schema.clone();
    bad.tables[0].indexes[0].auto_inc = true;
    assert!(matches!(
        bad.validate(),
        Err(SchemaError::InvalidTable { .. })
    ));
    let mut bad = schema.clone();
    bad.reducers.push(bad.reducers[0].clone());
    assert!(matches!(bad.validate(), Err(SchemaError::Duplicate { .. })));
    let mut bad = schema;
    bad.reducers[0].args[0].ty = ValueType::Named("Missing".into());
    assert!(matches!(
        bad.validate(),
        Err(SchemaError::UnknownType { .. })
    ));
}
