//! Upgrading an installed module in place: which schema changes keep every row, and moving
//! the rows into the new tables.
//!
//! Compatible: adding tables, reducers, queries and indexes; removing reducers, queries and
//! indexes; adding fields at the end of a table's rows if they are `Option`s (they start as
//! `None`). Everything else that touches an existing table — removing it, changing, renaming or
//! reordering its fields, changing its primary key — would lose data and is reported.

use crate::db::{ModuleTables, Table};
use crate::events::same_shape;
use interstice_abi::{ModuleSchema, TableSchema, TypeSet, Value, ValueType};
use std::sync::Arc;

/// How one table's rows carry over.
fn table_change(
    old: &TableSchema,
    old_types: &TypeSet,
    new: &TableSchema,
    new_types: &TypeSet,
) -> Result<(), String> {
    let t = &old.name;
    if old.persistence != new.persistence {
        // A logged table's history would not match it: kept from when it was not logged, or
        // left behind by one that no longer is.
        return Err(format!(
            "table `{t}`: persistence changed from {:?} to {:?}",
            old.persistence, new.persistence
        ));
    }
    if new.fields.len() < old.fields.len() {
        return Err(format!(
            "table `{t}`: {} field(s) removed",
            old.fields.len() - new.fields.len()
        ));
    }
    for (i, (a, b)) in old.fields.iter().zip(&new.fields).enumerate() {
        if a.name != b.name {
            return Err(format!(
                "table `{t}`: field #{i} `{}` became `{}`",
                a.name, b.name
            ));
        }
        if !same_shape(&a.ty, old_types, &b.ty, new_types, 0) {
            return Err(format!(
                "table `{t}`: field `{}` changed type from {} to {}",
                a.name, a.ty, b.ty
            ));
        }
    }
    if old.primary_key != new.primary_key {
        return Err(format!("table `{t}`: the primary key changed"));
    }
    for added in &new.fields[old.fields.len()..] {
        if !matches!(added.ty, ValueType::Option(_)) {
            return Err(format!(
                "table `{t}`: new field `{}` is {}, not an Option (existing rows would have no value for it)",
                added.name, added.ty
            ));
        }
    }
    Ok(())
}

/// The tables of `old` whose rows `new` does not keep (removed, or changed so that they do
/// not carry over): an upgrade with `drop_data` starts them over.
pub fn started_over(old: &ModuleSchema, new: &ModuleSchema) -> Vec<String> {
    old.tables
        .iter()
        .filter(|table| {
            new.table(&table.name).is_none_or(|replacement| {
                table_change(table, &old.types, replacement, &new.types).is_err()
            })
        })
        .map(|table| table.name.clone())
        .collect()
}

/// Checks that `new` keeps every row of `old`; the differences otherwise.
pub fn plan(old: &ModuleSchema, new: &ModuleSchema) -> Result<(), Vec<String>> {
    let mut differences = Vec::new();
    for table in &old.tables {
        match new.table(&table.name) {
            None => differences.push(format!("table `{}` is removed", table.name)),
            Some(replacement) => {
                if let Err(e) = table_change(table, &old.types, replacement, &new.types) {
                    differences.push(e);
                }
            }
        }
    }
    if differences.is_empty() {
        Ok(())
    } else {
        Err(differences)
    }
}

/// Copies `row` (of a table laid out as `old`) into the layout of `new`: trailing added fields
/// are `None`.
pub fn migrate_row(mut row: Vec<Value>, new_fields: usize) -> Vec<Value> {
    while row.len() < new_fields {
        row.push(Value::Option(None));
    }
    row
}

/// The new module's tables, filled from the old ones: rows of compatible tables move over
/// (with their `auto_inc` counters), incompatible tables start empty, host-managed tables
/// (schedule, answered calls, subscriber positions) carry over as they are.
pub fn migrate(old: &ModuleTables, new: &ModuleSchema) -> Result<ModuleTables, String> {
    let mut tables = crate::host_tables::module_tables(new);
    let old_types = old.tables.first().map(|t| t.types().clone());
    for table in tables.tables.iter_mut() {
        let name = table.schema().name.clone();
        let Some(source) = old.by_name(&name) else {
            continue;
        };
        let host = name.starts_with("__");
        let fits = host
            || old_types.as_ref().is_some_and(|types| {
                table_change(
                    source.schema(),
                    types,
                    table.schema(),
                    &Arc::new(new.types.clone()),
                )
                .is_ok()
            });
        if !fits {
            continue;
        }
        let width = table.schema().fields.len();
        for row in source.rows() {
            table
                .put_recovered(migrate_row(row.clone(), width))
                .map_err(|e| format!("table `{name}`: a row does not fit the new table: {e}"))?;
        }
        let (next_pk, counters) = source.counters();
        table.restore_counters(next_pk, &counters);
    }
    Ok(tables)
}

/// Recovery: moves rows read with an older layout of `table` (`old`, `old_types`) into it.
pub fn restore_rows<'a>(
    table: &mut Table,
    old: &TableSchema,
    old_types: &TypeSet,
    rows: impl IntoIterator<Item = &'a [u8]>,
) -> Result<(), String> {
    table_change(old, old_types, table.schema(), table.types())?;
    let reader = Table::new(Arc::new(old.clone()), Arc::new(old_types.clone()));
    let width = table.schema().fields.len();
    for bytes in rows {
        let row = reader.decode_row(bytes).map_err(|e| e.to_string())?;
        table
            .put_recovered(migrate_row(row, width))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use interstice_abi::{FieldDef, Persistence};

    fn table(name: &str, persistence: Persistence, fields: &[(&str, ValueType)]) -> TableSchema {
        TableSchema {
            name: name.into(),
            row_type: name.into(),
            fields: fields
                .iter()
                .map(|(n, ty)| FieldDef {
                    name: (*n).into(),
                    ty: ty.clone(),
                })
                .collect(),
            primary_key: 0,
            primary_key_auto_inc: false,
            indexes: Vec::new(),
            persistence,
        }
    }

    #[test]
    fn a_table_whose_persistence_or_rows_change_is_started_over() {
        let id = ("id", ValueType::U64);
        let types = TypeSet::default();
        let logged = table("note", Persistence::Logged, std::slice::from_ref(&id));
        let stateful = table("note", Persistence::Stateful, std::slice::from_ref(&id));
        let wider = table(
            "note",
            Persistence::Logged,
            &[
                id.clone(),
                ("tag", ValueType::Option(Box::new(ValueType::String))),
            ],
        );
        let retyped = table("note", Persistence::Logged, &[("id", ValueType::String)]);
        assert!(table_change(&logged, &types, &wider, &types).is_ok());
        let changed = table_change(&logged, &types, &stateful, &types).unwrap_err();
        assert!(changed.contains("persistence changed"), "{changed}");
        assert!(table_change(&logged, &types, &retyped, &types).is_err());

        let module = |tables: Vec<TableSchema>| ModuleSchema {
            name: "m".into(),
            tables,
            ..ModuleSchema::default()
        };
        let old = module(vec![
            logged.clone(),
            table("gone", Persistence::Logged, &[id]),
        ]);
        assert_eq!(
            started_over(&old, &module(vec![wider])),
            ["gone"],
            "removed; the widened table carries over"
        );
        assert_eq!(
            started_over(&old, &module(vec![stateful])),
            ["note", "gone"]
        );
    }
}
