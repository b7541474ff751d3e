//! A sidecar index per history file, so that one row's history is found without reading every
//! change ever kept.
//!
//! ```text
//! <data dir>/history/<first seq>.hidx      beside <first seq>.hist
//!
//! "IHX1" | hist_len u64 | first_seq u64 | last_seq u64 | count u64
//!        | ends [u32; 256] | crcs [u32; 256] | header crc32c u32
//! entries: count × (hash u32, offset u32), sorted; little-endian throughout
//! ```
//!
//! An entry names a record of the history file (by its offset) that changed the row whose
//! [`key_hash`] it holds. Entries are grouped by the hash's top byte: bucket `b` is entries
//! `ends[b - 1]..ends[b]`, checked by `crcs[b]`. A lookup reads the header and one bucket (on
//! average 1/256 of the index), then the records it names; each record is still checked by its
//! own framing and its row compared in full, so a hash that collides costs one extra read.
//!
//! The index is only ever a shortcut. It is written after its history file (and removed before
//! that file is written again), so a crash leaves a history file without an index, never an
//! index of other contents; an index that is missing, of another length of file, or damaged is
//! not used, and the file is read whole as before. A history file over 4 GiB (offsets past
//! `u32`) or with a row whose key cannot be read with the table's layout now (an upgrade
//! changed it) gets no index.

use crate::db::Database;
use crate::storage::StorageError;
use crate::storage::log::{Change, Record, parse_record};
use interstice_abi::codec::{decode_fields_into, encode_value};
use interstice_abi::mix::Fnv1a;
use interstice_abi::{Persistence, TableSchema, TypeSet, Value};
use std::collections::BTreeMap;
use std::fs::File;
use std::hash::Hasher;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The index file's extension.
pub(super) const EXTENSION: &str = "hidx";
const MAGIC: &[u8; 4] = b"IHX1";
/// Buckets, by the hash's top byte.
const BUCKETS: usize = 256;
/// Bytes before the entries.
const HEADER_LEN: usize = 4 + 8 * 4 + BUCKETS * 4 * 2 + 4;
/// Bytes per entry.
const ENTRY_LEN: usize = 8;

/// The hash an index files a row under: its module, table and encoded primary key. FNV-1a
/// (stable across processes and machines, unlike the in-memory tables' seeded hasher), folded
/// to 32 bits.
pub(super) fn key_hash(module: &str, table: &str, key: &[u8]) -> u32 {
    let mut hasher = Fnv1a::default();
    hasher.write(module.as_bytes());
    hasher.write(&[0xff]);
    hasher.write(table.as_bytes());
    hasher.write(&[0xff]);
    hasher.write(key);
    let hash = hasher.finish();
    ((hash >> 32) ^ hash) as u32
}

/// The index of a history file.
pub(super) fn path_of(hist: &Path) -> PathBuf {
    hist.with_extension(EXTENSION)
}

/// The entries of one history file's index, gathered while the file is written.
#[derive(Debug)]
pub(super) struct Builder {
    entries: Vec<(u32, u32)>,
    /// Whether every change was filed (see the module documentation for when one is not).
    complete: bool,
}

impl Builder {
    pub(super) fn new() -> Self {
        Builder {
            entries: Vec::new(),
            complete: true,
        }
    }

    /// Files the record at `offset` under `hash`.
    pub(super) fn add(&mut self, hash: u32, offset: usize) {
        match u32::try_from(offset) {
            Ok(offset) => self.entries.push((hash, offset)),
            Err(_) => self.complete = false,
        }
    }

    /// Notes a change that could not be filed: the file gets no index.
    pub(super) fn give_up(&mut self) {
        self.complete = false;
    }

