//! Module commands: `publish`, `remove`, `call_reducer`, `call_query`, `bindings add`.

use crate::client::{ask, with_node};
use crate::home::{CliError, Home};
use crate::node::public_schemas;
use crate::registry::NodeEntry;
use crate::values;
use interstice::ModuleSchema;
use interstice::abi::{FieldDef, TypeSet, Value, ValueType};
use interstice_net::message::{Message, Published, RemoteError};
use std::path::{Path, PathBuf};

/// A request id that keeps increasing across runs of the CLI (the node remembers ids).
pub(crate) fn request_id() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as u64)
}

pub(crate) fn remote(e: RemoteError) -> CliError {
    CliError::Refused(match e {
        RemoteError::NotFound(what) => format!("the node has no public {what}"),
        RemoteError::NotPermitted(why) => format!("not permitted: {why}"),
        RemoteError::Failed(why) => format!("failed: {why}"),
        RemoteError::Timeout => "the node did not answer in time".into(),
        RemoteError::Busy(why) => format!("the node is busy ({why}); try again in a moment"),
    })
}

pub(crate) fn unexpected(answer: Message) -> CliError {
    CliError::Other(format!("unexpected answer from the node: {answer:?}"))
}

/// Encodes command-line arguments for a reducer or query.
fn encode_args(
    what: &str,
    params: &[FieldDef],
    args: &[String],
    types: &TypeSet,
) -> Result<Vec<u8>, CliError> {
    let signature = params
        .iter()
        .map(|p| format!("{}: {}", p.name, p.ty))
        .collect::<Vec<_>>()
        .join(", ");
    if params.len() != args.len() {
        return Err(CliError::Usage(format!(
            "{what} takes {} argument(s) ({signature}), got {}",
            params.len(),
            args.len()
        )));
    }
    let mut bytes = Vec::new();
    for (param, text) in params.iter().zip(args) {
        let value = values::parse(text, &param.ty, types).map_err(|reason| {
            CliError::Usage(
                values::ArgError {
                    name: param.name.clone(),
                    expected: param.ty.to_string(),
                    reason,
                }
                .to_string(),
            )
        })?;
        interstice::abi::codec::encode_value(&value, &param.ty, types, &mut bytes)
            .map_err(|e| CliError::Usage(format!("argument `{}`: {e}", param.name)))?;
    }
    Ok(bytes)
}

/// Names for a message: `a, b, c`, or `none`.
fn names<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let list: Vec<&str> = names.map(String::as_str).collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

/// The public schemas the node serves.
pub async fn schemas(
    peer: &interstice_net::transport::Peer,
) -> Result<Vec<ModuleSchema>, CliError> {
    match ask(peer, &Message::SchemaRequest { request: 1 }).await? {
        Message::Schema { modules, .. } => Ok(modules),
        other => Err(unexpected(other)),
    }
}

fn find_module<'a>(modules: &'a [ModuleSchema], name: &str) -> Result<&'a ModuleSchema, CliError> {
    modules.iter().find(|m| m.name == name).ok_or_else(|| {
        CliError::Refused(format!(
            "the node has no public module `{name}` (public modules: {})",
            names(modules.iter().map(|m| &m.name))
        ))
    })
}

/// Calls `module.reducer` with encoded `args` and waits for the commit (or the refusal).
pub async fn commit(
    peer: &interstice_net::transport::Peer,
    module: &str,
    reducer: &str,
    args: Vec<u8>,
) -> Result<(), CliError> {
    let message = Message::CallReducer {
        request: request_id(),
        module: module.into(),
        reducer: reducer.into(),
        args,
    };
    match ask(peer, &message).await? {
        Message::CallResult {
            outcome: Ok(()), ..
        } => Ok(()),
        Message::CallResult {
            outcome: Err(e), ..
        } => Err(remote(e)),
        other => Err(unexpected(other)),
    }
}

/// Runs `module.query` with encoded `args`; its encoded result.
pub async fn run_query(
    peer: &interstice_net::transport::Peer,
    module: &str,
    query: &str,
    args: Vec<u8>,
) -> Result<Vec<u8>, CliError> {
    let message = Message::Query {
        request: request_id(),
        module: module.into(),
        query: query.into(),
        args,
    };
    match ask(peer, &message).await? {
        Message::QueryResult {
            outcome: Ok(bytes), ..
        } => Ok(bytes),
        Message::QueryResult {
            outcome: Err(e), ..
        } => Err(remote(e)),
        other => Err(unexpected(other)),
    }
}

