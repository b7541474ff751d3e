//! Exactly-once remote calls.
//!
//! A caller numbers its requests with increasing ids and sends each until it has its answer
//! (again after a reconnect). The callee runs a request id at most once: a repeat of a finished
//! request gets the stored answer, a repeat of a running one is ignored (its answer will come),
//! and ids older than the callee's window are refused rather than risk running them twice.
//! Together: every request runs exactly once and its answer arrives, whatever the network does.

use std::collections::{BTreeMap, BTreeSet};

/// What the callee does with an incoming request id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission<T> {
    /// New: run it, then call [`ExactlyOnce::complete`].
    Run,
    /// Finished before: send this answer again, do not run it.
    Repeat(T),
    /// Running now: ignore the copy; the answer follows.
    InFlight,
    /// Older than the window: it ran (or was refused) long ago; do not run it.
    TooOld,
}

/// The callee's memory of one caller's request ids.
#[derive(Debug, Clone)]
pub struct ExactlyOnce<T> {
    /// Every id below this is finished and forgotten.
    floor: u64,
    done: BTreeMap<u64, T>,
    running: BTreeSet<u64>,
    capacity: usize,
}

impl<T: Clone> ExactlyOnce<T> {
    /// Remembers the answers of the last `capacity` finished requests.
    pub fn new(capacity: usize) -> Self {
        ExactlyOnce {
            floor: 0,
            done: BTreeMap::new(),
            running: BTreeSet::new(),
            capacity: capacity.max(1),
        }
    }

    /// Decides what to do with request `id`.
    pub fn admit(&mut self, id: u64) -> Admission<T> {
        if id < self.floor {
            return Admission::TooOld;
        }
        if let Some(answer) = self.done.get(&id) {
            return Admission::Repeat(answer.clone());
        }
        if !self.running.insert(id) {
            return Admission::InFlight;
        }
        Admission::Run
    }

    /// Forgets a request that was admitted but did not run (the node refused it for now): a
    /// copy sent later is run.
    pub fn abandon(&mut self, id: u64) {
        self.running.remove(&id);
    }

    /// Records the answer of a request that ran.
    pub fn complete(&mut self, id: u64, answer: T) {
        self.running.remove(&id);
        self.done.insert(id, answer);
        while self.done.len() > self.capacity {
            let Some((&oldest, _)) = self.done.iter().next() else {
                break;
            };
            self.done.remove(&oldest);
            // Forgotten ids are refused, never re-run. The window must therefore be larger
            // than the number of requests a caller may have outstanding at once, so that no id
            // below the floor can still be arriving for the first time.
            self.floor = self.floor.max(oldest + 1);
        }
    }
}

/// The caller's requests that have no answer yet.
#[derive(Debug, Clone, Default)]
pub struct Outstanding<R> {
    next_id: u64,
    pending: BTreeMap<u64, R>,
}

impl<R: Clone> Outstanding<R> {
    /// No requests yet.
    pub fn new() -> Self {
        Outstanding {
            next_id: 0,
            pending: BTreeMap::new(),
        }
    }

    /// Numbers requests from `first_id` on. A caller that restarts must not reuse ids a callee
    /// may remember: starting from the wall clock in microseconds keeps ids increasing across
    /// restarts as long as fewer than a million requests a second are made on average.
    pub fn starting_at(first_id: u64) -> Self {
        Outstanding {
            next_id: first_id,
            pending: BTreeMap::new(),
        }
    }

    /// Registers a request and returns its id.
    pub fn start(&mut self, request: R) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(id, request);
        id
    }

    /// Registers a request under an id the caller chose (a durable one, kept across restarts);
    /// ids chosen by [`Outstanding::start`] continue above it.
    pub fn insert(&mut self, id: u64, request: R) {
        self.next_id = self.next_id.max(id.saturating_add(1));
        self.pending.insert(id, request);
    }

    /// Takes the request an answer belongs to; `None` for a duplicate or unknown answer.
    pub fn answer(&mut self, id: u64) -> Option<R> {
        self.pending.remove(&id)
    }

    /// Everything to send again (after a reconnect or a timeout), in id order.
    pub fn to_resend(&self) -> impl Iterator<Item = (u64, &R)> {
        self.pending.iter().map(|(id, r)| (*id, r))
    }

    /// Requests without an answer.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether every request has its answer.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_answered_not_run() {
        let mut callee = ExactlyOnce::new(2);
        assert_eq!(callee.admit(0), Admission::Run);
        assert_eq!(callee.admit(0), Admission::InFlight);
        callee.complete(0, "ok");
        assert_eq!(callee.admit(0), Admission::Repeat("ok"));
        for id in 1..4 {
            assert_eq!(callee.admit(id), Admission::Run);
            callee.complete(id, "ok");
        }
        assert_eq!(
            callee.admit(0),
            Admission::TooOld,
            "forgotten, never re-run"
        );
        assert_eq!(callee.admit(3), Admission::Repeat("ok"));
    }
}