    /// The index file's bytes, for a history file of `hist_len` bytes made from the records
    /// `first_seq..=last_seq`; `None` when a change could not be filed.
    pub(super) fn finish(
        mut self,
        hist_len: u64,
        first_seq: u64,
        last_seq: u64,
    ) -> Option<Vec<u8>> {
        if !self.complete {
            return None;
        }
        self.entries.sort_unstable();
        self.entries.dedup();
        let mut ends = [0u32; BUCKETS];
        let mut crcs = [0u32; BUCKETS];
        let mut body = Vec::with_capacity(self.entries.len() * ENTRY_LEN);
        let mut start = 0;
        for (bucket, (end, crc)) in ends.iter_mut().zip(crcs.iter_mut()).enumerate() {
            let stop = start
                + self.entries[start..]
                    .iter()
                    .take_while(|(hash, _)| (hash >> 24) as usize == bucket)
                    .count();
            let from = body.len();
            for (hash, offset) in &self.entries[start..stop] {
                body.extend_from_slice(&hash.to_le_bytes());
                body.extend_from_slice(&offset.to_le_bytes());
            }
            *crc = crc32c::crc32c(&body[from..]);
            *end = u32::try_from(stop).ok()?;
            start = stop;
        }
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        out.extend_from_slice(MAGIC);
        for word in [hist_len, first_seq, last_seq, self.entries.len() as u64] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        for word in ends.iter().chain(crcs.iter()) {
            out.extend_from_slice(&word.to_le_bytes());
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&body);
        Some(out)
    }
}

/// What an index says of one row in its history file.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Found {
    /// Offsets of the records that may have changed the row, ascending.
    pub offsets: Vec<u64>,
    /// The last sequence number of the segment the file was made from: the reader has seen
    /// every record up to it.
    pub last_seq: u64,
    /// The length of the file the index was made for (a history file's, exactly; a log
    /// segment's, at least: it grows).
    pub hist_len: u64,
    /// Whether the file only grows (a log segment) rather than being written once.
    pub grows: bool,
}

/// Looks `hash` up in the index of the history file `hist`, whose first record is `first`
/// and whose records all come before `next_first` (the next file's first, if any); `None`
/// when there is no usable index (then the file is to be read whole).
pub(super) fn lookup(hist: &Path, hash: u32, first: u64, next_first: Option<u64>) -> Option<Found> {
    let path = path_of(hist);
    let mut file = File::open(&path).ok()?;
    let hist_len = std::fs::metadata(hist).ok()?.len();
    let mut header = [0u8; HEADER_LEN];
    file.read_exact(&mut header).ok()?;
    let (fields, crc) = header.split_at(HEADER_LEN - 4);
    if &fields[..4] != MAGIC || crc32c::crc32c(fields) != u32_at(crc, 0) {
        return unusable(&path, "damaged header");
    }
    let word =
        |i: usize| u64::from_le_bytes(fields[4 + i * 8..12 + i * 8].try_into().unwrap_or([0; 8]));
    let (indexed_len, first_seq, last_seq, total) = (word(0), word(1), word(2), word(3));
    if indexed_len != hist_len || first_seq != first {
        return unusable(&path, "made for another version of its history file");
    }
    let tables = &fields[36..];
    // What the reader skips on the index's word must lie inside this file's segment.
    if last_seq < first_seq
        || next_first.is_some_and(|next| last_seq >= next)
        || u64::from(u32_at(tables, (BUCKETS - 1) * 4)) != total
    {
        return unusable(&path, "its header does not fit its history file");
    }
    let bucket = (hash >> 24) as usize;
    let end = u32_at(tables, bucket * 4) as usize;
    let start = bucket
        .checked_sub(1)
        .map_or(0, |b| u32_at(tables, b * 4) as usize);
    let expected_crc = u32_at(tables, (BUCKETS + bucket) * 4);
    let count = end.checked_sub(start)?;
    // Bounded by the file's length before anything is allocated: the header is read from disk.
    let at = (HEADER_LEN as u64).checked_add((start as u64).checked_mul(ENTRY_LEN as u64)?)?;
    let len = (count as u64).checked_mul(ENTRY_LEN as u64)?;
    let index_len = file.metadata().ok()?.len();
    if at.checked_add(len).is_none_or(|end| end > index_len) {
        return unusable(&path, "shorter than its header says");
    }
    let mut entries = vec![0u8; usize::try_from(len).ok()?];
    if file.seek(SeekFrom::Start(at)).is_err() || file.read_exact(&mut entries).is_err() {
        return unusable(&path, "shorter than its header says");
    }
    if crc32c::crc32c(&entries) != expected_crc {
        return unusable(&path, "damaged entries");
    }
    let offsets = entries
        .as_chunks::<ENTRY_LEN>()
        .0
        .iter()
        .filter(|entry| u32_at(*entry, 0) == hash)
        .map(|entry| u64::from(u32_at(entry, 4)))
        .collect::<Vec<u64>>();
    let mut offsets = offsets;
    // Written sorted; read in file order whatever the index says.
    offsets.sort_unstable();
    offsets.dedup();
    Some(Found {
        offsets,
        last_seq,
        hist_len,
        grows: false,
    })
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or([0; 4]))
}

