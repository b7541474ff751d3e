//! Module schemas: what a module declares about itself.
//!
//! A guest describes each table, reducer and query through its own export (see
//! [`protocol`](crate::protocol)); the host assembles them into a [`ModuleSchema`] and calls
//! [`ModuleSchema::validate`] before anything is installed, because a schema is guest data.

use crate::types::{FieldDef, TypeDef, TypeSet, ValueType};
use alloc::{collections::BTreeSet, format, string::String, vec::Vec};
use core::fmt;
use serde::{Deserialize, Serialize};

pub use crate::limits::{MAX_ADDRESS_LEN, MAX_ITEMS, MAX_NAME_LEN};

/// Whether other nodes may reach a module.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Visibility {
    /// Reachable only by modules on the same node (the default).
    #[default]
    Private,
    /// Reachable from other nodes.
    Public,
}

/// A privileged host capability, held by at most one module per node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Authority {
    /// The render loop and draw calls.
    Gpu,
    /// Keyboard, mouse and gamepad events.
    Input,
    /// Audio output and capture.
    Audio,
    /// Files inside the node's data directory.
    File,
    /// Decides publish/remove requests.
    Module,
}

impl Authority {
    /// Every authority.
    pub const ALL: [Authority; 5] = [
        Authority::Gpu,
        Authority::Input,
        Authority::Audio,
        Authority::File,
        Authority::Module,
    ];

    /// Parses the name used in `interstice_module!(authorities: [...])`.
    pub fn from_name(name: &str) -> Option<Authority> {
        Authority::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The authority's name.
    pub fn name(self) -> &'static str {
        match self {
            Authority::Gpu => "Gpu",
            Authority::Input => "Input",
            Authority::Audio => "Audio",
            Authority::File => "File",
            Authority::Module => "Module",
        }
    }
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a table is kept across restarts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Persistence {
    /// Every committed change is appended to the log (the default).
    #[default]
    Logged,
    /// Only the latest state is kept, in snapshots.
    Stateful,
    /// Never written to disk.
    Ephemeral,
}

/// Kind of a secondary index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IndexKind {
    /// Equality lookups.
    Hash,
    /// Equality lookups and ordered range scans.
    BTree,
}

/// A secondary index over one column.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IndexSchema {
    /// Position of the indexed field in the row.
    pub field: u16,
    /// Hash or btree.
    pub kind: IndexKind,
    /// Whether two rows may share a key.
    pub unique: bool,
    /// Whether the host generates the value on insert (integers only).
    pub auto_inc: bool,
}

/// A table: its row layout, keys and persistence.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TableSchema {
    /// The table's name (snake case of the row type).
    pub name: String,
    /// The Rust name of the row type.
    pub row_type: String,
    /// Row fields, in order.
    pub fields: Vec<FieldDef>,
    /// Position of the primary key field.
    pub primary_key: u16,
    /// Whether the host generates primary keys on insert.
    pub primary_key_auto_inc: bool,
    /// Secondary indexes.
    pub indexes: Vec<IndexSchema>,
    /// How the table is persisted.
    pub persistence: Persistence,
}

impl TableSchema {
    /// The type of a row.
    pub fn row_value_type(&self) -> ValueType {
        ValueType::Named(self.row_type.clone())
    }

    /// The type of the primary key.
    pub fn primary_key_type(&self) -> &ValueType {
        &self.fields[usize::from(self.primary_key)].ty
    }

    /// The index over `field`, if any.
    pub fn index_on(&self, field: u16) -> Option<&IndexSchema> {
        self.indexes.iter().find(|i| i.field == field)
    }
}

/// Which change of a table an event subscribes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TableEvent {
    /// A row was inserted.
    Insert,
    /// A row was replaced.
    Update,
    /// A row was removed.
    Delete,
}

