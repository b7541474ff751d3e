//! Whether storage can be trusted with the next commit, and what went wrong when it cannot.
//!
//! A failed write or fsync of the log *halts* the log: the node acknowledges nothing more, runs
//! no new reducer call (callers get [`CallError::Unavailable`](crate::CallError::Unavailable),
//! "nothing ran, try again"), keeps answering reads and queries, and retries on its own every
//! [`RETRY_FIRST`] doubling up to [`RETRY_MAX`]: a retry cuts the log back to its last durable
//! byte, writes again what was committed since and verifies it. The first retry that succeeds
//! resumes the node. A failed snapshot does not halt anything (the log still holds every
//! commit); it is tried again after [`SNAPSHOT_RETRY_FIRST`] doubling up to
//! [`SNAPSHOT_RETRY_MAX`], not every frame.

use std::fmt;
use std::time::{Duration, Instant};

/// First wait before retrying a halted log.
pub const RETRY_FIRST: Duration = Duration::from_millis(250);
/// Longest wait between two retries of a halted log.
pub const RETRY_MAX: Duration = Duration::from_secs(5);
/// First wait before trying a failed snapshot again.
pub const SNAPSHOT_RETRY_FIRST: Duration = Duration::from_secs(10);
/// Longest wait between two snapshot attempts after failures.
pub const SNAPSHOT_RETRY_MAX: Duration = Duration::from_secs(600);

/// What kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The disk (or the user's quota) is full: ENOSPC or EDQUOT.
    Full,
    /// Any other I/O error (EIO, a failed fsync, a rename refused...).
    Io,
}

impl FaultKind {
    /// The kind of `error`.
    pub fn of(error: &std::io::Error) -> FaultKind {
        const EDQUOT: i32 = 122;
        if error.kind() == std::io::ErrorKind::StorageFull
            || error.kind() == std::io::ErrorKind::QuotaExceeded
            || error.raw_os_error() == Some(EDQUOT)
        {
            FaultKind::Full
        } else {
            FaultKind::Io
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultKind::Full => "storage full",
            FaultKind::Io => "storage error",
        })
    }
}

/// One fault, as the operator sees it.
#[derive(Debug, Clone)]
pub struct Fault {
    /// The operation that failed ("log write", "log fsync", "snapshot", ...).
    pub operation: &'static str,
    /// Full disk or other error.
    pub kind: FaultKind,
    /// The error, with the file it concerns.
    pub error: String,
    /// When it first happened.
    pub since: Instant,
    /// Retries that failed since.
    pub retries: u32,
    /// When the next retry is due.
    pub(crate) next_try: Instant,
    /// The wait after the next failed retry.
    pub(crate) backoff: Duration,
}

impl Fault {
    pub(crate) fn new(
        operation: &'static str,
        kind: FaultKind,
        error: String,
        first_wait: Duration,
    ) -> Fault {
        let now = Instant::now();
        Fault {
            operation,
            kind,
            error,
            since: now,
            retries: 0,
            next_try: now + first_wait,
            backoff: first_wait,
        }
    }

    /// Whether a retry is due.
    pub(crate) fn due(&self) -> bool {
        Instant::now() >= self.next_try
    }

    /// Notes a failed retry: the next waits twice as long, up to `max`.
    pub(crate) fn failed_again(&mut self, error: String, kind: FaultKind, max: Duration) {
        self.retries += 1;
        self.error = error;
        self.kind = kind;
        self.backoff = (self.backoff * 2).min(max);
        self.next_try = Instant::now() + self.backoff;
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} failed {:.0?} ago, {} retries): {}",
            self.kind,
            self.operation,
            self.since.elapsed(),
            self.retries,
            self.error
        )
    }
}

/// The health of a node's storage.
#[derive(Debug, Clone, Default)]
pub struct StorageHealth {
    /// Why the log is halted: no reducer call runs while this is set.
    pub log: Option<Fault>,
    /// Why the last snapshot failed (commits go on; the log grows until one succeeds).
    pub snapshot: Option<Fault>,
}

impl StorageHealth {
    /// Whether commits can be made durable now.
    pub fn accepts_writes(&self) -> bool {
        self.log.is_none()
    }

    /// Why a reducer call is refused now, for its caller; `None` when calls run.
    pub fn refusal(&self) -> Option<String> {
        self.log.as_ref().map(|fault| {
            format!(
                "{fault}; the node refuses writes until storage recovers (it retries by itself; \
                 reads and queries still work)"
            )
        })
    }
}

impl fmt::Display for StorageHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.log, &self.snapshot) {
            (None, None) => write!(f, "ok"),
            (Some(log), _) => write!(f, "refusing writes: {log}"),
            (None, Some(snapshot)) => {
                write!(
                    f,
                    "ok, but snapshots are failing (the log keeps growing): {snapshot}"
                )
            }
        }
    }
}
