//! `interstice init`: a new module crate that builds to wasm out of the box and that
//! `interstice publish` installs as it is.

use crate::home::CliError;
use std::path::{Path, PathBuf};

/// Where this CLI was built from: its SDK sources (a path dependency resolves offline).
const SDK_AT_BUILD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../interstice-sdk");
/// The toolchain modules are built with (the repository's `rust-toolchain.toml`).
const TOOLCHAIN: &str = include_str!("../../../rust-toolchain.toml");
/// The dependency versions the SDK and the test harness were built and tested with: a new
/// crate starts from them (cargo keeps what it needs and resolves the rest).
const LOCKFILE: &str = include_str!("../../../Cargo.lock");

/// Arguments of `interstice init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The directory to create the module in (default: the current directory).
    pub path: Option<PathBuf>,
    /// The module's name (default: the directory's name, as an identifier).
    #[arg(long)]
    pub name: Option<String>,
    /// The `interstice-sdk` crate to depend on (default: the one this CLI was built from).
    #[arg(long)]
    pub sdk_path: Option<PathBuf>,
}

/// A module name from anything: lower-case letters, digits and `_`, not starting with a digit.
fn identifier(text: &str) -> String {
    let mut name: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "module_");
    }
    name
}

fn write_new(path: &Path, text: &str) -> Result<(), CliError> {
    if path.exists() {
        return Err(CliError::Usage(format!(
            "{} exists already: not overwriting it",
            path.display()
        )));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| CliError::File {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, text).map_err(|source| CliError::File {
        path: path.to_path_buf(),
        source,
    })
}

/// Creates the crate.
pub fn run(args: InitArgs) -> Result<(), CliError> {
    let dir = args.path.unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir).map_err(|source| CliError::File {
        path: dir.clone(),
        source,
    })?;
    let dir = dir.canonicalize().map_err(|source| CliError::File {
        path: dir.clone(),
        source,
    })?;
    let name = identifier(&args.name.unwrap_or_else(|| {
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }));
    let sdk = args.sdk_path.unwrap_or_else(|| PathBuf::from(SDK_AT_BUILD));
    let sdk = sdk.canonicalize().map_err(|_| {
        CliError::Usage(format!(
            "the interstice-sdk sources are not at {}: pass --sdk-path <dir>",
            sdk.display()
        ))
    })?;
    let testing = sdk.parent().map(|d| d.join("interstice-testing"));
    let testing = match testing {
        Some(dir) if dir.join("Cargo.toml").is_file() => dir,
        _ => {
            return Err(CliError::Usage(format!(
                "interstice-testing is not next to the SDK at {}",
                sdk.display()
            )));
        }
    };
    let sdk = sdk.to_string_lossy().replace('\\', "/");
    let testing = testing.to_string_lossy().replace('\\', "/");
    write_new(
        &dir.join("Cargo.toml"),
        &format!(
            r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
interstice-sdk = {{ path = "{sdk}" }}

# `cargo test` runs the module natively on the real engine, in memory.
[dev-dependencies]
interstice-testing = {{ path = "{testing}" }}

# `interstice publish` builds the module with this profile: small and fast.
[profile.wasm-module]
inherits = "release"
debug = false
strip = true
codegen-units = 16
incremental = true

# A crate of its own, not a member of an enclosing workspace.
[workspace]
"#
        ),
    )?;
    write_new(&dir.join("rust-toolchain.toml"), TOOLCHAIN)?;
    write_new(
        &dir.join(".cargo").join("config.toml"),
        "# `cargo wasm` builds the module for wasm as `interstice publish` does; `cargo test`\n\
         # runs its tests natively.\n\
         [alias]\n\
         wasm = \"build --target wasm32-unknown-unknown --profile wasm-module\"\n",
    )?;
    write_new(&dir.join("Cargo.lock"), LOCKFILE)?;
    write_new(&dir.join(".gitignore"), "/target\n")?;
    write_new(
        &dir.join("src").join("lib.rs"),
        r#"//! An Interstice module: a table, a reducer that writes it, a query that reads it.

use interstice_sdk::*;

// Public: other nodes (and `interstice call_reducer`) may reach it.
interstice_module!(visibility: Public);

/// One note per call of `add_note`.
#[table]
pub struct Note {
    #[primary_key(auto_inc)]
    pub id: u64,
    pub text: String,
}

/// Runs once, when the module is first installed on a node.
#[reducer(on = "init")]
fn init(_ctx: ReducerContext) {
    host_calls::log("module initialised");
}

/// Stores a note.
#[reducer]
fn add_note(ctx: ReducerContext, text: String) -> Result<(), HostError> {
    ctx.current.tables.note().insert(Note { id: 0, text })?;
    Ok(())
}

/// Every note, oldest first.
#[query]
fn notes(ctx: QueryContext) -> Vec<String> {
    ctx.current.tables.note().scan().map(|n| n.text).collect()
}

// `cargo test` runs these natively, on the engine a node runs, in memory.
#[cfg(test)]
mod tests {
    use super::*;
    use interstice_testing::TestNode;

    #[test]
    fn notes_are_kept_in_order() {
        let mut node = TestNode::new();
        node.call("add_note", ("first".to_string(),)).unwrap();
        node.call("add_note", ("second".to_string(),)).unwrap();
        let notes: Vec<String> = node.query("notes", ()).unwrap();
        assert_eq!(notes, ["first", "second"]);
        let rows: Vec<Note> = node.rows("note");
        assert_eq!(rows[1].id, 2, "ids count up from 1");
        assert_eq!(node.take_logs(), ["module initialised"]);
    }
}
"#,
    )?;
    println!("created module `{name}` in {}", dir.display());
    println!("  test it:    cargo test (natively, on an in-memory node)");
    println!("  build it:   cargo wasm (see .cargo/config.toml)");
    println!("  install it: interstice publish <node> {}", dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::identifier;

    #[test]
    fn names_become_identifiers() {
        assert_eq!(identifier("My-Module"), "my_module");
        assert_eq!(identifier("9lives"), "module_9lives");
        assert_eq!(identifier(""), "module_");
    }
}
