//! The pauses of a growing table: its primary-key hash map doubles when full, and rehashes every
//! key in the insert that crosses the limit. Inserts 4.2 million rows (`u64` key, `u64` value)
//! one by one and prints each insert that took over a millisecond. Run with
//! `cargo bench -p interstice-core --bench table_growth`.

use interstice_abi::{Value, ValueType};
use std::time::Instant;

const ROWS: u64 = 4_200_000;

fn main() {
    let mut table = interstice_core::db::host_table(
        "growth",
        "Growth",
        &[("id", ValueType::U64), ("value", ValueType::U64)],
        0,
        false,
        Vec::new(),
    );
    let (mut undo, mut out) = (Vec::new(), Vec::new());
    let mut slow = Vec::new();
    let start = Instant::now();
    for id in 1..=ROWS {
        let insert = Instant::now();
        table
            .insert(vec![Value::U64(id), Value::U64(id)], &mut undo, 0, &mut out)
            .expect("insert");
        let took = insert.elapsed();
        if took.as_secs_f64() > 1e-3 {
            slow.push((id, took));
        }
        if undo.len() >= 1024 {
            undo.clear();
        }
        out.clear();
    }
    println!(
        "table_growth: {ROWS} inserts in {:.2} s; inserts over 1 ms:",
        start.elapsed().as_secs_f64()
    );
    for (id, took) in slow {
        println!("  row {id}: {:.1} ms", took.as_secs_f64() * 1e3);
    }
}