/// Says why an index is not used, once per lookup; the file is read whole instead.
fn unusable<T>(path: &Path, why: &str) -> Option<T> {
    tracing::warn!(
        target: "interstice::storage",
        "{}: {why}; reading its history file whole",
        path.display()
    );
    None
}

/// A record read from a file: its offset and its payload.
pub(super) type Framed = (u64, Vec<u8>);

/// Reads the records an index named in the history file `path`, each checked by its framing;
/// `Ok(None)` when the file is no longer the one the index was made for, or holds no record
/// where the index says (then the file is to be read whole, which reports any damage).
pub(super) fn read_records(
    path: &Path,
    found: &Found,
) -> Result<Option<Vec<Framed>>, StorageError> {
    let mut file = File::open(path).map_err(|e| StorageError::io(path, e))?;
    // The same open file is measured and read: a rewrite meanwhile is another file.
    let len = file
        .metadata()
        .map_err(|e| StorageError::io(path, e))?
        .len();
    if len < found.hist_len || (len != found.hist_len && !found.grows) {
        return Ok(unusable(path, "changed since its index was read"));
    }
    let mut records = Vec::with_capacity(found.offsets.len());
    for &offset in &found.offsets {
        let mut header = [0u8; crate::db::journal::HEADER_LEN];
        if file.seek(SeekFrom::Start(offset)).is_err() || file.read_exact(&mut header).is_err() {
            return Ok(unusable(path, "no record where its index puts one"));
        }
        let payload_len = u64::from(u32_at(&header, 0));
        let end = offset + header.len() as u64 + payload_len;
        if payload_len == 0 || payload_len > crate::db::journal::MAX_RECORD_LEN as u64 || end > len
        {
            return Ok(unusable(path, "no record length where its index puts one"));
        }
        let mut payload = vec![0u8; payload_len as usize];
        if file.read_exact(&mut payload).is_err()
            || crc32c::crc32c(&payload) != u32_at(&header, 4)
            || parse_record(&payload).is_none()
        {
            return Ok(unusable(path, "a damaged record where its index puts one"));
        }
        records.push((offset, payload));
    }
    Ok(Some(records))
}

/// How to read the primary key of every logged table's rows, as the database has them now:
/// what the history files' indexes file each change under. Its tables are the logged ones,
/// by module then table (looked up with the names a log record borrows).
#[derive(Debug, Clone, Default)]
pub struct KeyLayouts {
    tables: BTreeMap<String, BTreeMap<String, Layout>>,
    /// Tells these layouts from others ([`LiveIndexes`] built with others are dropped): a
    /// hash of the tables' names and the identity of their schemas (an upgrade makes new
    /// ones; these hold the old ones, so their addresses are not reused meanwhile).
    fingerprint: u64,
}

impl KeyLayouts {
    /// Whether `module.table` is among them.
    pub fn has(&self, module: &str, table: &str) -> bool {
        self.tables
            .get(module)
            .is_some_and(|t| t.contains_key(table))
    }
}

/// A table's row layout: its schema and its module's types.
type Layout = (Arc<TableSchema>, Arc<TypeSet>);

