//! The inspector: an egui overlay showing a node live — modules (version, visibility,
//! authorities, schema), tables (row counts, paged rows, a filter, changed rows highlighted),
//! reducers (a form to call one, its outcome), queries (run with arguments, the result), the
//! reducer and schedule queues, peers, the guest log and metrics (transactions a second, time
//! a frame spends running reducers), and the history of the shown table's module: a timeline
//! of the kept transactions, each with its cause and diff, and the table as it was after any
//! of them (see [`timeline`]).
//!
//! Add [`IntersticeInspectorPlugin`] next to `DefaultPlugins` and `IntersticePlugin`; F12
//! shows and hides it (see [`IntersticeInspectorPlugin::toggle`]).

pub mod history_ui;
pub mod table_view;
pub mod timeline;
pub mod ui;

use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPlugin, EguiPrimaryContextPass};
use interstice::{IntersticeAppExt, IntersticeSystems, ReducerOutcome, TableChanged};
use std::time::Instant;
pub use ui::{InspectorState, Metrics};

/// Shows the inspector overlay. Needs a window (`DefaultPlugins`).
#[derive(Debug, Clone)]
pub struct IntersticeInspectorPlugin {
    /// The key that shows and hides it.
    pub toggle: KeyCode,
    /// Whether it is shown at start.
    pub open: bool,
    /// The table (`module`, `table`) whose rows it shows at start.
    pub table: Option<(String, String)>,
}

impl Default for IntersticeInspectorPlugin {
    fn default() -> Self {
        IntersticeInspectorPlugin {
            toggle: KeyCode::F12,
            open: false,
            table: None,
        }
    }
}

#[derive(Resource)]
struct Toggle(KeyCode);

/// When the current frame's reducers started running.
#[derive(Resource, Default)]
struct ReduceStarted(Option<Instant>);

impl Plugin for IntersticeInspectorPlugin {
    fn build(&self, app: &mut App) {
        if !app.is_plugin_added::<EguiPlugin>() {
            app.add_plugins(EguiPlugin::default());
        }
        if let Some((module, table)) = &self.table {
            app.watch_table(module, table);
        }
        app.insert_resource(InspectorState {
            open: self.open,
            table: self
                .table
                .as_ref()
                .map(|(module, table)| table_view::TableView::new(module, table)),
            ..default()
        })
        .insert_resource(Toggle(self.toggle))
        .init_resource::<Metrics>()
        .init_resource::<ReduceStarted>()
        .add_systems(
            Update,
            (
                toggle,
                reduce_started.before(IntersticeSystems::Reduce),
                reduce_finished
                    .after(IntersticeSystems::Reduce)
                    .before(IntersticeSystems::Publish),
                (outcomes, changes).after(IntersticeSystems::Publish),
            ),
        )
        .add_systems(EguiPrimaryContextPass, draw);
    }
}

fn toggle(
    keys: Option<Res<ButtonInput<KeyCode>>>,
    key: Res<Toggle>,
    mut state: ResMut<InspectorState>,
) {
    if keys.is_some_and(|k| k.just_pressed(key.0)) {
        state.open = !state.open;
    }
}

fn reduce_started(mut started: ResMut<ReduceStarted>) {
    started.0 = Some(Instant::now());
}

fn reduce_finished(mut started: ResMut<ReduceStarted>, mut metrics: ResMut<Metrics>) {
    if let Some(start) = started.0.take() {
        metrics.record_reduce(start.elapsed());
    }
}

fn outcomes(
    mut outcomes: MessageReader<ReducerOutcome>,
    mut metrics: ResMut<Metrics>,
    mut state: ResMut<InspectorState>,
    time: Res<Time<Real>>,
) {
    let mut committed = 0;
    for outcome in outcomes.read() {
        if outcome.result.is_ok() {
            committed += 1;
        }
        if state.pending == Some(outcome.id) {
            state.pending = None;
            state.outcome = Some(match &outcome.result {
                Ok(()) => format!("{}.{} committed", outcome.module, outcome.reducer),
                Err(e) => format!("{}.{} failed: {e}", outcome.module, outcome.reducer),
            });
        }
    }
    metrics.record_commits(committed, time.elapsed_secs_f64());
}

fn changes(
    mut changes: MessageReader<TableChanged>,
    mut state: ResMut<InspectorState>,
    time: Res<Time<Real>>,
) {
    let now = time.elapsed_secs_f64();
    let Some(view) = state.table.as_mut() else {
        changes.clear();
        return;
    };
    for change in changes.read() {
        if change.is(&view.module, &view.table) {
            view.row_changed(change.0.key.clone(), now);
        }
    }
}

fn draw(
    mut contexts: EguiContexts,
    mut state: ResMut<InspectorState>,
    mut api: interstice::Interstice,
    metrics: Res<Metrics>,
    logs: Res<interstice::GuestLogTail>,
    (peers, storage): (
        Option<Res<interstice::network::PeerHealth>>,
        Option<Res<interstice::Storage>>,
    ),
    time: Res<Time<Real>>,
) {
    if !state.open {
        return;
    }
    let Ok(ctx) = contexts.ctx_mut() else {
        return;
    };
    let sources = ui::Sources {
        metrics: &metrics,
        logs: &logs,
        peers: peers.as_deref(),
        storage: storage.as_deref().map(interstice::Storage::health),
        history: storage.as_deref(),
        now: time.elapsed_secs_f64(),
    };
    ui::show(ctx, &mut state, &mut api, &sources);
}
