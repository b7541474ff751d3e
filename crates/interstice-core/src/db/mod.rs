//! The table store: every module's tables, as one ECS resource.

pub mod table;
pub mod tx;

use bevy_ecs::resource::Resource;
use interstice_abi::{ModuleSchema, TypeSet};
use std::collections::BTreeMap;
use std::sync::Arc;
pub use table::{Row, Table};

/// The tables of one module, indexed by the table ids the module sees (its schema's order).
#[derive(Default)]
pub struct ModuleTables {
    /// The tables.
    pub tables: Vec<Table>,
}

impl ModuleTables {
    /// Empty tables for a validated schema.
    pub fn for_schema(schema: &ModuleSchema) -> ModuleTables {
        let types = Arc::new(schema.types.clone());
        ModuleTables {
            tables: schema
                .tables
                .iter()
                .map(|t| Table::new(Arc::new(t.clone()), Arc::clone(&types)))
                .collect(),
        }
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

    pub(crate) fn insert_module(&mut self, module: &str, tables: ModuleTables) {
        self.modules.insert(module.to_string(), tables);
    }

    pub(crate) fn remove_module(&mut self, module: &str) -> Option<ModuleTables> {
        self.modules.remove(module)
    }

    /// The types a module's tables use.
    pub fn types(&self, module: &str) -> Option<&Arc<TypeSet>> {
        self.modules.get(module)?.tables.first().map(|t| t.types())
    }
}
