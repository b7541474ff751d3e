//! Log segments: appending framed records and reading them back.
//!
//! Segments are files `log/<first seq, 20 digits>.log` holding records as framed by the
//! [journal](crate::db::journal). Reading distinguishes a *torn tail* — the end of the last
//! segment holds an incomplete record, as a crash mid-write leaves it — from *corruption*: a
//! record that fails its checksum with intact data after it, or any damage in an older segment.

use super::StorageError;
use crate::db::journal::{HEADER_LEN, MAX_RECORD_LEN};
use crate::disk::faults;
use interstice_abi::Reader;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

/// One change of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change<'a> {
    /// The table's name.
    pub table: &'a str,
    /// [`OP_PUT`](crate::db::journal::OP_PUT) or [`OP_DELETE`](crate::db::journal::OP_DELETE).
    pub op: u8,
    /// The encoded row (put) or primary key (delete).
    pub data: &'a [u8],
}

/// A decoded log record, borrowing from the segment's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// Its sequence number.
    pub seq: u64,
    /// The logical time it committed at, in milliseconds.
    pub time: u64,
    /// The module whose reducer committed it.
    pub module: &'a str,
    /// The reducer.
    pub reducer: &'a str,
    /// Its encoded arguments.
    pub args: &'a [u8],
    /// What it changed, per module.
    pub groups: Vec<ChangeGroup<'a>>,
    /// The node id of the peer whose call it ran; `None` for a call made on this node (and
    /// in records written before callers were kept).
    pub caller: Option<&'a str>,
    /// The call's place in the node's sequence of invocations; `None` for host bookkeeping
    /// and in records written before invocations were kept.
    pub invocation: Option<u64>,
}

/// The changes of one module in a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeGroup<'a> {
    /// The module.
    pub module: &'a str,
    /// Its changes, in order.
    pub changes: Vec<Change<'a>>,
}

fn str_field<'a>(r: &mut Reader<'a>) -> Option<&'a str> {
    let n = r.length(1).ok()?;
    std::str::from_utf8(r.bytes(n).ok()?).ok()
}

fn bytes_field<'a>(r: &mut Reader<'a>) -> Option<&'a [u8]> {
    let n = r.length(1).ok()?;
    r.bytes(n).ok()
}

/// Decodes a record payload (its checksum already verified).
pub fn parse_record(payload: &[u8]) -> Option<Record<'_>> {
    let mut r = Reader::new(payload);
    let seq = r.varint(64).ok()?;
    let time = r.varint(64).ok()?;
    let module = str_field(&mut r)?;
    let reducer = str_field(&mut r)?;
    let args = bytes_field(&mut r)?;
    let group_count = r.length(2).ok()?;
    let mut groups = Vec::with_capacity(group_count);
    for _ in 0..group_count {
        let module = str_field(&mut r)?;
        let count = r.length(3).ok()?;
        let mut changes = Vec::with_capacity(count);
        for _ in 0..count {
            let table = str_field(&mut r)?;
            let op = r.byte().ok()?;
            let data = bytes_field(&mut r)?;
            changes.push(Change { table, op, data });
        }
        groups.push(ChangeGroup { module, changes });
    }
    // Absent from records written before callers were kept.
    let caller = match r.remaining() {
        0 => None,
        _ => match r.byte().ok()? {
            0 => None,
            1 => Some(str_field(&mut r)?),
            _ => return None,
        },
    };
    // Absent from records written before invocations were kept.
    let invocation = match r.remaining() {
        0 => None,
        _ => match r.byte().ok()? {
            0 => None,
            1 => Some(r.varint(64).ok()?),
            _ => return None,
        },
    };
    r.finish().ok()?;
    Some(Record {
        seq,
        time,
        module,
        reducer,
        args,
        groups,
        caller,
        invocation,
    })
}

