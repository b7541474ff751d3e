//! The table store: every module's tables, as one ECS resource.

pub mod changes;
mod chunked;
mod incremental;
mod index;
pub mod journal;
mod pages;
mod rows;
pub mod table;
pub mod tx;

use bevy_ecs::resource::Resource;
use interstice_abi::{ModuleSchema, TypeSet};
pub use journal::Journal;
use std::collections::BTreeMap;
use std::sync::Arc;
pub use table::{Row, Table};

/// A host-managed table (`__schedule`, `__answered`, `__cursors`): logged, guests cannot reach
/// it, its rows are a struct `row_type` of `fields`.
/// Bytes as host tables store them (`Vec<u8>`, one value per byte).
pub(crate) fn bytes_value(bytes: &[u8]) -> interstice_abi::Value {
    interstice_abi::Value::Vec(
        bytes
            .iter()
            .map(|b| interstice_abi::Value::U8(*b))
            .collect(),
    )
}

/// The bytes a host table stored with [`bytes_value`] (empty for anything else).
pub(crate) fn value_bytes(value: &interstice_abi::Value) -> Vec<u8> {
    match value {
        interstice_abi::Value::Vec(bytes) => bytes
            .iter()
            .map(|b| match b {
                interstice_abi::Value::U8(b) => *b,
                _ => 0,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A table the host keeps for itself (see `host_tables`): one struct row type named
/// `row_type` with these fields, the primary key at `primary_key`.
pub fn host_table(
    name: &str,
    row_type: &str,
    fields: &[(&str, interstice_abi::ValueType)],
    primary_key: u16,
    primary_key_auto_inc: bool,
    indexes: Vec<interstice_abi::IndexSchema>,
) -> Table {
    let fields: Vec<interstice_abi::FieldDef> = fields
        .iter()
        .map(|(name, ty)| interstice_abi::FieldDef {
            name: (*name).into(),
            ty: ty.clone(),
        })
        .collect();
    let mut types = TypeSet::new();
    let _ = types.insert(interstice_abi::TypeDef {
        name: row_type.into(),
        kind: interstice_abi::TypeKind::Struct(fields.clone()),
    });
    let schema = interstice_abi::TableSchema {
        name: name.into(),
        row_type: row_type.into(),
        fields,
        primary_key,
        primary_key_auto_inc,
        indexes,
        persistence: interstice_abi::Persistence::Logged,
    };
    Table::new(Arc::new(schema), Arc::new(types))
}

/// The tables of one module, indexed by the table ids the module sees (its schema's order).
#[derive(Default)]
pub struct ModuleTables {
    /// The tables: the module's own, then the host-managed ones.
    pub tables: Vec<Table>,
    /// How many of `tables` are the module's own. Ids at or past it are host-managed and are
    /// never handed to a guest: [`GuestTableId`] can only name one below it.
    guest: usize,
}

/// The id of one of a module's own tables, checked: the only way a host function reaches a
/// table on a guest's behalf. Host-managed tables (`__schedule`, `__answered`, `__cursors`)
/// sit past the module's own, so no id a guest passes can name them (a raw `table_op` on ids
/// 1–3 of a one-table module used to count and clear them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestTableId(u32);

impl GuestTableId {
    /// The id as the guest and the undo log know it.
    pub fn raw(self) -> u32 {
        self.0
    }
}

impl ModuleTables {
    /// Empty tables for a validated schema, followed by `host`: tables the engine keeps for
    /// the module, which guests cannot name (see `host_tables::module_tables`).
    pub fn new(schema: &ModuleSchema, host: Vec<Table>) -> ModuleTables {
        let types = Arc::new(schema.types.clone());
        let mut tables: Vec<Table> = schema
            .tables
            .iter()
            .map(|t| Table::new(Arc::new(t.clone()), Arc::clone(&types)))
            .collect();
        let guest = tables.len();
        // Host-managed, after the module's own tables so their ids are unchanged.
        tables.extend(host);
        ModuleTables { tables, guest }
    }

    /// `raw` as one of the module's own tables, or `None` (a host-managed or missing table).
    #[inline]
    pub fn guest_table(&self, raw: u32) -> Option<GuestTableId> {
        ((raw as usize) < self.guest).then_some(GuestTableId(raw))
    }

    /// The module's own table called `name` (host-managed tables are not found).
    pub fn guest_table_named(&self, name: &[u8]) -> Option<GuestTableId> {
        self.tables[..self.guest]
            .iter()
            .position(|t| t.schema().name.as_bytes() == name)
            .map(|i| GuestTableId(i as u32))
    }

    /// Rows in the module's own tables (what [`Quotas::rows`] bounds).
    ///
    /// [`Quotas::rows`]: crate::config::Quotas::rows
    #[inline]
    pub fn guest_rows(&self) -> u64 {
        self.tables[..self.guest]
            .iter()
            .map(|t| t.len() as u64)
            .sum()
    }

    /// One of the module's own tables.
    #[inline]
    pub fn guest_mut(&mut self, id: GuestTableId) -> &mut Table {
        &mut self.tables[id.0 as usize]
    }

    /// The module's own tables (the host-managed ones follow them).
    pub fn guest_tables(&self) -> &[Table] {
        &self.tables[..self.guest]
    }

    /// The table of that name.
    pub fn by_name(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.schema().name == name)
    }
}

/// Every module's tables, by module name.
#[derive(Resource, Default)]
pub struct Database {
    modules: BTreeMap<String, ModuleTables>,
    journal: Option<Journal>,
    /// The event streams of public modules' tables (what peers subscribe to).
    pub publications: crate::publish::PublicationLog,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for (module, tables) in &self.modules {
            for t in &tables.tables {
                map.entry(&format_args!("{module}.{}", t.schema().name), &t.len());
            }
        }
        map.finish()
    }
}

impl Database {
    /// The tables of a module.
    pub fn module(&self, module: &str) -> Option<&ModuleTables> {
        self.modules.get(module)
    }

    /// The tables of a module, mutably.
    pub fn module_mut(&mut self, module: &str) -> Option<&mut ModuleTables> {
        self.modules.get_mut(module)
    }

    /// A table by module and table name.
    pub fn table(&self, module: &str, table: &str) -> Option<&Table> {
        self.modules.get(module)?.by_name(table)
    }

    /// Names of the modules that have tables here.
    pub fn module_names(&self) -> impl Iterator<Item = &str> {
        self.modules.keys().map(String::as_str)
    }

    /// Starts journaling committed changes (storage does this when the node persists).
    pub fn enable_journal(&mut self, next_seq: u64) {
        self.journal = Some(Journal::starting_at(next_seq));
    }

    /// The journal, when changes are being journaled (its
    /// [`next_seq`](Journal::next_seq) is the next transaction's log position).
    pub fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
    }

    /// The journal, when changes are being journaled.
    pub fn journal_mut(&mut self) -> Option<&mut Journal> {
        self.journal.as_mut()
    }

    /// Journals one committed transaction of `module`, with what the modules it called
    /// changed inside it. `own` is the module's tables when the caller holds them (a call in
    /// progress); otherwise they are looked up here.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record_commit(
        &mut self,
        cause: &journal::Cause<'_>,
        own: Option<&[Table]>,
        undo: &[tx::Undo],
        nested: &[tx::NestedCommit],
    ) -> Result<(), journal::RecordTooLarge> {
        let Some(journal) = self.journal.as_mut() else {
            return Ok(());
        };
        let mut groups = Vec::with_capacity(1 + nested.len());
        let module = cause.module;
        if let Some(tables) = own.or_else(|| self.modules.get(module).map(|m| &m.tables[..])) {
            groups.push(journal::Group {
                module,
                tables,
                undo,
            });
        }
        for n in nested {
            if let Some(tables) = self.modules.get(&n.module) {
                groups.push(journal::Group {
                    module: &n.module,
                    tables: &tables.tables,
                    undo: &n.undo,
                });
            }
        }
        journal.record(cause, &groups)
    }

    /// Journals a host bookkeeping change of `module` (a schedule entry retired, an answered
    /// call forgotten). Its size is bounded by quotas, not by the record limit guests get.
    pub(crate) fn record_bookkeeping(
        &mut self,
        time: u64,
        module: &str,
        what: &str,
        undo: &[tx::Undo],
    ) -> Result<(), journal::RecordTooLarge> {
        let Some(journal) = self.journal.as_mut() else {
            return Ok(());
        };
        let limit = journal.limit();
        journal.set_limit(journal::MAX_RECORD_LEN);
        let cause = journal::Cause {
            time,
            module,
            reducer: what,
            args: &[],
            caller: None,
            invocation: None,
        };
        let recorded = self.record_commit(&cause, None, undo, &[]);
        if let Some(journal) = self.journal.as_mut() {
            journal.set_limit(limit);
        }
        recorded
    }

    pub(crate) fn insert_module(&mut self, schema: &ModuleSchema, tables: ModuleTables) {
        if schema.visibility == interstice_abi::Visibility::Public {
            for table in &schema.tables {
                self.publications.open_stream(&schema.name, &table.name);
            }
        }
        self.modules.insert(schema.name.clone(), tables);
    }

    pub(crate) fn remove_module(&mut self, module: &str) -> Option<ModuleTables> {
        self.publications.close_module(module);
        self.modules.remove(module)
    }

    /// A hash of every row of every table (ephemeral ones included), in module, table and
    /// primary-key order: equal states give equal hashes on any machine. FNV-1a, 64 bits.
    pub fn state_hash(&self) -> u64 {
        self.hash_tables(|_| true)
    }

    /// [`state_hash`](Database::state_hash) over logged and stateful tables only: what a
    /// restart must reproduce.
    pub fn durable_state_hash(&self) -> u64 {
        self.hash_tables(|t| t.schema().persistence != interstice_abi::Persistence::Ephemeral)
    }

    fn hash_tables(&self, include: impl Fn(&Table) -> bool) -> u64 {
        use std::hash::Hasher;
        let mut hash = interstice_abi::mix::Fnv1a::default();
        let mut feed = |bytes: &[u8]| hash.write(bytes);
        let mut buffer = Vec::new();
        for (module, tables) in &self.modules {
            feed(module.as_bytes());
            let state = |t: &&Table| include(t) && t.in_state_hash();
            for table in tables.tables.iter().filter(state) {
                feed(table.schema().name.as_bytes());
                feed(&(table.len() as u64).to_le_bytes());
                for row in table.rows() {
                    buffer.clear();
                    table.encode_row(row, &mut buffer);
                    feed(&(buffer.len() as u64).to_le_bytes());
                    feed(&buffer);
                }
            }
        }
        hash.finish()
    }

    /// The types a module's tables use.
    pub fn types(&self, module: &str) -> Option<&Arc<TypeSet>> {
        self.modules.get(module)?.tables.first().map(|t| t.types())
    }
}
