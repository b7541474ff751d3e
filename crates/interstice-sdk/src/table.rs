//! Table handles: the typed face of the `table_op` host call.

use crate::__private::{table_call, table_call_unit};
use interstice_abi::protocol::{SCAN_PAGE_ROWS, TableDescription, TableOp};
use interstice_abi::{HostError, IntersticeType};
use std::cell::RefCell;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};

/// A row type declared with `#[table]`.
pub trait TableRow: IntersticeType {
    /// The table's name.
    const TABLE_NAME: &'static str;
    /// The primary key's type.
    type PrimaryKey: IntersticeType;
    /// The node's id for this table (resolved once, then cached).
    fn table_id() -> u32;
    /// Appends the encoding of this row's primary key.
    fn encode_primary_key(&self, out: &mut Vec<u8>);
    /// The table's schema.
    fn describe() -> TableDescription;
}

fn expect_read<T>(result: Result<T, HostError>, what: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{what} failed: {e}"),
    }
}

fn decode_response<R: IntersticeType>(bytes: &[u8]) -> Result<R, HostError> {
    R::from_bytes(bytes).map_err(|e| HostError::InvalidPayload(format!("{e}")))
}

/// The rows of one table.
pub struct TableHandle<T> {
    _row: PhantomData<fn() -> T>,
}

impl<T> Clone for TableHandle<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for TableHandle<T> {}

impl<T: TableRow> Default for TableHandle<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: TableRow> TableHandle<T> {
    /// A handle to `T`'s table.
    pub const fn new() -> Self {
        TableHandle { _row: PhantomData }
    }

    fn call<R: IntersticeType>(op: TableOp, field: u16, payload: &[u8]) -> Result<R, HostError> {
        let bytes = table_call(op, T::table_id(), field, payload)?;
        decode_response(&bytes)
    }

    /// Inserts a row and returns it as stored, with `auto_inc` columns generated (a zero in an
    /// `auto_inc` column asks for a generated value). Fails on a duplicate primary key or
    /// unique index key.
    pub fn insert(&self, row: T) -> Result<T, HostError> {
        with_encoded(&row, |bytes| Self::call(TableOp::Insert, 0, bytes))
    }

    /// The row with this primary key.
    pub fn get(&self, key: &T::PrimaryKey) -> Option<T> {
        expect_read(
            with_encoded(key, |bytes| Self::call(TableOp::Get, 0, bytes)),
            "get",
        )
    }

    /// Replaces the row that has the same primary key. Fails if there is none, or on a unique
    /// index conflict.
    pub fn update(&self, row: T) -> Result<T, HostError> {
        // An update generates nothing, so the stored row is `row`: no need to decode it back.
        with_encoded(&row, |bytes| {
            table_call_unit(TableOp::Replace, T::table_id(), 0, bytes)
        })?;
        Ok(row)
    }

    /// Removes the row with this primary key; `Ok(false)` if there was none.
    pub fn delete(&self, key: &T::PrimaryKey) -> Result<bool, HostError> {
        with_encoded(key, |bytes| Self::call(TableOp::Delete, 0, bytes))
    }

    /// Number of rows.
    pub fn count(&self) -> u64 {
        expect_read(Self::call(TableOp::Count, 0, &[]), "count")
    }

    /// Removes every row and returns how many there were.
    pub fn clear(&self) -> Result<u64, HostError> {
        Self::call(TableOp::Clear, 0, &[])
    }

    /// Every row, in primary-key order, fetched page by page.
    pub fn scan(&self) -> ScanIter<T> {
        ScanIter {
            page: Vec::new().into_iter(),
            cursor: None,
            done: false,
        }
    }

    /// The index over field number `field` (used by generated accessors).
    #[doc(hidden)]
    pub const fn __index<K, Kind>(&self, field: u16) -> IndexHandle<T, K, Kind> {
        IndexHandle {
            field,
            _p: PhantomData,
        }
    }
}

/// Iterator over a table's rows in primary-key order. Each page is read inside the current
/// transaction, so it sees the transaction's own writes.
pub struct ScanIter<T: TableRow> {
    page: std::vec::IntoIter<T>,
    cursor: Option<Vec<u8>>,
    done: bool,
}

