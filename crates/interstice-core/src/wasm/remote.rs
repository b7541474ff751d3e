//! Reducer calls for other nodes: checked when the guest makes them, kept with the transaction
//! and numbered when it commits.

use super::state::{HostState, MAX_REMOTE_ARGS};
use crate::host_tables::outbox::RemoteCall;
use interstice_abi::HostError;
use interstice_abi::codec::Reader;

/// Checks a remote reducer call ([`CallKind::RemoteReducer`]) and keeps it with the
/// transaction.
///
/// [`CallKind::RemoteReducer`]: interstice_abi::protocol::CallKind::RemoteReducer
pub fn queue_remote_call(state: &mut HostState, payload: &[u8]) -> Result<(), HostError> {
    if state.tx.read_only {
        return Err(HostError::NotPermitted(
            "a query cannot call reducers on other nodes".into(),
        ));
    }
    if state.caller.is_some() {
        return Err(HostError::NotPermitted(
            "remote calls are made by the module a transaction started in, not by modules it calls"
                .into(),
        ));
    }
    let quotas = state.quotas;
    if state.effects.remote_calls.len() >= quotas.remote_calls_per_call {
        return Err(crate::config::Quotas::exceeded(
            "remote calls per transaction",
            quotas.remote_calls_per_call,
        ));
    }
    let mut r = Reader::new(payload);
    let parsed = (|| {
        let node = r.string().ok()?;
        let module = r.string().ok()?;
        let reducer = r.string().ok()?;
        let n = r.length(1).ok()?;
        let args = r.bytes(n).ok()?.to_vec();
        r.finish().ok()?;
        Some((node, module, reducer, args))
    })();
    let Some((node, module, reducer, args)) = parsed else {
        return Err(HostError::InvalidPayload("remote call payload".into()));
    };
    if args.len() > MAX_REMOTE_ARGS {
        return Err(HostError::InvalidPayload(format!(
            "remote call arguments of {} bytes exceed {MAX_REMOTE_ARGS}",
            args.len()
        )));
    }
    let queued: usize = state
        .effects
        .remote_calls
        .iter()
        .map(|c| c.args.len())
        .sum();
    if queued + args.len() > quotas.remote_call_bytes_per_call {
        return Err(crate::config::Quotas::exceeded(
            "bytes of remote call arguments per transaction",
            quotas.remote_call_bytes_per_call,
        ));
    }
    let address = state
        .schema
        .as_ref()
        .and_then(|s| s.nodes.iter().find(|n| n.name == node))
        .map(|n| n.address.clone())
        .ok_or_else(|| {
            HostError::NotPermitted(format!(
                "unknown node `{node}`: declare it with src/bindings/node_{node}.toml"
            ))
        })?;
    state.effects.remote_calls.push(RemoteCall {
        // Numbered when the transaction commits (`Modules::invoke`).
        request: 0,
        from: state.module.to_string(),
        node,
        address,
        module,
        reducer,
        args,
    });
    Ok(())
}
