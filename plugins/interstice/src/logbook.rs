//! The log lines a node keeps for `interstice logs`: the newest of each module, numbered so
//! that a follower asks only for what it has not seen. They are the module's own lines and the
//! node's lines about it (a reducer that failed and why, a version published), the latter
//! starting with [`NODE_PREFIX`].

use bevy::prelude::*;
use interstice_core::GuestLog;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// Lines kept per module (the oldest go first).
pub const LINES_PER_MODULE: usize = 1_000;
/// Modules whose lines are kept; past it, the module whose newest line is oldest is dropped
/// (modules removed long ago, usually).
pub const MODULES_KEPT: usize = 256;

/// How the node's own lines about a module begin, to tell them from the module's.
pub const NODE_PREFIX: &str = "node: ";

/// One kept line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Its number: increasing across every module of the node, from 1.
    pub seq: u64,
    /// 0 error … 4 trace.
    pub level: u32,
    /// The message.
    pub message: String,
    /// When the node took it, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// The kept lines, by module.
#[derive(Resource, Debug, Default)]
pub struct LogBook {
    last: u64,
    modules: BTreeMap<Arc<str>, VecDeque<LogEntry>>,
}

impl LogBook {
    /// Keeps a line of the node's about `module` (prefixed with [`NODE_PREFIX`]).
    pub fn push_node(&mut self, module: &str, level: u32, message: &str) {
        self.push(&GuestLog {
            module: Arc::from(module),
            level,
            message: format!("{NODE_PREFIX}{message}"),
        });
    }

    /// Keeps `line`.
    pub fn push(&mut self, line: &GuestLog) {
        self.last += 1;
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        if !self.modules.contains_key(&line.module) && self.modules.len() >= MODULES_KEPT {
            let stalest = self
                .modules
                .iter()
                .min_by_key(|(_, lines)| lines.back().map_or(0, |l| l.seq))
                .map(|(name, _)| name.clone());
            if let Some(name) = stalest {
                self.modules.remove(&name);
            }
        }
        let lines = self.modules.entry(line.module.clone()).or_default();
        if lines.len() == LINES_PER_MODULE {
            lines.pop_front();
        }
        lines.push_back(LogEntry {
            seq: self.last,
            level: line.level,
            message: line.message.clone(),
            at_ms,
        });
    }

    /// The number of the newest line kept (0 before any).
    pub fn last(&self) -> u64 {
        self.last
    }

    /// Up to `limit` lines numbered after `after`, of `module` or of every module, oldest
    /// first.
    pub fn after(
        &self,
        module: Option<&str>,
        after: u64,
        limit: usize,
    ) -> Vec<(Arc<str>, &LogEntry)> {
        let mut lines: Vec<(Arc<str>, &LogEntry)> = self
            .modules
            .iter()
            .filter(|(name, _)| module.is_none_or(|m| &***name == m))
            .flat_map(|(name, lines)| {
                // Lines are in order: skip to the first one after `after`.
                let start = lines.partition_point(|l| l.seq <= after);
                lines.range(start..).map(move |l| (name.clone(), l))
            })
            .collect();
        lines.sort_by_key(|(_, l)| l.seq);
        lines.truncate(limit);
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(module: &str, message: &str) -> GuestLog {
        GuestLog {
            module: module.into(),
            level: 2,
            message: message.into(),
        }
    }

    #[test]
    fn lines_are_numbered_kept_per_module_and_read_after_a_number() {
        let mut book = LogBook::default();
        for i in 0..(LINES_PER_MODULE + 5) {
            book.push(&line("a", &format!("a{i}")));
        }
        book.push(&line("b", "b0"));
        assert_eq!(book.last(), LINES_PER_MODULE as u64 + 6);
        let a = book.after(Some("a"), 0, usize::MAX);
        assert_eq!(a.len(), LINES_PER_MODULE, "the oldest went");
        assert_eq!(a[0].1.message, "a5");
        let newest = book.after(None, book.last() - 2, 10);
        let messages: Vec<&str> = newest.iter().map(|(_, l)| l.message.as_str()).collect();
        assert_eq!(
            messages,
            [format!("a{}", LINES_PER_MODULE + 4).as_str(), "b0"]
        );
        assert!(book.after(Some("c"), 0, 10).is_empty());
    }
}
