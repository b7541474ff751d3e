//! File watching for the File authority: `files::watch(path)` in a module asks for its changes,
//! and every change under a watched path reaches the module's
//! `#[reducer(on = "file_changed")]` reducers as a `FileChanged { path, removed }`.
//!
//! The module's whole directory is watched (recursively, with the OS's notification API
//! through `notify`) once any path in it is; events outside the watched paths are dropped.
//! Events are merged per frame: several notifications for one path (create, write, close)
//! arrive as one event carrying the path's last state. The module's own committed writes are
//! changes like any other and are delivered too.

use bevy::prelude::*;
use interstice_abi::{EventSpec, Value, ValueType};
use interstice_core::{IntersticeSystems, Modules, ReducerQueue};
use notify::{RecursiveMode, Watcher};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

/// Most changes delivered per frame (the rest wait for the next frame).
const MAX_CHANGES_PER_FRAME: usize = 1024;

/// The watcher and what each module watches.
pub(crate) struct FileWatches {
    watcher: Option<notify::RecommendedWatcher>,
    sender: Sender<notify::Result<notify::Event>>,
    changes: Receiver<notify::Result<notify::Event>>,
    /// Module → its directory and the paths (relative, `""` for all) it watches.
    modules: HashMap<Arc<str>, (PathBuf, Vec<PathBuf>)>,
    /// Changes read but not delivered yet.
    pending: BTreeMap<(Arc<str>, String), bool>,
}

impl Default for FileWatches {
    fn default() -> Self {
        let (sender, changes) = channel();
        FileWatches {
            watcher: None,
            sender,
            changes,
            modules: HashMap::new(),
            pending: BTreeMap::new(),
        }
    }
}

pub(crate) fn add(app: &mut App) {
    app.add_systems(
        Update,
        deliver_file_changes.in_set(IntersticeSystems::Ingest),
    );
}

impl FileWatches {
    fn watch(&mut self, module: Arc<str>, root: PathBuf, path: &Path) {
        let relative = path.strip_prefix(&root).unwrap_or(path).to_path_buf();
        if let Some((_, paths)) = self.modules.get_mut(&module) {
            if !paths.contains(&relative) {
                paths.push(relative);
            }
            return;
        }
        if self.watcher.is_none() {
            let sender = self.sender.clone();
            match notify::recommended_watcher(move |event| {
                let _ = sender.send(event);
            }) {
                Ok(watcher) => self.watcher = Some(watcher),
                Err(e) => {
                    error!("cannot watch files: {e}");
                    return;
                }
            }
        }
        if let Err(e) = std::fs::create_dir_all(&root) {
            error!("cannot create {}: {e}", root.display());
            return;
        }
        let Some(watcher) = self.watcher.as_mut() else {
            return;
        };
        if let Err(e) = watcher.watch(&root, RecursiveMode::Recursive) {
            error!("cannot watch {}: {e}", root.display());
            return;
        }
        self.modules.insert(module, (root, vec![relative]));
    }

    /// Reads the watcher's notifications into `pending`.
    fn collect(&mut self) {
        while let Ok(event) = self.changes.try_recv() {
            let event = match event {
                Ok(event) => event,
                Err(e) => {
                    warn!("file watching: {e}");
                    continue;
                }
            };
            if event.kind.is_access() {
                continue;
            }
            let mut paths = event.paths.clone();
            if event.kind.is_create() {
                // Files made in a new directory before the OS watched it send no event of
                // their own: report what the directory already holds.
                for path in &event.paths {
                    list_files(path, &mut paths);
                }
            }
            for path in &paths {
                for (module, (root, watched)) in &self.modules {
                    let Ok(relative) = path.strip_prefix(root) else {
                        continue;
                    };
                    if !watched.iter().any(|w| relative.starts_with(w)) {
                        continue;
                    }
                    let Some(text) = relative.to_str() else {
                        continue;
                    };
                    // What the path is now decides: a rename or a remove leaves it absent.
                    let removed = !path.exists();
                    self.pending
                        .insert((module.clone(), text.replace('\\', "/")), removed);
                }
            }
        }
    }
}

/// Most entries reported for a newly created directory.
const MAX_NEW_ENTRIES: usize = 4096;

/// Adds the files and directories under `dir` (if it is one) to `out`, depth first.
fn list_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut stack = vec![dir.to_path_buf()];
    let mut listed = 0;
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if listed >= MAX_NEW_ENTRIES {
                return;
            }
            listed += 1;
            let path = entry.path();
            // Links are not followed: they could lead out of the module's directory.
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
}

fn deliver_file_changes(
    mut watches: Local<FileWatches>,
    mut modules: ResMut<Modules>,
    mut queue: ResMut<ReducerQueue>,
) {
    for (module, path) in modules.take_watch_requests() {
        let Some(root) = modules.files_dir_of(&module) else {
            continue;
        };
        watches.watch(module, root, &path);
    }
    if watches.modules.is_empty() {
        return;
    }
    watches.collect();
    let event = EventSpec::Host("file_changed".into());
    let mut delivered = 0;
    while delivered < MAX_CHANGES_PER_FRAME {
        let Some(((module, path), removed)) = watches.pending.pop_first() else {
            break;
        };
        delivered += 1;
        let Some(schema) = modules.schema(&module) else {
            continue;
        };
        // FileChanged { path: String, removed: bool }: its fields, one after the other.
        let mut args = Vec::with_capacity(path.len() + 8);
        let types = interstice_abi::TypeSet::default();
        let encoded = interstice_abi::codec::encode_value(
            &Value::String(path),
            &ValueType::String,
            &types,
            &mut args,
        )
        .and_then(|()| {
            interstice_abi::codec::encode_value(
                &Value::Bool(removed),
                &ValueType::Bool,
                &types,
                &mut args,
            )
        });
        if encoded.is_err() {
            continue;
        }
        for reducer in schema
            .reducers
            .iter()
            .filter(|r| r.on.as_ref() == Some(&event))
        {
            queue.push_event(module.to_string(), reducer.name.clone(), args.clone());
        }
    }
}
