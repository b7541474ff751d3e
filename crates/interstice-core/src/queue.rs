//! The reducer queue: invocations in the order they will run, and their outcomes.

use crate::error::CallError;
use bevy_ecs::message::Message;
use bevy_ecs::resource::Resource;
use std::collections::VecDeque;

/// Identifies one queued invocation; its [`ReducerOutcome`] carries the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InvocationId(pub u64);

/// A reducer call waiting to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// Its id.
    pub id: InvocationId,
    /// The module.
    pub module: String,
    /// The reducer.
    pub reducer: String,
    /// Encoded arguments.
    pub args: Vec<u8>,
    /// Why it runs.
    pub trigger: Trigger,
    /// For a call from a peer: which request of which peer it is.
    pub origin: Option<Origin>,
    /// For an event from another node's table: which event under which subscriber's cursor.
    pub cursor: Option<EventCursor>,
    /// Whether its arguments were already checked against the reducer (by whoever queued it).
    pub args_checked: bool,
}

impl Invocation {
    /// What the call runs for ([`Modules::call_reducer_in`](crate::Modules::call_reducer_in)).
    pub fn context(&self) -> CallContext {
        CallContext {
            invocation: self.id.0,
            origin: self.origin.clone(),
            cursor: self.cursor.clone(),
            caller_node: None,
        }
    }
}

/// What a reducer call runs for, beyond its arguments: its place in the node's sequence of
/// invocations (with the logical time, what seeds its random numbers), the peer request it
/// answers and the remote event it applies. The frame's queue makes one per invocation
/// ([`Invocation::context`]); a direct call runs with the default (invocation 0, neither).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallContext {
    /// The invocation's position ([`InvocationId`]'s number).
    pub invocation: u64,
    /// The peer request it answers: its transaction also records that the request ran
    /// ([`answered`](crate::host_tables::answered)).
    pub origin: Option<Origin>,
    /// The remote event it applies: it runs only if that event was not applied yet, and its
    /// transaction records it ([`cursors`](crate::host_tables::cursors)).
    pub cursor: Option<EventCursor>,
    /// The node id `ctx.caller_node()` answers when there is no `origin` to take it from: a
    /// recorded transaction replayed ([`history::replay`](crate::storage::history::replay)).
    pub caller_node: Option<String>,
}

/// A reducer call from a peer, recorded with the transaction so the call never runs twice
/// ([`answered`](crate::host_tables::answered)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The peer's certificate fingerprint.
    pub peer: String,
    /// The peer's id for the request.
    pub request: u64,
}

/// An event of another node's table delivered to a subscriber, recorded with the transaction
/// so the event is applied once ([`cursors`](crate::host_tables::cursors)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCursor {
    /// The subscriber's cursor key.
    pub key: String,
    /// The event's number in the publisher's stream.
    pub seq: u64,
}

/// Why an invocation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A call (from a game system, the CLI, a peer).
    Call,
    /// A due schedule entry; the bookkeeping that retires or re-arms it has committed, so it
    /// must run (it waits while storage refuses writes, instead of being refused).
    Scheduled,
    /// A table event delivered to a subscriber.
    Event {
        /// Whether the arguments are known to fit the subscriber (no per-call check needed).
        args_checked: bool,
    },
}

/// Reducer invocations in the order they run: first in, first out, one transaction each.
#[derive(Resource, Debug, Default)]
pub struct ReducerQueue {
    pending: VecDeque<Invocation>,
    spare: VecDeque<Invocation>,
    next_id: u64,
}

impl ReducerQueue {
    /// Appends an invocation; it runs after every invocation queued before it.
    pub fn push(
        &mut self,
        module: impl Into<String>,
        reducer: impl Into<String>,
        args: Vec<u8>,
    ) -> InvocationId {
        let invocation = self.invocation(module.into(), reducer.into(), args, Trigger::Call);
        let id = invocation.id;
        self.pending.push_back(invocation);
        id
    }

