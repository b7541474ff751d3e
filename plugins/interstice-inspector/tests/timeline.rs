//! The inspector's history timeline on a real node persisting into a temporary directory,
//! with the notebook fixture (logged `note` and `tally` tables, a stateful `scratch`): the
//! kept transactions in order, each step's cause and diff, the past rows equal to what the
//! table held then, back to live, the newest transactions only when there are many, and the
//! messages of a node without storage and of a table that keeps no history.

use bevy::ecs::system::RunSystemOnce;
use bevy::prelude::*;
use bevy_egui::egui;
use interstice::abi::Value;
use interstice::prelude::*;
use interstice::{Database, Modules, Storage};
use interstice_inspector::history_ui;
use interstice_inspector::table_view::TableView;
use interstice_inspector::timeline::{ChangeKind, HistorySource, MAX_TRANSACTIONS, Timeline};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn notebook_wasm() -> Vec<u8> {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| interstice_build::test_modules!["notebook"].remove(0))
        .clone()
}

/// A data directory under the test scratch directory, removed when dropped.
struct DataDir(PathBuf);

impl DataDir {
    fn new(name: &str) -> DataDir {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("inspector-timeline-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        DataDir(path)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A headless node with the notebook, persisting in `dir` (`None`: in memory only).
fn node(dir: Option<&Path>) -> App {
    let mut plugin = IntersticePlugin::default().with_module_bytes("notebook", notebook_wasm());
    if let Some(dir) = dir {
        plugin = plugin.with_data_dir(dir);
    }
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, plugin));
    app.update();
    app
}

/// Queues calls to notebook reducers and runs one frame: each is its own transaction.
fn run<A: interstice::abi::typed::Args + Clone + Send + Sync + 'static>(
    app: &mut App,
    calls: Vec<(&'static str, A)>,
) {
    app.world_mut()
        .run_system_once(move |mut interstice: Interstice| {
            for (reducer, args) in calls.iter().cloned() {
                interstice
                    .queue_reducer("notebook", reducer, args)
                    .expect("queued");
            }
        })
        .expect("system ran");
    app.update();
    app.update();
}

fn live_rows(app: &App, table: &str) -> Vec<Vec<Value>> {
    let db = app.world().resource::<Database>();
    db.table("notebook", table)
        .expect("table")
        .rows()
        .cloned()
        .collect()
}

fn source(app: &App) -> HistorySource<'_> {
    HistorySource {
        storage: app.world().get_resource::<Storage>(),
        db: app.world().resource::<Database>(),
        modules: app.world().resource::<Modules>(),
    }
}

fn reducers(timeline: &Timeline) -> Vec<&str> {
    timeline
        .transactions
        .iter()
        .map(|t| t.reducer.as_str())
        .collect()
}

fn title(row: &[Value]) -> &Value {
    &row[1]
}

