//! Published event streams: what other nodes subscribe to.
//!
//! Every table of a public module has a stream of its committed events (insert, update,
//! delete — the net change of each row per transaction, as local subscribers see it), numbered
//! 1, 2, 3, ... The node keeps the newest events of each stream (bounded in count and bytes) so
//! a subscriber that lost its connection resumes from the first number it has not seen.
//!
//! Events become readable only once their transaction is durable: they are appended as
//! *pending* at commit and [released](PublicationLog::release) by the commit path after the
//! fsync that covers them, so no peer ever sees an event a crash could take back.
//!
//! For logged and stateful tables the numbering survives restarts: snapshots keep each
//! stream's next number and its retained events, and replaying the log after a snapshot
//! appends the same events with the same numbers (both sides derive events from the
//! transaction's net change, see [`commit`](crate::commit)). Ephemeral tables start
//! a new stream at every start; a subscriber sees that as a restart of the numbering.

use interstice_abi::TableEvent;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// Events kept per stream, at most.
pub const RETAINED_EVENTS: usize = 100_000;
/// Bytes of event data kept per stream, at most.
pub const RETAINED_BYTES: usize = 32 * 1024 * 1024;

/// One event of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedEvent {
    /// Its number in the stream (from 1).
    pub seq: u64,
    /// What happened.
    pub kind: TableEvent,
    /// The encoded row, or the old then the new row for updates — exactly the arguments a
    /// subscriber reducer takes.
    pub rows: Vec<u8>,
}

/// A stream's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamState {
    /// The number the next event gets.
    pub next_seq: u64,
    /// The retained events, oldest first (released and pending).
    pub retained: VecDeque<PublishedEvent>,
    /// Events numbered below this are released (durable).
    pub released: u64,
    bytes: usize,
}

impl StreamState {
    fn fresh() -> StreamState {
        StreamState {
            next_seq: 1,
            released: 1,
            ..StreamState::default()
        }
    }

    fn push(&mut self, kind: TableEvent, rows: Vec<u8>) {
        self.bytes += rows.len();
        self.retained.push_back(PublishedEvent {
            seq: self.next_seq,
            kind,
            rows,
        });
        self.next_seq += 1;
        while self.retained.len() > RETAINED_EVENTS
            || (self.bytes > RETAINED_BYTES && self.retained.len() > 1)
        {
            if let Some(old) = self.retained.pop_front() {
                self.bytes -= old.rows.len();
            }
        }
    }

    /// The oldest retained number (`next_seq` when nothing is retained).
    pub fn first_retained(&self) -> u64 {
        self.retained.front().map_or(self.next_seq, |e| e.seq)
    }
}

/// What a reader gets from [`PublicationLog::read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Events from `first` on (possibly none yet: [`PublicationLog::on_release`] says when
    /// more are released).
    Events {
        /// The number of the first event returned (= the number asked for, unless the
        /// retained history starts later or the stream restarted).
        first: u64,
        /// The events, in order.
        events: Vec<PublishedEvent>,
    },
    /// No such stream (the module is not public, or has no such table).
    NoStream,
}

type Waker = Arc<dyn Fn() + Send + Sync>;

/// Every stream of the node, shared between the engine (which appends and releases) and the
/// network (which reads). Cloning shares it.
#[derive(Clone, Default)]
pub struct PublicationLog {
    streams: Arc<Mutex<BTreeMap<(String, String), StreamState>>>,
    waker: Arc<Mutex<Option<Waker>>>,
}

impl std::fmt::Debug for PublicationLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicationLog")
            .field("streams", &self.lock().len())
            .finish()
    }
}

impl PublicationLog {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<(String, String), StreamState>> {
        // A panic while holding the lock cannot leave a stream half-updated in a way that
        // matters more than losing the node: keep serving.
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates the stream of a public table (no-op when it exists).
    pub fn open_stream(&self, module: &str, table: &str) {
        self.lock()
            .entry((module.to_string(), table.to_string()))
            .or_insert_with(StreamState::fresh);
    }

    /// Drops every stream of a module (it was removed).
    pub fn close_module(&self, module: &str) {
        self.lock().retain(|(m, _), _| m != module);
    }

    /// Whether `module` publishes anything.
    pub fn publishes(&self, module: &str) -> bool {
        self.lock()
            .range((module.to_string(), String::new())..)
            .next()
            .is_some_and(|((m, _), _)| m == module)
    }

    /// Appends a pending event to a stream (ignored when the stream does not exist).
    pub fn append(&self, module: &str, table: &str, kind: TableEvent, rows: Vec<u8>) {
        if let Some(stream) = self
            .lock()
            .get_mut(&(module.to_string(), table.to_string()))
        {
            stream.push(kind, rows);
        }
    }

    /// Makes every pending event readable (their transactions are durable) and wakes readers.
    pub fn release(&self) {
        let mut any = false;
        for stream in self.lock().values_mut() {
            if stream.released != stream.next_seq {
                stream.released = stream.next_seq;
                any = true;
            }
        }
        if any {
            let waker = self.waker.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some(waker) = waker {
                waker();
            }
        }
    }

    /// Sets what to call when events are released (the network wakes its subscription tasks).
    pub fn on_release(&self, waker: impl Fn() + Send + Sync + 'static) {
        *self.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(waker));
    }

