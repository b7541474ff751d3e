//! `interstice history`: the versions of a logged table's rows, with the transaction that made
//! each (its log position, logical time, reducer, arguments and caller), read from a running
//! node page by page (the node's owner only; read-only).

use crate::client::{ask, with_node};
use crate::home::{CliError, Home};
use crate::point::Point;
use interstice::abi::{ModuleSchema, Value, ValueType};
use interstice_net::message::{HistoryPage, HistoryVersion, Message};
use serde_json::{Map, Value as Json};

/// What `interstice history` was asked for.
pub struct HistoryArgs<'a> {
    pub node: &'a str,
    pub module: &'a str,
    pub table: &'a str,
    /// One row's primary key, as typed.
    pub key: Option<&'a str>,
    /// The first transaction or logical time to show.
    pub from: Option<Point>,
    /// The last one.
    pub to: Option<Point>,
    pub json: bool,
}

/// Asks for one page.
async fn page(
    peer: &interstice_net::transport::Peer,
    args: &HistoryArgs<'_>,
    (from_seq, skip): (u64, u32),
) -> Result<HistoryPage, CliError> {
    let request = Message::HistoryRequest {
        request: crate::calls::request_id(),
        module: args.module.to_string(),
        table: args.table.to_string(),
        key: args.key.map(str::to_string),
        from_seq,
        skip,
        to_seq: args.to.and_then(Point::tx).unwrap_or(u64::MAX),
        limit: 1_000,
    };
    match ask(peer, &request).await? {
        Message::History {
            outcome: Ok(page), ..
        } => Ok(page),
        Message::History {
            outcome: Err(e), ..
        } => Err(crate::calls::remote(e)),
        other => Err(crate::calls::unexpected(other)),
    }
}

/// A row as a JSON object, by column.
fn row_json(page: &HistoryPage, bytes: &[u8]) -> Result<Json, CliError> {
    let types: Vec<ValueType> = page.columns.iter().map(|c| c.ty.clone()).collect();
    let value = interstice::abi::codec::decode_exact(&ValueType::Tuple(types), &page.types, bytes)
        .map_err(|e| CliError::Other(format!("the node sent a row that does not decode: {e}")))?;
    let Value::Tuple(values) = value else {
        return Err(CliError::Other(
            "the node sent a row that is not a row".into(),
        ));
    };
    Ok(Json::Object(
        page.columns
            .iter()
            .zip(&values)
            .map(|(c, v)| {
                (
                    c.name.clone(),
                    interstice::values::to_json(v, &c.ty, &page.types),
                )
            })
            .collect(),
    ))
}

/// The primary key as JSON.
fn key_json(page: &HistoryPage, bytes: &[u8]) -> Result<Json, CliError> {
    let pk = page
        .columns
        .get(page.primary_key as usize)
        .ok_or_else(|| CliError::Other("the table has no primary key".into()))?;
    let key = interstice::abi::codec::decode_exact(&pk.ty, &page.types, bytes)
        .map_err(|e| CliError::Other(format!("the node sent a key that does not decode: {e}")))?;
    Ok(interstice::values::to_json(&key, &pk.ty, &page.types))
}

/// The reducer's arguments by name, when the node's public schema describes the reducer;
/// otherwise their bytes in hex.
fn args_json(schemas: &[ModuleSchema], version: &HistoryVersion) -> Json {
    let decoded = schemas
        .iter()
        .find(|m| m.name == version.module)
        .and_then(|m| {
            let reducer = m.reducers.iter().find(|r| r.name == version.reducer)?;
            let types = reducer.args.iter().map(|a| a.ty.clone()).collect();
            let value = interstice::abi::codec::decode_exact(
                &ValueType::Tuple(types),
                &m.types,
                &version.args,
            )
            .ok()?;
            let Value::Tuple(values) = value else {
                return None;
            };
            let fields: Map<String, Json> = reducer
                .args
                .iter()
                .zip(&values)
                .map(|(a, v)| {
                    (
                        a.name.clone(),
                        interstice::values::to_json(v, &a.ty, &m.types),
                    )
                })
                .collect();
            Some(Json::Object(fields))
        });
    decoded
        .unwrap_or_else(|| Json::String(version.args.iter().map(|b| format!("{b:02x}")).collect()))
}

