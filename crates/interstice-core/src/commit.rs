//! What a committed transaction changed, described once for those who follow it: the
//! published event streams ([`PublicationLog`]), local subscribers
//! ([`Subscriptions`](crate::events::Subscriptions)) and the game's table feed
//! ([`TableFeed`](crate::feed::TableFeed)).
//!
//! All of them see a transaction as its net change ([`db::changes`](crate::db::changes)): one
//! entry per row it touched, with the row as it was before; a stream rebuilt from the log
//! during recovery therefore numbers its events exactly as the live node did.

use crate::db::changes::{NetChange, RowChangeKind};
use crate::db::tx::Undo;
use crate::db::{Row, Table};
use crate::events::{EventInvocation, Subscriptions};
use crate::feed::{TableFeed, WriteLog};
use crate::publish::PublicationLog;
use interstice_abi::TableEvent;

/// Those who follow commits, each told of a module's committed transaction through
/// [`Followers::committed`].
pub(crate) struct Followers<'a> {
    /// The published event streams of public modules.
    pub publications: &'a PublicationLog,
    /// Local subscriber reducers, whose invocations go to `events`.
    pub subscriptions: &'a Subscriptions,
    pub events: &'a mut Vec<EventInvocation>,
    /// The game's table feed.
    pub feed: &'a mut TableFeed,
}

impl Followers<'_> {
    /// Hands what a committed transaction changed in one module (`undo`, with `tables` as they
    /// are after it) to each follower that watches the module; `written` is the feed's own
    /// record of the call's writes, when it kept one. The net change is listed once, on the
    /// first follower that needs it.
    pub(crate) fn committed(
        &mut self,
        module: &str,
        tables: &[Table],
        undo: &[Undo],
        written: Option<&mut WriteLog>,
    ) {
        let change = NetChange::new(tables, undo);
        if self.publications.publishes(module) {
            publish(self.publications, module, &change);
        }
        if self.subscriptions.watches_module(module) {
            self.subscriptions.events_of(module, &change, self.events);
        }
        if self.feed.watches_module(module) {
            self.feed.capture(module, &change, written);
        }
    }
}

/// Appends the events of one module's committed transaction to its streams, as pending.
fn publish(log: &PublicationLog, module: &str, change: &NetChange<'_>) {
    for row in change.rows() {
        let Some(table) = change.tables().get(row.table as usize) else {
            continue;
        };
        let mut rows = Vec::new();
        let kind = match row.kind {
            RowChangeKind::Insert => TableEvent::Insert,
            RowChangeKind::Update => TableEvent::Update,
            RowChangeKind::Delete => TableEvent::Delete,
        };
        for image in [row.before, row.after].into_iter().flatten() {
            table.encode_row(image, &mut rows);
        }
        log.append(module, &table.schema().name, kind, rows);
    }
}

/// The event a row's change makes, with its encoded rows; `None` when nothing changed.
pub(crate) fn event_of(
    table: &Table,
    before: Option<&[interstice_abi::Value]>,
    after: Option<&Row>,
) -> Option<(TableEvent, Vec<u8>)> {
    let mut rows = Vec::new();
    let kind = match (before, after) {
        (None, Some(new)) => {
            table.encode_row(new, &mut rows);
            TableEvent::Insert
        }
        (Some(old), None) => {
            table.encode_row(old, &mut rows);
            TableEvent::Delete
        }
        (Some(old), Some(new)) if old != new.as_slice() => {
            table.encode_row(old, &mut rows);
            table.encode_row(new, &mut rows);
            TableEvent::Update
        }
        _ => return None,
    };
    Some((kind, rows))
}