/// Where framing of a segment stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentEnd {
    /// Every byte belonged to a complete record.
    Clean,
    /// An incomplete record starts at this offset and runs to the end of the file.
    TornTail {
        /// Offset of the incomplete record.
        offset: u64,
    },
    /// A record at this offset fails its checksum (or framing) and bytes follow it.
    Corrupt {
        /// Offset of the bad record.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Splits a segment into record payloads; stops at the first damaged record.
pub fn frame_records(bytes: &[u8]) -> (Vec<(u64, &[u8])>, SegmentEnd) {
    let mut records = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < HEADER_LEN {
            return (records, SegmentEnd::TornTail { offset: at as u64 });
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if len == 0 {
            // No record is empty. Zeros to the end of the file are space the file system
            // allocated for a write that never reached the disk (a crash, or pages dropped
            // after a failed fsync): a torn tail. Anything else is damage.
            return if rest.iter().all(|&b| b == 0) {
                (records, SegmentEnd::TornTail { offset: at as u64 })
            } else {
                (
                    records,
                    SegmentEnd::Corrupt {
                        offset: at as u64,
                        reason: "empty record".into(),
                    },
                )
            };
        }
        if len > MAX_RECORD_LEN {
            return (
                records,
                SegmentEnd::Corrupt {
                    offset: at as u64,
                    reason: format!("record length {len} exceeds {MAX_RECORD_LEN}"),
                },
            );
        }
        let end = HEADER_LEN + len;
        if rest.len() < end {
            return (records, SegmentEnd::TornTail { offset: at as u64 });
        }
        let payload = &rest[HEADER_LEN..end];
        if crc32c::crc32c(payload) != crc {
            // A record cut short by a crash is the last thing in the file; a bad checksum with
            // data after it means the log was damaged.
            return if end == rest.len() {
                (records, SegmentEnd::TornTail { offset: at as u64 })
            } else {
                (
                    records,
                    SegmentEnd::Corrupt {
                        offset: at as u64,
                        reason: "checksum mismatch".into(),
                    },
                )
            };
        }
        records.push((at as u64, payload));
        at += end;
    }
    (records, SegmentEnd::Clean)
}

/// The file name of the segment whose first record is `seq`.
pub fn segment_name(seq: u64) -> String {
    format!("{seq:020}.log")
}

/// Segments in a log directory, ordered by first sequence number.
pub fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StorageError> {
    let mut segments = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(seq) = name
            .strip_suffix(".log")
            .and_then(|s| s.parse::<u64>().ok())
        {
            segments.push((seq, entry.path()));
        }
    }
    segments.sort();
    Ok(segments)
}

/// Appends to the newest segment and rotates at a size bound.
///
/// The writer keeps every buffer appended since the last successful fsync. After any failed
/// write or fsync it is *halted*: it writes nothing more (a later fsync that "succeeds" may
/// cover a hole, as the kernel can drop dirty pages after reporting an error) until
/// [`LogWriter::recover`] has cut the segment back to its last durable length, written the kept
/// buffers again, fsynced and verified them.
#[derive(Debug)]
pub struct LogWriter {
    dir: PathBuf,
    file: File,
    path: PathBuf,
    /// Bytes of this segment written (or, when halted, meant to be).
    len: u64,
    /// Bytes of this segment made durable by the last successful fsync.
    synced_len: u64,
    /// The buffers appended since that fsync, in order: `synced_len` plus their lengths is
    /// `len`.
    unsynced: Vec<Vec<u8>>,
    /// A buffer whose bytes are durable, kept for reuse.
    spare: Option<Vec<u8>>,
    segment_bytes: u64,
    /// The next segment's first record, when this one is full but could not be closed yet.
    rotate_to: Option<u64>,
    /// A write or fsync failed and [`LogWriter::recover`] has not succeeded since.
    halted: bool,
    /// The segment and its durable length, for readers on other threads.
    durable: DurableEnd,
}

/// The end of what is durable in the log: the segment being written and its bytes that the
/// last fsync covered (earlier segments are durable whole). Shared with history readers.
pub type DurableEnd = std::sync::Arc<std::sync::Mutex<(PathBuf, u64)>>;

impl LogWriter {
    /// Opens (or creates) the segment at `path` for appending; it must already hold exactly
    /// `len` valid, durable bytes.
    pub fn open(
        dir: &Path,
        path: PathBuf,
        len: u64,
        segment_bytes: u64,
    ) -> Result<LogWriter, StorageError> {
        let file = open_append(dir, &path)?;
        let durable = std::sync::Arc::new(std::sync::Mutex::new((path.clone(), len)));
        Ok(LogWriter {
            dir: dir.to_path_buf(),
            file,
            path,
            len,
            synced_len: len,
            unsynced: Vec::new(),
            spare: None,
            segment_bytes,
            rotate_to: None,
            halted: false,
            durable,
        })
    }

    /// Whether a failed write or fsync halted the writer.
    pub fn is_halted(&self) -> bool {
        self.halted
    }

    /// Appends framed records; `next_seq` is the sequence number after the last of them, used
    /// to name the next segment when this one is full. The buffer is kept until the fsync
    /// that covers it (then offered back by [`LogWriter::reclaim`]); when the writer is halted
    /// it is only kept, to be written by [`LogWriter::recover`].
    pub fn append(&mut self, records: Vec<u8>, next_seq: u64) -> Result<(), StorageError> {
        if records.is_empty() {
            self.spare.get_or_insert(records);
            return Ok(());
        }
        self.len += records.len() as u64;
        let written = if self.halted {
            Err(self.halted_error())
        } else {
            write_records(&mut self.file, &records).map_err(|e| StorageError::io(&self.path, e))
        };
        self.unsynced.push(records);
        if let Err(e) = written {
            self.halted = true;
            if self.len >= self.segment_bytes {
                self.rotate_to = Some(next_seq);
            }
            return Err(e);
        }
        if self.len >= self.segment_bytes {
            self.rotate(next_seq)?;
        }
        Ok(())
    }

