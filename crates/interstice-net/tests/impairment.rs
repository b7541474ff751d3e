//! The protocol rules under a simulated network that loses, duplicates and reorders messages
//! and reconnects: every request runs exactly once and is answered; every event is delivered
//! exactly once, in order. (The real-socket version of this test needs the transport.)

use interstice_net::message::{Message, RemoteError};
use interstice_net::requests::{Admission, ExactlyOnce, Outstanding};
use interstice_net::subscription::{Cursor, Delivery};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// A lossy, duplicating, reordering channel driven by a seeded generator.
struct Channel {
    in_flight: Vec<Vec<u8>>,
    rng: u64,
    loss: u64,
}

impl Channel {
    fn new(seed: u64, loss_percent: u64) -> Channel {
        Channel {
            in_flight: Vec::new(),
            rng: seed | 1,
            loss: loss_percent,
        }
    }

    fn roll(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % 100
    }

    fn send(&mut self, message: &Message) {
        let bytes = message.encode().expect("encodable");
        if self.roll() < self.loss {
            return;
        }
        if self.roll() < 10 {
            self.in_flight.push(bytes.clone());
        }
        self.in_flight.push(bytes);
    }

    /// Takes one message, not necessarily the oldest.
    fn receive(&mut self) -> Option<Message> {
        if self.in_flight.is_empty() {
            return None;
        }
        let i = (self.roll() as usize) % self.in_flight.len().min(4);
        Some(Message::decode(&self.in_flight.remove(i)).expect("decodable"))
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn remote_calls_run_exactly_once(seed in any::<u64>(), count in 1usize..200) {
        let mut to_callee = Channel::new(seed, 10);
        let mut to_caller = Channel::new(seed.rotate_left(17), 10);
        let mut caller: Outstanding<String> = Outstanding::new();
        let mut callee: ExactlyOnce<Result<(), RemoteError>> = ExactlyOnce::new(1 << 16);
        let mut executions: BTreeMap<u64, u32> = BTreeMap::new();
        let mut answered = 0usize;
        for n in 0..count {
            let id = caller.start(format!("call {n}"));
            to_callee.send(&Message::CallReducer { request: id, module: "m".into(), reducer: "r".into(), args: vec![] });
        }
        for _round in 0..10_000 {
            if caller.is_empty() {
                break;
            }
            while let Some(message) = to_callee.receive() {
                if let Message::CallReducer { request, .. } = message {
                    match callee.admit(request) {
                        Admission::Run => {
                            *executions.entry(request).or_default() += 1;
                            callee.complete(request, Ok(()));
                            to_caller.send(&Message::CallResult { request, outcome: Ok(()) });
                        }
                        Admission::Repeat(outcome) => to_caller.send(&Message::CallResult { request, outcome }),
                        Admission::InFlight => {}
                        Admission::TooOld => panic!("an id inside the window was refused"),
                    }
                }
            }
            while let Some(message) = to_caller.receive() {
                if let Message::CallResult { request, .. } = message
                    && caller.answer(request).is_some()
                {
                    answered += 1;
                }
            }
            // Timeout or reconnect: send again whatever has no answer.
            let resend: Vec<u64> = caller.to_resend().map(|(id, _)| id).collect();
            for id in resend {
                to_callee.send(&Message::CallReducer { request: id, module: "m".into(), reducer: "r".into(), args: vec![] });
            }
        }
        prop_assert_eq!(answered, count);
        prop_assert_eq!(executions.len(), count);
        prop_assert!(executions.values().all(|&n| n == 1), "a request ran twice");
    }

    #[test]
    fn subscribed_events_arrive_once_in_order(seed in any::<u64>(), count in 1u64..300) {
        let mut channel = Channel::new(seed, 10);
        let mut cursor = Cursor::starting_at(0);
        let mut delivered = Vec::new();
        let mut resume_from = Some(0u64);
        for _round in 0..10_000 {
            if cursor.resume_from() == count {
                break;
            }
            // The publisher (re)sends from where the subscriber asked, in batches of 1 to 7
            // events, so resent batches overlap what was delivered.
            if let Some(from) = resume_from.take() {
                let mut first = from;
                let end = count.min(from + 32);
                while first < end {
                    let len = (1 + (first ^ seed) % 7).min(end - first);
                    let events = (first..first + len)
                        .map(|seq| (interstice_abi::TableEvent::Insert, seq.to_le_bytes().to_vec()))
                        .collect();
                    channel.send(&Message::Events { subscription: 1, first_seq: first, events });
                    first += len;
                }
            }
            while let Some(message) = channel.receive() {
                if let Message::Events { first_seq, events, .. } = message {
                    match cursor.accept_batch(first_seq, events.len() as u64) {
                        (Delivery::Deliver, skip) => {
                            for (_, rows) in events.into_iter().skip(skip) {
                                delivered.push(u64::from_le_bytes(rows.try_into().unwrap()));
                            }
                        }
                        (Delivery::Duplicate | Delivery::Gap { .. }, _) => {}
                    }
                }
            }
            // Lost events, a gap, or a reconnect: resubscribe from the cursor.
            resume_from = Some(cursor.resume_from());
        }
        prop_assert_eq!(delivered, (0..count).collect::<Vec<_>>());
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Message::decode(&bytes);
    }
}

#[test]
fn oversized_and_malformed_messages_are_errors() {
    use interstice_net::message::{DecodeError, MAX_CHUNK_BYTES, MAX_MESSAGE_BYTES};
    assert!(matches!(
        Message::decode(&vec![0; MAX_MESSAGE_BYTES + 1]),
        Err(DecodeError::TooLarge(_))
    ));
    let chunk = Message::PublishChunk {
        upload: 1,
        index: 0,
        total: 1,
        bytes: vec![0; MAX_CHUNK_BYTES + 1],
        drop_data: false,
    };
    let bytes = postcard::to_allocvec(&chunk).unwrap();
    assert!(matches!(
        Message::decode(&bytes),
        Err(DecodeError::Invalid(_))
    ));
    let bad_index = Message::PublishChunk {
        upload: 1,
        index: 3,
        total: 3,
        bytes: vec![],
        drop_data: false,
    };
    assert!(matches!(
        Message::decode(&bad_index.encode().unwrap()),
        Err(DecodeError::Invalid(_))
    ));
    // Uploads are bounded in chunk count too (64 MiB modules at most).
    let too_many = Message::PublishChunk {
        upload: 1,
        index: 0,
        total: interstice_net::message::MAX_UPLOAD_CHUNKS + 1,
        bytes: vec![],
        drop_data: false,
    };
    assert!(matches!(
        Message::decode(&postcard::to_allocvec(&too_many).unwrap()),
        Err(DecodeError::Invalid(_))
    ));
    let mut ping = Message::Ping { nonce: 7 }.encode().unwrap();
    assert_eq!(Message::decode(&ping), Ok(Message::Ping { nonce: 7 }));
    ping.push(0);
    assert!(matches!(
        Message::decode(&ping),
        Err(DecodeError::Malformed(_))
    ));
    assert!(matches!(
        Message::decode(&[0xff, 0xff, 0xff]),
        Err(DecodeError::Malformed(_))
    ));
}
