//! `interstice bench transfer`: SpacetimeDB's keynote "transfer" workload.

use super::runner::{self, Load, Until, Workload};
use super::zipf::Zipf;
use super::{BANK_WASM, Needs, call, ensure_module, query, report};
use crate::client::with_node;
use crate::home::{CliError, Home};
use interstice::abi::IntersticeType;
use std::sync::Arc;
use std::time::Duration;

/// The bench's module and reducer.
const MODULE: &str = "bench_bank";
const REDUCER: &str = "transfer";
/// Accounts seeded per call.
const SEED_SLICE: u32 = 10_000;

/// Arguments of `interstice bench transfer`.
#[derive(Debug, clap::Args)]
pub struct TransferArgs {
    /// The node's name or id; it must be open to strangers (`node start --open`).
    pub node: String,
    /// Accounts.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(2..))]
    pub accounts: u32,
    /// Zipf exponent of the accounts drawn: 0 is uniform, 1.5 puts most transfers on a few
    /// accounts.
    #[arg(long, default_value_t = 0.0)]
    pub alpha: f64,
    /// Clients, each its own key and connection.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub clients: u32,
    /// Transfers each client keeps in flight.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub pipeline: u32,
    /// Seconds measured.
    #[arg(long, default_value_t = 30.0)]
    pub seconds: f64,
    /// Seconds run before measuring.
    #[arg(long, default_value_t = 5.0)]
    pub warmup: f64,
    /// Each account's balance after seeding.
    #[arg(long, default_value_t = 1_000_000)]
    pub balance: i64,
    /// The amount of every transfer.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i64).range(1..))]
    pub amount: i64,
    /// Seed of the clients' random draws.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

fn seconds(what: &str, value: f64) -> Result<Duration, CliError> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| CliError::Usage(format!("--{what} must be a number of seconds, not {value}")))
}

/// Runs the bench.
pub fn run(home: &Home, args: TransferArgs) -> Result<(), CliError> {
    if !(args.alpha.is_finite() && args.alpha >= 0.0) {
        return Err(CliError::Usage(format!(
            "--alpha must be 0 or more, not {}",
            args.alpha
        )));
    }
    let until = Until::Elapsed {
        warmup: seconds("warmup", args.warmup)?,
        measure: seconds("seconds", args.seconds)?,
    };
    let entry = home.node(&args.node)?;
    let trusted = home.trusted()?;
    let (accounts, balance) = (args.accounts, args.balance);
    let total = i64::from(accounts)
        .checked_mul(balance)
        .ok_or_else(|| CliError::Usage("--accounts × --balance overflows i64".into()))?;

    // Set-up over the CLI's own connection: the module, then the accounts.
    let node = entry.clone();
    let before: (u64, i64) = with_node(home, &entry, |peer| async move {
        let needs = Needs {
            module: MODULE,
            reducers: &["seed", REDUCER],
            queries: &["totals"],
            wasm: BANK_WASM,
        };
        ensure_module(&peer, &node, &needs).await?;
        let mut first = 0;
        while first < accounts {
            let count = SEED_SLICE.min(accounts - first);
            call(&peer, MODULE, "seed", (first, count, balance)).await?;
            first += count;
            eprint!("\r  seeded {first}/{accounts} accounts");
        }
        eprintln!();
        query(&peer, MODULE, "totals", ()).await
    })?;
    if before.0 < u64::from(accounts) || (before.0 == u64::from(accounts) && before.1 != total) {
        return Err(CliError::Other(format!(
            "after seeding, `{MODULE}` holds {} accounts totalling {}, not {accounts} totalling {total}",
            before.0, before.1
        )));
    }

    let zipf = Arc::new(Zipf::new(accounts, args.alpha));
    let amount = args.amount;
    let workload = Workload {
        module: MODULE.into(),
        reducer: REDUCER.into(),
        args: Box::new(move |_, _, rng| {
            let (from, to) = zipf.pair(rng);
            (from, to, amount).to_bytes()
        }),
        // Refused by the reducer, nothing changed: a payer short of funds, or (with very few
        // accounts and a high α, when 32 draws found no second account) the same account.
        aborted: Box::new(|why| why.contains("insufficient funds") || why.contains("same account")),
    };
    let load = Load {
        clients: args.clients as usize,
        pipeline: args.pipeline as usize,
        until,
    };
    eprintln!(
        "transfer on `{}`: {} clients × {} in flight, {accounts} accounts, α = {}, {} s warm-up, {} s measured",
        entry.name, args.clients, args.pipeline, args.alpha, args.warmup, args.seconds
    );
    let runtime = super::runtime()?;
    let outcome = runtime.block_on(runner::run_clients(
        &entry, &trusted, workload, load, args.seed,
    ))?;
    drop(runtime);

    let after: (u64, i64) = with_node(home, &entry, |peer| async move {
        query(&peer, MODULE, "totals", ()).await
    })?;
    let kept = after == before;
    let mut lines = vec![
        report::Line::plain("node", "node", entry.name.clone()),
        report::Line::plain("accounts", "accounts", accounts),
        report::Line::plain("alpha", "alpha", args.alpha),
        report::Line::plain("clients", "clients", args.clients),
        report::Line::plain("pipeline", "pipeline", args.pipeline),
    ];
    lines.extend(report::outcome_lines(&outcome));
    lines.push(report::Line::new(
        "total balance",
        "total_balance_unchanged",
        serde_json::json!(kept),
        if kept {
            format!("unchanged ({})", after.1)
        } else {
            format!("CHANGED: {} before, {} after", before.1, after.1)
        },
    ));
    if let Some(failure) = &outcome.first_failure {
        lines.push(report::Line::plain(
            "first failure",
            "first_failure",
            failure.clone(),
        ));
    }
    report::print("transfer", &lines, args.json);
    if !kept {
        return Err(CliError::Other(format!(
            "the total balance changed from {} to {} ({} accounts before, {} after)",
            before.1, after.1, before.0, after.0
        )));
    }
    if outcome.failed > 0 {
        return Err(CliError::Other(format!(
            "{} transfer(s) failed",
            outcome.failed
        )));
    }
    Ok(())
}
