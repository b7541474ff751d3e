//! `interstice logs`: the guest log lines a node kept, and (`--follow`) those that come after.

use crate::client::{ask, with_node};
use crate::home::{CliError, Home};
use interstice_net::message::{LogLine, Message};
use interstice_net::transport::Peer;
use std::time::Duration;

/// How often `--follow` asks for new lines.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

fn level_name(level: u32) -> &'static str {
    match level {
        0 => "ERROR",
        1 => "WARN",
        2 => "INFO",
        3 => "DEBUG",
        _ => "TRACE",
    }
}

fn print(line: &LogLine, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({
                "seq": line.seq,
                "module": line.module,
                "level": level_name(line.level),
                "message": line.message,
                "at_ms": line.at_ms,
            })
        );
    } else {
        println!(
            "{:>5} [{}] {}",
            level_name(line.level),
            crate::text::printable(&line.module),
            crate::text::printable(&line.message)
        );
    }
}

/// One page of kept lines numbered after `after` (of `module`, or of every module), and the
/// number to ask after next.
async fn page(
    peer: &Peer,
    module: Option<String>,
    after: u64,
) -> Result<(Vec<LogLine>, u64), CliError> {
    let request = Message::LogsRequest {
        request: crate::calls::request_id(),
        module,
        after,
    };
    match ask(peer, &request).await? {
        Message::Logs {
            outcome: Ok(page), ..
        } => Ok(page),
        Message::Logs {
            outcome: Err(e), ..
        } => Err(crate::calls::remote(e)),
        other => Err(crate::calls::unexpected(other)),
    }
}

/// `interstice logs <node> [module] [--follow] [--json]`.
pub fn logs(
    home: &Home,
    node: &str,
    module: Option<&str>,
    follow: bool,
    json: bool,
) -> Result<(), CliError> {
    let entry = home.node(node)?;
    let module = module.map(str::to_string);
    with_node(home, &entry, |peer| async move {
        let mut after = 0;
        loop {
            let (lines, next) = page(&peer, module.clone(), after).await?;
            for line in &lines {
                print(line, json);
            }
            use std::io::Write;
            let _ = std::io::stdout().flush();
            after = next.max(after);
            if !follow {
                return Ok(());
            }
            if lines.is_empty() {
                tokio::time::sleep(FOLLOW_EVERY).await;
            }
        }
    })
}

/// Prints `module`'s log lines logged from now on, until the node stops answering; the lines
/// kept from before are skipped. What `interstice dev` runs beside its rebuilds.
pub fn follow_new(home: &Home, node: &str, module: &str) -> Result<(), CliError> {
    let entry = home.node(node)?;
    let module = module.to_string();
    with_node(home, &entry, |peer| async move {
        let mut after = 0;
        let mut caught_up = false;
        loop {
            let (lines, next) = page(&peer, Some(module.clone()), after).await?;
            if caught_up {
                for line in &lines {
                    print(line, false);
                }
                use std::io::Write;
                let _ = std::io::stdout().flush();
            }
            after = next.max(after);
            if lines.is_empty() {
                caught_up = true;
                tokio::time::sleep(FOLLOW_EVERY).await;
            }
        }
    })
}
