//! The inspector's table page on a real module's table: paging, filtering within a scan
//! budget, live changes highlighted, and no rebuild when nothing changed.

use bevy::ecs::system::RunSystemOnce;
use bevy::prelude::*;
use interstice::prelude::*;
use interstice::{Database, Modules};
use interstice_inspector::table_view::{PAGE_ROWS, REFRESH_EVERY, TableView};

fn swarm(rows: u32) -> App {
    let wasm = interstice_build::test_modules!["swarm"].remove(0);
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        IntersticePlugin::default().with_module_bytes("swarm", wasm),
    ));
    app.update();
    app.world_mut()
        .run_system_once(move |mut interstice: Interstice| {
            interstice
                .queue_reducer("swarm", "spawn", (0u32, rows))
                .unwrap();
        })
        .unwrap();
    app.update();
    app
}

fn refresh(app: &App, view: &mut TableView, now: f64) -> bool {
    let modules = app.world().resource::<Modules>();
    let types = &modules.schema("swarm").unwrap().types;
    view.refresh(app.world().resource::<Database>(), types, now)
}

#[test]
fn pages_filters_and_highlights() {
    let mut app = swarm(1000);
    let mut view = TableView::new("swarm", "dot");
    assert!(refresh(&app, &mut view, 0.0));
    assert_eq!(view.rows.len(), PAGE_ROWS);
    assert_eq!(view.rows[0].1, ["0", "0.0", "0.0"]);
    assert!(view.more);
    // Nothing changed: nothing is rebuilt.
    assert!(!refresh(&app, &mut view, 0.1));
    view.next_page();
    refresh(&app, &mut view, 0.2);
    assert_eq!(view.rows[0].1[0], "25");
    view.previous_page();
    refresh(&app, &mut view, 0.3);
    assert_eq!(view.rows[0].1[0], "0");

    // Filter on the id column: "99" matches 99, 199, ..., 990..999.
    view.filter = "99".into();
    view.first_page();
    refresh(&app, &mut view, 0.4);
    let ids: Vec<&str> = view.rows.iter().map(|r| r.1[0].as_str()).collect();
    assert_eq!(&ids[..4], ["99", "199", "299", "399"]);
    assert_eq!(view.rows.len(), 19);
    assert!(!view.more && !view.truncated);

    // A live change highlights the row and rebuilds the page, but not at once.
    app.world_mut()
        .run_system_once(|mut interstice: Interstice| {
            interstice.queue_reducer("swarm", "tick", ()).unwrap();
        })
        .unwrap();
    app.update();
    view.filter.clear();
    view.first_page();
    refresh(&app, &mut view, 1.0);
    view.row_changed(interstice::abi::Value::U32(3), 1.0);
    assert!(!refresh(&app, &mut view, 1.0 + REFRESH_EVERY / 2.0));
    assert!(refresh(&app, &mut view, 1.0 + REFRESH_EVERY));
    assert!(view.highlighted(&interstice::abi::Value::U32(3), 1.5));
    assert!(!view.highlighted(&interstice::abi::Value::U32(4), 1.5));
    assert!(!view.highlighted(&interstice::abi::Value::U32(3), 9.0));
    assert_eq!(view.rows[3].1, ["3", "3.0", "1.0"]);
}

#[test]
fn a_filter_on_a_large_table_stops_at_its_budget() {
    let app = swarm(30_000);
    let mut view = TableView::new("swarm", "dot");
    view.filter_column = 2; // y: every row is 0.0
    view.filter = "7".into();
    refresh(&app, &mut view, 0.0);
    assert!(view.rows.is_empty());
    assert!(view.truncated, "20,000 rows examined, then it stops");
}
