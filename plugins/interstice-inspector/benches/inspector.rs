//! The inspector open on a 100,000-row table: what drawing it costs a frame on the CPU (the
//! page kept up to date, egui's layout and tessellation of the whole window), measured
//! without a window by running the inspector's UI in a bare egui context. A reducer changes
//! 100 rows every frame, so the page is rebuilt as often as live changes allow. Run with
//! `cargo bench -p interstice-inspector --bench inspector`.

use bevy::ecs::system::RunSystemOnce;
use bevy::prelude::*;
use bevy_egui::egui;
use interstice::prelude::*;
use interstice::{GuestLogTail, TableChanged};
use interstice_inspector::table_view::TableView;
use interstice_inspector::ui::{InspectorState, Metrics, Sources, show};
use std::time::{Duration, Instant};

const ROWS: u32 = 100_000;
const FRAMES: usize = 200;

#[derive(Resource)]
struct Ui {
    ctx: egui::Context,
    state: InspectorState,
    spent: Vec<Duration>,
    frame: u64,
    primitives: usize,
}

fn draw(
    mut ui: ResMut<Ui>,
    mut api: Interstice,
    mut changes: MessageReader<TableChanged>,
    metrics: Res<Metrics>,
    logs: Res<GuestLogTail>,
    time: Res<Time<Real>>,
) {
    let ui = &mut *ui;
    let start = Instant::now();
    let now = time.elapsed_secs_f64();
    if let Some(view) = ui.state.table.as_mut() {
        for change in changes.read() {
            view.row_changed(change.0.key.clone(), now);
        }
    }
    let sources = Sources {
        metrics: &metrics,
        logs: &logs,
        peers: None,
        storage: None,
        history: None,
        now,
    };
    let input = egui::RawInput {
        screen_rect: Some(egui::Rect::from_min_size(
            egui::Pos2::ZERO,
            egui::vec2(1280.0, 800.0),
        )),
        ..Default::default()
    };
    ui.ctx.begin_pass(input);
    show(&ui.ctx, &mut ui.state, &mut api, &sources);
    let output = ui.ctx.end_pass();
    // Tessellation is part of a frame's CPU cost too.
    let primitives = ui.ctx.tessellate(output.shapes, output.pixels_per_point);
    // (A window is invisible on its first frame, while egui sizes it.)
    ui.primitives = primitives.len();
    ui.spent.push(start.elapsed());
    ui.frame += 1;
}

fn main() {
    let wasm = interstice_build::test_modules!["swarm"].remove(0);
    for filter in ["", "99"] {
        let mut app = App::new();
        app.add_plugins((
            MinimalPlugins,
            IntersticePlugin::default().with_module_bytes("swarm", wasm.clone()),
        ));
        app.init_resource::<Metrics>()
            .watch_table("swarm", "dot")
            .add_systems(Update, draw.after(IntersticeSystems::Publish));
        let mut view = TableView::new("swarm", "dot");
        view.filter = filter.into();
        app.insert_resource(Ui {
            ctx: egui::Context::default(),
            state: InspectorState {
                open: true,
                table: Some(view),
                ..Default::default()
            },
            spent: Vec::new(),
            frame: 0,
            primitives: 0,
        });
        interstice::run_single_threaded(&mut app);
        app.update();
        app.world_mut()
            .run_system_once(|mut interstice: Interstice| {
                interstice
                    .queue_reducer("swarm", "spawn", (0u32, ROWS))
                    .unwrap();
            })
            .unwrap();
        app.update();
        app.world_mut().resource_mut::<Ui>().spent.clear();
        for i in 0..FRAMES as u32 {
            // 100 rows change every frame (a remove and a re-spawn of a block).
            app.world_mut()
                .run_system_once(move |mut interstice: Interstice| {
                    let from = (i * 100) % ROWS;
                    for id in from..from + 100 {
                        interstice.queue_reducer("swarm", "remove", (id,)).unwrap();
                    }
                    interstice
                        .queue_reducer("swarm", "spawn", (from, 100u32))
                        .unwrap();
                })
                .unwrap();
            // Frames of a 60 Hz game, so live changes rebuild the page at their pace.
            std::thread::sleep(Duration::from_millis(16));
            app.update();
        }
        let ui = app.world().resource::<Ui>();
        let mut spent = ui.spent.clone();
        spent.sort();
        let view = ui.state.table.as_ref().expect("a table");
        assert!(ui.primitives > 0, "the inspector drew nothing");
        assert!(
            !view.rows.is_empty() || !filter.is_empty(),
            "the page shows rows"
        );
        println!(
            "inspector on {ROWS} rows{}: median {:.3} ms, p90 {:.3} ms, max {:.3} ms a frame ({} page rebuilds in {FRAMES} frames; budget 2 ms)",
            if filter.is_empty() {
                String::new()
            } else {
                format!(", filter `{filter}` on the id column")
            },
            spent[spent.len() / 2].as_secs_f64() * 1e3,
            spent[spent.len() * 9 / 10].as_secs_f64() * 1e3,
            spent[spent.len() - 1].as_secs_f64() * 1e3,
            view.rebuilds
        );
    }
}
