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
}