/// The key layouts of the tables whose changes history keeps.
pub fn key_layouts(db: &Database) -> KeyLayouts {
    let mut layouts: BTreeMap<String, BTreeMap<String, Layout>> = BTreeMap::new();
    for name in db.module_names() {
        let Some(module) = db.module(name) else {
            continue;
        };
        for table in module.guest_tables() {
            if table.schema().persistence == Persistence::Logged {
                layouts.entry(name.to_string()).or_default().insert(
                    table.schema().name.clone(),
                    (Arc::clone(table.schema()), Arc::clone(table.types())),
                );
            }
        }
    }
    let mut hasher = Fnv1a::default();
    for (module, tables) in &layouts {
        for (table, (schema, types)) in tables {
            hasher.write(module.as_bytes());
            hasher.write(&[0xff]);
            hasher.write(table.as_bytes());
            hasher.write(&[0xff]);
            let identity = [Arc::as_ptr(schema) as usize, Arc::as_ptr(types) as usize];
            for address in identity {
                hasher.write(&address.to_le_bytes());
            }
        }
    }
    let fingerprint = hasher.finish();
    KeyLayouts {
        tables: layouts,
        fingerprint,
    }
}

/// Writes the encoded primary key of the row `change` is about into `out`; `false` when it
/// cannot be read with the table's layout now.
fn key_of(
    (schema, types): &Layout,
    change: &Change<'_>,
    row: &mut Vec<Value>,
    out: &mut Vec<u8>,
) -> bool {
    out.clear();
    match change.op {
        crate::db::journal::OP_DELETE => {
            out.extend_from_slice(change.data);
            true
        }
        crate::db::journal::OP_PUT => {
            decode_fields_into(&schema.fields, types, change.data, row).is_ok()
                && row.get(usize::from(schema.primary_key)).is_some_and(|key| {
                    encode_value(key, schema.primary_key_type(), types, out).is_ok()
                })
        }
        _ => false,
    }
}

/// Files the rows `record` changed in logged tables under the record's offset `at`.
pub(super) fn index_record(
    index: &mut Builder,
    record: &Record<'_>,
    layouts: &KeyLayouts,
    at: usize,
) {
    let (mut row, mut key) = (Vec::new(), Vec::new());
    for group in &record.groups {
        let Some(tables) = layouts.tables.get(group.module) else {
            continue;
        };
        for change in &group.changes {
            let Some(layout) = tables.get(change.table) else {
                continue; // not a logged table
            };
            if key_of(layout, change, &mut row, &mut key) {
                index.add(key_hash(group.module, change.table, &key), at);
            } else {
                index.give_up();
            }
        }
    }
}

/// In-memory indexes of the log segments not archived yet, so that a row's history does not
/// read them whole either: each is built the first time a row is looked up in it, then
/// extended by what was appended since, read from where it left off.
///
/// Holds 8 bytes per changed row of a logged table in those segments. With
/// `Retention::Prune` (the default) the log keeps the segments since the last snapshot, about
/// `snapshot_every_records` changes' worth (a few MB); with `Retention::KeepHistory` no
/// segment is archived and the whole log is indexed here, 8 bytes per change. The tables a
/// segment was indexed for are the ones logged when it was: installing, upgrading or removing a
/// module clears these indexes ([`LiveIndexes::clear`]).
#[derive(Debug, Default)]
pub struct LiveIndexes {
    segments: std::collections::BTreeMap<PathBuf, Live>,
    /// The [`KeyLayouts`] the segments were indexed with (their fingerprint).
    built_with: u64,
}

#[derive(Debug, Default)]
struct Live {
    /// Bytes of the segment indexed.
    indexed: u64,
    entries: Vec<(u32, u32)>,
    /// The last record indexed.
    last_seq: Option<u64>,
    /// Whether a change could not be filed: then the segment is read whole.
    incomplete: bool,
}

impl LiveIndexes {
    /// Forgets every segment's index: the logged tables or their layouts changed.
    pub fn clear(&mut self) {
        self.segments.clear();
    }

    /// Forgets the segments not in `segments` (pruned since).
    pub(super) fn retain(&mut self, segments: &[&Path]) {
        self.segments
            .retain(|path, _| segments.contains(&path.as_path()));
    }