/// What a reducer subscribes to (`#[reducer(on = "...")]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventSpec {
    /// The module's first load.
    Init,
    /// Every load of the module.
    Load,
    /// A peer node connected.
    Connect,
    /// A peer node disconnected.
    Disconnect,
    /// A change to a table, on this node (`node: None`) or a peer.
    Table {
        /// The peer node, for remote subscriptions.
        node: Option<String>,
        /// The module owning the table.
        module: String,
        /// The table.
        table: String,
        /// Which change.
        event: TableEvent,
    },
    /// A host event delivered to an authority holder (`render`, `input`, `audio_output`, ...).
    Host(String),
}

/// Host events an authority holder may subscribe to.
pub const HOST_EVENTS: [&str; 5] = [
    "render",
    "input",
    "audio_output",
    "audio_input",
    "file_changed",
];

impl EventSpec {
    /// Parses the text of `on = "..."`.
    pub fn parse(text: &str) -> Result<EventSpec, String> {
        let valid = |s: &str| {
            !s.is_empty()
                && s.len() <= MAX_NAME_LEN
                && s.chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        };
        match text {
            "init" => return Ok(EventSpec::Init),
            "load" => return Ok(EventSpec::Load),
            "connect" => return Ok(EventSpec::Connect),
            "disconnect" => return Ok(EventSpec::Disconnect),
            t if HOST_EVENTS.contains(&t) => return Ok(EventSpec::Host(t.into())),
            _ => {}
        }
        let parts: Vec<&str> = text.split('.').collect();
        let (node, rest) = match parts.len() {
            3 => (None, &parts[..]),
            4 => (Some(parts[0]), &parts[1..]),
            _ => {
                return Err(format!(
                    "unknown event `{text}`: expected init, load, connect, disconnect, {}, \
                     <module>.<table>.<insert|update|delete> or \
                     <node>.<module>.<table>.<insert|update|delete>",
                    HOST_EVENTS.join(", ")
                ));
            }
        };
        if let Some(bad) = parts.iter().find(|p| !valid(p)) {
            return Err(format!("invalid name `{bad}` in event `{text}`"));
        }
        let event = match rest[2] {
            "insert" => TableEvent::Insert,
            "update" => TableEvent::Update,
            "delete" => TableEvent::Delete,
            other => {
                return Err(format!(
                    "unknown table event `{other}`: expected insert, update or delete"
                ));
            }
        };
        Ok(EventSpec::Table {
            node: node.map(String::from),
            module: rest[0].into(),
            table: rest[1].into(),
            event,
        })
    }
}

/// A reducer: a transaction that may change the module's tables.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReducerSchema {
    /// The reducer's name.
    pub name: String,
    /// Its arguments after the context.
    pub args: Vec<FieldDef>,
    /// The event it subscribes to; such reducers cannot be called directly.
    pub on: Option<EventSpec>,
}

/// A query: a read-only function returning a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QuerySchema {
    /// The query's name.
    pub name: String,
    /// Its arguments after the context.
    pub args: Vec<FieldDef>,
    /// What it returns.
    pub returns: ValueType,
}

/// Everything a module declares.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleSchema {
    /// The ABI version the module was built against.
    pub abi_version: u32,
    /// The module's name (its crate name).
    pub name: String,
    /// The module's version (its crate version).
    pub version: String,
    /// Who may reach it.
    pub visibility: Visibility,
    /// Authorities it claims.
    pub authorities: Vec<Authority>,
    /// Named types used by its tables, reducers and queries.
    pub types: TypeSet,
    /// Its tables, ordered by name.
    pub tables: Vec<TableSchema>,
    /// Its reducers, ordered by name.
    pub reducers: Vec<ReducerSchema>,
    /// Its queries, ordered by name.
    pub queries: Vec<QuerySchema>,
    /// The other nodes it depends on (from its `src/bindings/node_*.toml`): where its remote
    /// subscriptions and remote reducer calls go.
    #[serde(default)]
    pub nodes: Vec<NodeDependency>,
}

/// Another node a module reaches, by the name its bindings and event strings use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDependency {
    /// The name used in `#[reducer(on = "<name>.<module>.<table>.<event>")]` and in
    /// `bindings::<name>`.
    pub name: String,
    /// Its UDP address (`host:port`).
    pub address: String,
}

