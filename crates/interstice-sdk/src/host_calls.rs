//! Calls into the node that are not tied to a table.

use crate::ffi;
use interstice_abi::protocol::LogLevel;

fn log_at(level: LogLevel, message: &str) {
    // SAFETY: the pointer and length describe a live UTF-8 string for the duration of the call.
    unsafe { ffi::log(level as u32, message.as_ptr(), message.len()) }
}

/// Logs a message through the node's log, tagged with the module's name.
pub fn log(message: &str) {
    log_at(LogLevel::Info, message)
}

/// Logs a warning.
pub fn warn(message: &str) {
    log_at(LogLevel::Warn, message)
}

/// Logs an error.
pub fn error(message: &str) {
    log_at(LogLevel::Error, message)
}

/// Logs debugging detail.
pub fn debug(message: &str) {
    log_at(LogLevel::Debug, message)
}
