//! Snapshots: the durable tables of every module at one log position.
//!
//! A snapshot file `snapshots/<seq, 20 digits>.snap` is `"ISNP" | version: u32 LE |
//! payload length: u64 LE | crc32c(payload): u32 LE | payload`, the payload being a postcard
//! [`SnapshotData`]. It holds every record up to and including `seq`, and the published event
//! streams of durable public tables as they were after it. Files are written
//! atomically (temporary file, fsync, rename, directory fsync), so a crash leaves either the old
//! set of snapshots or the new one.

use super::StorageError;
use crate::db::Database;
use crate::disk::fsutil::write_atomic;
use interstice_abi::{Persistence, TableEvent};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"ISNP";
/// Version 2 added the published event streams, version 3 the table layouts; older files are
/// still read.
const VERSION: u32 = 3;
const HEADER_LEN: usize = 20;

/// One table's rows and counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableData {
    /// Table name.
    pub name: String,
    /// Next primary-key `auto_inc` value.
    pub next_pk: i128,
    /// Next value of each `auto_inc` index, by field.
    pub counters: Vec<(u16, i128)>,
    /// Encoded rows in primary-key order.
    pub rows: EncodedRows,
}

/// A table's rows, each encoded as in the log, kept in one buffer: capturing a snapshot (which
/// the frame waits for) makes one growing allocation per table instead of one per row. On disk
/// it is exactly a list of byte strings, what `Vec<Vec<u8>>` was in earlier versions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncodedRows {
    bytes: Vec<u8>,
    /// Where each row ends in `bytes`.
    ends: Vec<usize>,
}

impl EncodedRows {
    /// Appends a row written by `encode` (which appends its bytes to the buffer it is given).
    pub fn push_with(&mut self, encode: impl FnOnce(&mut Vec<u8>)) {
        encode(&mut self.bytes);
        self.ends.push(self.bytes.len());
    }

    /// Appends an encoded row.
    pub fn push(&mut self, row: &[u8]) {
        self.push_with(|out| out.extend_from_slice(row));
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The rows, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.ends.iter().enumerate().map(|(i, &end)| {
            let start = if i == 0 { 0 } else { self.ends[i - 1] };
            &self.bytes[start..end]
        })
    }
}

impl<'a> FromIterator<&'a [u8]> for EncodedRows {
    fn from_iter<I: IntoIterator<Item = &'a [u8]>>(rows: I) -> Self {
        let mut encoded = EncodedRows::default();
        for row in rows {
            encoded.push(row);
        }
        encoded
    }
}

/// One row as a byte string (`serialize_bytes`: a length, then the bytes).
struct RowBytes<'a>(&'a [u8]);

impl serde::Serialize for RowBytes<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

impl serde::Serialize for EncodedRows {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter().map(RowBytes))
    }
}

impl<'de> serde::Deserialize<'de> for EncodedRows {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Rows;
        impl<'de> serde::de::Visitor<'de> for Rows {
            type Value = EncodedRows;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of encoded rows")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<EncodedRows, A::Error> {
                let mut rows = EncodedRows::default();
                while let Some(row) = seq.next_element::<OwnedRow>()? {
                    rows.push(&row.0);
                }
                Ok(rows)
            }
        }
        deserializer.deserialize_seq(Rows)
    }
}

/// One row read back: a byte string, or (as any serde format may give it) a list of bytes.
struct OwnedRow(Vec<u8>);

