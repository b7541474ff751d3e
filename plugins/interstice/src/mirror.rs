//! Tables seen from the game: change messages and table → entity mirroring.
//!
//! [`IntersticeAppExt::watch_table`] makes every committed change of a table arrive as a
//! [`TableChanged`] message (in [`IntersticeSystems::Publish`]); [`MirrorTable`] goes further
//! and keeps one entity per row, with the row (as the module's own Rust type) in a
//! [`Mirrored`] component: spawned on insert, updated in place, despawned on delete.
//!
//! ```ignore
//! use bevy::prelude::*;
//! use interstice::prelude::*;
//! use swarm::Dot; // the module crate, as a native dependency: its row type
//!
//! fn follow(mut dots: Query<(&Mirrored<Dot>, &mut Transform), Changed<Mirrored<Dot>>>) {
//!     for (dot, mut transform) in &mut dots {
//!         transform.translation = Vec3::new(dot.0.x, dot.0.y, 0.0);
//!     }
//! }
//!
//! App::new()
//!     .add_plugins((
//!         DefaultPlugins,
//!         IntersticePlugin::default().with_module_file("swarm.wasm"),
//!         MirrorTable::<Dot>::new("swarm", "dot"),
//!     ))
//!     .add_systems(Update, follow.after(IntersticeSystems::Publish))
//!     .run();
//! ```

use bevy::prelude::*;
use interstice_abi::{IntersticeType, KeyHash, Value};
use interstice_core::{ChangeBatch, ChangeKind, Database, IntersticeSystems, Modules, TableChange};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

/// A committed change of a watched table.
#[derive(Message, Debug, Clone, PartialEq)]
pub struct TableChanged(pub TableChange);

impl TableChanged {
    /// The row (after an insert or update, before a delete) as the module's Rust type.
    pub fn row<T: IntersticeType>(&self) -> Result<T, interstice_abi::DecodeError> {
        T::from_bytes(&self.0.row)
    }

    /// Whether this is a change of `module.table`.
    pub fn is(&self, module: &str, table: &str) -> bool {
        &*self.0.module == module && &*self.0.table == table
    }
}

/// Tables to watch, asked for before the engine existed: `(module, table, messages)`.
#[derive(Resource, Debug, Default)]
struct WatchRequests(Vec<(String, String, bool)>);

/// Tables whose changes become [`TableChanged`] messages (a mirror alone reads its table's
/// changes from [`TableChanges`], with no message per row).
#[derive(Resource, Debug, Default)]
pub(crate) struct MessageWatches(Vec<(Arc<str>, Arc<str>)>);

impl MessageWatches {
    /// Sends messages for `module.table` from now on.
    pub(crate) fn add(&mut self, module: &str, table: &str) {
        if !self.0.iter().any(|(m, t)| &**m == module && &**t == table) {
            self.0.push((Arc::from(module), Arc::from(table)));
        }
    }

    fn wants(&self, module: &str, table: &str) -> bool {
        self.0.iter().any(|(m, t)| &**m == module && &**t == table)
    }

    fn wants_module(&self, module: &str) -> bool {
        self.0.iter().any(|(m, _)| &**m == module)
    }
}

/// The watched tables' changes committed this frame: one [`ChangeBatch`] per transaction and
/// module, oldest first, replaced in every [`IntersticeSystems::Publish`]. The bulk way to
/// read changes (mirrors use it); [`TableChanged`] messages carry the same changes one row at
/// a time, for the tables given to [`IntersticeAppExt::watch_table`].
///
/// It is replaced, not appended to: a system reading it must run in every frame's `Publish`
/// step (after [`MirrorSystems::Messages`]) to see every change.
#[derive(Resource, Debug, Default)]
pub struct TableChanges(Vec<ChangeBatch>);

impl TableChanges {
    /// This frame's batches, oldest first.
    pub fn iter(&self) -> std::slice::Iter<'_, ChangeBatch> {
        self.0.iter()
    }
}

/// Adding table watches to an app.
pub trait IntersticeAppExt {
    /// Sends a [`TableChanged`] message for every committed change of `module.table`.
    fn watch_table(&mut self, module: &str, table: &str) -> &mut Self;
}

impl IntersticeAppExt for App {
    fn watch_table(&mut self, module: &str, table: &str) -> &mut Self {
        request(self, module, table, true)
    }
}

fn request<'a>(app: &'a mut App, module: &str, table: &str, messages: bool) -> &'a mut App {
    app.init_resource::<WatchRequests>();
    app.world_mut().resource_mut::<WatchRequests>().0.push((
        module.to_string(),
        table.to_string(),
        messages,
    ));
    app
}

pub(crate) fn add(app: &mut App) {
    app.add_message::<TableChanged>()
        .init_resource::<WatchRequests>()
        .init_resource::<MessageWatches>()
        .init_resource::<TableChanges>()
        .add_systems(
            Update,
            publish_table_changes
                .in_set(IntersticeSystems::Publish)
                .in_set(MirrorSystems::Messages),
        );
}

/// Order inside [`IntersticeSystems::Publish`]: messages first, then mirrors.
#[derive(SystemSet, Debug, Clone, PartialEq, Eq, Hash)]
pub enum MirrorSystems {
    /// The feed becomes [`TableChanges`] and [`TableChanged`] messages.
    Messages,
    /// Mirrored entities follow the changes.
    Mirror,
}

