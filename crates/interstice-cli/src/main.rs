//! The `interstice` command-line tool.

mod bench;
mod calls;
mod client;
mod dev;
mod example;
mod history;
mod home;
mod init;
mod logs;
mod node;
mod point;
mod registry;
mod replay;
mod restore;
mod rows;
mod text;
pub(crate) use interstice::values;
mod window;

use clap::{Parser, Subcommand};
use home::{CliError, Home};
use std::path::PathBuf;
use std::process::ExitCode;

/// Interstice: sandboxed WebAssembly modules with typed tables and deterministic reducers.
#[derive(Debug, Parser)]
#[command(name = "interstice", version, about, long_about = None)]
struct Cli {
    /// Where nodes and this CLI keep their data (default: the OS data directory's `interstice`
    /// folder).
    #[arg(long, global = true, env = "INTERSTICE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a built-in example node (hello=8080, caller=8081, graphics=8082, audio=8083).
    Example(example::ExampleArgs),
    /// Create a module crate that builds to wasm (a table, a reducer, a query to start from).
    Init(init::InitArgs),
    /// Manage nodes: add, create, list, remove, rename, show, start, ping, schema.
    #[command(subcommand)]
    Node(node::NodeCommand),
    /// Build a module crate for wasm and install it on a node; a module installed there
    /// already is upgraded in place, keeping its data (compatible changes only).
    Publish {
        /// The node's name or id.
        node: String,
        /// The module crate's directory.
        module_path: PathBuf,
        /// Upgrade even if the new version cannot keep some tables: they start empty.
        #[arg(long)]
        drop_data: bool,
    },
    /// Publish a module crate, then again on every save (rebuilt for wasm, upgraded in place
    /// keeping its data), printing the node's verdict and the module's log lines, until Ctrl-C.
    Dev {
        /// The node's name or id.
        node: String,
        /// The module crate's directory.
        #[arg(default_value = ".")]
        module_path: PathBuf,
        /// Upgrade even if a version cannot keep some tables: they start empty.
        #[arg(long)]
        drop_data: bool,
    },
    /// Remove a module from a node.
    Remove {
        /// The node's name or id.
        node: String,
        /// The module.
        module_name: String,
    },
    /// Call a reducer: arguments are checked against its signature (numbers, bools and
    /// strings as typed; a unit enum variant bare; structs, other enums, vectors and options
    /// as JSON — a mistake is answered with an example of the expected form).
    #[command(name = "call_reducer")]
    CallReducer {
        /// The node's name or id.
        node: String,
        /// The module.
        module_name: String,
        /// The reducer.
        reducer_name: String,
        /// Its arguments, in order.
        args: Vec<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a query and print its result.
    #[command(name = "call_query")]
    CallQuery {
        /// The node's name or id.
        node: String,
        /// The module.
        module_name: String,
        /// The query.
        query_name: String,
        /// Its arguments, in order.
        args: Vec<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a table's rows, in primary-key order (read-only; a public module's for anyone,
    /// any module's for the node's owner).
    Rows {
        /// The node's name or id.
        node: String,
        /// The module.
        module_name: String,
        /// The table.
        table_name: String,
        /// Only rows whose COLUMN equals VALUE (typed like an argument).
        #[arg(long, value_name = "COLUMN=VALUE")]
        filter: Option<String>,
        /// The most rows to print.
        #[arg(long, default_value_t = 100)]
        limit: u64,
        /// Start after this primary key (what the previous run said to pass).
        #[arg(long, value_name = "KEY")]
        after: Option<String>,
        /// The rows as they were after this transaction, or at this logical time (a number
        /// with ms, s, m or h): a logged table, read from its history (the node's owner only).
        #[arg(long, value_name = "TX|TIME")]
        as_of: Option<point::Point>,
        /// Print the rows as a JSON array of objects.
        #[arg(long)]
        json: bool,
    },
    /// Print the versions of a logged table's rows, oldest first, each with the transaction
    /// that made it: its log position, logical time, reducer, arguments and caller (the
    /// node's owner only; read-only).
    History {
        /// The node's name or id.
        node: String,
        /// The module.
        module_name: String,
        /// The table (a logged one: stateful and ephemeral tables keep no history).
        table_name: String,
        /// Only this row's versions: its primary key, typed like an argument.
        #[arg(long, value_name = "KEY")]
        key: Option<String>,
        /// The first transaction (log position, a number) or logical time (a number with
        /// ms, s, m or h) to show.
        #[arg(long, value_name = "TX|TIME")]
        from: Option<point::Point>,
        /// The last transaction or logical time to show.
        #[arg(long, value_name = "TX|TIME")]
        to: Option<point::Point>,
        /// Print the versions as a JSON array of objects (tx, time_ms, module, reducer, args,
        /// caller, key, row).
        #[arg(long)]
        json: bool,
    },
    /// Run a stopped local node's recorded calls again, from a transaction on, against a new
    /// version of one module, in a scratch copy (the node is only read), and print the first
    /// transaction whose changes to logged tables differ from what was recorded.
    Replay(replay::ReplayArgs),
    /// Print the guest log lines a node kept (the node's owner only), and with `--follow`
    /// those that come after, until Ctrl-C.
    Logs {
        /// The node's name or id.
        node: String,
        /// Only this module's lines.
        module_name: Option<String>,
        /// Keep printing new lines as they come.
        #[arg(long, short)]
        follow: bool,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Update this CLI: rebuild and reinstall it with cargo from the sources it was built from.
    Update {
        /// Only print what would be run.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print a shell completion script: `interstice completions bash > ~/.local/share/bash-completion/completions/interstice`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Load a node with many clients and report what it made durable, how fast: `transfer`
    /// (SpacetimeDB's keynote workload) or `insert` (upstream Interstice's `benchmark simple`).
    /// The node must be open to strangers (`node start --open`): every client has its own key.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Write typed bindings for other nodes' modules into a module crate's `src/bindings/`.
    #[command(subcommand)]
    Bindings(BindingsCommand),
}

#[derive(Debug, Subcommand)]
enum BindingsCommand {
    /// Add bindings.
    #[command(subcommand)]
    Add(BindingsAdd),
}

#[derive(Debug, Subcommand)]
enum BindingsAdd {
    /// A module on a node, for modules on the same node (`src/bindings/<module>.toml`).
    Module {
        /// The node's name or id.
        node: String,
        /// The module.
        module: String,
        /// The module crate to write into (default: the current directory).
        project_path: Option<PathBuf>,
    },
    /// A node and its public modules, for modules on other nodes
    /// (`src/bindings/node_<name>.toml`).
    Node {
        /// The node's name or id.
        node: String,
        /// The module crate to write into (default: the current directory).
        project_path: Option<PathBuf>,
    },
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Example(args) => {
            return example::run(args, cli.data_dir).map_err(|e| CliError::Other(e.to_string()));
        }
        Command::Init(args) => return init::run(args),
        Command::Update { dry_run } => return update(dry_run),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "interstice",
                &mut std::io::stdout(),
            );
            return Ok(());
        }
        _ => {}
    }
    let home = Home::open(cli.data_dir)?;
    match cli.command {
        Command::Example(_)
        | Command::Init(_)
        | Command::Update { .. }
        | Command::Completions { .. } => Ok(()),
        Command::Node(command) => node::run(&home, command),
        Command::Bench(command) => bench::run(&home, command),
        Command::Publish {
            node,
            module_path,
            drop_data,
        } => calls::publish(&home, &node, &module_path, drop_data),
        Command::Dev {
            node,
            module_path,
            drop_data,
        } => dev::dev(&home, &node, &module_path, drop_data),
        Command::Remove { node, module_name } => calls::remove(&home, &node, &module_name),
        Command::CallReducer {
            node,
            module_name,
            reducer_name,
            args,
            json,
        } => calls::call_reducer(&home, &node, &module_name, &reducer_name, &args, json),
        Command::CallQuery {
            node,
            module_name,
            query_name,
            args,
            json,
        } => calls::call_query(&home, &node, &module_name, &query_name, &args, json),
        Command::Logs {
            node,
            module_name,
            follow,
            json,
        } => logs::logs(&home, &node, module_name.as_deref(), follow, json),
        Command::History {
            node,
            module_name,
            table_name,
            key,
            from,
            to,
            json,
        } => history::history(
            &home,
            history::HistoryArgs {
                node: &node,
                module: &module_name,
                table: &table_name,
                key: key.as_deref(),
                from,
                to,
                json,
            },
        ),
        Command::Replay(args) => replay::replay(&home, &args),
        Command::Rows {
            node,
            module_name,
            table_name,
            filter,
            limit,
            after,
            as_of,
            json,
        } => rows::rows(
            &home,
            rows::RowsArgs {
                node: &node,
                module: &module_name,
                table: &table_name,
                filter: filter.as_deref(),
                limit,
                after: after.as_deref(),
                as_of,
                json,
            },
        ),
        Command::Bindings(BindingsCommand::Add(BindingsAdd::Module {
            node,
            module,
            project_path,
        })) => calls::bindings_add_module(&home, &node, &module, project_path),
        Command::Bindings(BindingsCommand::Add(BindingsAdd::Node { node, project_path })) => {
            calls::bindings_add_node(&home, &node, project_path)
        }
    }
}

/// Where this CLI's sources were when it was built.
const SOURCES: &str = concat!(env!("CARGO_MANIFEST_DIR"));

/// `interstice update`: `cargo install --path <sources> --locked`, then what changed.
fn update(dry_run: bool) -> Result<(), CliError> {
    let sources = PathBuf::from(SOURCES);
    if !sources.join("Cargo.toml").is_file() {
        return Err(CliError::Usage(format!(
            "the sources this CLI was built from are gone ({}); install a new one with `cargo install --path <checkout>/crates/interstice-cli`",
            sources.display()
        )));
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let args = [
        "install",
        "--path",
        &sources.to_string_lossy(),
        "--locked",
        "--bin",
        "interstice",
    ];
    println!("{cargo} {}", args.join(" "));
    if dry_run {
        return Ok(());
    }
    let before = env!("CARGO_PKG_VERSION");
    let status = std::process::Command::new(&cargo)
        .args(args)
        .current_dir(&sources)
        .status()
        .map_err(|e| CliError::Build(format!("cannot run {cargo}: {e}")))?;
    if !status.success() {
        return Err(CliError::Build(format!("cargo install failed ({status})")));
    }
    let after = std::process::Command::new("interstice")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "interstice (not on PATH)".into());
    println!("updated: was interstice {before}, now {after}");
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            use std::io::IsTerminal;
            let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            // Errors quote what nodes said: printed as text, never as terminal commands.
            let message = e.to_string();
            let message = text::printable(&message);
            if color {
                eprintln!("\x1b[1;31merror\x1b[0m: {message}");
            } else {
                eprintln!("error: {message}");
            }
            ExitCode::FAILURE
        }
    }
}
