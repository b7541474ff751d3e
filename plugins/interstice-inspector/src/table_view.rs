//! One table's page of rows, as the inspector shows it: a cached page of formatted rows that is
//! rebuilt only when the page, the filter or the table changes (and then at most a few times
//! a second for live changes), so a 100,000-row table costs one page of work, not a scan,
//! per frame.

use interstice::Database;
use interstice::abi::{TableSchema, TypeSet, Value};
use interstice::values::display;
use std::collections::HashMap;

/// Rows on a page.
pub const PAGE_ROWS: usize = 25;
/// Most rows a filtered page examines before it stops (and says so).
pub const SCAN_BUDGET: usize = 20_000;
/// Live changes rebuild the page at most this often (seconds).
pub const REFRESH_EVERY: f64 = 0.25;
/// How long a changed row stays highlighted (seconds).
pub const HIGHLIGHT_FOR: f64 = 1.5;

/// The selected table's page.
#[derive(Debug, Clone)]
pub struct TableView {
    /// The module owning the table.
    pub module: String,
    /// The table.
    pub table: String,
    /// Where each page up to the current one starts (the key before its first row).
    pub starts: Vec<Option<Value>>,
    /// The column the filter looks at.
    pub filter_column: usize,
    /// Rows whose column's text contains this (empty: every row).
    pub filter: String,
    /// The page: each row's key and its cells as text.
    pub rows: Vec<(Value, Vec<String>)>,
    /// Whether rows follow this page.
    pub more: bool,
    /// Whether the scan budget ran out before the page was full.
    pub truncated: bool,
    /// The key after which the next page starts.
    next_start: Option<Value>,
    /// Rows changed recently, and when.
    pub changed: HashMap<Value, f64>,
    dirty: bool,
    stale_since: Option<f64>,
    /// Pages built so far (for tests and the benchmark).
    pub rebuilds: u64,
}

impl TableView {
    /// The first page of `module.table`.
    pub fn new(module: &str, table: &str) -> TableView {
        TableView {
            module: module.into(),
            table: table.into(),
            starts: vec![None],
            filter_column: 0,
            filter: String::new(),
            rows: Vec::new(),
            more: false,
            truncated: false,
            next_start: None,
            changed: HashMap::new(),
            dirty: true,
            stale_since: None,
            rebuilds: 0,
        }
    }

    /// Rebuild now (the page or the filter changed).
    pub fn invalidate(&mut self) {
        self.dirty = true;
    }

    /// A row changed at `now`: highlight it and rebuild the page soon.
    pub fn row_changed(&mut self, key: Value, now: f64) {
        self.changed.insert(key, now);
        self.stale_since.get_or_insert(now);
    }

    /// Whether the row was changed in the last [`HIGHLIGHT_FOR`] seconds.
    pub fn highlighted(&self, key: &Value, now: f64) -> bool {
        self.changed
            .get(key)
            .is_some_and(|t| now - t < HIGHLIGHT_FOR)
    }

    /// Goes to the next page, if there is one.
    pub fn next_page(&mut self) {
        if self.more {
            self.starts.push(self.next_start.clone());
            self.invalidate();
        }
    }

    /// Goes to the previous page, if there is one.
    pub fn previous_page(&mut self) {
        if self.starts.len() > 1 {
            self.starts.pop();
            self.invalidate();
        }
    }

    /// Back to the first page (after the filter changed).
    pub fn first_page(&mut self) {
        self.starts.truncate(1);
        self.invalidate();
    }

    /// Rebuilds the page if it must; returns whether it did.
    pub fn refresh(&mut self, db: &Database, types: &TypeSet, now: f64) -> bool {
        let live = self
            .stale_since
            .is_some_and(|since| now - since >= REFRESH_EVERY);
        if !self.dirty && !live {
            return false;
        }
        self.dirty = false;
        self.stale_since = None;
        self.changed.retain(|_, t| now - *t < HIGHLIGHT_FOR);
        self.build(db, types);
        true
    }

    fn build(&mut self, db: &Database, types: &TypeSet) {
        self.rebuilds += 1;
        self.rows.clear();
        self.more = false;
        self.truncated = false;
        let Some(table) = db.table(&self.module, &self.table) else {
            return;
        };
        let schema: &TableSchema = table.schema();
        let pk = usize::from(schema.primary_key);
        let column = self
            .filter_column
            .min(schema.fields.len().saturating_sub(1));
        let filter = self.filter.to_lowercase();
        let start = self.starts.last().cloned().flatten();
        let mut scanned = 0;
        for row in table.rows_after(start.as_ref()) {
            scanned += 1;
            if !filter.is_empty() {
                if scanned > SCAN_BUDGET {
                    self.truncated = true;
                    break;
                }
                let (Some(value), Some(field)) = (row.get(column), schema.fields.get(column))
                else {
                    continue;
                };
                if !display(value, &field.ty, types)
                    .to_lowercase()
                    .contains(&filter)
                {
                    continue;
                }
            }
            let Some(key) = row.get(pk) else { continue };
            if self.rows.len() == PAGE_ROWS {
                self.more = true;
                break;
            }
            let cells = row
                .iter()
                .zip(&schema.fields)
                .map(|(value, field)| display(value, &field.ty, types))
                .collect();
            self.next_start = Some(key.clone());
            self.rows.push((key.clone(), cells));
        }
    }
}
