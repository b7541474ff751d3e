//! `interstice rows`: a table's rows, read from a running node page by page (read-only).

use crate::client::{ask, with_node};
use crate::home::{CliError, Home};
use interstice::abi::{Value, ValueType};
use interstice_net::message::{Message, PastPoint, RowsPage};

/// What `interstice rows` was asked for.
pub struct RowsArgs<'a> {
    pub node: &'a str,
    pub module: &'a str,
    pub table: &'a str,
    /// `COLUMN=VALUE`.
    pub filter: Option<&'a str>,
    /// The most rows to print.
    pub limit: u64,
    /// The primary key to start after, as typed.
    pub after: Option<&'a str>,
    /// The table as it was at this point of its history.
    pub as_of: Option<crate::point::Point>,
    pub json: bool,
}

/// Asks for one page.
async fn page(
    peer: &interstice_net::transport::Peer,
    args: &RowsArgs<'_>,
    after: Option<Vec<u8>>,
    limit: u64,
) -> Result<RowsPage, CliError> {
    let filter = args
        .filter
        .map(|f| {
            f.split_once('=')
                .map(|(c, v)| (c.trim().to_string(), v.to_string()))
                .ok_or_else(|| {
                    CliError::Usage(format!("--filter {f}: expected COLUMN=VALUE, such as id=7"))
                })
        })
        .transpose()?;
    let request = Message::RowsRequest {
        request: crate::calls::request_id(),
        module: args.module.to_string(),
        table: args.table.to_string(),
        after,
        filter,
        limit: u32::try_from(limit).unwrap_or(u32::MAX),
        as_of: args.as_of.map(|point| match point {
            crate::point::Point::Tx(tx) => PastPoint::Tx(tx),
            crate::point::Point::Time(ms) => PastPoint::Time(ms),
        }),
    };
    match ask(peer, &request).await? {
        Message::Rows {
            outcome: Ok(page), ..
        } => Ok(page),
        Message::Rows {
            outcome: Err(e), ..
        } => Err(crate::calls::remote(e)),
        other => Err(crate::calls::unexpected(other)),
    }
}

/// A row's cells as JSON, by column.
fn cells(page: &RowsPage, bytes: &[u8]) -> Result<Vec<serde_json::Value>, CliError> {
    let types: Vec<ValueType> = page.columns.iter().map(|c| c.ty.clone()).collect();
    let row_type = ValueType::Tuple(types);
    let value = interstice::abi::codec::decode_exact(&row_type, &page.types, bytes)
        .map_err(|e| CliError::Other(format!("the node sent a row that does not decode: {e}")))?;
    let Value::Tuple(values) = value else {
        return Err(CliError::Other(
            "the node sent a row that is not a row".into(),
        ));
    };
    Ok(values
        .iter()
        .zip(&page.columns)
        .map(|(v, c)| interstice::values::to_json(v, &c.ty, &page.types))
        .collect())
}

/// `interstice rows <node> <module> <table>`.
pub fn rows(home: &Home, args: RowsArgs<'_>) -> Result<(), CliError> {
    let entry = home.node(args.node)?;
    with_node(home, &entry, |peer| async move {
        // The first page says how keys are typed: `--after` is parsed against it.
        let mut first = page(&peer, &args, None, args.limit.clamp(1, 1_000)).await?;
        if let Some(text) = args.after {
            let pk = first
                .columns
                .get(first.primary_key as usize)
                .ok_or_else(|| CliError::Other("the table has no primary key".into()))?;
            let key = interstice::values::parse(text, &pk.ty, &first.types).map_err(|e| {
                CliError::Usage(format!("--after {text}: the key `{}` {e}", pk.name))
            })?;
            let mut bytes = Vec::new();
            interstice::abi::codec::encode_value(&key, &pk.ty, &first.types, &mut bytes)
                .map_err(|e| CliError::Other(format!("encoding --after: {e:?}")))?;
            first = page(&peer, &args, Some(bytes), args.limit.clamp(1, 1_000)).await?;
        }
        let columns: Vec<String> = first.columns.iter().map(|c| c.name.clone()).collect();
        let pk = first.primary_key as usize;
        let mut printed = 0u64;
        let mut last_key = None;
        let mut rows_json = Vec::new();
        let mut current = first;
        if !args.json {
            println!("{}", columns.join("\t"));
        }
        let more = loop {
            for bytes in &current.rows {
                if printed == args.limit {
                    break;
                }
                let row = cells(&current, bytes)?;
                last_key = row.get(pk).cloned();
                if args.json {
                    rows_json.push(serde_json::Value::Object(
                        columns.iter().cloned().zip(row).collect(),
                    ));
                } else {
                    let line: Vec<String> = row
                        .iter()
                        .map(|cell| match cell {
                            serde_json::Value::String(s) => crate::text::printable(s).into_owned(),
                            other => other.to_string(),
                        })
                        .collect();
                    println!("{}", line.join("\t"));
                }
                printed += 1;
            }
            let full = printed == args.limit;
            match current.next.take() {
                Some(next) if !full => {
                    current =
                        page(&peer, &args, Some(next), (args.limit - printed).min(1_000)).await?;
                }
                // Pages never hold more than the rows still wanted: more follow only if the
                // node said where the next page starts.
                Some(_) => break true,
                None => break false,
            }
        };
        if args.json {
            println!("{}", serde_json::Value::Array(rows_json));
        }
        if more && let Some(key) = last_key {
            eprintln!(
                "{printed} rows shown; more follow: add `--after {}`",
                match key {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                }
            );
        }
        Ok(())
    })
}