#[test]
fn steps_through_transactions_with_cause_diff_and_past_rows() {
    let dir = DataDir::new("steps");
    let mut app = node(Some(&dir.0));
    let mut states = vec![live_rows(&app, "note")];
    run(&mut app, vec![("add", ("a".to_string(),))]);
    states.push(live_rows(&app, "note"));
    run(&mut app, vec![("add", ("b".to_string(),))]);
    states.push(live_rows(&app, "note"));
    run(&mut app, vec![("rename", (1u64, "c".to_string()))]);
    states.push(live_rows(&app, "note"));
    run(&mut app, vec![("remove", (2u64,))]);
    states.push(live_rows(&app, "note"));
    // A stateful table's change keeps no history: not on the timeline.
    run(&mut app, vec![("scribble", (1u64, 2u64))]);
    assert_eq!(states[4].len(), 1);

    let mut timeline = Timeline::new("notebook", "note");
    timeline.refresh(source(&app));
    assert_eq!(timeline.message, None);
    assert_eq!(
        reducers(&timeline),
        [
            "init", "add", "counted", "add", "counted", "rename", "remove"
        ]
    );
    assert!(!timeline.older_left_out);
    assert!(!timeline.is_past());

    // From live, one step back is the newest transaction: the removal of note 2.
    timeline.step_back(source(&app));
    let point = timeline.point.clone().expect("a past point");
    assert_eq!(point.cause.reducer, "notebook.remove");
    assert_eq!(point.cause.args, "(id: 2)");
    assert_eq!(point.cause.caller, "this node");
    assert!(point.cause.time.ends_with(" s"), "{}", point.cause.time);
    assert_eq!(point.diff.len(), 1);
    let diff = &point.diff[0];
    assert_eq!(
        (diff.table.as_str(), &diff.key, diff.kind),
        ("note", &Value::U64(2), ChangeKind::Deleted)
    );
    let before = diff.before.clone().expect("known").expect("there");
    assert_eq!(title(&before), &Value::String("b".into()));
    assert_eq!(diff.after, None);
    assert_eq!(point.rows, Ok(states[4].clone()));

    // The rename: note 1 before and after.
    timeline.step_back(source(&app));
    let point = timeline.point.clone().expect("a past point");
    assert_eq!(point.cause.reducer, "notebook.rename");
    assert_eq!(point.cause.args, "(id: 1, title: c)");
    let diff = &point.diff[0];
    assert_eq!(diff.kind, ChangeKind::Updated);
    let before = diff.before.clone().expect("known").expect("there");
    assert_eq!(title(&before), &Value::String("a".into()));
    assert_eq!(
        title(diff.after.as_ref().expect("kept")),
        &Value::String("c".into())
    );
    assert_eq!(point.rows, Ok(states[3].clone()));

    // The subscription that counted the second note changed the tally, not the notes.
    timeline.step_back(source(&app));
    let point = timeline.point.clone().expect("a past point");
    assert_eq!(point.cause.reducer, "notebook.counted");
    assert!(point.diff.iter().all(|d| d.table == "tally"));
    assert_eq!(point.rows, Ok(states[2].clone()));

    // The second note's insertion.
    timeline.step_back(source(&app));
    let point = timeline.point.clone().expect("a past point");
    assert_eq!(point.cause.reducer, "notebook.add");
    let diff = &point.diff[0];
    assert_eq!(
        (&diff.key, diff.kind),
        (&Value::U64(2), ChangeKind::Inserted)
    );
    assert_eq!(diff.before, Ok(None));
    assert_eq!(point.rows, Ok(states[2].clone()));

    // Back to the first transaction, and it stays there.
    for _ in 0..5 {
        timeline.step_back(source(&app));
    }
    assert_eq!(timeline.selected_index(), Some(0));
    let point = timeline.point.clone().expect("a past point");
    assert_eq!(point.cause.reducer, "notebook.init");
    assert_eq!(point.rows, Ok(states[0].clone()));

    // Forward again, and past the newest: live.
    timeline.step_forward(source(&app));
    assert_eq!(
        timeline.point.as_ref().map(|p| p.rows.clone()),
        Some(Ok(states[1].clone()))
    );
    for _ in 0..5 {
        timeline.step_forward(source(&app));
    }
    assert_eq!(timeline.selected_index(), Some(6));
    timeline.step_forward(source(&app));
    assert!(!timeline.is_past());

    back_to_live_then_refresh(&mut app, &mut timeline);
}

/// Back to live from a past point, then new transactions on the next refresh.
fn back_to_live_then_refresh(app: &mut App, timeline: &mut Timeline) {
    // Back to live from a past point: the live page shows the table as it is now.
    timeline.select(Some(timeline.transactions[1].seq), source(app));
    assert!(timeline.is_past());
    timeline.back_to_live();
    assert!(!timeline.is_past());
    let mut view = TableView::new("notebook", "note");
    let world = app.world();
    let types = &world
        .resource::<Modules>()
        .schema("notebook")
        .expect("loaded")
        .types;
    view.refresh(world.resource::<Database>(), types, 0.0);
    let keys: Vec<&Value> = view.rows.iter().map(|(key, _)| key).collect();
    assert_eq!(keys, [&Value::U64(1)]);
    assert_eq!(view.rows[0].1[1], "c");

    // New transactions arrive on the next refresh.
    run(app, vec![("add", ("d".to_string(),))]);
    timeline.refresh(source(app));
    assert_eq!(timeline.transactions.len(), 9);
    assert_eq!(reducers(timeline)[7..], ["add", "counted"]);
}