    /// Indexes `path` up to `len` bytes (the part not indexed yet), then looks `hash` up;
    /// `None` when the segment is to be read whole (a change that could not be filed, damage,
    /// a segment past 4 GiB).
    pub(super) fn lookup(
        &mut self,
        path: &Path,
        len: u64,
        hash: u32,
        layouts: &KeyLayouts,
    ) -> Option<Found> {
        if layouts.fingerprint != self.built_with {
            // Indexed for other tables, or other layouts of them: start again.
            self.segments.clear();
            self.built_with = layouts.fingerprint;
        }
        let live = self.segments.entry(path.to_path_buf()).or_default();
        if live.indexed > len {
            // Shorter than when it was indexed: cut by a repair. Start again.
            *live = Live::default();
        }
        if live.indexed < len && !live.incomplete {
            live.extend(path, len, layouts);
        }
        if live.incomplete {
            return None;
        }
        let offsets = live
            .entries
            .iter()
            .filter(|(h, _)| *h == hash)
            .map(|(_, offset)| u64::from(*offset))
            .collect();
        Some(Found {
            offsets,
            last_seq: live.last_seq?,
            hist_len: len,
            grows: true,
        })
    }
}

impl Live {
    /// Indexes the records from `self.indexed` to `len`.
    fn extend(&mut self, path: &Path, len: u64, layouts: &KeyLayouts) {
        let Some(bytes) = read_range(path, self.indexed, len) else {
            self.incomplete = true;
            return;
        };
        let (records, end) = crate::storage::log::frame_records(&bytes);
        let mut builder = Builder::new();
        for (offset, payload) in records {
            let Some(record) = parse_record(payload) else {
                self.incomplete = true;
                return;
            };
            match usize::try_from(self.indexed + offset) {
                Ok(at) => index_record(&mut builder, &record, layouts, at),
                Err(_) => builder.give_up(),
            }
            self.last_seq = Some(record.seq);
        }
        if !matches!(end, crate::storage::log::SegmentEnd::Clean) || !builder.complete {
            self.incomplete = true;
            return;
        }
        self.entries.extend(builder.entries);
        self.indexed = len;
    }
}