/// One version as JSON: what `--json` prints, and what a line is made of.
fn version_json(
    page: &HistoryPage,
    schemas: &[ModuleSchema],
    version: &HistoryVersion,
) -> Result<Json, CliError> {
    let mut object = Map::new();
    object.insert("tx".into(), Json::from(version.seq));
    object.insert("time_ms".into(), Json::from(version.time));
    object.insert("module".into(), Json::from(version.module.clone()));
    object.insert("reducer".into(), Json::from(version.reducer.clone()));
    object.insert("args".into(), args_json(schemas, version));
    object.insert(
        "caller".into(),
        version.caller.clone().map_or(Json::Null, Json::from),
    );
    object.insert("key".into(), key_json(page, &version.key)?);
    let row = match &version.row {
        Some(bytes) => row_json(page, bytes)?,
        None => Json::Null,
    };
    object.insert("row".into(), row);
    Ok(Json::Object(object))
}

/// A version as one line of text.
fn line(version: &Json) -> String {
    let field = |name: &str| version.get(name).cloned().unwrap_or(Json::Null);
    let caller = match field("caller") {
        Json::String(node) => format!("node {node}"),
        _ => "this node".into(),
    };
    let change = match field("row") {
        Json::Null => format!("deleted {}", field("key")),
        row => format!("now {row}"),
    };
    let text = format!(
        "tx {}\tt={} ms\t{}.{}({})\tby {caller}\t{change}",
        field("tx"),
        field("time_ms"),
        field("module").as_str().unwrap_or_default(),
        field("reducer").as_str().unwrap_or_default(),
        field("args"),
    );
    crate::text::printable(&text).into_owned()
}

/// `interstice history <node> <module> <table>`.
pub fn history(home: &Home, args: HistoryArgs<'_>) -> Result<(), CliError> {
    let from_seq = args.from.and_then(Point::tx).unwrap_or(0);
    let to_seq = args.to.and_then(Point::tx).unwrap_or(u64::MAX);
    let from_time = args.from.and_then(Point::time).unwrap_or(0);
    let to_time = args.to.and_then(Point::time).unwrap_or(u64::MAX);
    if from_seq > to_seq || from_time > to_time {
        let shown = |p: Option<Point>| p.map(|p| p.to_string()).unwrap_or_default();
        return Err(CliError::Usage(format!(
            "--from ({}) is after --to ({})",
            shown(args.from),
            shown(args.to)
        )));
    }
    let entry = home.node(args.node)?;
    with_node(home, &entry, |peer| async move {
        let schemas = crate::calls::schemas(&peer).await.unwrap_or_default();
        let mut at = (from_seq, 0);
        let mut all = Vec::new();
        'pages: loop {
            let mut current = page(&peer, &args, at).await?;
            for version in &current.versions {
                // Logical time never goes back from one transaction to the next: the versions
                // before `--from TIME` are skipped, and the first after `--to TIME` ends it.
                if version.time < from_time {
                    continue;
                }
                if version.time > to_time {
                    break 'pages;
                }
                let json = version_json(&current, &schemas, version)?;
                if args.json {
                    all.push(json);
                } else {
                    println!("{}", line(&json));
                }
            }
            match current.next.take() {
                // Each page moves on; a node that says otherwise would loop forever.
                Some(next) if next > at => at = next,
                Some(next) => {
                    return Err(CliError::Other(format!(
                        "the node sent a page that does not move on ({next:?} after {at:?})"
                    )));
                }
                None => break,
            }
        }
        if args.json {
            println!("{}", Json::Array(all));
        }
        Ok(())
    })
}