#[test]
fn keeps_the_newest_transactions_and_pages_through_history() {
    let dir = DataDir::new("newest");
    let mut app = node(Some(&dir.0));
    let calls = (0..MAX_TRANSACTIONS as u64 + 20)
        .map(|i| ("scribble", (i % 3, i)))
        .collect();
    run(&mut app, calls);
    // Scratch is stateful: those transactions are not on the timeline.
    let mut timeline = Timeline::new("notebook", "note");
    timeline.refresh(source(&app));
    assert_eq!(reducers(&timeline), ["init"]);

    let titles: Vec<_> = (0..MAX_TRANSACTIONS / 2 + 10)
        .map(|i| ("add", (format!("note {i}"),)))
        .collect();
    run(&mut app, titles);
    // Read in small pages: every transaction comes whole.
    timeline.load_page = 3;
    timeline.refresh(source(&app));
    assert_eq!(timeline.transactions.len(), MAX_TRANSACTIONS);
    assert!(timeline.older_left_out);
    assert!(
        timeline
            .transactions
            .windows(2)
            .all(|w| w[0].seq < w[1].seq)
    );
    assert!(timeline.transactions.iter().all(|t| !t.changes.is_empty()));
    let newest = timeline.transactions.last().expect("some");
    assert_eq!(newest.reducer, "counted");

    // The oldest kept one still shows its cause, and the table as it was then.
    timeline.select(Some(timeline.transactions[0].seq), source(&app));
    let point = timeline.point.clone().expect("a past point");
    let rows = point.rows.expect("past rows");
    assert!(!rows.is_empty() && rows.len() < live_rows(&app, "note").len());
}

#[test]
fn a_node_without_storage_says_it_keeps_no_history() {
    let mut app = node(None);
    run(&mut app, vec![("add", ("a".to_string(),))]);
    let mut timeline = Timeline::new("notebook", "note");
    timeline.refresh(source(&app));
    let message = timeline.message.clone().expect("a message");
    assert!(message.contains("keeps no history"), "{message}");
    assert!(timeline.transactions.is_empty());
    timeline.step_back(source(&app));
    timeline.select(Some(0), source(&app));
    assert!(!timeline.is_past());
}

#[test]
fn a_stateful_table_shows_why_it_has_no_past() {
    let dir = DataDir::new("stateful");
    let mut app = node(Some(&dir.0));
    run(&mut app, vec![("scribble", (1u64, 2u64))]);
    run(&mut app, vec![("add", ("a".to_string(),))]);
    let mut timeline = Timeline::new("notebook", "scratch");
    timeline.refresh(source(&app));
    assert_eq!(timeline.message, None);
    timeline.step_back(source(&app));
    let point = timeline.point.clone().expect("a past point");
    let why = point.rows.expect_err("no past rows");
    assert!(why.contains("not logged"), "{why}");
}

/// The texts a frame drew.
fn drawn_texts(output: &egui::FullOutput) -> Vec<String> {
    output
        .shapes
        .iter()
        .filter_map(|clipped| match &clipped.shape {
            egui::Shape::Text(text) => Some(text.galley.text().to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_past_point_draws_marked_read_only_with_its_diff() {
    let dir = DataDir::new("draw");
    let mut app = node(Some(&dir.0));
    run(&mut app, vec![("add", ("a".to_string(),))]);
    run(&mut app, vec![("remove", (1u64,))]);
    let mut timeline = Timeline::new("notebook", "note");
    timeline.refresh(source(&app));
    timeline.step_back(source(&app));
    let point = timeline.point.clone().expect("a past point");
    let modules = app.world().resource::<Modules>();
    let schema = modules.schema("notebook").expect("loaded");
    let line = history_ui::diff_line(&point.diff[0], schema);
    assert!(
        line.starts_with("note[1] deleted: (id: 1, title: a"),
        "{line}"
    );
    assert!(line.ends_with("→ —"), "{line}");

    // The rows as they were after the removal: none, under the marker.
    timeline.step_back(source(&app));
    timeline.step_back(source(&app));
    let point = timeline.point.clone().expect("a past point");
    assert_eq!(point.cause.reducer, "notebook.add");
    let table = schema
        .tables
        .iter()
        .find(|t| t.name == "note")
        .expect("note");
    let ctx = egui::Context::default();
    let mut texts = Vec::new();
    for _ in 0..2 {
        ctx.begin_pass(egui::RawInput::default());
        egui::Window::new("past").show(&ctx, |ui| {
            history_ui::past_rows(ui, &point, table, schema);
        });
        let mut output = ctx.end_pass();
        output.textures_delta.clear();
        texts = drawn_texts(&output);
    }
    let marker = format!(
        "PAST STATE at tx {} (at {}) — read-only",
        point.seq, point.cause.time
    );
    assert!(texts.contains(&marker), "{texts:?}");
    assert!(texts.contains(&"1 row(s) then".to_string()), "{texts:?}");
    assert!(texts.contains(&"a".to_string()), "{texts:?}");
}
