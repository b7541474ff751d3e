//! Table events: what a committed transaction changed, turned into invocations of the reducers
//! that subscribe to it (`#[reducer(on = "<module>.<table>.<insert|update|delete>")]`).
//!
//! Events describe the *net* change of each row over the transaction: a row inserted then
//! updated is one insert of its final value; a row inserted then deleted is nothing. Rows appear
//! in the order the transaction first touched them; for each event, subscribers run in
//! (module name, reducer name) order. Subscriber invocations are separate transactions that run
//! after the one that caused them, in the same frame, within the cascade budget.

use crate::db::changes::{NetChange, RowChangeKind};
use interstice_abi::{
    EventSpec, ModuleSchema, TableEvent, TypeKind, TypeSet, Value, ValueType, VariantFields,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A subscriber reducer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Subscriber {
    /// Its module.
    pub module: String,
    /// The reducer.
    pub reducer: String,
    /// Whether its arguments were found, when the subscription was made, to have exactly the
    /// shape of the table's rows — then events need no per-call argument check.
    pub args_match: bool,
}

/// A subscriber invocation produced by a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventInvocation {
    /// Who to call.
    pub subscriber: Subscriber,
    /// Encoded arguments: the row, or the old then the new row for updates.
    pub args: Vec<u8>,
}

/// Who subscribes to which table event, on this node.
#[derive(Debug, Clone, Default)]
pub struct Subscriptions {
    by_event: BTreeMap<(String, String, TableEventKey), Vec<Subscriber>>,
}

/// `TableEvent` as an ordered map key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TableEventKey {
    Insert,
    Update,
    Delete,
}

impl From<TableEvent> for TableEventKey {
    fn from(e: TableEvent) -> Self {
        match e {
            TableEvent::Insert => TableEventKey::Insert,
            TableEvent::Update => TableEventKey::Update,
            TableEvent::Delete => TableEventKey::Delete,
        }
    }
}

impl Subscriptions {
    /// The subscriptions of every loaded module. Remote subscriptions (`node.module.table.event`)
    /// are left to the network layer.
    pub fn build<'a>(schemas: impl Iterator<Item = &'a Arc<ModuleSchema>>) -> Subscriptions {
        let schemas: Vec<&Arc<ModuleSchema>> = schemas.collect();
        let mut by_event: BTreeMap<_, Vec<Subscriber>> = BTreeMap::new();
        for schema in &schemas {
            for reducer in &schema.reducers {
                if let Some(EventSpec::Table {
                    node: None,
                    module,
                    table,
                    event,
                }) = &reducer.on
                {
                    by_event
                        .entry((module.clone(), table.clone(), TableEventKey::from(*event)))
                        .or_default()
                        .push(Subscriber {
                            module: schema.name.clone(),
                            reducer: reducer.name.clone(),
                            args_match: schemas
                                .iter()
                                .find(|s| s.name == *module)
                                .and_then(|target| target.table(table).map(|t| (target, t)))
                                .is_some_and(|(target, t)| {
                                    let expected = match event {
                                        TableEvent::Update => 2,
                                        _ => 1,
                                    };
                                    reducer.args.len() == expected
                                        && reducer.args.iter().all(|a| {
                                            same_shape(
                                                &a.ty,
                                                &schema.types,
                                                &t.row_value_type(),
                                                &target.types,
                                                0,
                                            )
                                        })
                                }),
                        });
                }
            }
        }
        for subscribers in by_event.values_mut() {
            subscribers.sort();
        }
        Subscriptions { by_event }
    }

    /// Whether anything subscribes to a table of `module`.
    pub fn watches_module(&self, module: &str) -> bool {
        self.by_event
            .range((module.to_string(), String::new(), TableEventKey::Insert)..)
            .next()
            .is_some_and(|((m, _, _), _)| m == module)
    }

    fn subscribers(&self, module: &str, table: &str, event: TableEventKey) -> &[Subscriber] {
        self.by_event
            .get(&(module.to_string(), table.to_string(), event))
            .map_or(&[], Vec::as_slice)
    }

    /// The subscriber invocations a committed transaction of `module` causes.
    pub fn events_of(&self, module: &str, change: &NetChange<'_>, out: &mut Vec<EventInvocation>) {
        let mut args = Vec::new();
        for row in change.rows() {
            let Some(table) = change.tables().get(row.table as usize) else {
                continue;
            };
            let name = &table.schema().name;
            let event = match row.kind {
                RowChangeKind::Insert => TableEventKey::Insert,
                RowChangeKind::Update => TableEventKey::Update,
                RowChangeKind::Delete => TableEventKey::Delete,
            };
            // An event carries the row (the old one for a delete), then the new one for an
            // update.
            let rows: [Option<&[Value]>; 2] = match row.kind {
                RowChangeKind::Insert => [row.after, None],
                RowChangeKind::Delete => [row.before, None],
                RowChangeKind::Update => [row.before, row.after],
            };
            let subscribers = self.subscribers(module, name, event);
            if subscribers.is_empty() {
                continue;
            }
            args.clear();
            for row in rows.into_iter().flatten() {
                table.encode_row(row, &mut args);
            }
            if let Some((last, rest)) = subscribers.split_last() {
                for subscriber in rest {
                    out.push(EventInvocation {
                        subscriber: subscriber.clone(),
                        args: args.clone(),
                    });
                }
                out.push(EventInvocation {
                    subscriber: last.clone(),
                    args: std::mem::take(&mut args),
                });
            }
        }
    }
}

