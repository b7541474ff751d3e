//! Pages of a table's rows for a peer (`interstice rows`): read-only, in primary-key order,
//! bounded in rows, bytes and (with a filter) rows examined per page; now, or (the node's owner
//! only) as they were at a past point of a logged table's history.

use interstice_abi::{Value, Visibility};
use interstice_core::storage::history::HistoryError;
use interstice_core::{Database, Modules, Storage};
use interstice_net::message::{PastPoint, RemoteError, RowsPage};

/// Most rows in one page.
pub const MAX_PAGE_ROWS: usize = 1_000;
/// Most bytes of rows in one page (a message is at most 4 MiB).
pub const MAX_PAGE_BYTES: usize = 1024 * 1024;
/// Most rows a filtered page examines before it ends (its `next` goes on from there).
pub const FILTER_SCAN_ROWS: u64 = 20_000;

/// What a page asks for.
pub(super) struct PageRequest<'a> {
    pub module: &'a str,
    pub table: &'a str,
    pub after: Option<&'a [u8]>,
    pub filter: Option<(&'a str, &'a str)>,
    pub limit: u32,
    /// Whether the asker owns the node (may read private modules, and the past).
    pub owner: bool,
    /// The table at this point of its history instead of now.
    pub as_of: Option<PastPoint>,
}

/// One page of `request.module.request.table`.
pub(super) fn page(
    (modules, db, storage): (&Modules, &Database, Option<&Storage>),
    request: &PageRequest<'_>,
) -> Result<RowsPage, RemoteError> {
    let missing = || RemoteError::NotFound(format!("table `{}.{}`", request.module, request.table));
    // A private module looks missing to anyone but the owner; host tables (`__answered`, ...)
    // are not in any schema, so they look missing to everyone.
    let schema = modules
        .schema(request.module)
        .filter(|s| request.owner || s.visibility == Visibility::Public)
        .ok_or_else(missing)?;
    let table_schema = schema
        .tables
        .iter()
        .find(|t| t.name == request.table)
        .ok_or_else(missing)?;
    let table = db
        .table(request.module, request.table)
        .ok_or_else(missing)?;
    let pk = usize::from(table_schema.primary_key);
    let pk_type = &table_schema
        .fields
        .get(pk)
        .ok_or_else(|| RemoteError::Failed("the table has no primary key column".into()))?
        .ty;
    let after = request
        .after
        .map(|bytes| interstice_abi::codec::decode_exact(pk_type, &schema.types, bytes))
        .transpose()
        .map_err(|e| RemoteError::Failed(format!("`after` is not a key of this table: {e}")))?;
    let filter = match request.filter {
        None => None,
        Some((column, text)) => {
            let index = table_schema
                .fields
                .iter()
                .position(|f| f.name == column)
                .ok_or_else(|| {
                    RemoteError::NotFound(format!(
                        "column `{column}` in `{}.{}` (columns: {})",
                        request.module,
                        request.table,
                        table_schema
                            .fields
                            .iter()
                            .map(|f| f.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            let value = crate::values::parse(text, &table_schema.fields[index].ty, &schema.types)
                .map_err(|e| RemoteError::Failed(format!("column `{column}`: {e}")))?;
            Some((index, value))
        }
    };
    let limit = (request.limit as usize).clamp(1, MAX_PAGE_ROWS);
    let (mut rows, mut bytes, mut scanned) = (Vec::new(), 0usize, 0u64);
    let mut next = None;
    let mut last_key = None;
    let past = match request.as_of {
        Some(point) => Some(past_rows(db, storage, request, point)?),
        None => None,
    };
    let source: Box<dyn Iterator<Item = &Vec<Value>>> = match &past {
        // The past table in key order, after `after` (the same order as the live one's).
        Some(past) => Box::new(
            past.iter()
                .filter(|row| after.as_ref().is_none_or(|a| row.get(pk) > Some(a))),
        ),
        None => Box::new(table.rows_after(after.as_ref())),
    };
    for row in source {
        if rows.len() >= limit || bytes >= MAX_PAGE_BYTES || scanned >= FILTER_SCAN_ROWS {
            // More may follow: the next page starts after the last row looked at.
            next = last_key.take();
            break;
        }
        scanned += 1;
        last_key = row.get(pk).cloned();
        if let Some((index, value)) = &filter
            && row.get(*index) != Some(value)
        {
            continue;
        }
        let mut encoded = Vec::new();
        table.encode_row(row, &mut encoded);
        bytes += encoded.len();
        rows.push(encoded);
    }
    let next = next
        .map(|key| {
            let mut out = Vec::new();
            interstice_abi::codec::encode_value(&key, pk_type, &schema.types, &mut out)
                .map(|()| out)
                .map_err(|e| RemoteError::Failed(format!("encoding a key: {e:?}")))
        })
        .transpose()?;
    // The types the rows need: a module's set is small, sent whole.
    Ok(RowsPage {
        columns: table_schema.fields.clone(),
        primary_key: u32::from(table_schema.primary_key),
        types: schema.types.clone(),
        rows,
        next,
        scanned,
    })
}

/// The rows of a logged table at a past point, for the node's owner. Each page reads them
/// again from history (through the indexes only for one row): a past read costs time in
/// proportion to the table's history up to the point.
fn past_rows(
    db: &Database,
    storage: Option<&Storage>,
    request: &PageRequest<'_>,
    point: PastPoint,
) -> Result<Vec<Vec<Value>>, RemoteError> {
    if !request.owner {
        return Err(RemoteError::NotPermitted(
            "only the node's owner reads a table's past".into(),
        ));
    }
    let storage = storage.ok_or_else(|| {
        RemoteError::Failed("this node keeps no data directory, so no history".into())
    })?;
    let seq = match point {
        PastPoint::Tx(seq) => seq,
        PastPoint::Time(ms) => storage
            .last_seq_at(ms)
            .map_err(|e| RemoteError::Failed(e.to_string()))?
            .ok_or_else(|| {
                RemoteError::Failed(format!(
                    "nothing this node kept was committed by logical time {ms} ms"
                ))
            })?,
    };
    storage
        .table_as_of(db, request.module, request.table, seq)
        .map_err(|e| match e {
            HistoryError::NoSuchTable { .. } => {
                RemoteError::NotFound(format!("table `{}.{}`", request.module, request.table))
            }
            other => RemoteError::Failed(other.to_string()),
        })
}
