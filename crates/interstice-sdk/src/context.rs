//! What reducers and queries receive as their first argument.

/// The tables of the current module. `#[table]` adds one accessor per table, named after the
/// table: `ctx.current.tables.greetings()`.
#[derive(Debug, Clone, Copy)]
pub struct Tables {
    _private: (),
}

/// The current module.
#[derive(Debug, Clone, Copy)]
pub struct Current {
    /// Its tables.
    pub tables: Tables,
}

impl Current {
    const NEW: Current = Current {
        tables: Tables { _private: () },
    };
}

/// The context of a reducer: one transaction that may change the module's tables.
///
/// Everything a reducer writes is committed atomically when it returns normally and rolled back
/// when it returns an error, panics, runs out of fuel or exceeds its memory cap.
#[derive(Debug)]
pub struct ReducerContext {
    /// The current module.
    pub current: Current,
}

impl ReducerContext {
    #[doc(hidden)]
    pub fn __new() -> Self {
        ReducerContext {
            current: Current::NEW,
        }
    }
}

/// The context of a query: read-only access to the module's tables. Writes are refused by the
/// node with [`HostError::ReadOnly`](crate::HostError::ReadOnly).
#[derive(Debug)]
pub struct QueryContext {
    /// The current module.
    pub current: Current,
}

impl QueryContext {
    #[doc(hidden)]
    pub fn __new() -> Self {
        QueryContext {
            current: Current::NEW,
        }
    }
}
