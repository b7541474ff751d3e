//! The native harness agrees with a node: the same randomized calls, made to the `notebook`
//! fixture compiled natively and to the same module built to wasm, end the same way (same
//! errors, same query answers) and leave the same rows.

use interstice_testing::TestNode;
use std::time::Duration;

fn wasm() -> Vec<u8> {
    interstice_build::test_modules!["notebook"].remove(0)
}

/// SplitMix64: the call sequence of a seed.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const TITLES: [&str; 12] = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"];
/// Two peers public keys (hex SHA-256 fingerprints, as a node sees them).
const PEERS: [&str; 2] = [
    "5c4b7e0c2a9f1d3e8b6a4f2c0e9d7b5a3c1e8f6d4b2a0c9e7f5d3b1a8c6e4f20",
    "a3f1c9e7d5b3a1f8e6c4b2a0d9f7e5c3b1a8f6e4d2c0b9a7f5e3d1c8b6a4f2e0",
];

/// One step on one node, described as text: what the two nodes must agree on.
fn step(node: &mut TestNode, dice: &mut Dice) -> String {
    let pick = |d: &mut Dice| TITLES[d.below(TITLES.len() as u64) as usize].to_string();
    let outcome = |r: Result<(), interstice_core::CallError>| match r {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("error: {e}"),
    };
    match dice.below(12) {
        0 | 1 => {
            let t = pick(dice);
            format!("add {t}: {}", outcome(node.call("add", (t.clone(),))))
        }
        3 => {
            let (id, t) = (dice.below(40), pick(dice));
            format!(
                "rename {id} {t}: {}",
                outcome(node.call("rename", (id, t.clone())))
            )
        }
        2 | 4 => {
            let id = dice.below(40);
            format!("remove {id}: {}", outcome(node.call("remove", (id,))))
        }
        5 => {
            let t = pick(dice);
            format!(
                "fail {t}: {}",
                outcome(node.call("add_then_fail", (t.clone(),)))
            )
        }
        6 => {
            let t = pick(dice);
            format!(
                "panic {t}: {}",
                outcome(node.call("add_then_panic", (t.clone(),)))
            )
        }
        7 => {
            let (t, delay) = (pick(dice), dice.below(40));
            format!(
                "later {t} {delay}: {}",
                outcome(node.call("add_later", (t.clone(), delay)))
            )
        }
        8 => {
            let (peer, t) = (PEERS[dice.below(2) as usize], pick(dice));
            format!(
                "from {peer} add {t}: {}",
                outcome(node.call_from(peer, "add", (t.clone(),)))
            )
        }
        9 | 11 => {
            let ms = dice.below(30);
            node.advance(Duration::from_millis(ms));
            format!("advance {ms} to {}", node.now_ms())
        }
        _ => {
            let t = pick(dice);
            let found: Result<Option<notebook::Note>, _> = node.query("by_title", (t.clone(),));
            let titles: Result<Vec<String>, _> = node.query("titles", ());
            let tally: Result<u64, _> = node.query("tally", ("inserted".to_string(),));
            format!("query {t}: {found:?} {titles:?} {tally:?}")
        }
    }
}

#[test]
fn native_and_wasm_agree_on_random_calls() {
    let wasm = wasm();
    for seed in 1..=6u64 {
        let mut native = TestNode::of("notebook");
        let mut node = TestNode::start_wasm(&wasm).expect("loading notebook.wasm");
        let (mut a, mut b) = (Dice(seed), Dice(seed));
        for i in 0..250 {
            let left = step(&mut native, &mut a);
            let right = step(&mut node, &mut b);
            assert_eq!(
                left, right,
                "seed {seed}, step {i}: the native run and the node differ"
            );
            assert_eq!(
                native.state_hash(),
                node.state_hash(),
                "seed {seed}, step {i} ({left}): the tables differ"
            );
        }
        for table in ["note", "tally"] {
            assert_eq!(
                native.encoded_rows(table),
                node.encoded_rows(table),
                "seed {seed}: table {table} differs"
            );
        }
        assert_eq!(
            native.take_logs(),
            node.take_logs(),
            "seed {seed}: logs differ"
        );
        let notes: Vec<notebook::Note> = native.rows("note");
        assert!(!notes.is_empty(), "seed {seed}: the sequence added no note");
    }
}