    /// Makes everything appended so far durable.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        if self.halted {
            return Err(self.halted_error());
        }
        if self.unsynced.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.sync_data() {
            self.halted = true;
            return Err(StorageError::io(&self.path, e));
        }
        self.synced(self.len);
        Ok(())
    }

    /// Notes that the first `len` bytes are durable: the kept buffers are not needed any more
    /// (one allocation is kept for the journal, the others are freed).
    fn synced(&mut self, len: u64) {
        self.synced_len = len;
        self.publish_durable();
        if let Some(mut buffer) = self.unsynced.pop() {
            buffer.clear();
            self.spare = Some(buffer);
        }
        self.unsynced.clear();
    }

    /// Tells readers on other threads where the durable log ends now.
    fn publish_durable(&self) {
        let mut durable = self
            .durable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if durable.0 != self.path {
            durable.0 = self.path.clone();
        }
        durable.1 = self.synced_len;
    }

    /// Where the durable log ends, shared: it follows every fsync and rotation.
    pub fn durable_end(&self) -> DurableEnd {
        self.durable.clone()
    }

    /// An emptied buffer to reuse, if a synced one is left.
    pub fn reclaim(&mut self) -> Option<Vec<u8>> {
        self.spare.take()
    }

    fn sync_data(&mut self) -> std::io::Result<()> {
        if let Some(fault) = faults::injected(faults::LOG_FSYNC) {
            // Dirty pages may be dropped after a failed fsync: what was written since the last
            // good one is gone.
            let lost = vec![0u8; (self.len - self.synced_len) as usize];
            if let Ok(f) = OpenOptions::new().write(true).open(&self.path) {
                use std::os::unix::fs::FileExt;
                let _ = f.write_all_at(&lost, self.synced_len);
            }
            return Err(fault.into_error());
        }
        self.file.sync_data()
    }

    fn halted_error(&self) -> StorageError {
        StorageError::Halted {
            path: self.path.clone(),
        }
    }

    /// Closes this segment (durably) and starts `log/<next_seq>.log`.
    pub fn rotate(&mut self, next_seq: u64) -> Result<(), StorageError> {
        if let Err(e) = self.sync() {
            self.rotate_to = Some(next_seq);
            return Err(e);
        }
        let path = self.dir.join(segment_name(next_seq));
        if path == self.path {
            return Ok(());
        }
        match open_append(&self.dir, &path) {
            Ok(file) => {
                self.file = file;
                self.path = path;
                self.len = 0;
                self.synced_len = 0;
                self.rotate_to = None;
                self.publish_durable();
                Ok(())
            }
            Err(e) => {
                // The records are durable in this segment; only the next one is not there.
                self.halted = true;
                self.rotate_to = Some(next_seq);
                Err(e)
            }
        }
    }

    /// Makes storage good again after a fault: cuts this segment back to its last durable
    /// length, writes every kept buffer again through a new file handle, fsyncs, reads the
    /// segment back and checks that it frames cleanly to the expected length, fsyncs the
    /// directory, and finishes a rotation that failed. Until it succeeds the writer stays
    /// halted; it can be called again.
    pub fn recover(&mut self) -> Result<(), StorageError> {
        let path = self.path.clone();
        let io = |e| StorageError::io(&path, e);
        {
            let f = OpenOptions::new()
                .write(true)
                .open(&self.path)
                .map_err(io)?;
            f.set_len(self.synced_len).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        let mut file = open_append(&self.dir, &self.path)?;
        for buffer in &self.unsynced {
            write_records(&mut file, buffer).map_err(io)?;
        }
        self.file = file;
        let expected = self.synced_len + self.unsynced.iter().map(|b| b.len() as u64).sum::<u64>();
        self.len = expected;
        self.sync_data().map_err(io)?;
        let bytes = read(&self.path)?;
        let (_, end) = frame_records(&bytes);
        if bytes.len() as u64 != expected || end != SegmentEnd::Clean {
            return Err(StorageError::Io {
                path: self.path.clone(),
                source: std::io::Error::other(format!(
                    "verification after rewriting: {} bytes ({expected} expected), {end:?}",
                    bytes.len()
                )),
            });
        }
        self.synced(expected);
        self.halted = false;
        if let Some(next_seq) = self.rotate_to.take() {
            self.rotate(next_seq)?;
        }
        Ok(())
    }

    /// Bytes of the current segment known durable (the last fsync covered them).
    pub fn synced_len(&self) -> u64 {
        self.synced_len
    }

    /// The segment being appended to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Opens a segment for appending (creating it) and makes its directory entry durable.
fn open_append(dir: &Path, path: &Path) -> Result<File, StorageError> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| StorageError::io(path, e))?;
    crate::disk::fsutil::sync_dir(dir).map_err(|e| StorageError::io(dir, e))?;
    Ok(file)
}