impl<'de> serde::Deserialize<'de> for OwnedRow {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Bytes;
        impl<'de> serde::de::Visitor<'de> for Bytes {
            type Value = OwnedRow;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an encoded row")
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<OwnedRow, E> {
                Ok(OwnedRow(bytes.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<OwnedRow, E> {
                Ok(OwnedRow(bytes))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<OwnedRow, A::Error> {
                let mut bytes = Vec::new();
                while let Some(byte) = seq.next_element::<u8>()? {
                    bytes.push(byte);
                }
                Ok(OwnedRow(bytes))
            }
        }
        deserializer.deserialize_byte_buf(Bytes)
    }
}

/// One module's durable tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleData {
    /// Module name.
    pub name: String,
    /// Its logged and stateful tables.
    pub tables: Vec<TableData>,
}

/// The published event stream of one durable table of a public module
/// ([`PublicationLog`](crate::PublicationLog)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamData {
    /// Module name.
    pub module: String,
    /// Table name.
    pub table: String,
    /// The number the next event gets.
    pub next_seq: u64,
    /// The retained events: number, kind, encoded rows.
    pub events: Vec<(u64, TableEvent, Vec<u8>)>,
}

/// What a snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotData {
    /// The last log record it includes.
    pub seq: u64,
    /// The logical time of that record, in milliseconds.
    pub time: u64,
    /// Every module's durable tables.
    pub modules: Vec<ModuleData>,
    /// The event streams of durable public tables, so subscribers resume across a restart.
    pub streams: Vec<StreamData>,
    /// How each module's rows are laid out, so a module upgraded since (with compatible
    /// changes) can take them in.
    pub layouts: Vec<ModuleLayout>,
}

/// The layout of one module's tables when the snapshot was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleLayout {
    /// Module name.
    pub module: String,
    /// The types its rows use.
    pub types: interstice_abi::TypeSet,
    /// Its tables' schemas.
    pub tables: Vec<interstice_abi::TableSchema>,
}

/// Version 2: no layouts.
#[derive(Deserialize)]
struct SnapshotDataV2 {
    seq: u64,
    time: u64,
    modules: Vec<ModuleData>,
    streams: Vec<StreamData>,
}

/// Version 1: no streams.
#[derive(Deserialize)]
struct SnapshotDataV1 {
    seq: u64,
    time: u64,
    modules: Vec<ModuleData>,
}

/// The file name of the snapshot that includes records up to `seq`.
pub fn snapshot_name(seq: u64) -> String {
    format!("{seq:020}.snap")
}

/// Captures the durable tables of `db`.
pub fn capture(db: &Database, seq: u64, time: u64) -> SnapshotData {
    let modules = db
        .module_names()
        .filter_map(|name| db.module(name).map(|m| (name, m)))
        .map(|(name, tables)| ModuleData {
            name: name.to_string(),
            tables: tables
                .tables
                .iter()
                .filter(|t| t.schema().persistence != Persistence::Ephemeral)
                .map(|t| {
                    let (next_pk, counters) = t.counters();
                    TableData {
                        name: t.schema().name.clone(),
                        next_pk,
                        counters,
                        rows: {
                            let mut rows = EncodedRows::default();
                            for row in t.rows() {
                                rows.push_with(|out| t.encode_row(row, out));
                            }
                            rows
                        },
                    }
                })
                .collect(),
        })
        .collect();
    let mut streams = Vec::new();
    for (module, tables) in db
        .module_names()
        .filter_map(|n| db.module(n).map(|m| (n, m)))
    {
        for t in tables
            .tables
            .iter()
            .filter(|t| t.schema().persistence != Persistence::Ephemeral)
        {
            if let Some(stream) = db.publications.stream(module, &t.schema().name) {
                streams.push(StreamData {
                    module: module.to_string(),
                    table: t.schema().name.clone(),
                    next_seq: stream.next_seq,
                    events: stream
                        .retained
                        .into_iter()
                        .map(|e| (e.seq, e.kind, e.rows))
                        .collect(),
                });
            }
        }
    }
    let layouts = db
        .module_names()
        .filter_map(|name| db.module(name).map(|m| (name, m)))
        .map(|(name, tables)| ModuleLayout {
            module: name.to_string(),
            types: tables
                .tables
                .first()
                .map(|t| (**t.types()).clone())
                .unwrap_or_default(),
            tables: tables
                .tables
                .iter()
                .map(|t| (**t.schema()).clone())
                .collect(),
        })
        .collect();
    SnapshotData {
        seq,
        time,
        modules,
        streams,
        layouts,
    }
}

/// Writes a snapshot file atomically and returns its path.
pub fn write(dir: &Path, data: &SnapshotData) -> Result<PathBuf, StorageError> {
    let payload = postcard::to_allocvec(data).map_err(|e| StorageError::Encode(e.to_string()))?;
    let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    let path = dir.join(snapshot_name(data.seq));
    write_atomic(&path, &bytes).map_err(|e| StorageError::io(&path, e))?;
    Ok(path)
}