/// Why a schema was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaError {
    /// A name is empty, too long, or not an identifier.
    InvalidName(String),
    /// Two items of one kind share a name.
    Duplicate {
        /// "table", "reducer", ...
        kind: &'static str,
        /// The shared name.
        name: String,
    },
    /// Too many items of one kind.
    TooMany(&'static str),
    /// A type name is used but not defined.
    UnknownType {
        /// Where it is used.
        location: String,
        /// The missing type.
        name: String,
    },
    /// Two definitions of one type name.
    ConflictingType(String),
    /// A table's key or index declaration is wrong.
    InvalidTable {
        /// The table.
        table: String,
        /// What is wrong.
        reason: String,
    },
    /// An authority is claimed twice.
    DuplicateAuthority(Authority),
    /// A remote subscription or node dependency is wrong.
    InvalidNode {
        /// The node's name.
        node: String,
        /// What is wrong.
        reason: String,
    },
}

impl core::error::Error for SchemaError {}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaError::InvalidName(n) => write!(f, "invalid name `{n}`"),
            SchemaError::Duplicate { kind, name } => write!(f, "duplicate {kind} `{name}`"),
            SchemaError::TooMany(kind) => write!(f, "more than {MAX_ITEMS} {kind}"),
            SchemaError::UnknownType { location, name } => {
                write!(f, "{location} uses undefined type `{name}`")
            }
            SchemaError::ConflictingType(n) => {
                write!(f, "type `{n}` is defined twice, differently")
            }
            SchemaError::InvalidTable { table, reason } => write!(f, "table `{table}`: {reason}"),
            SchemaError::DuplicateAuthority(a) => write!(f, "authority {a} is claimed twice"),
            SchemaError::InvalidNode { node, reason } => write!(f, "node `{node}`: {reason}"),
        }
    }
}

fn check_name(name: &str) -> Result<(), SchemaError> {
    let mut chars = name.chars();
    let ok = name.len() <= MAX_NAME_LEN
        && chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(SchemaError::InvalidName(name.into()))
    }
}

fn check_unique<'a>(
    kind: &'static str,
    names: impl Iterator<Item = &'a str>,
) -> Result<(), SchemaError> {
    let mut seen = BTreeSet::new();
    for (i, name) in names.enumerate() {
        if i >= MAX_ITEMS {
            return Err(SchemaError::TooMany(kind));
        }
        check_name(name)?;
        if !seen.insert(name) {
            return Err(SchemaError::Duplicate {
                kind,
                name: name.into(),
            });
        }
    }
    Ok(())
}

