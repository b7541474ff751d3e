//! The `interstice` command-line tool.

mod example;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Interstice: sandboxed WebAssembly modules with typed tables and deterministic reducers.
#[derive(Debug, Parser)]
#[command(name = "interstice", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a built-in example node (hello=8080, caller=8081, graphics=8082, audio=8083).
    Example(example::ExampleArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Example(args) => example::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
