//! Time travel for queries: a module's logged tables as they were after a past transaction,
//! read from the node's history ([`QueryContext::as_of`]).
//!
//! ```ignore
//! #[query]
//! fn title_then(ctx: QueryContext, tx: u64, id: u64) -> Result<Option<String>, HostError> {
//!     Ok(ctx.as_of(tx).table::<Note>().get(&id)?.map(|note| note.title))
//! }
//! ```
//!
//! What a past read returns are copies: there is nothing to write to. Only queries have it,
//! and only when called from outside a transaction (a game, a tool, a peer): a reducer's
//! outcome must depend on recorded state alone, so a replay of it makes the same changes, and
//! what history a node keeps is its owner's choice (retention). A read is refused with
//! [`HostError::NotPermitted`] saying why: the table is not logged (stateful and ephemeral
//! tables keep no history), the node keeps no data directory, retention removed history
//! before the point, or the query runs inside a transaction. It costs fuel for each version
//! of the table's history it reads up to the point (a row's read: that row's versions only).

use crate::context::QueryContext;
use crate::table::TableRow;
use interstice_abi::protocol::{SCAN_PAGE_ROWS, TableOp};
use interstice_abi::{HostError, IntersticeType};
use std::marker::PhantomData;

/// A past transaction, to read tables as they were right after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Past {
    tx: u64,
}

impl Past {
    /// The transaction (its log position, as `interstice history` shows it).
    pub fn tx(&self) -> u64 {
        self.tx
    }

    /// The table of `T` as it was then.
    pub fn table<T: TableRow>(&self) -> PastTable<T> {
        PastTable {
            tx: self.tx,
            _row: PhantomData,
        }
    }
}

/// One logged table as it was after a past transaction: read-only.
pub struct PastTable<T> {
    tx: u64,
    _row: PhantomData<fn() -> T>,
}

impl<T: TableRow> PastTable<T> {
    /// The row with this primary key then (`None`: there was none).
    ///
    /// # Errors
    ///
    /// [`HostError::NotPermitted`] when the past cannot be read (see the [module docs](self)).
    pub fn get(&self, key: &T::PrimaryKey) -> Result<Option<T>, HostError> {
        let bytes = past_call(self.tx, TableOp::Get, T::table_id(), &key.to_bytes())?;
        decode(&bytes)
    }

    /// Every row then, in primary-key order.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn scan(&self) -> Result<Vec<T>, HostError> {
        let mut rows: Vec<T> = Vec::new();
        let mut cursor: Option<Vec<u8>> = None;
        loop {
            let mut payload = Vec::new();
            match &cursor {
                None => payload.push(0),
                Some(key) => {
                    payload.push(1);
                    payload.extend_from_slice(key);
                }
            }
            let bytes = past_call(self.tx, TableOp::Scan, T::table_id(), &payload)?;
            let page: Vec<T> = decode(&bytes)?;
            let full = page.len() as u32 >= SCAN_PAGE_ROWS;
            cursor = page.last().map(|row| {
                let mut key = Vec::new();
                row.encode_primary_key(&mut key);
                key
            });
            rows.extend(page);
            if !full {
                return Ok(rows);
            }
        }
    }
}

impl QueryContext {
    /// The module's logged tables as they were right after transaction `tx` (see
    /// [`past`](crate::past)): `ctx.as_of(tx).table::<Note>().get(&id)`.
    pub fn as_of(&self, tx: u64) -> Past {
        Past { tx }
    }
}

fn decode<R: IntersticeType>(bytes: &[u8]) -> Result<R, HostError> {
    R::from_bytes(bytes).map_err(|e| HostError::InvalidPayload(format!("{e}")))
}

/// The `table_as_of` import, answered like `table_op`.
fn past_call(tx: u64, op: TableOp, table: u32, payload: &[u8]) -> Result<Vec<u8>, HostError> {
    // SAFETY: pointer and length of a live slice.
    let outcome = unsafe {
        crate::ffi::table_as_of(tx as i64, op as u32, table, payload.as_ptr(), payload.len())
    };
    crate::__private::outcome(outcome)
}
