//! Who may change the node's modules, and the changes: publishing (a new module or an
//! upgrade) and removing. The node's admins may; anyone else only with the consent of the
//! module holding the Module authority.

use bevy::prelude::Resource;
use interstice_core::{Database, Modules, Storage};
use interstice_net::message::RemoteError;

/// Fingerprints allowed to publish and remove modules ([`NetworkConfig::admins`]).
///
/// [`NetworkConfig::admins`]: super::NetworkConfig::admins
#[derive(Resource)]
pub(super) struct Admins(pub(super) interstice_net::transport::TrustedPeers);

/// Whether `peer` (fingerprint; `node_id` for the policy module) may do `action` to `module`
/// (see [`ModuleAction`]): the node's admins may; anyone else only with the consent of the
/// module holding the Module authority, whose query `authorize(node_id, action, module) ->
/// bool` decides — always asked with the real module name.
pub(super) fn authorize(
    admins: &interstice_net::transport::TrustedPeers,
    modules: &mut Modules,
    db: &mut Database,
    peer: &str,
    node_id: &str,
    action: ModuleAction,
    module: &str,
) -> Result<(), RemoteError> {
    if admins.contains(peer) {
        return Ok(());
    }
    let action = action.name();
    let action = action.as_str();
    let Some(holder) = modules
        .authorities()
        .get(&interstice_abi::Authority::Module)
        .cloned()
    else {
        return Err(RemoteError::NotPermitted(format!(
            "only this node's owner may {action} modules"
        )));
    };
    let refused = |why: String| RemoteError::NotPermitted(format!("`{holder}` {why}"));
    let handle = modules
        .query(&holder, "authorize")
        .map_err(|_| refused("holds the Module authority but has no `authorize` query".into()))?;
    let mut args = Vec::new();
    interstice_abi::codec::write_str(&mut args, node_id);
    interstice_abi::codec::write_str(&mut args, action);
    interstice_abi::codec::write_str(&mut args, module);
    modules
        .check_query_args(handle, &args)
        .map_err(|e| refused(format!("has an `authorize` query of the wrong shape: {e}")))?;
    let answer = modules
        .call_query(db, handle, &args)
        .map_err(|e| refused(format!("failed to decide: {e}")))?;
    match answer.as_slice() {
        [1] => Ok(()),
        [0] => Err(refused(format!(
            "refused to let node {node_id} {action} `{module}`"
        ))),
        _ => Err(refused("answered something other than a bool".into())),
    }
}

/// What a peer asks to do to a module, as the Module authority's `authorize` query is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ModuleAction {
    /// Install a module of a name not installed yet.
    Publish,
    /// Replace an installed module, keeping its data.
    Upgrade,
    /// Replace an installed module although the new version loses data (asked in addition to
    /// `Upgrade`).
    DropData,
    /// Remove an installed module and its data.
    Remove,
    /// Let the module (published or upgraded) hold this authority (asked in addition, once per
    /// authority it claims): consent to publish is not consent to take the Gpu or the files.
    Claim(interstice_abi::Authority),
}

impl ModuleAction {
    fn name(self) -> String {
        match self {
            ModuleAction::Publish => "publish".into(),
            ModuleAction::Upgrade => "upgrade".into(),
            ModuleAction::DropData => "drop_data".into(),
            ModuleAction::Remove => "remove".into(),
            ModuleAction::Claim(authority) => format!("claim:{}", authority.name()),
        }
    }
}

/// Decides an upload: the module is compiled and described first, so the decision names it
/// and knows whether it replaces an installed module; an upgrade needs `upgrade` (and
/// `drop_data` when asked to drop data), a new module `publish`.
pub(super) fn authorize_upload(
    admins: &interstice_net::transport::TrustedPeers,
    modules: &mut Modules,
    db: &mut Database,
    upload: &super::Upload,
) -> Result<(), RemoteError> {
    if admins.contains(&upload.peer) {
        return Ok(());
    }
    let schema = modules
        .inspect(&upload.wasm)
        .map_err(|e| RemoteError::Failed(e.to_string()))?;
    let installed = modules.schema(&schema.name).is_some();
    let mut actions = vec![if installed {
        ModuleAction::Upgrade
    } else {
        ModuleAction::Publish
    }];
    if installed && upload.drop_data {
        actions.push(ModuleAction::DropData);
    }
    actions.extend(schema.authorities.iter().copied().map(ModuleAction::Claim));
    for action in actions {
        authorize(
            admins,
            modules,
            db,
            &upload.peer,
            &upload.node_id,
            action,
            &schema.name,
        )?;
    }
    Ok(())
}

/// Installs an uploaded module (durably when the node persists); a module that is installed
/// already is upgraded, keeping its data ([`Modules::upgrade`]).
pub(super) fn publish(
    modules: &mut Modules,
    db: &mut Database,
    storage: Option<&mut Storage>,
    wasm: &[u8],
    drop_data: bool,
) -> Result<interstice_net::message::Published, RemoteError> {
    let refused = |e: interstice_core::LoadError| match e {
        interstice_core::LoadError::Incompatible { .. } => RemoteError::NotPermitted(format!(
            "{e}\n(publish with --drop-data to replace it anyway)"
        )),
        e => RemoteError::Failed(e.to_string()),
    };
    // Installing finds out whether the module is there already (compiling it once).
    let installed = match storage {
        Some(storage) => storage
            .load_module(modules, db, wasm)
            .and_then(|schema| {
                storage
                    .commit(db)
                    .map(|()| schema)
                    .map_err(interstice_core::LoadError::from)
            })
            .map(|schema| (schema, Vec::new(), false))
            .or_else(|e| match e {
                interstice_core::LoadError::DuplicateModule(_) => storage
                    .upgrade_module(modules, db, wasm, drop_data)
                    .map(|(schema, dropped)| (schema, dropped, true)),
                e => Err(e),
            }),
        None => modules
            .load(db, wasm)
            .map(|schema| (schema, Vec::new(), false))
            .or_else(|e| match e {
                interstice_core::LoadError::DuplicateModule(_) => modules
                    .upgrade(db, wasm, drop_data)
                    .map(|(schema, dropped)| (schema, dropped, true)),
                e => Err(e),
            }),
    };
    let (schema, dropped, upgraded) = installed.map_err(refused)?;
    Ok(interstice_net::message::Published {
        module: schema.name.clone(),
        upgraded,
        dropped,
    })
}

/// Removes a module, its tables and (when the node persists) its stored code and data.
pub(super) fn remove(
    modules: &mut Modules,
    db: &mut Database,
    storage: Option<&mut Storage>,
    module: &str,
) -> Result<(), RemoteError> {
    if modules.schema(module).is_none() {
        return Err(RemoteError::NotFound(format!("module `{module}`")));
    }
    match storage {
        Some(storage) => storage
            .remove_module(modules, db, module)
            .map_err(|e| RemoteError::Failed(e.to_string())),
        None => {
            modules.unload(db, module);
            Ok(())
        }
    }
}