/// Writes one buffer of records, through the log's fault-injection point.
fn write_records(file: &mut File, records: &[u8]) -> std::io::Result<()> {
    faults::write_all(faults::LOG_WRITE, file, records)
}

/// Truncates a segment to `len` bytes, durably.
pub fn truncate(path: &Path, len: u64) -> Result<(), StorageError> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| StorageError::io(path, e))?;
    f.set_len(len).map_err(|e| StorageError::io(path, e))?;
    f.sync_all().map_err(|e| StorageError::io(path, e))
}

/// Reads a whole file.
pub fn read(path: &Path) -> Result<Vec<u8>, StorageError> {
    fs::read(path).map_err(|e| StorageError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_le_bytes().to_vec();
        out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn framing_tells_torn_tails_from_corruption() {
        let mut log = frame(b"first");
        log.extend(frame(b"second"));
        let (records, end) = frame_records(&log);
        assert_eq!(records.len(), 2);
        assert_eq!(end, SegmentEnd::Clean);

        // Cut anywhere inside the last record: a torn tail at its start.
        let second_at = frame(b"first").len() as u64;
        for cut in second_at as usize + 1..log.len() {
            let (records, end) = frame_records(&log[..cut]);
            assert_eq!(records.len(), 1);
            assert_eq!(end, SegmentEnd::TornTail { offset: second_at });
        }

        // A flipped bit in the first record, with the second intact after it: corruption.
        let mut damaged = log.clone();
        damaged[HEADER_LEN + 1] ^= 0x10;
        let (records, end) = frame_records(&damaged);
        assert!(records.is_empty());
        assert!(matches!(end, SegmentEnd::Corrupt { offset: 0, .. }));

        // Zeros after the last record (allocated, never written): a torn tail; a zero header
        // with data after it: damage.
        let mut zeroed = log.clone();
        zeroed.extend([0u8; 100]);
        let end_of_records = log.len() as u64;
        assert_eq!(
            frame_records(&zeroed).1,
            SegmentEnd::TornTail {
                offset: end_of_records
            }
        );
        zeroed.extend(frame(b"third"));
        assert!(matches!(
            frame_records(&zeroed).1,
            SegmentEnd::Corrupt { reason, .. } if reason == "empty record"
        ));

        // A flipped bit in the last record's payload reads as a torn write.
        let mut damaged = log;
        let last = damaged.len() - 1;
        damaged[last] ^= 0x01;
        let (records, end) = frame_records(&damaged);
        assert_eq!(records.len(), 1);
        assert_eq!(end, SegmentEnd::TornTail { offset: second_at });
    }

    #[test]
    fn records_read_with_and_without_their_closing_fields() {
        use interstice_abi::codec::{write_str, write_varint};
        // seq 7, time 9, `m.r(args)`, one group with one change.
        let mut head = Vec::new();
        write_varint(&mut head, 7);
        write_varint(&mut head, 9);
        write_str(&mut head, "m");
        write_str(&mut head, "r");
        write_varint(&mut head, 1);
        head.push(0xAA);
        write_varint(&mut head, 1);
        write_str(&mut head, "m");
        write_varint(&mut head, 1);
        write_str(&mut head, "t");
        head.push(crate::db::journal::OP_DELETE);
        write_varint(&mut head, 1);
        head.push(0x01);

        // Written before callers and invocations were kept.
        let old = parse_record(&head).expect("an old record");
        assert_eq!((old.seq, old.caller, old.invocation), (7, None, None));
        // Written before invocations were kept.
        let mut with_caller = head.clone();
        crate::db::journal::write_caller(&mut with_caller, Some("peer"), None);
        with_caller.pop();
        let record = parse_record(&with_caller).expect("a record with a caller");
        assert_eq!((record.caller, record.invocation), (Some("peer"), None));
        // Today's: both, and host bookkeeping's (neither).
        for (caller, invocation) in [(Some("peer"), Some(300)), (None, None), (None, Some(0))] {
            let mut payload = head.clone();
            crate::db::journal::write_caller(&mut payload, caller, invocation);
            let record = parse_record(&payload).expect("a record");
            assert_eq!((record.caller, record.invocation), (caller, invocation));
            assert_eq!(record.groups.len(), 1);
        }
        // An unknown tag is damage, not a guess.
        let mut bad = head;
        crate::db::journal::write_caller(&mut bad, None, None);
        *bad.last_mut().unwrap() = 7;
        assert!(parse_record(&bad).is_none());
    }
}
