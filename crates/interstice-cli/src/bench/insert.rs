//! `interstice bench insert`: upstream Interstice's `benchmark simple` workload.

use super::runner::{self, Load, Until, Workload};
use super::{INSERT_WASM, Needs, ensure_module, query, report};
use crate::client::with_node;
use crate::home::{CliError, Home};
use interstice::abi::IntersticeType;

/// The bench's module.
const MODULE: &str = "bench_insert";
/// The largest payload a call may carry here: well under the protocol's message bound.
pub const MAX_PAYLOAD_BYTES: u32 = 1024 * 1024;

/// Which table the rows go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Written to the log and made durable before each answer.
    Logged,
    /// Kept in memory only.
    Ephemeral,
}

/// Arguments of `interstice bench insert`.
#[derive(Debug, clap::Args)]
pub struct InsertArgs {
    /// The node's name or id; it must be open to strangers (`node start --open`).
    pub node: String,
    /// The table the rows go to.
    #[arg(long, value_enum, default_value_t = Kind::Logged)]
    pub table: Kind,
    /// Bytes of payload in every row.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_PAYLOAD_BYTES)))]
    pub payload_bytes: u32,
    /// Calls, all clients together.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: u64,
    /// Clients, each its own key and connection (upstream's workload is one).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub clients: u32,
    /// Calls each client keeps in flight (upstream's client sends them all without waiting).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub pipeline: u32,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Runs the bench.
pub fn run(home: &Home, args: InsertArgs) -> Result<(), CliError> {
    let entry = home.node(&args.node)?;
    let trusted = home.trusted()?;
    let reducer = match args.table {
        Kind::Logged => "insert_logged",
        Kind::Ephemeral => "insert_ephemeral",
    };
    let node = entry.clone();
    let before: (u64, u64) = with_node(home, &entry, |peer| async move {
        let needs = Needs {
            module: MODULE,
            reducers: &["insert_logged", "insert_ephemeral"],
            queries: &["counts"],
            wasm: INSERT_WASM,
        };
        ensure_module(&peer, &node, &needs).await?;
        query(&peer, MODULE, "counts", ()).await
    })?;
    // Each row names its run (and the client and call that sent it).
    let run_id = crate::calls::request_id();
    let payload = vec![0xa5u8; args.payload_bytes as usize];
    let workload = Workload {
        module: MODULE.into(),
        reducer: reducer.into(),
        args: Box::new(move |client, seq, _| {
            let seq = (client as u64) << 40 | seq;
            (run_id, seq, payload.clone()).to_bytes()
        }),
        aborted: Box::new(|_| false),
    };
    let load = Load {
        clients: args.clients as usize,
        pipeline: args.pipeline as usize,
        until: Until::Calls(args.requests),
    };
    eprintln!(
        "insert on `{}`: {} calls into the {} table, {} bytes each, {} client(s) × {} in flight",
        entry.name,
        args.requests,
        match args.table {
            Kind::Logged => "logged",
            Kind::Ephemeral => "ephemeral",
        },
        args.payload_bytes,
        args.clients,
        args.pipeline
    );
    let runtime = super::runtime()?;
    let outcome = runtime.block_on(runner::run_clients(
        &entry, &trusted, workload, load, run_id,
    ))?;
    drop(runtime);

    let after: (u64, u64) = with_node(home, &entry, |peer| async move {
        query(&peer, MODULE, "counts", ()).await
    })?;
    // Rows added during the run: every committed call's (nobody else writes these tables).
    let rows = match args.table {
        Kind::Logged => after.0.saturating_sub(before.0),
        Kind::Ephemeral => after.1.saturating_sub(before.1),
    };
    let mut lines = vec![
        report::Line::plain("node", "node", entry.name.clone()),
        report::Line::plain(
            "table",
            "table",
            match args.table {
                Kind::Logged => "logged",
                Kind::Ephemeral => "ephemeral",
            },
        ),
        report::Line::plain("payload bytes", "payload_bytes", args.payload_bytes),
        report::Line::plain("requests", "requests", args.requests),
        report::Line::plain("clients", "clients", args.clients),
        report::Line::plain("pipeline", "pipeline", args.pipeline),
    ];
    lines.extend(report::outcome_lines(&outcome));
    lines.push(report::Line::plain("rows added", "rows_added", rows));
    if let Some(failure) = &outcome.first_failure {
        lines.push(report::Line::plain(
            "first failure",
            "first_failure",
            failure.clone(),
        ));
    }
    report::print("insert", &lines, args.json);
    if rows != outcome.committed {
        return Err(CliError::Other(format!(
            "{} calls committed but the table gained {rows} rows",
            outcome.committed
        )));
    }
    if outcome.failed > 0 || outcome.busy > 0 {
        return Err(CliError::Other(format!(
            "{} call(s) failed and {} were refused as busy: not every request was inserted",
            outcome.failed, outcome.busy
        )));
    }
    Ok(())
}
