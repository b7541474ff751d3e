//! Fault injection: named points in the storage layer where a test can make a write, an fsync,
//! a rename or a directory fsync fail, to check that no fault turns into a lost acknowledged
//! transaction.
//!
//! The points are the `fail` crate's failpoints, compiled in only with this crate's
//! `failpoints` feature (without it [`injected`] is an inlined `None`). A test configures them
//! with `fail::cfg(point, actions)` or, for a node process, the `FAILPOINTS` environment
//! variable (`FAILPOINTS="log-fsync=20*off->1*return(eio)->off"`: the 21st fsync of the log
//! fails once). The argument of `return` picks the error:
//!
//! | argument  | what happens                                                            |
//! |-----------|-------------------------------------------------------------------------|
//! | `eio`     | the operation fails with EIO (the default)                              |
//! | `enospc`  | the operation fails with ENOSPC ("No space left on device")            |
//! | `short`   | a write stores only the first half of its bytes, then fails with ENOSPC |
//!
//! A failed log fsync also zeroes the bytes written since the last good fsync, as the kernel
//! may drop those dirty pages after reporting the error ("fsyncgate"): code that trusts a
//! later fsync would acknowledge transactions that are not on disk.

use std::io;

/// Every point, as named in `fail::cfg` and `FAILPOINTS`.
pub const POINTS: &[&str] = &[
    LOG_WRITE, LOG_FSYNC, FILE_WRITE, FILE_FSYNC, RENAME, DIR_FSYNC,
];

/// Appending records to the log segment.
pub const LOG_WRITE: &str = "log-write";
/// The fsync that makes appended records durable (also the one closing a full segment).
pub const LOG_FSYNC: &str = "log-fsync";
/// Writing the temporary file of an atomic replace (snapshots, installed modules).
pub const FILE_WRITE: &str = "file-write";
/// The fsync of that temporary file.
pub const FILE_FSYNC: &str = "file-fsync";
/// Renaming it over its destination.
pub const RENAME: &str = "rename";
/// The fsync of a directory that makes created, renamed or removed entries durable.
pub const DIR_FSYNC: &str = "dir-fsync";

/// A fault a point was told to inject.
#[derive(Debug)]
pub enum Injected {
    /// Fail with this error before doing anything.
    Fail(io::Error),
    /// Write half of the bytes, then fail with this error.
    Short(io::Error),
}

impl Injected {
    /// The error, whatever the kind of fault.
    pub fn into_error(self) -> io::Error {
        match self {
            Injected::Fail(e) | Injected::Short(e) => e,
        }
    }
}

const EIO: i32 = 5;
const ENOSPC: i32 = 28;

/// The fault `argument` (a failpoint's `return(argument)`) names.
pub fn parse(argument: Option<&str>) -> Injected {
    match argument.map(str::trim) {
        Some("enospc") => Injected::Fail(io::Error::from_raw_os_error(ENOSPC)),
        Some("short") => Injected::Short(io::Error::from_raw_os_error(ENOSPC)),
        _ => Injected::Fail(io::Error::from_raw_os_error(EIO)),
    }
}

/// The fault configured at `point` now, if any (each call is one hit of the point).
#[cfg(feature = "failpoints")]
pub fn injected(point: &str) -> Option<Injected> {
    fail::fail_point!(point, |argument: Option<String>| Some(parse(
        argument.as_deref()
    )));
    None
}

/// The fault configured at `point` now: never, without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn injected(_point: &str) -> Option<Injected> {
    None
}

/// Writes `bytes` through `point`: all of them, none (a failed write) or the first half (a
/// short one) before the configured error.
pub fn write_all(point: &str, out: &mut impl io::Write, bytes: &[u8]) -> io::Result<()> {
    match injected(point) {
        None => out.write_all(bytes),
        Some(Injected::Fail(e)) => Err(e),
        Some(Injected::Short(e)) => {
            out.write_all(&bytes[..bytes.len() / 2])?;
            Err(e)
        }
    }
}

/// Fails with the fault configured at `point`, if any (for operations that cannot be short).
pub fn check(point: &str) -> io::Result<()> {
    match injected(point) {
        Some(fault) => Err(fault.into_error()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_name_the_error() {
        assert!(
            matches!(parse(Some("enospc")), Injected::Fail(e) if e.kind() == io::ErrorKind::StorageFull)
        );
        assert!(matches!(parse(Some("short")), Injected::Short(_)));
        assert!(matches!(parse(None), Injected::Fail(e) if e.raw_os_error() == Some(EIO)));
    }
}
