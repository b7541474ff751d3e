//! `interstice bench`: load a node, local or remote, with many clients and report what it
//! made durable and how fast.
//!
//! - `transfer`: SpacetimeDB's keynote workload. Many clients, each pipelining transfers
//!   between two accounts drawn from a Zipf distribution, on a logged table.
//! - `insert`: upstream Interstice's `benchmark simple` workload. Calls that each insert one
//!   row with a payload, into a logged or an ephemeral table.
//!
//! Both install their module (`bench_bank`, `bench_insert`) when the node lacks it, and upgrade
//! it in place when it lacks what the bench calls. Every
//! client is its own key and QUIC connection, so the node must be open to strangers
//! (`interstice node start <node> --open`).

mod histogram;
mod insert;
mod report;
mod runner;
mod transfer;
mod zipf;

use crate::home::{CliError, Home};
use crate::registry::NodeEntry;
use interstice::abi::IntersticeType;
use interstice_net::transport::Peer;

/// The transfer benchmark's module, built from `modules/bench_bank` by this crate's build script.
const BANK_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bench_bank.wasm"));
/// The insert benchmark's module, built from `modules/bench_insert`.
const INSERT_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bench_insert.wasm"));

/// `interstice bench`'s workloads.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Transfers between accounts (SpacetimeDB's keynote benchmark): committed TPS, latency,
    /// aborted transfers, and a check that the total balance did not change.
    Transfer(transfer::TransferArgs),
    /// One-row inserts with a payload (upstream Interstice's `benchmark simple`): calls per
    /// second until every call is durable, and a check that every row is there.
    Insert(insert::InsertArgs),
}

/// Runs `interstice bench`.
pub fn run(home: &Home, command: BenchCommand) -> Result<(), CliError> {
    match command {
        BenchCommand::Transfer(args) => transfer::run(home, args),
        BenchCommand::Insert(args) => insert::run(home, args),
    }
}

/// A runtime with a worker per core: the clients' encryption and bookkeeping must not be
/// what limits the run.
fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Other(format!("tokio runtime: {e}")))
}

/// What a bench needs of its module.
struct Needs {
    module: &'static str,
    reducers: &'static [&'static str],
    queries: &'static [&'static str],
    /// The version this CLI carries.
    wasm: &'static [u8],
}

/// Makes sure the module is on the node with what the bench calls: installs the one this
/// CLI carries when it is missing, upgrades it in place (its data kept) when it lacks
/// something, and otherwise uses the one there. Says which on stderr.
async fn ensure_module(peer: &Peer, node: &NodeEntry, needs: &Needs) -> Result<(), CliError> {
    let module = needs.module;
    let schemas = crate::calls::schemas(peer).await?;
    let missing: Vec<&str> = match schemas.iter().find(|m| m.name == module) {
        None => vec!["the module"],
        Some(schema) => needs
            .reducers
            .iter()
            .filter(|r| !schema.reducers.iter().any(|have| have.name == **r))
            .chain(
                needs
                    .queries
                    .iter()
                    .filter(|q| !schema.queries.iter().any(|have| have.name == **q)),
            )
            .copied()
            .collect(),
    };
    if missing.is_empty() {
        eprintln!("using the `{module}` module already on `{}`", node.name);
        return Ok(());
    }
    let published = crate::calls::upload_over(peer.clone(), needs.wasm.to_vec(), false)
        .await
        .map_err(|e| {
            CliError::Refused(format!(
                "`{}` lacks {} of `{module}`, and this CLI could not install its own: {e}",
                node.name,
                missing.join(", ")
            ))
        })?;
    eprintln!(
        "{} the `{}` module on `{}`",
        if published.upgraded {
            "upgraded"
        } else {
            "installed"
        },
        crate::text::printable(&published.module),
        node.name
    );
    Ok(())
}

/// Calls `module.reducer` with `args` and waits for the commit.
async fn call<A: IntersticeType>(
    peer: &Peer,
    module: &str,
    reducer: &str,
    args: A,
) -> Result<(), CliError> {
    crate::calls::commit(peer, module, reducer, args.to_bytes()).await
}

/// Runs `module.query` with `args` and decodes its result.
async fn query<A: IntersticeType, R: IntersticeType>(
    peer: &Peer,
    module: &str,
    query: &str,
    args: A,
) -> Result<R, CliError> {
    let bytes = crate::calls::run_query(peer, module, query, args.to_bytes()).await?;
    R::from_bytes(&bytes)
        .map_err(|e| CliError::Other(format!("`{module}.{query}` answered something else: {e}")))
}
