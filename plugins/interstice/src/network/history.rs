//! Pages of a logged table's history for the node's owner (`interstice history`): read-only,
//! oldest first, bounded in versions and bytes per page.
//!
//! The page is read from the node's history files and log on the world's thread, as the frame
//! runs. One row's history goes through the files' indexes (milliseconds in a log of ten
//! million changes); a whole table's goes through every file from `from_seq` on, so a long
//! history makes that frame longer. Only the owner may ask.

use interstice_core::storage::history::{HistoryError, HistoryQuery, MAX_VERSIONS_PER_READ};
use interstice_core::{Database, Modules, Storage};
use interstice_net::message::{HistoryPage, HistoryVersion, RemoteError};

/// Most versions in one page.
pub const MAX_PAGE_VERSIONS: usize = 1_000;
/// Most bytes of rows and arguments in one page (a message is at most 4 MiB).
pub const MAX_PAGE_BYTES: usize = 1024 * 1024;

/// What a page asks for.
pub(super) struct HistoryRequest<'a> {
    pub module: &'a str,
    pub table: &'a str,
    /// The row's primary key as typed on a command line.
    pub key: Option<&'a str>,
    pub from_seq: u64,
    /// Versions of the `from_seq` transaction a previous page held.
    pub skip: u32,
    pub to_seq: u64,
    pub limit: u32,
}

/// One page of `request.module.request.table`'s history.
pub(super) fn page(
    modules: &Modules,
    db: &Database,
    storage: Option<&Storage>,
    request: &HistoryRequest<'_>,
) -> Result<HistoryPage, RemoteError> {
    let missing = || RemoteError::NotFound(format!("table `{}.{}`", request.module, request.table));
    let storage = storage.ok_or_else(|| {
        RemoteError::Failed("this node keeps no data directory, so no history".into())
    })?;
    let schema = modules.schema(request.module).ok_or_else(missing)?;
    let table_schema = schema
        .tables
        .iter()
        .find(|t| t.name == request.table)
        .ok_or_else(missing)?;
    let table = db
        .table(request.module, request.table)
        .ok_or_else(missing)?;
    let key = request
        .key
        .map(|text| {
            let pk = &table_schema.fields[usize::from(table_schema.primary_key)];
            crate::values::parse(text, &pk.ty, &schema.types)
                .map_err(|e| RemoteError::Failed(format!("key (`{}`): {e}", pk.name)))
        })
        .transpose()?;
    let limit = (request.limit as usize).clamp(1, MAX_PAGE_VERSIONS);
    let skip = request.skip as usize;
    if skip + limit + 1 > MAX_VERSIONS_PER_READ {
        return Err(RemoteError::Failed(format!(
            "transaction {} changed more than {} rows of `{}.{}`: read one row's history \
             (with a key) instead",
            request.from_seq,
            MAX_VERSIONS_PER_READ - MAX_PAGE_VERSIONS - 1,
            request.module,
            request.table
        )));
    }
    // One more than asked: whether the page is the last.
    let query = HistoryQuery {
        module: request.module,
        table: request.table,
        key: key.as_ref(),
        from_seq: request.from_seq,
        to_seq: request.to_seq,
        limit: (skip + limit + 1).min(MAX_VERSIONS_PER_READ),
    };
    let versions = storage.history(db, &query).map_err(|e| match e {
        HistoryError::NoSuchTable { .. } => missing(),
        other => RemoteError::Failed(other.to_string()),
    })?;
    let read = versions.len();
    let mut page = Vec::new();
    let mut bytes = 0usize;
    let mut next = None;
    // How many versions of the transaction at hand the pages so far held.
    let mut position = (request.from_seq, 0u32);
    for (i, version) in versions.into_iter().enumerate() {
        if version.seq != position.0 {
            position = (version.seq, 0);
        }
        if i < skip && version.seq == request.from_seq {
            position.1 += 1;
            continue;
        }
        if page.len() >= limit {
            next = Some(position);
            break;
        }
        let mut key = Vec::new();
        table.encode_pk(&version.key, &mut key);
        let row = version.row.as_ref().map(|row| {
            let mut encoded = Vec::new();
            table.encode_row(row, &mut encoded);
            encoded
        });
        let size = key.len() + row.as_ref().map_or(0, Vec::len) + version.args.len();
        if bytes + size > MAX_PAGE_BYTES {
            if page.is_empty() {
                // No page can hold it: say so rather than send what cannot be sent.
                return Err(RemoteError::Failed(format!(
                    "the version of transaction {} takes {size} bytes, more than a page holds \
                     ({MAX_PAGE_BYTES})",
                    version.seq
                )));
            }
            next = Some(position);
            break;
        }
        position.1 += 1;
        bytes += size;
        page.push(HistoryVersion {
            seq: version.seq,
            time: version.time,
            module: version.module,
            reducer: version.reducer,
            args: version.args.to_vec(),
            caller: version.caller,
            key,
            row,
        });
    }
    // The read stopped at its own bound, not at the end: go on from where it stopped.
    if next.is_none() && read == MAX_VERSIONS_PER_READ {
        next = Some(position);
    }
    Ok(HistoryPage {
        columns: table_schema.fields.clone(),
        primary_key: u32::from(table_schema.primary_key),
        types: schema.types.clone(),
        versions: page,
        next,
    })
}
