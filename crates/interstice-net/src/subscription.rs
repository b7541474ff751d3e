//! Resumable subscriptions: events of a table arrive in sequence-number order, each exactly
//! once, across lost, duplicated and reordered packets and across reconnects.
//!
//! The subscriber keeps a [`Cursor`]: the next sequence number it wants. Anything below it is a
//! duplicate and dropped; anything above it means a gap (an event was lost), and the subscriber
//! resubscribes from the cursor. A reconnect does the same.

/// What to do with an arriving event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The next event: deliver it.
    Deliver,
    /// Seen already: drop it.
    Duplicate,
    /// Events are missing before it: drop it and resubscribe from `from_seq`.
    Gap {
        /// Where to resume.
        from_seq: u64,
    },
}

/// The subscriber's position in a table's event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    next: u64,
}

impl Cursor {
    /// A cursor that wants events from `from_seq` on.
    pub fn starting_at(from_seq: u64) -> Cursor {
        Cursor { next: from_seq }
    }

    /// The sequence number to (re)subscribe from.
    pub fn resume_from(&self) -> u64 {
        self.next
    }

    /// Classifies a batch of `len` consecutive events starting at `first`: delivers the part
    /// after what was seen (`Deliver` with how many leading events to skip), drops a batch
    /// seen entirely, and reports a gap when the batch starts after the next wanted number.
    pub fn accept_batch(&mut self, first: u64, len: u64) -> (Delivery, usize) {
        if first > self.next {
            return (
                Delivery::Gap {
                    from_seq: self.next,
                },
                0,
            );
        }
        let end = first.saturating_add(len);
        if end <= self.next {
            return (Delivery::Duplicate, 0);
        }
        let skip = (self.next - first) as usize;
        self.next = end;
        (Delivery::Deliver, skip)
    }

    /// Moves the cursor to where the publisher says the stream now starts (its history was
    /// pruned, or its numbering restarted); returns how many numbers were skipped forward.
    pub fn restart_at(&mut self, first: u64) -> u64 {
        let skipped = first.saturating_sub(self.next);
        self.next = first;
        skipped
    }

    /// Classifies event `seq`, advancing the cursor when it is the next one.
    pub fn accept(&mut self, seq: u64) -> Delivery {
        if seq < self.next {
            Delivery::Duplicate
        } else if seq == self.next {
            self.next += 1;
            Delivery::Deliver
        } else {
            Delivery::Gap {
                from_seq: self.next,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_delivered_once_in_order() {
        let mut c = Cursor::starting_at(5);
        assert_eq!(c.accept(5), Delivery::Deliver);
        assert_eq!(c.accept(5), Delivery::Duplicate);
        assert_eq!(c.accept(7), Delivery::Gap { from_seq: 6 });
        assert_eq!(c.accept(6), Delivery::Deliver);
        assert_eq!(c.resume_from(), 7);
    }

    #[test]
    fn batches_deliver_only_what_is_new() {
        let mut c = Cursor::starting_at(5);
        assert_eq!(c.accept_batch(5, 3), (Delivery::Deliver, 0));
        assert_eq!(c.accept_batch(5, 3), (Delivery::Duplicate, 0));
        assert_eq!(c.accept_batch(6, 4), (Delivery::Deliver, 2));
        assert_eq!(c.resume_from(), 10);
        assert_eq!(c.accept_batch(12, 1), (Delivery::Gap { from_seq: 10 }, 0));
        assert_eq!(c.restart_at(3), 0);
        assert_eq!(c.resume_from(), 3);
    }
}
