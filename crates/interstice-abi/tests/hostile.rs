//! Hostile inputs to the decoders: each is refused with an error, without overflowing a small
//! stack or allocating more than the input justifies.

use interstice_abi::codec::{DecodeError, decode_exact, write_varint};
use interstice_abi::limits::{MAX_TUPLE_ARITY, MAX_TYPE_DEPTH, MAX_ZERO_SIZED_ELEMENTS};
use interstice_abi::types::{FieldDef, TypeSet, ValueType};
use interstice_abi::{ModuleSchema, Persistence, TableSchema};

/// Runs `f` on a thread with a 2 MiB stack, as the network and test threads have.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .expect("the decoding thread survived")
}

/// The postcard encoding of `Vec(Vec(… U32 …))`, `depth` vectors deep.
fn deep_type_bytes(depth: usize) -> Vec<u8> {
    let mut bytes = vec![13u8; depth]; // variant 13: Vec
    bytes.push(4); // variant 4: U32
    bytes
}

fn nested(depth: usize) -> ValueType {
    (0..depth).fold(ValueType::U32, |t, _| ValueType::Vec(Box::new(t)))
}

#[test]
fn a_type_200000_levels_deep_is_an_error_not_an_abort() {
    // postcard keeps no message for a custom error: what matters is that it is an error.
    let result = on_small_stack(|| postcard::from_bytes::<ValueType>(&deep_type_bytes(200_000)));
    assert_eq!(result, Err(postcard::Error::SerdeDeCustom));
}

#[test]
fn types_up_to_the_depth_limit_decode_and_deeper_ones_do_not() {
    let limit = MAX_TYPE_DEPTH as usize;
    let ok = postcard::from_bytes::<ValueType>(&deep_type_bytes(limit - 1)).unwrap();
    assert_eq!(ok, nested(limit - 1));
    assert_eq!(
        postcard::to_allocvec(&ok).unwrap(),
        deep_type_bytes(limit - 1)
    );
    assert!(postcard::from_bytes::<ValueType>(&deep_type_bytes(limit)).is_err());
}

#[test]
fn a_deep_type_inside_a_schema_is_refused() {
    // A table field of a named type whose name is then replaced by a deep vector type.
    let schema = ModuleSchema {
        name: "m".into(),
        tables: vec![TableSchema {
            name: "t".into(),
            row_type: "T".into(),
            fields: vec![FieldDef {
                name: "f".into(),
                ty: ValueType::Named("ZZZZZZ".into()),
            }],
            primary_key: 0,
            primary_key_auto_inc: false,
            indexes: vec![],
            persistence: Persistence::Logged,
        }],
        ..ModuleSchema::default()
    };
    let encoded = postcard::to_allocvec(&schema).unwrap();
    let marker = [16u8, 6, b'Z', b'Z', b'Z', b'Z', b'Z', b'Z'];
    let at = encoded
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("the marker type is in the encoding");
    let mut hostile = encoded[..at].to_vec();
    hostile.extend(deep_type_bytes(200_000));
    hostile.extend(&encoded[at + marker.len()..]);
    let result = on_small_stack(move || postcard::from_bytes::<ModuleSchema>(&hostile).is_err());
    assert!(result);
}

#[test]
fn wide_tuple_types_are_refused() {
    let mut bytes = vec![15u8]; // Tuple
    write_varint(&mut bytes, MAX_TUPLE_ARITY as u64 + 1);
    bytes.extend(std::iter::repeat_n(4u8, MAX_TUPLE_ARITY + 1));
    assert!(postcard::from_bytes::<ValueType>(&bytes).is_err());
    let mut bytes = vec![15u8];
    write_varint(&mut bytes, MAX_TUPLE_ARITY as u64);
    bytes.extend(std::iter::repeat_n(4u8, MAX_TUPLE_ARITY));
    let ok = postcard::from_bytes::<ValueType>(&bytes).unwrap();
    assert_eq!(ok, ValueType::Tuple(vec![ValueType::U32; MAX_TUPLE_ARITY]));
}

#[test]
fn types_still_read_by_name_from_toml() {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Doc {
        ty: ValueType,
    }
    let doc = Doc {
        ty: ValueType::Tuple(vec![
            ValueType::Option(Box::new(ValueType::String)),
            ValueType::Vec(Box::new(ValueType::Named("Point".into()))),
            ValueType::Unit,
        ]),
    };
    let text = toml::to_string(&doc).unwrap();
    assert_eq!(toml::from_str::<Doc>(&text).unwrap(), doc);
    assert!(toml::from_str::<Doc>("ty = \"Nope\"").is_err());
}