/// `interstice call_reducer`.
pub fn call_reducer(
    home: &Home,
    node: &str,
    module: &str,
    reducer: &str,
    args: &[String],
    json: bool,
) -> Result<(), CliError> {
    let entry = home.node(node)?;
    let (module, reducer) = (module.to_string(), reducer.to_string());
    let args = args.to_vec();
    with_node(home, &entry, |peer| async move {
        let modules = schemas(&peer).await?;
        let schema = find_module(&modules, &module)?;
        let target = schema.reducer(&reducer).ok_or_else(|| {
            CliError::Refused(format!(
                "module `{module}` has no reducer `{reducer}` that can be called (reducers: {})",
                names(schema.reducers.iter().map(|r| &r.name))
            ))
        })?;
        let bytes = encode_args(
            &format!("reducer `{module}.{reducer}`"),
            &target.args,
            &args,
            &schema.types,
        )?;
        commit(&peer, &module, &reducer, bytes).await?;
        if json {
            println!("{}", serde_json::json!({ "ok": true }));
        } else {
            println!("{module}.{reducer}: committed");
        }
        Ok(())
    })
}

/// `interstice call_query`.
pub fn call_query(
    home: &Home,
    node: &str,
    module: &str,
    query: &str,
    args: &[String],
    json: bool,
) -> Result<(), CliError> {
    let entry = home.node(node)?;
    let (module, query) = (module.to_string(), query.to_string());
    let args = args.to_vec();
    with_node(home, &entry, |peer| async move {
        let modules = schemas(&peer).await?;
        let schema = find_module(&modules, &module)?;
        let target = schema.query(&query).ok_or_else(|| {
            CliError::Refused(format!(
                "module `{module}` has no query `{query}` (queries: {})",
                names(schema.queries.iter().map(|q| &q.name))
            ))
        })?;
        let bytes = encode_args(
            &format!("query `{module}.{query}`"),
            &target.args,
            &args,
            &schema.types,
        )?;
        let result = run_query(&peer, &module, &query, bytes).await?;
        let value = decode(&result, &target.returns, &schema.types)?;
        if json {
            println!(
                "{}",
                values::to_json(&value, &target.returns, &schema.types)
            );
        } else {
            let shown = values::display(&value, &target.returns, &schema.types);
            println!("{}", crate::text::printable(&shown));
        }
        Ok(())
    })
}

fn decode(bytes: &[u8], ty: &ValueType, types: &TypeSet) -> Result<Value, CliError> {
    let mut reader = interstice::abi::Reader::new(bytes);
    let value = interstice::abi::codec::decode_value(ty, types, &mut reader)
        .map_err(|e| CliError::Other(format!("the node's answer does not decode: {e}")))?;
    reader
        .finish()
        .map_err(|e| CliError::Other(format!("the node's answer does not decode: {e}")))?;
    Ok(value)
}

/// The package name in a crate's `Cargo.toml`.
fn package_name(project: &Path) -> Result<String, CliError> {
    let manifest = project.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|source| CliError::File {
        path: manifest.clone(),
        source,
    })?;
    let value: toml::Value = toml::from_str(&text)
        .map_err(|e| CliError::Usage(format!("{}: {e}", manifest.display())))?;
    value
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(String::from)
        .ok_or_else(|| {
            CliError::Usage(format!(
                "{} has no [package] name: is it a module crate?",
                manifest.display()
            ))
        })
}

/// `interstice publish`: builds the module crate at `project` for wasm (cargo's progress is
/// shown), uploads it, and prints the node's verdict.
pub fn publish(home: &Home, node: &str, project: &Path, drop_data: bool) -> Result<(), CliError> {
    let entry = home.node(node)?;
    let (path, wasm) = build_module(project)?;
    eprintln!(
        "uploading {} ({} KiB) to `{}`...",
        path.display(),
        wasm.len() / 1024,
        entry.name
    );
    let published = upload(home, &entry, wasm, drop_data)?;
    print_verdict(&published, &entry.name);
    Ok(())
}