fn publish_table_changes(
    mut modules: ResMut<Modules>,
    mut requests: ResMut<WatchRequests>,
    mut watches: ResMut<MessageWatches>,
    mut frame: ResMut<TableChanges>,
    mut changes: MessageWriter<TableChanged>,
) {
    for (module, table, messages) in requests.0.drain(..) {
        modules.watch_table(&module, &table);
        if messages {
            watches.add(&module, &table);
        }
    }
    frame.0 = modules.take_table_changes();
    for batch in &frame.0 {
        let module = batch.module();
        if watches.wants_module(module) {
            changes.write_batch(
                batch
                    .changes(|table| watches.wants(module, table))
                    .map(TableChanged),
            );
        }
    }
}

/// The row of a mirrored table, as the module's type.
#[derive(Component, Debug, Clone, PartialEq)]
pub struct Mirrored<T>(pub T);

/// Which row a mirrored entity stands for.
#[derive(Component, Debug, Clone, PartialEq)]
pub struct MirrorKey {
    /// The module owning the table.
    pub module: Arc<str>,
    /// The table.
    pub table: Arc<str>,
    /// The row's primary key.
    pub key: Value,
}

/// What a mirror did so far (for tests, the inspector and benchmarks).
#[derive(Resource, Debug)]
pub struct MirrorStats<T> {
    /// Entities spawned for new rows.
    pub spawned: u64,
    /// Rows updated in place.
    pub updated: u64,
    /// Entities despawned for deleted rows.
    pub despawned: u64,
    /// Rows that did not decode as `T` (a mismatch between the game's and the module's type).
    pub undecodable: u64,
    _row: PhantomData<fn() -> T>,
}

impl<T> Default for MirrorStats<T> {
    fn default() -> Self {
        MirrorStats {
            spawned: 0,
            updated: 0,
            despawned: 0,
            undecodable: 0,
            _row: PhantomData,
        }
    }
}

/// Mirrors the rows of `module.table` into entities with a [`Mirrored<T>`] component (one
/// mirror per row type). Rows present when the mirror starts are spawned at once.
#[derive(Debug)]
pub struct MirrorTable<T> {
    module: String,
    table: String,
    _row: PhantomData<fn() -> T>,
}

impl<T> MirrorTable<T> {
    /// A mirror of `module.table`.
    pub fn new(module: &str, table: &str) -> Self {
        MirrorTable {
            module: module.into(),
            table: table.into(),
            _row: PhantomData,
        }
    }
}

#[derive(Resource)]
struct Mirror<T> {
    module: Arc<str>,
    table: Arc<str>,
    entities: HashMap<Value, Entity, KeyHash>,
    synced: bool,
    _row: PhantomData<fn() -> T>,
}

impl<T: IntersticeType + Send + Sync + 'static> Plugin for MirrorTable<T> {
    fn build(&self, app: &mut App) {
        request(app, &self.module, &self.table, false)
            .insert_resource(Mirror::<T> {
                module: Arc::from(self.module.as_str()),
                table: Arc::from(self.table.as_str()),
                entities: HashMap::default(),
                synced: false,
                _row: PhantomData,
            })
            .init_resource::<MirrorStats<T>>()
            .configure_sets(
                Update,
                MirrorSystems::Mirror
                    .after(MirrorSystems::Messages)
                    .in_set(IntersticeSystems::Publish),
            )
            .add_systems(Update, mirror::<T>.in_set(MirrorSystems::Mirror));
    }
}

fn mirror<T: IntersticeType + Send + Sync + 'static>(
    mut mirror: ResMut<Mirror<T>>,
    mut stats: ResMut<MirrorStats<T>>,
    db: Res<Database>,
    changes: Res<TableChanges>,
    mut rows: Query<&mut Mirrored<T>>,
    mut commands: Commands,
) {
    let mirror = &mut *mirror;
    if !mirror.synced {
        // The rows already there (restored from disk, inserted by init hooks); the changes
        // that follow are applied by key, so seeing one of them twice does no harm.
        let Some(table) = db.table(&mirror.module, &mirror.table) else {
            return;
        };
        mirror.synced = true;
        let pk = usize::from(table.schema().primary_key);
        let mut buffer = Vec::new();
        for row in table.rows() {
            buffer.clear();
            table.encode_row(row, &mut buffer);
            let (Some(key), Ok(value)) = (row.get(pk), T::from_bytes(&buffer)) else {
                stats.undecodable += 1;
                continue;
            };
            let entity = commands
                .spawn((Mirrored(value), key_of(mirror, key.clone())))
                .id();
            mirror.entities.insert(key.clone(), entity);
            stats.spawned += 1;
        }
    }
    let batches = changes.iter().filter(|b| *b.module() == mirror.module);
    for change in batches.flat_map(|b| b.rows_of(&mirror.table)) {
        if change.kind == ChangeKind::Delete {
            if let Some(entity) = mirror.entities.remove(change.key) {
                commands.entity(entity).despawn();
                stats.despawned += 1;
            }
            continue;
        }
        let Ok(value) = T::from_bytes(change.row) else {
            stats.undecodable += 1;
            continue;
        };
        match mirror.entities.get(change.key) {
            Some(entity) => {
                match rows.get_mut(*entity) {
                    Ok(mut row) => row.0 = value,
                    // Spawned earlier this frame: its component is still a command.
                    Err(_) => {
                        commands.entity(*entity).insert(Mirrored(value));
                    }
                }
                stats.updated += 1;
            }
            None => {
                let entity = commands
                    .spawn((Mirrored(value), key_of(mirror, change.key.clone())))
                    .id();
                mirror.entities.insert(change.key.clone(), entity);
                stats.spawned += 1;
            }
        }
    }
}

fn key_of<T>(mirror: &Mirror<T>, key: Value) -> MirrorKey {
    MirrorKey {
        module: mirror.module.clone(),
        table: mirror.table.clone(),
        key,
    }
}
