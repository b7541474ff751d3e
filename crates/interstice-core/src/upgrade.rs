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