impl<T: TableRow> Iterator for ScanIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if let Some(row) = self.page.next() {
            return Some(row);
        }
        if self.done {
            return None;
        }
        let mut payload = Vec::new();
        match &self.cursor {
            None => payload.push(0),
            Some(key) => {
                payload.push(1);
                payload.extend_from_slice(key);
            }
        }
        let bytes = expect_read(
            table_call(TableOp::Scan, T::table_id(), 0, &payload),
            "scan",
        );
        let rows: Vec<T> = expect_read(decode_response(&bytes), "scan");
        self.done = (rows.len() as u32) < SCAN_PAGE_ROWS;
        self.cursor = rows.last().map(|row| {
            let mut key = Vec::new();
            row.encode_primary_key(&mut key);
            key
        });
        self.page = rows.into_iter();
        self.page.next()
    }
}

/// Marker: a non-unique hash index.
pub enum HashIndex {}
/// Marker: a unique hash index.
pub enum UniqueHashIndex {}
/// Marker: a non-unique btree index.
pub enum BTreeIndex {}
/// Marker: a unique btree index.
pub enum UniqueBTreeIndex {}

/// Index kinds with unique keys.
pub trait Unique {}
impl Unique for UniqueHashIndex {}
impl Unique for UniqueBTreeIndex {}

/// Index kinds with ordered keys.
pub trait Ordered {}
impl Ordered for BTreeIndex {}
impl Ordered for UniqueBTreeIndex {}

/// Ties an index handle to its row, key and kind without owning any of them.
type IndexMarker<T, K, Kind> = PhantomData<fn() -> (T, K, Kind)>;

/// A secondary index of table `T` over a column of type `K`; what it can do depends on its
/// `Kind` ([`HashIndex`], [`UniqueHashIndex`], [`BTreeIndex`], [`UniqueBTreeIndex`]).
pub struct IndexHandle<T, K, Kind> {
    field: u16,
    _p: IndexMarker<T, K, Kind>,
}

impl<T: TableRow, K: IntersticeType, Kind> IndexHandle<T, K, Kind> {
    /// Every row whose column equals `key`, in primary-key order.
    pub fn filter(&self, key: &K) -> Vec<T> {
        expect_read(
            with_encoded(key, |bytes| {
                TableHandle::<T>::call(TableOp::Filter, self.field, bytes)
            }),
            "filter",
        )
    }
}

impl<T: TableRow, K: IntersticeType, Kind: Unique> IndexHandle<T, K, Kind> {
    /// The row whose column equals `key`.
    pub fn find(&self, key: &K) -> Option<T> {
        expect_read(
            with_encoded(key, |bytes| {
                TableHandle::<T>::call(TableOp::FindUnique, self.field, bytes)
            }),
            "find",
        )
    }
}

impl<T: TableRow, K: IntersticeType, Kind: Ordered> IndexHandle<T, K, Kind> {
    /// Every row whose column lies in `range`, ordered by the column, then the primary key.
    pub fn range(&self, range: impl RangeBounds<K>) -> Vec<T> {
        let mut payload = Vec::new();
        for bound in [range.start_bound(), range.end_bound()] {
            match bound {
                Bound::Unbounded => payload.push(0),
                Bound::Included(k) => {
                    payload.push(1);
                    k.encode(&mut payload);
                }
                Bound::Excluded(k) => {
                    payload.push(2);
                    k.encode(&mut payload);
                }
            }
        }
        expect_read(
            TableHandle::<T>::call(TableOp::Range, self.field, &payload),
            "range",
        )
    }
}

/// Runs `f` on the encoding of `value`, made in a buffer kept between calls: a reducer that
/// updates thousands of rows would otherwise allocate and free a buffer for each.
fn with_encoded<V: IntersticeType, R>(value: &V, f: impl FnOnce(&[u8]) -> R) -> R {
    /// Above this, the buffer is given back after use instead of kept.
    const KEEP: usize = 64 * 1024;
    thread_local! {
        static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut buffer) => {
            buffer.clear();
            value.encode(&mut buffer);
            let result = f(&buffer);
            if buffer.capacity() > KEEP {
                *buffer = Vec::new();
            }
            result
        }
        // Only if `f` itself came back here: use a buffer of its own.
        Err(_) => f(&value.to_bytes()),
    })
}