/// Types one [`same_shape`] comparison may visit before it says no: a type set whose structs
/// fan out (1,024 fields of a type of 1,024 fields of ...) would otherwise make it walk an
/// exponential tree (a hostile upgrade or subscription could hang the frame).
const SAME_SHAPE_STEPS: u32 = 100_000;

/// Whether values of `a` (described by `at`) and `b` (by `bt`) have the same encoding. Names of
/// types and fields do not matter; only what is on the wire. Too deep or too large a comparison
/// says no.
pub(crate) fn same_shape(
    a: &ValueType,
    at: &TypeSet,
    b: &ValueType,
    bt: &TypeSet,
    depth: u32,
) -> bool {
    let mut steps = SAME_SHAPE_STEPS;
    shape_matches(a, at, b, bt, depth, &mut steps)
}

fn shape_matches(
    a: &ValueType,
    at: &TypeSet,
    b: &ValueType,
    bt: &TypeSet,
    depth: u32,
    steps: &mut u32,
) -> bool {
    if depth > 32 || *steps == 0 {
        return false;
    }
    *steps -= 1;
    let d = depth + 1;
    match (a, b) {
        (ValueType::Vec(x), ValueType::Vec(y)) | (ValueType::Option(x), ValueType::Option(y)) => {
            shape_matches(x, at, y, bt, d, steps)
        }
        (ValueType::Tuple(xs), ValueType::Tuple(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .zip(ys)
                    .all(|(x, y)| shape_matches(x, at, y, bt, d, steps))
        }
        (ValueType::Named(x), ValueType::Named(y)) => match (at.get(x), bt.get(y)) {
            (Some(x), Some(y)) => match (&x.kind, &y.kind) {
                (TypeKind::Struct(xf), TypeKind::Struct(yf)) => {
                    xf.len() == yf.len()
                        && xf
                            .iter()
                            .zip(yf)
                            .all(|(x, y)| shape_matches(&x.ty, at, &y.ty, bt, d, steps))
                }
                (TypeKind::Enum(xv), TypeKind::Enum(yv)) => {
                    xv.len() == yv.len()
                        && xv
                            .iter()
                            .zip(yv)
                            .all(|(x, y)| match (&x.fields, &y.fields) {
                                (VariantFields::Unit, VariantFields::Unit) => true,
                                (VariantFields::Tuple(xs), VariantFields::Tuple(ys)) => {
                                    xs.len() == ys.len()
                                        && xs
                                            .iter()
                                            .zip(ys)
                                            .all(|(x, y)| shape_matches(x, at, y, bt, d, steps))
                                }
                                (VariantFields::Named(xs), VariantFields::Named(ys)) => {
                                    xs.len() == ys.len()
                                        && xs.iter().zip(ys).all(|(x, y)| {
                                            shape_matches(&x.ty, at, &y.ty, bt, d, steps)
                                        })
                                }
                                _ => false,
                            })
                }
                _ => false,
            },
            _ => false,
        },
        (ValueType::Named(_), _) | (_, ValueType::Named(_)) => false,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use interstice_abi::{FieldDef, TypeDef};

    fn set(name: &str, fields: Vec<ValueType>) -> TypeSet {
        let mut types = TypeSet::new();
        let _ = types.insert(TypeDef {
            name: name.into(),
            kind: TypeKind::Struct(
                fields
                    .into_iter()
                    .enumerate()
                    .map(|(i, ty)| FieldDef {
                        name: format!("f{i}"),
                        ty,
                    })
                    .collect(),
            ),
        });
        types
    }

    #[test]
    fn shapes_compare_the_wire_not_the_names() {
        let a = set("Row", vec![ValueType::U64, ValueType::String]);
        let b = set("Other", vec![ValueType::U64, ValueType::String]);
        let c = set("Row", vec![ValueType::U64, ValueType::I64]);
        let row = ValueType::Named("Row".into());
        assert!(same_shape(
            &row,
            &a,
            &ValueType::Named("Other".into()),
            &b,
            0
        ));
        assert!(!same_shape(&row, &a, &row, &c, 0));
        assert!(!same_shape(&row, &a, &ValueType::U64, &a, 0));
    }
}

#[cfg(test)]
mod fan_out_tests {
    use super::same_shape;
    use interstice_abi::{FieldDef, TypeDef, TypeKind, TypeSet, ValueType};

    #[test]
    fn comparing_types_that_fan_out_stops_early() {
        let mut types = TypeSet::new();
        let names = ["A", "B", "C", "D", "E", "F", "G", "H"];
        for (i, name) in names.iter().enumerate() {
            let inner = names
                .get(i + 1)
                .map_or(ValueType::U8, |n| ValueType::Named((*n).into()));
            types
                .insert(TypeDef {
                    name: (*name).into(),
                    kind: TypeKind::Struct(
                        (0..1024)
                            .map(|f| FieldDef {
                                name: format!("f{f}"),
                                ty: inner.clone(),
                            })
                            .collect(),
                    ),
                })
                .unwrap();
        }
        let a = ValueType::Named("A".into());
        let started = std::time::Instant::now();
        // Equal, but too large to prove so: no.
        assert!(!same_shape(&a, &types, &a, &types, 0));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