    /// Up to `max` released events (and, past the first, at most `max_bytes` of rows) of a
    /// stream from number `from` on. `from = 0` means "from
    /// now": the next event committed. Asking for numbers the stream no longer retains (or,
    /// after an ephemeral stream restarted, numbers it has not reached) starts at the oldest
    /// retained one; `first` tells where.
    pub fn read(
        &self,
        module: &str,
        table: &str,
        from: u64,
        max: usize,
        max_bytes: usize,
    ) -> ReadOutcome {
        let streams = self.lock();
        let Some(stream) = streams.get(&(module.to_string(), table.to_string())) else {
            return ReadOutcome::NoStream;
        };
        let oldest = stream.first_retained();
        let first = if from == 0 {
            stream.released
        } else if from < oldest || from > stream.released {
            oldest.min(stream.released)
        } else {
            from
        };
        let skip = first.saturating_sub(oldest) as usize;
        let mut bytes = 0usize;
        let events = stream
            .retained
            .iter()
            .skip(skip)
            .take_while(|e| e.seq < stream.released)
            .take(max)
            .take_while(|e| {
                bytes += e.rows.len();
                bytes == e.rows.len() || bytes <= max_bytes
            })
            .cloned()
            .collect();
        ReadOutcome::Events { first, events }
    }

    /// The stream's released head: the number the next readable event will get.
    pub fn head(&self, module: &str, table: &str) -> Option<u64> {
        self.lock()
            .get(&(module.to_string(), table.to_string()))
            .map(|s| s.released)
    }

    /// A copy of a stream's state (snapshots keep it).
    pub fn stream(&self, module: &str, table: &str) -> Option<StreamState> {
        self.lock()
            .get(&(module.to_string(), table.to_string()))
            .cloned()
    }

    /// Restores a stream from a snapshot: its next number and retained events, all released.
    pub fn restore(&self, module: &str, table: &str, next_seq: u64, events: Vec<PublishedEvent>) {
        let mut stream = StreamState::fresh();
        stream.next_seq = next_seq.max(1);
        stream.released = stream.next_seq;
        for event in events {
            stream.bytes += event.rows.len();
            stream.retained.push_back(event);
        }
        self.lock()
            .insert((module.to_string(), table.to_string()), stream);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_with(n: u64) -> PublicationLog {
        let log = PublicationLog::default();
        log.open_stream("m", "t");
        for i in 0..n {
            log.append("m", "t", TableEvent::Insert, vec![i as u8]);
        }
        log
    }

    fn seqs(outcome: &ReadOutcome) -> (u64, Vec<u64>) {
        match outcome {
            ReadOutcome::Events { first, events } => {
                (*first, events.iter().map(|e| e.seq).collect())
            }
            ReadOutcome::NoStream => panic!("no stream"),
        }
    }

    #[test]
    fn pending_events_are_invisible_until_released() {
        let log = log_with(3);
        assert_eq!(seqs(&log.read("m", "t", 1, 10, usize::MAX)), (1, vec![]));
        log.release();
        assert_eq!(
            seqs(&log.read("m", "t", 1, 10, usize::MAX)),
            (1, vec![1, 2, 3])
        );
        assert_eq!(seqs(&log.read("m", "t", 2, 1, usize::MAX)), (2, vec![2]));
        // Each row is one byte: a 2-byte budget stops after two events.
        assert_eq!(seqs(&log.read("m", "t", 1, 10, 2)), (1, vec![1, 2]));
        // The first event always fits.
        assert_eq!(seqs(&log.read("m", "t", 1, 10, 0)), (1, vec![1]));
        assert_eq!(seqs(&log.read("m", "t", 0, 10, usize::MAX)), (4, vec![]));
        log.append("m", "t", TableEvent::Delete, vec![]);
        assert_eq!(seqs(&log.read("m", "t", 4, 10, 1)), (4, vec![]));
    }

    #[test]
    fn reads_start_at_the_oldest_retained_event() {
        let log = PublicationLog::default();
        log.restore(
            "m",
            "t",
            11,
            vec![PublishedEvent {
                seq: 10,
                kind: TableEvent::Insert,
                rows: vec![],
            }],
        );
        assert_eq!(seqs(&log.read("m", "t", 3, 10, usize::MAX)), (10, vec![10]));
        // A number the stream never reached (an ephemeral stream restarted).
        assert_eq!(
            seqs(&log.read("m", "t", 500, 10, usize::MAX)),
            (10, vec![10])
        );
        assert_eq!(log.read("m", "x", 1, 1, 1), ReadOutcome::NoStream);
    }

    #[test]
    fn retention_is_bounded() {
        let log = log_with(RETAINED_EVENTS as u64 + 5);
        log.release();
        let state = log.stream("m", "t").unwrap_or_default();
        assert_eq!(state.retained.len(), RETAINED_EVENTS);
        assert_eq!(state.first_retained(), 6);
    }

    #[test]
    fn release_wakes_readers() {
        let log = log_with(1);
        let woken = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = woken.clone();
        log.on_release(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        log.release();
        log.release(); // nothing new: no wake-up
        assert_eq!(woken.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