impl ModuleSchema {
    /// Checks everything the host relies on: names, uniqueness, type references, keys and
    /// indexes. A module whose schema fails here is never installed.
    pub fn validate(&self) -> Result<(), SchemaError> {
        // Module names may contain '-' (crate names); everything else is an identifier.
        let module_ok = !self.name.is_empty()
            && self.name.len() <= MAX_NAME_LEN
            && self
                .name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
        if !module_ok {
            return Err(SchemaError::InvalidName(self.name.clone()));
        }
        let mut claimed = BTreeSet::new();
        for a in &self.authorities {
            if !claimed.insert(*a) {
                return Err(SchemaError::DuplicateAuthority(*a));
            }
        }
        check_unique("tables", self.tables.iter().map(|t| t.name.as_str()))?;
        check_unique("reducers", self.reducers.iter().map(|r| r.name.as_str()))?;
        check_unique("queries", self.queries.iter().map(|q| q.name.as_str()))?;
        check_unique("types", self.types.iter().map(|t| t.name.as_str()))?;
        check_unique("nodes", self.nodes.iter().map(|n| n.name.as_str()))?;
        for n in &self.nodes {
            if n.address.is_empty() || n.address.len() > MAX_ADDRESS_LEN {
                return Err(SchemaError::InvalidNode {
                    node: n.name.clone(),
                    reason: format!("address must be 1 to {MAX_ADDRESS_LEN} bytes"),
                });
            }
        }
        for r in &self.reducers {
            if let Some(EventSpec::Host(event)) = &r.on {
                let needed = match event.as_str() {
                    "render" => Authority::Gpu,
                    "input" => Authority::Input,
                    "file_changed" => Authority::File,
                    _ => Authority::Audio,
                };
                if !self.authorities.contains(&needed) {
                    return Err(SchemaError::InvalidNode {
                        node: "(this node)".into(),
                        reason: format!(
                            "reducer `{}` subscribes to `{event}`, which only the holder of the {needed} authority receives: claim it with interstice_module!(authorities: [{needed}])",
                            r.name
                        ),
                    });
                }
            }
            // Not a let chain: the SDK side builds on Rust 1.85.
            if let Some(EventSpec::Table {
                node: Some(node), ..
            }) = &r.on
            {
                if !self.nodes.iter().any(|n| n.name == *node) {
                    return Err(SchemaError::InvalidNode {
                        node: node.clone(),
                        reason: format!(
                            "reducer `{}` subscribes to it, but no `src/bindings/node_{node}.toml` declares it",
                            r.name
                        ),
                    });
                }
            }
        }

        for def in self.types.iter() {
            self.check_type_def(def)?;
        }
        for t in &self.tables {
            self.check_table(t)?;
        }
        for r in &self.reducers {
            check_unique("arguments", r.args.iter().map(|a| a.name.as_str()))?;
            for a in &r.args {
                self.resolved(|| format!("reducer `{}`", r.name), &a.ty)?;
            }
        }
        for q in &self.queries {
            check_unique("arguments", q.args.iter().map(|a| a.name.as_str()))?;
            for a in &q.args {
                self.resolved(|| format!("query `{}`", q.name), &a.ty)?;
            }
            self.resolved(|| format!("query `{}`", q.name), &q.returns)?;
        }
        Ok(())
    }

    /// Errors if `ty` names a type this schema does not define.
    fn resolved(
        &self,
        location: impl FnOnce() -> String,
        ty: &ValueType,
    ) -> Result<(), SchemaError> {
        match self.types.first_unresolved(ty) {
            Some(name) => Err(SchemaError::UnknownType {
                location: location(),
                name: name.into(),
            }),
            None => Ok(()),
        }
    }