/// Builds the module crate at `project` for wasm (cargo's messages are shown); the module's
/// path and bytes.
pub fn build_module(project: &Path) -> Result<(PathBuf, Vec<u8>), CliError> {
    let package = package_name(project)?;
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("interstice-wasm"),
        None => project.join("target").join("interstice-wasm"),
    };
    eprintln!("building `{package}` for wasm...");
    let built = interstice_build::ModuleBuild::new(project.join("Cargo.toml"), target_dir)
        .package(&package)
        .run()
        .map_err(|e| CliError::Build(e.to_string()))?;
    let path = built
        .first()
        .ok_or_else(|| CliError::Build("nothing was built".into()))?
        .clone();
    let wasm = std::fs::read(&path).map_err(|source| CliError::File {
        path: path.clone(),
        source,
    })?;
    Ok((path, wasm))
}

/// Uploads a module to a node, which installs it or upgrades the installed version.
pub fn upload(
    home: &Home,
    entry: &NodeEntry,
    wasm: Vec<u8>,
    drop_data: bool,
) -> Result<Published, CliError> {
    with_node(home, entry, |peer| upload_over(peer, wasm, drop_data))
}

/// [`upload`] over an open connection.
pub async fn upload_over(
    peer: interstice_net::transport::Peer,
    wasm: Vec<u8>,
    drop_data: bool,
) -> Result<Published, CliError> {
    match peer
        .upload(request_id(), &wasm, drop_data)
        .await
        .map_err(|e| CliError::Other(format!("upload interrupted: {e}")))?
    {
        Message::PublishResult {
            outcome: Ok(published),
            ..
        } => Ok(published),
        Message::PublishResult {
            outcome: Err(e), ..
        } => Err(remote(e)),
        other => Err(unexpected(other)),
    }
}

/// Prints what a node did with an upload.
pub fn print_verdict(published: &Published, node: &str) {
    let module = crate::text::printable(&published.module);
    if published.upgraded {
        println!("upgraded `{module}` on `{node}`: its data is kept");
    } else {
        println!("published `{module}` on `{node}`");
    }
    for dropped in &published.dropped {
        println!("  dropped: {}", crate::text::printable(dropped));
    }
}

/// `interstice remove`.
pub fn remove(home: &Home, node: &str, module: &str) -> Result<(), CliError> {
    let entry = home.node(node)?;
    let (name, module) = (entry.name.clone(), module.to_string());
    with_node(home, &entry, |peer| async move {
        let answer = ask(
            &peer,
            &Message::Remove {
                request: request_id(),
                module: module.clone(),
            },
        )
        .await?;
        match answer {
            Message::RemoveResult {
                outcome: Ok(()), ..
            } => {
                println!("removed `{module}` from `{name}`");
                Ok(())
            }
            Message::RemoveResult {
                outcome: Err(e), ..
            } => Err(remote(e)),
            other => Err(unexpected(other)),
        }
    })
}

fn bindings_dir(project: Option<PathBuf>) -> Result<PathBuf, CliError> {
    let project = project.unwrap_or_else(|| PathBuf::from("."));
    if !project.join("Cargo.toml").is_file() {
        return Err(CliError::Usage(format!(
            "{} is not a crate (no Cargo.toml)",
            project.display()
        )));
    }
    let dir = project.join("src").join("bindings");
    std::fs::create_dir_all(&dir).map_err(|source| CliError::File {
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}

fn write(path: PathBuf, text: &str) -> Result<(), CliError> {
    std::fs::write(&path, text).map_err(|source| CliError::File {
        path: path.clone(),
        source,
    })?;
    println!("wrote {}", path.display());
    Ok(())
}

/// `interstice bindings add module`: a module on a node, called from modules on that node.
pub fn bindings_add_module(
    home: &Home,
    node: &str,
    module: &str,
    project: Option<PathBuf>,
) -> Result<(), CliError> {
    let entry = home.node(node)?;
    let modules = public_schemas(home, &entry)?;
    let schema = find_module(&modules, module)?.clone();
    let text = toml::to_string_pretty(&interstice::abi::Binding { module: schema })
        .map_err(|e| CliError::Other(e.to_string()))?;
    write(bindings_dir(project)?.join(format!("{module}.toml")), &text)
}

/// `interstice bindings add node`: a node and its public modules, reached from another node.
pub fn bindings_add_node(
    home: &Home,
    node: &str,
    project: Option<PathBuf>,
) -> Result<(), CliError> {
    let entry = home.node(node)?;
    let text = crate::node::schema(home, &entry)?;
    let name = entry.name.replace('-', "_");
    write(
        bindings_dir(project)?.join(format!("node_{name}.toml")),
        &text,
    )
}
