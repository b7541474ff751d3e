//! Frame times of a growing table. Inserts 10 million rows (`u64` key, `u64` value, a hash
//! index on the value) in frames of 10,000, each one transaction as a reducer inserting 10,000
//! rows would make, and reports per million rows the median and the longest frame: growth must
//! not stop a frame (a map that rehashes every key, or an array that copies every row, when it
//! doubles), and how many page faults and waits the longest frame took. Also reports the memory a row takes (resident set growth over the first million).
//! Run with `cargo bench -p interstice-core --bench table_growth`;
//! `INTERSTICE_GROWTH_ROWS` changes the row count, `INTERSTICE_GROWTH_NO_INDEX=1` drops the
//! index.

use interstice_abi::{IndexKind, IndexSchema, Value, ValueType};
use std::time::{Duration, Instant};

/// Rows per frame.
const FRAME: u64 = 10_000;
/// Frames per reported step (a million rows).
const STEP: u64 = 100;

/// Resident memory of this process, in bytes (Linux; 0 elsewhere).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Page faults this thread has taken and the times it waited (voluntary context switches: a
/// lock, such as the memory-map lock another thread holds), Linux only. On a virtual machine
/// a fault can cost 10 µs, so these explain most long frames.
#[cfg(target_os = "linux")]
#[allow(unsafe_code, reason = "getrusage is a libc call")]
fn faults_and_waits() -> [i64; 2] {
    // SAFETY: `getrusage` writes the struct it is given and nothing else.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut usage);
        [usage.ru_minflt + usage.ru_majflt, usage.ru_nvcsw]
    }
}

#[cfg(not(target_os = "linux"))]
#[allow(unsafe_code, reason = "getrusage is a libc call")]
fn faults_and_waits() -> [i64; 2] {
    [0, 0]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let rows: u64 = std::env::var("INTERSTICE_GROWTH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let mut table = interstice_core::db::host_table(
        "growth",
        "Growth",
        &[("id", ValueType::U64), ("value", ValueType::U64)],
        0,
        false,
        if std::env::var_os("INTERSTICE_GROWTH_NO_INDEX").is_some() {
            Vec::new()
        } else {
            vec![IndexSchema {
                field: 1,
                kind: IndexKind::Hash,
                unique: false,
                auto_inc: false,
            }]
        },
    );
    let (mut undo, mut out) = (Vec::with_capacity(FRAME as usize), Vec::new());
    let before = resident_bytes();
    let mut per_row = None;
    let mut frames = Vec::with_capacity(STEP as usize);
    let (mut worst_ratio, mut worst_frame) = (0f64, Duration::ZERO);
    let start = Instant::now();
    println!("table_growth: {rows} rows in frames of {FRAME}");
    println!("  rows (M)  median frame  max frame  max/median  max frame's faults, waits");
    let mut id = 0u64;
    while id < rows {
        let [faulted, waited] = faults_and_waits();
        let frame = Instant::now();
        for _ in 0..FRAME {
            id += 1;
            table
                .insert(
                    vec![Value::U64(id), Value::U64(id.wrapping_mul(7))],
                    &mut undo,
                    0,
                    &mut out,
                )
                .expect("insert");
            out.clear();
        }
        // The frame's transaction commits: its undo log is dropped.
        undo.clear();
        let took = frame.elapsed();
        let [faults, waits] = faults_and_waits();
        frames.push((took, faults - faulted, waits - waited));
        if id == 1_000_000 {
            per_row = Some(resident_bytes().saturating_sub(before) / 1_000_000);
        }
        if frames.len() as u64 == STEP || id >= rows {
            frames.sort_unstable();
            let median = frames[frames.len() / 2].0;
            let (max, faults, waits) = frames[frames.len() - 1];
            let ratio = max.as_secs_f64() / median.as_secs_f64();
            println!(
                "  {:>8.1}  {:>9.2} ms  {:>6.2} ms  {:>10.2}  {faults:>19}, {waits}",
                id as f64 / 1e6,
                ms(median),
                ms(max),
                ratio
            );
            worst_ratio = worst_ratio.max(ratio);
            worst_frame = worst_frame.max(max);
            frames.clear();
        }
    }
    println!(
        "table_growth: {rows} rows in {:.2} s; longest frame {:.2} ms, worst max/median {worst_ratio:.2}",
        start.elapsed().as_secs_f64(),
        ms(worst_frame)
    );
    if let Some(bytes) = per_row {
        println!(
            "table_growth: {bytes} bytes of resident memory per row (first million rows); \
             resident set at the end {:.0} MiB",
            resident_bytes() as f64 / (1024.0 * 1024.0)
        );
    }
}