    fn check_type_def(&self, def: &TypeDef) -> Result<(), SchemaError> {
        use crate::types::{TypeKind, VariantFields};
        let loc = || format!("type `{}`", def.name);
        match &def.kind {
            TypeKind::Struct(fields) => {
                check_unique("fields", fields.iter().map(|f| f.name.as_str()))?;
                for f in fields {
                    self.resolved(loc, &f.ty)?;
                }
            }
            TypeKind::Enum(variants) => {
                check_unique("variants", variants.iter().map(|v| v.name.as_str()))?;
                for v in variants {
                    match &v.fields {
                        VariantFields::Unit => {}
                        VariantFields::Tuple(ts) => {
                            for t in ts {
                                self.resolved(loc, t)?;
                            }
                        }
                        VariantFields::Named(fs) => {
                            for f in fs {
                                self.resolved(loc, &f.ty)?;
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn check_table(&self, t: &TableSchema) -> Result<(), SchemaError> {
        if t.name.starts_with("__") {
            return Err(SchemaError::InvalidTable {
                table: t.name.clone(),
                reason: "names starting with `__` are reserved for the host".into(),
            });
        }
        use crate::types::TypeKind;
        let bad = |reason: String| SchemaError::InvalidTable {
            table: t.name.clone(),
            reason,
        };
        check_unique("fields", t.fields.iter().map(|f| f.name.as_str()))?;
        for f in &t.fields {
            self.resolved(|| format!("table `{}`", t.name), &f.ty)?;
        }
        match self.types.get(&t.row_type).map(|d| &d.kind) {
            Some(TypeKind::Struct(fields)) if *fields == t.fields => {}
            _ => {
                return Err(bad(format!(
                    "row type `{}` is not a struct with the table's fields",
                    t.row_type
                )));
            }
        }
        let pk = t.fields.get(usize::from(t.primary_key)).ok_or_else(|| {
            bad(format!(
                "primary key field #{} does not exist",
                t.primary_key
            ))
        })?;
        if t.primary_key_auto_inc && !pk.ty.is_integer() {
            return Err(bad(format!(
                "auto_inc primary key `{}` must be an integer, not {}",
                pk.name, pk.ty
            )));
        }
        if t.indexes.len() > MAX_ITEMS {
            return Err(SchemaError::TooMany("indexes"));
        }
        let mut indexed = BTreeSet::new();
        for index in &t.indexes {
            let field = t
                .fields
                .get(usize::from(index.field))
                .ok_or_else(|| bad(format!("index on missing field #{}", index.field)))?;
            if index.field == t.primary_key {
                return Err(bad(format!(
                    "field `{}` is the primary key and cannot have a secondary index",
                    field.name
                )));
            }
            if !indexed.insert(index.field) {
                return Err(bad(format!("field `{}` has two indexes", field.name)));
            }
            if index.auto_inc && !field.ty.is_integer() {
                return Err(bad(format!(
                    "auto_inc index `{}` must be an integer, not {}",
                    field.name, field.ty
                )));
            }
        }
        Ok(())
    }

    /// The view other nodes may see: nothing of a private module, and no subscription-only
    /// reducers (they cannot be called from outside).
    pub fn to_public(&self) -> Option<ModuleSchema> {
        if self.visibility != Visibility::Public {
            return None;
        }
        let mut public = self.clone();
        public.reducers.retain(|r| r.on.is_none());
        Some(public)
    }

    /// The table of that name.
    pub fn table(&self, name: &str) -> Option<&TableSchema> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// The reducer of that name.
    pub fn reducer(&self, name: &str) -> Option<&ReducerSchema> {
        self.reducers.iter().find(|r| r.name == name)
    }

    /// The query of that name.
    pub fn query(&self, name: &str) -> Option<&QuerySchema> {
        self.queries.iter().find(|q| q.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse() {
        assert_eq!(EventSpec::parse("init"), Ok(EventSpec::Init));
        assert_eq!(
            EventSpec::parse("render"),
            Ok(EventSpec::Host("render".into()))
        );
        assert_eq!(
            EventSpec::parse("hello.greetings.insert"),
            Ok(EventSpec::Table {
                node: None,
                module: "hello".into(),
                table: "greetings".into(),
                event: TableEvent::Insert
            })
        );
        assert!(matches!(
            EventSpec::parse("n1.hello.greetings.delete"),
            Ok(EventSpec::Table {
                node: Some(_),
                event: TableEvent::Delete,
                ..
            })
        ));
        assert!(EventSpec::parse("hello.greetings.upsert").is_err());

        // Host events go to the holder of their authority only: claiming it is required.
        let mut schema = ModuleSchema {
            abi_version: 1,
            name: "m".into(),
            version: "0.1.0".into(),
            ..ModuleSchema::default()
        };
        schema.reducers.push(ReducerSchema {
            name: "on_input".into(),
            args: Vec::new(),
            on: Some(EventSpec::Host("input".into())),
        });
        assert!(
            schema
                .validate()
                .is_err_and(|e| alloc::format!("{e}").contains("Input authority"))
        );
        schema.authorities.push(Authority::Input);
        assert_eq!(schema.validate(), Ok(()));
        assert!(EventSpec::parse("bogus").is_err());
    }
}

/// What a `src/bindings/<module>.toml` file holds: the public schema of one module on the same
/// node that another module depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The module's public schema.
    pub module: ModuleSchema,
}

/// What a `src/bindings/node_<name>.toml` file holds: another node — its name and address —
/// and the public schemas of the modules on it that a module depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeBinding {
    /// The node.
    pub node: NodeDependency,
    /// Public schemas of its modules.
    #[serde(default)]
    pub modules: Vec<ModuleSchema>,
}