/// Reads and verifies a snapshot file.
pub fn read(path: &Path) -> Result<SnapshotData, StorageError> {
    let bytes = super::log::read(path)?;
    decode(&bytes).map_err(|reason| StorageError::CorruptSnapshot {
        path: path.to_path_buf(),
        reason,
    })
}

/// Verifies and decodes the bytes of a snapshot file: header, length, checksum, payload.
pub fn decode(bytes: &[u8]) -> Result<SnapshotData, String> {
    if bytes.len() < HEADER_LEN || &bytes[..4] != MAGIC {
        return Err("not a snapshot file (bad header)".into());
    }
    let version = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if !(1..=VERSION).contains(&version) {
        return Err(format!("unsupported snapshot version {version}"));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[8..16]);
    let len = u64::from_le_bytes(len);
    let crc = u32::from_le_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    let payload = &bytes[HEADER_LEN..];
    if payload.len() as u64 != len {
        return Err(format!(
            "truncated: {} payload bytes, header says {len}",
            payload.len()
        ));
    }
    if crc32c::crc32c(payload) != crc {
        return Err("checksum mismatch".into());
    }
    decode_payload(version, payload)
}

/// Decodes a snapshot payload written in format `version` (its checksum already verified).
pub fn decode_payload(version: u32, payload: &[u8]) -> Result<SnapshotData, String> {
    let undecodable = |e: postcard::Error| {
        format!(
            "undecodable: {}",
            interstice_abi::limits::describe_postcard_error(&e)
        )
    };
    match version {
        1 => {
            let v1: SnapshotDataV1 = postcard::from_bytes(payload).map_err(undecodable)?;
            Ok(SnapshotData {
                seq: v1.seq,
                time: v1.time,
                modules: v1.modules,
                streams: Vec::new(),
                layouts: Vec::new(),
            })
        }
        2 => {
            let v2: SnapshotDataV2 = postcard::from_bytes(payload).map_err(undecodable)?;
            Ok(SnapshotData {
                seq: v2.seq,
                time: v2.time,
                modules: v2.modules,
                streams: v2.streams,
                layouts: Vec::new(),
            })
        }
        VERSION => postcard::from_bytes(payload).map_err(undecodable),
        other => Err(format!("unsupported snapshot version {other}")),
    }
}

/// Snapshots in a directory, newest first.
pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StorageError> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))? {
        let entry = entry.map_err(|e| StorageError::io(dir, e))?;
        let name = entry.file_name();
        if let Some(seq) = name
            .to_string_lossy()
            .strip_suffix(".snap")
            .and_then(|s| s.parse::<u64>().ok())
        {
            found.push((seq, entry.path()));
        }
    }
    found.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Vec<u8>> {
        vec![vec![], vec![1, 2, 3], vec![7; 300], vec![0xff]]
    }

    #[test]
    fn encoded_rows_are_written_as_a_list_of_byte_strings_was() {
        let old = rows();
        let new: EncodedRows = old.iter().map(Vec::as_slice).collect();
        let written = postcard::to_allocvec(&new).unwrap();
        assert_eq!(written, postcard::to_allocvec(&old).unwrap());
        // Files of earlier versions read back as they were, and new files read as before.
        let read: EncodedRows = postcard::from_bytes(&written).unwrap();
        assert_eq!(read, new);
        assert_eq!(
            read.iter().collect::<Vec<_>>(),
            old.iter().map(Vec::as_slice).collect::<Vec<_>>()
        );
        let as_before: Vec<Vec<u8>> = postcard::from_bytes(&written).unwrap();
        assert_eq!(as_before, old);
        assert_eq!(read.len(), 4);
        assert!(EncodedRows::default().is_empty());
    }

    #[test]
    fn a_row_list_cut_short_is_an_error_not_a_panic() {
        let written = postcard::to_allocvec(&rows()).unwrap();
        for cut in 0..written.len() {
            assert!(
                postcard::from_bytes::<EncodedRows>(&written[..cut]).is_err(),
                "{cut}"
            );
        }
    }
}
