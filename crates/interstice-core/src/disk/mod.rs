//! The file system as the engine relies on it: atomic, durable writes ([`fsutil`]) and the
//! named points where a test can make a write, an fsync or a rename fail ([`faults`]).
//!
//! Below both the storage layer and the sandbox (a guest's file writes and the compiled-module
//! cache use the same atomic write), so neither has to reach into the other.

pub mod faults;
pub mod fsutil;