#[test]
fn nested_zero_sized_sequences_share_one_budget() {
    // `Vec<Vec<()>>`: each inner vector takes 3 input bytes and claims 2^16 units. Before the
    // shared budget, 1,000 of them (3 KB) decoded into 65 million values.
    let ty = ValueType::Vec(Box::new(ValueType::Vec(Box::new(ValueType::Unit))));
    let inner = 1000u64;
    let mut bytes = Vec::new();
    write_varint(&mut bytes, inner);
    for _ in 0..inner {
        write_varint(&mut bytes, MAX_ZERO_SIZED_ELEMENTS);
    }
    let error = decode_exact(&ty, &TypeSet::new(), &bytes).unwrap_err();
    assert!(matches!(error, DecodeError::LengthTooLarge(_)), "{error}");

    // The budget still allows what it names, split across sequences.
    let mut bytes = Vec::new();
    write_varint(&mut bytes, 2);
    write_varint(&mut bytes, MAX_ZERO_SIZED_ELEMENTS / 2);
    write_varint(&mut bytes, MAX_ZERO_SIZED_ELEMENTS / 2);
    assert!(decode_exact(&ty, &TypeSet::new(), &bytes).is_ok());
}

fn unit_struct(name: &str, fields: usize, ty: ValueType) -> interstice_abi::TypeDef {
    interstice_abi::TypeDef {
        name: name.into(),
        kind: interstice_abi::TypeKind::Struct(
            (0..fields)
                .map(|i| FieldDef {
                    name: format!("f{i}"),
                    ty: ty.clone(),
                })
                .collect(),
        ),
    }
}

#[test]
fn unit_fields_are_charged_one_by_one() {
    // `Vec<Z>` where `Z` has 1,024 unit fields: 3 bytes used to claim 65,536 × 1,024 values.
    let mut types = TypeSet::new();
    types
        .insert(unit_struct("Z", 1024, ValueType::Unit))
        .unwrap();
    let ty = ValueType::Vec(Box::new(ValueType::Named("Z".into())));
    let mut bytes = Vec::new();
    write_varint(&mut bytes, MAX_ZERO_SIZED_ELEMENTS);
    let error = decode_exact(&ty, &types, &bytes).unwrap_err();
    assert!(matches!(error, DecodeError::LengthTooLarge(_)), "{error}");
    // What the budget allows still decodes: 64 of them are 65,536 units.
    let mut bytes = Vec::new();
    write_varint(&mut bytes, 64);
    assert!(decode_exact(&ty, &types, &bytes).is_ok());
}

#[test]
fn types_that_fan_out_cost_a_bounded_walk() {
    // A has 1,024 fields of B, B 1,024 of C, ... eight levels: every walk through the named
    // types that does not stop early visits 1,024^8 fields.
    let mut types = TypeSet::new();
    let names = ["A", "B", "C", "D", "E", "F", "G", "H"];
    for pair in names.windows(2) {
        types
            .insert(unit_struct(pair[0], 1024, ValueType::Named(pair[1].into())))
            .unwrap();
    }
    types.insert(unit_struct("H", 1024, ValueType::U8)).unwrap();
    let ty = ValueType::Vec(Box::new(ValueType::Named("A".into())));
    let started = std::time::Instant::now();
    // An empty vector of A, and a vector that claims more than the input holds.
    assert!(decode_exact(&ty, &types, &[0]).is_ok());
    assert!(decode_exact(&ty, &types, &[5]).is_err());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn integer_keys_built_to_collide_spread_over_the_buckets() {
    use core::hash::BuildHasher;
    use interstice_abi::{KeyHash, Value};
    // `k << 32 | k`: the hash used to fold the high half onto the low one, which cancelled it —
    // every such key in bucket 0, each insert a walk of all the others.
    let keys: Vec<Value> = (0u64..4096).map(|k| Value::U64(k << 32 | k)).collect();
    let buckets: std::collections::BTreeSet<u64> = keys
        .iter()
        .map(|k| KeyHash::default().hash_one(k) & 0xfff)
        .collect();
    let started = std::time::Instant::now();
    let mut map: std::collections::HashMap<Value, (), KeyHash> = Default::default();
    for k in 0u64..20_000 {
        map.insert(Value::U64(k << 32 | k), ());
    }
    println!(
        "20,000 keys k << 32 | k inserted in {:?}; {} of 4096 low-bit buckets used",
        started.elapsed(),
        buckets.len()
    );
    assert!(
        buckets.len() > 2000,
        "only {} of 4096 buckets used",
        buckets.len()
    );
}
