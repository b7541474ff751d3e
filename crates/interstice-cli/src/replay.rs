//! `interstice replay`: a stopped local node's recorded calls run again against a new version
//! of one module, in a scratch copy, to find the first transaction the new code changes
//! (`interstice_core::storage::history::replay`).

use crate::home::{CliError, Home};
use crate::point::Point;
use interstice::core::storage::history::{self, DifferenceDetail, ReplayReport, ReplayRequest};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What `interstice replay` was asked.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// The node's name or id (a local node, stopped).
    pub node: String,
    /// The module whose new version runs.
    pub module_name: String,
    /// The first transaction to run again (log position, as `interstice history` shows it),
    /// or a logical time (a number with ms, s, m or h): the first transaction after it.
    #[arg(long, value_name = "TX|TIME")]
    pub from: Point,
    /// The last transaction to run again (default: the last recorded).
    #[arg(long, value_name = "TX|TIME")]
    pub to: Option<Point>,
    /// The new version: a module crate (built for wasm) or a built `.wasm` file.
    #[arg(long, value_name = "PATH")]
    pub with: PathBuf,
}

/// How often progress is printed while a replay runs.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// `interstice replay <node> <module> --from TX|TIME [--to TX|TIME] --with PATH`: prints
/// what was replayed and the first difference; a difference is an error (exit status 1), so
/// scripts can tell.
pub fn replay(home: &Home, args: &ReplayArgs) -> Result<(), CliError> {
    let (node, module) = (args.node.as_str(), args.module_name.as_str());
    let source = crate::restore::stopped_node_dir(home, node, "replay")?;
    let wasm = new_code(&args.with)?;
    let from = match args.from {
        Point::Tx(tx) => tx,
        // The first transaction after everything committed before that time.
        Point::Time(ms) => {
            last_seq_at(&source, ms.saturating_sub(1), node)?.map_or(0, |seq| seq + 1)
        }
    };
    let to = match args.to {
        None => u64::MAX,
        Some(Point::Tx(tx)) => tx,
        Some(Point::Time(ms)) => last_seq_at(&source, ms, node)?.ok_or_else(|| {
            CliError::Refused(format!(
                "nothing `{node}` kept was committed by logical time {ms} ms"
            ))
        })?,
    };
    if to < from {
        return Err(CliError::Usage(format!(
            "--to {to} is before --from {from}"
        )));
    }
    let scratch = tempfile::Builder::new()
        .prefix("interstice-replay-")
        .tempdir()
        .map_err(|e| CliError::Other(format!("a scratch directory: {e}")))?;
    let request = ReplayRequest {
        source: &source,
        module,
        wasm: &wasm,
        from_seq: from,
        to_seq: to,
        scratch: scratch.path(),
    };
    let mut last_print = Instant::now();
    let mut done = 0u64;
    let report = history::replay(&request, &mut |seq| {
        done += 1;
        if last_print.elapsed() >= PROGRESS_EVERY {
            eprintln!("replayed up to transaction {seq} ({done} so far)...");
            last_print = Instant::now();
        }
    })
    .map_err(|e| CliError::Refused(format!("cannot replay `{node}`: {e}")))?;
    print_report(&report, args, from)
}

fn last_seq_at(source: &Path, ms: u64, node: &str) -> Result<Option<u64>, CliError> {
    history::last_seq_at(source, ms)
        .map_err(|e| CliError::Refused(format!("cannot read the history of `{node}`: {e}")))
}

/// The new version's code: a `.wasm` file as it is, a module crate built for wasm.
fn new_code(with: &Path) -> Result<Vec<u8>, CliError> {
    if with.extension().is_some_and(|e| e == "wasm") {
        return std::fs::read(with).map_err(|source| CliError::File {
            path: PathBuf::from(with),
            source,
        });
    }
    crate::calls::build_module(with).map(|(_, wasm)| wasm)
}

fn print_report(report: &ReplayReport, args: &ReplayArgs, from: u64) -> Result<(), CliError> {
    let range = match report.last_seq {
        Some(last) => format!("transactions {from} to {last}"),
        None => format!("no transaction from {from} on"),
    };
    let mut notes = Vec::new();
    if report.skipped > 0 {
        notes.push(format!(
            "{} hook, host bookkeeping or removed-module transactions not run",
            report.skipped
        ));
    }
    if report.without_invocation > 0 {
        notes.push(format!(
            "{} recorded before invocations were kept: their random numbers may differ",
            report.without_invocation
        ));
    }
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join("; "))
    };
    let Some(difference) = &report.first_difference else {
        println!(
            "no difference: {} replayed transactions of `{}` ({range}) made the changes that \
             were recorded{notes}",
            report.replayed, args.node
        );
        return Ok(());
    };
    println!(
        "first difference at transaction {} (logical time {} ms): `{}.{}{}`{}",
        difference.seq,
        difference.time,
        difference.module,
        difference.reducer,
        difference.args,
        difference
            .caller
            .as_ref()
            .map_or(String::new(), |node| format!(", called by node {node}")),
    );
    match &difference.detail {
        DifferenceDetail::Failed(error) => {
            println!("  recorded: committed\n  replayed: failed: {error}");
        }
        DifferenceDetail::Row {
            module,
            table,
            key,
            recorded,
            replayed,
        } => {
            let shown = |row: &Option<String>| {
                row.clone()
                    .unwrap_or_else(|| "(deleted, or not written)".into())
            };
            println!(
                "  row {key} of {module}.{table}\n  recorded: {}\n  replayed: {}",
                shown(recorded),
                shown(replayed)
            );
        }
    }
    Err(CliError::Refused(format!(
        "the new `{}` differs from the recorded run at transaction {} ({} transactions \
         replayed before it matched){notes}",
        args.module_name,
        difference.seq,
        report.replayed.saturating_sub(1)
    )))
}