    /// Queues a reducer call from a peer (`peer` is its certificate fingerprint) whose
    /// arguments the caller checked against the reducer: the call and the fact that this
    /// request ran commit together.
    pub fn push_remote(
        &mut self,
        module: impl Into<String>,
        reducer: impl Into<String>,
        args: Vec<u8>,
        peer: &str,
        request: u64,
    ) -> InvocationId {
        let mut invocation = self.invocation(module.into(), reducer.into(), args, Trigger::Call);
        invocation.origin = Some(Origin {
            peer: peer.to_string(),
            request,
        });
        invocation.args_checked = true;
        let id = invocation.id;
        self.pending.push_back(invocation);
        id
    }

    /// Queues a subscriber invocation for an event that came from elsewhere (another node's
    /// table): its arguments are checked against the reducer when it runs.
    pub fn push_event(
        &mut self,
        module: impl Into<String>,
        reducer: impl Into<String>,
        args: Vec<u8>,
    ) -> InvocationId {
        let invocation = self.invocation(
            module.into(),
            reducer.into(),
            args,
            Trigger::Event {
                args_checked: false,
            },
        );
        let id = invocation.id;
        self.pending.push_back(invocation);
        id
    }

    /// Queues a subscriber invocation for event `seq` of another node's table, applied at most
    /// once under the subscriber's cursor `key` ([`cursors`](crate::host_tables::cursors)).
    pub fn push_remote_event(
        &mut self,
        module: impl Into<String>,
        reducer: impl Into<String>,
        args: Vec<u8>,
        key: String,
        seq: u64,
    ) -> InvocationId {
        let mut invocation = self.invocation(
            module.into(),
            reducer.into(),
            args,
            Trigger::Event {
                args_checked: false,
            },
        );
        invocation.cursor = Some(EventCursor { key, seq });
        let id = invocation.id;
        self.pending.push_back(invocation);
        id
    }

    /// A new invocation with the next id, not queued yet.
    pub fn invocation(
        &mut self,
        module: String,
        reducer: String,
        args: Vec<u8>,
        trigger: Trigger,
    ) -> Invocation {
        let id = InvocationId(self.next_id);
        self.next_id += 1;
        Invocation {
            id,
            module,
            reducer,
            args,
            trigger,
            origin: None,
            cursor: None,
            args_checked: false,
        }
    }

    /// Puts invocations back at the front, in order (work a frame's budget did not reach).
    pub fn defer(&mut self, invocations: impl DoubleEndedIterator<Item = Invocation>) {
        for invocation in invocations.rev() {
            self.pending.push_front(invocation);
        }
    }

    /// Number of invocations waiting.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The waiting invocations, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Invocation> {
        self.pending.iter()
    }

    /// Takes every waiting invocation, in order.
    pub fn drain(&mut self) -> VecDeque<Invocation> {
        let spare = std::mem::take(&mut self.spare);
        std::mem::replace(&mut self.pending, spare)
    }

    /// Gives back an emptied buffer from [`drain`](ReducerQueue::drain), so the next frame's
    /// invocations reuse its allocation.
    pub fn recycle(&mut self, mut buffer: VecDeque<Invocation>) {
        buffer.clear();
        if buffer.capacity() > self.spare.capacity() {
            self.spare = buffer;
        }
    }
}

/// How a queued reducer invocation ended, written once per invocation.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct ReducerOutcome {
    /// The invocation's id.
    pub id: InvocationId,
    /// The module.
    pub module: String,
    /// The reducer.
    pub reducer: String,
    /// `Ok` when committed; the error when rolled back or refused.
    pub result: Result<(), CallError>,
}

/// One frame of recorded input: its logical time and the calls queued for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedFrame {
    /// The logical time the frame ran at.
    pub time_ms: u64,
    /// Calls, in queue order: module, reducer, encoded arguments.
    pub calls: Vec<(String, String, Vec<u8>)>,
}

/// The node's inputs, frame by frame: insert this resource to record them. Scheduled runs and
/// subscriber invocations are not inputs — they follow from the state — so feeding the same
/// frames to a fresh node with the same modules reproduces the same state, bit for bit.
#[derive(Resource, Debug, Clone, Default, PartialEq, Eq)]
pub struct InvocationLog {
    /// Every frame since recording started.
    pub frames: Vec<RecordedFrame>,
}