/// Bytes `from..to` of a file.
fn read_range(path: &Path, from: u64, to: u64) -> Option<Vec<u8>> {
    let mut file = File::open(path).ok()?;
    file.seek(SeekFrom::Start(from)).ok()?;
    let mut bytes = vec![0u8; usize::try_from(to.checked_sub(from)?).ok()?];
    file.read_exact(&mut bytes).ok()?;
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_returns_the_offsets_filed_under_its_hash_and_no_others() {
        let dir = tempfile::tempdir().unwrap();
        let hist = dir.path().join("00000000000000000001.hist");
        std::fs::write(&hist, vec![0u8; 5_000]).unwrap();
        let mut builder = Builder::new();
        // Many hashes in one bucket (top byte 0x12), some equal, one filed twice at an offset.
        for i in 0..2_000u32 {
            builder.add(0x1200_0000 | (i % 300), i as usize);
        }
        builder.add(0x1200_0005, 5);
        builder.add(0xff00_0000, 4_999);
        let bytes = builder.finish(5_000, 1, 90).unwrap();
        std::fs::write(path_of(&hist), bytes).unwrap();

        let found = lookup(&hist, 0x1200_0005, 1, None).unwrap();
        let expected: Vec<u64> = (0..2_000u64).filter(|i| i % 300 == 5).collect();
        assert_eq!(found.offsets, expected);
        assert_eq!(found.last_seq, 90);
        assert_eq!(
            lookup(&hist, 0xff00_0000, 1, None).unwrap().offsets,
            [4_999]
        );
        assert!(
            lookup(&hist, 0x0000_0001, 1, None)
                .unwrap()
                .offsets
                .is_empty()
        );
        // Made for a file of another length: not used.
        std::fs::write(&hist, vec![0u8; 5_001]).unwrap();
        assert_eq!(lookup(&hist, 0x1200_0005, 1, None), None);
    }

    #[test]
    fn a_header_that_claims_more_entries_than_the_file_holds_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let hist = dir.path().join("00000000000000000001.hist");
        std::fs::write(&hist, vec![0u8; 100]).unwrap();
        let mut builder = Builder::new();
        builder.add(0xab00_0001, 10);
        let mut bytes = builder.finish(100, 1, 2).unwrap();
        // Every bucket from 0xab on ends at 4 billion entries (32 GB), with a header checksum
        // that matches: the lookup must refuse it, not allocate it.
        let ends = 4 + 8 * 4;
        for bucket in 0xab..BUCKETS {
            let at = ends + bucket * 4;
            bytes[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        }
        let crc = crc32c::crc32c(&bytes[..HEADER_LEN - 4]);
        bytes[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(path_of(&hist), bytes).unwrap();
        assert_eq!(lookup(&hist, 0xab00_0001, 1, None), None);
    }

    /// An index for `hist` (100 bytes, records 1..=90) with one entry, its header then
    /// changed by `edit` and its checksum made to match again.
    fn forged(hist: &Path, edit: impl FnOnce(&mut [u8])) {
        std::fs::write(hist, vec![0u8; 100]).unwrap();
        let mut builder = Builder::new();
        builder.add(0xab00_0001, 10);
        let mut bytes = builder.finish(100, 1, 90).unwrap();
        edit(&mut bytes);
        let crc = crc32c::crc32c(&bytes[..HEADER_LEN - 4]);
        bytes[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(path_of(hist), bytes).unwrap();
    }

    #[test]
    fn a_header_that_does_not_fit_its_file_is_not_used_even_with_a_matching_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let hist = dir.path().join("00000000000000000001.hist");
        forged(&hist, |_| {});
        assert!(lookup(&hist, 0xab00_0001, 1, Some(91)).is_some());
        // Made for a file that starts elsewhere (copied from a file of the same length).
        assert_eq!(lookup(&hist, 0xab00_0001, 2, Some(91)), None);
        // Its last record past the next file's first: a reader would skip that file.
        assert_eq!(lookup(&hist, 0xab00_0001, 1, Some(50)), None);
        forged(&hist, |b| {
            b[20..28].copy_from_slice(&u64::MAX.to_le_bytes())
        });
        assert_eq!(lookup(&hist, 0xab00_0001, 1, Some(91)), None);
        // Or before its first.
        forged(&hist, |b| b[20..28].copy_from_slice(&0u64.to_le_bytes()));
        assert_eq!(lookup(&hist, 0xab00_0001, 1, None), None);
        // A count that is not its buckets' total.
        forged(&hist, |b| b[28..36].copy_from_slice(&7u64.to_le_bytes()));
        assert_eq!(lookup(&hist, 0xab00_0001, 1, None), None);
    }

    #[test]
    fn records_an_index_names_that_are_not_there_send_the_reader_to_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let hist = dir.path().join("00000000000000000001.hist");
        forged(&hist, |_| {});
        let found = lookup(&hist, 0xab00_0001, 1, None).unwrap();
        // Zeros where a record should be.
        assert_eq!(read_records(&hist, &found).unwrap(), None);
        // A length that runs past the file, before anything is allocated for it.
        let mut bytes = vec![0u8; 100];
        bytes[10..14].copy_from_slice(&(200u32 << 20).to_le_bytes());
        std::fs::write(&hist, &bytes).unwrap();
        assert_eq!(read_records(&hist, &found).unwrap(), None);
        // The file changed length since the index was read.
        std::fs::write(&hist, vec![0u8; 101]).unwrap();
        assert_eq!(read_records(&hist, &found).unwrap(), None);
    }

    #[test]
    fn a_file_past_four_gigabytes_or_a_change_not_filed_gets_no_index() {
        let mut big = Builder::new();
        big.add(
            1,
            usize::try_from(u64::from(u32::MAX) + 1).unwrap_or(usize::MAX),
        );
        assert_eq!(big.finish(1, 0, 0), None);
        let mut unfiled = Builder::new();
        unfiled.add(1, 0);
        unfiled.give_up();
        assert_eq!(unfiled.finish(1, 0, 0), None);
    }

    #[test]
    fn the_key_hash_is_the_same_in_every_process_and_tells_tables_apart() {
        // FNV-1a of `m 0xff t 0xff 1 2 3`, folded (worked out by hand): a change here would
        // orphan every index on disk.
        assert_eq!(key_hash("m", "t", &[1, 2, 3]), 0x2a73_c0c2);
        assert_ne!(key_hash("m", "t", &[1]), key_hash("m", "u", &[1]));
        assert_ne!(key_hash("mt", "", &[1]), key_hash("m", "t", &[1]));
    }
}
