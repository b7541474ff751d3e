//! A module's schema, assembled from its describe exports and checked.

use crate::error::LoadError;
use crate::wasm::instance::{EntryPoint, Instance};
use interstice_abi::protocol::{
    ABI_VERSION, ModuleDescription, QueryDescription, ReducerDescription, TableDescription, exports,
};
use interstice_abi::{ModuleSchema, TypeSet};

/// The reducer and query entry points of an instance, in schema order.
pub(super) fn entry_points(
    instance: &mut Instance,
    schema: &ModuleSchema,
) -> Result<(Vec<EntryPoint>, Vec<EntryPoint>), LoadError> {
    let reducers = schema
        .reducers
        .iter()
        .map(|r| instance.entry(&format!("{}{}", exports::REDUCER, r.name)))
        .collect::<Result<Vec<_>, _>>()?;
    let queries = schema
        .queries
        .iter()
        .map(|q| instance.entry(&format!("{}{}", exports::QUERY, q.name)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((reducers, queries))
}

fn decode_description<T: serde::de::DeserializeOwned>(
    export: &str,
    bytes: &[u8],
) -> Result<T, LoadError> {
    postcard::from_bytes(bytes).map_err(|e| LoadError::BadDescription {
        export: export.into(),
        reason: interstice_abi::limits::describe_postcard_error(&e),
    })
}

/// Checks an instance's ABI version, then describes and validates its schema.
pub(super) fn check_and_describe(
    instance: &mut Instance,
    fuel: u64,
) -> Result<ModuleSchema, LoadError> {
    let found = instance.abi_version(fuel)?;
    if found != ABI_VERSION {
        return Err(LoadError::AbiMismatch {
            found,
            expected: ABI_VERSION,
        });
    }
    let schema = describe(instance, fuel)?;
    schema.validate()?;
    Ok(schema)
}

/// Assembles a module's schema from its describe exports.
fn describe(instance: &mut Instance, fuel: u64) -> Result<ModuleSchema, LoadError> {
    let bytes = instance.describe(exports::DESCRIBE_MODULE, fuel)?;
    let m: ModuleDescription = decode_description(exports::DESCRIBE_MODULE, &bytes)?;
    let mut schema = ModuleSchema {
        abi_version: m.abi_version,
        name: m.name,
        version: m.version,
        visibility: m.visibility,
        authorities: m.authorities,
        nodes: m.nodes,
        ..ModuleSchema::default()
    };
    let mut names: Vec<String> = instance.export_names();
    names.sort();
    let mut types = TypeSet::new();
    let mut add_types =
        |export: &str, defs: Vec<interstice_abi::TypeDef>| -> Result<(), LoadError> {
            for def in defs {
                types.insert(def).map_err(|c| LoadError::ConflictingType {
                    name: c.0,
                    export: export.to_string(),
                })?;
            }
            Ok(())
        };
    for export in &names {
        if export.starts_with(exports::DESCRIBE_TABLE) {
            let d: TableDescription =
                decode_description(export, &instance.describe(export, fuel)?)?;
            add_types(export, d.types)?;
            schema.tables.push(d.table);
        } else if export.starts_with(exports::DESCRIBE_REDUCER) {
            let d: ReducerDescription =
                decode_description(export, &instance.describe(export, fuel)?)?;
            add_types(export, d.types)?;
            schema.reducers.push(d.reducer);
        } else if export.starts_with(exports::DESCRIBE_QUERY) {
            let d: QueryDescription =
                decode_description(export, &instance.describe(export, fuel)?)?;
            add_types(export, d.types)?;
            schema.queries.push(d.query);
        }
    }
    schema.types = types;
    schema.tables.sort_by(|a, b| a.name.cmp(&b.name));
    schema.reducers.sort_by(|a, b| a.name.cmp(&b.name));
    schema.queries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(schema)
}
