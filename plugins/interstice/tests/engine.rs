//! Real modules compiled to wasm, run in a headless Bevy `App`.

mod common;

use common::*;
use interstice::{CallError, EngineConfig, LoadError};
use kitchen::{Item, Kind};

fn add(
    app: &mut bevy::prelude::App,
    code: &str,
    category: &str,
    price: i64,
) -> Result<(), CallError> {
    call(
        app,
        "kitchen",
        "add_item",
        (
            code.to_string(),
            category.to_string(),
            price,
            Kind::Plain,
            Vec::<String>::new(),
            None::<String>,
            (0.0f32, 0.0f32),
        ),
    )
}

fn ids(app: &mut bevy::prelude::App) -> Vec<u64> {
    query(app, "kitchen", "all_ids", ()).expect("all_ids")
}

#[test]
fn hello_runs_init_reducer_and_queries() {
    let mut app = app();
    load(&mut app, "hello").expect("hello loads");
    call(&mut app, "hello", "hello", ("Ada".to_string(),)).expect("hello");
    call(&mut app, "hello", "hello", ("Bob".to_string(),)).expect("hello");
    call(&mut app, "hello", "hello", ("Ada".to_string(),)).expect("hello");
    let count: u64 = query(&mut app, "hello", "greeting_count", ()).expect("count");
    assert_eq!(count, 3);
    let for_ada: Vec<String> =
        query(&mut app, "hello", "greetings_for", ("Ada".to_string(),)).expect("filter");
    assert_eq!(
        for_ada,
        vec!["Hello, Ada!".to_string(), "Hello, Ada!".to_string()]
    );
}

#[test]
fn init_and_load_hooks_run_once_each_on_first_load() {
    let mut app = app();
    load(&mut app, "kitchen").expect("kitchen loads");
    assert_eq!(
        query::<_, i64>(&mut app, "kitchen", "counter", ("init".to_string(),)),
        Ok(1)
    );
    assert_eq!(
        query::<_, i64>(&mut app, "kitchen", "counter", ("load".to_string(),)),
        Ok(1)
    );
}

#[test]
fn insert_get_update_delete_count_clear() {
    let mut app = app();
    load(&mut app, "kitchen").unwrap();
    add(&mut app, "a", "fruit", 10).unwrap();
    add(&mut app, "b", "fruit", 20).unwrap();
    add(&mut app, "c", "veg", 30).unwrap();
    assert_eq!(
        ids(&mut app),
        vec![1, 2, 3],
        "auto_inc primary keys start at 1"
    );
    assert_eq!(
        query::<_, u64>(&mut app, "kitchen", "item_count", ()),
        Ok(3)
    );

    let item: Option<Item> = query(&mut app, "kitchen", "get_item", (2u64,)).unwrap();
    let item = item.expect("item 2");
    assert_eq!((item.code.as_str(), item.price, item.serial), ("b", 20, 2));

    call(&mut app, "kitchen", "set_price", (2u64, 25i64)).unwrap();
    let item: Option<Item> = query(&mut app, "kitchen", "get_item", (2u64,)).unwrap();
    assert_eq!(item.unwrap().price, 25);
    assert_eq!(
        call(&mut app, "kitchen", "set_price", (99u64, 1i64)),
        Err(CallError::Failed("no item 99".into()))
    );

    call(&mut app, "kitchen", "remove_item", (1u64,)).unwrap();
    assert_eq!(ids(&mut app), vec![2, 3]);
    assert!(call(&mut app, "kitchen", "remove_item", (1u64,)).is_err());

    call(&mut app, "kitchen", "clear_items", ()).unwrap();
    assert_eq!(ids(&mut app), Vec::<u64>::new());
    assert_eq!(
        query::<_, i64>(&mut app, "kitchen", "counter", ("cleared".to_string(),)),
        Ok(2)
    );

    add(&mut app, "d", "veg", 1).unwrap();
    assert_eq!(ids(&mut app), vec![4], "auto_inc values are never reused");
}

#[test]
fn every_index_kind_answers_lookups() {
    let mut app = app();
    load(&mut app, "kitchen").unwrap();
    for (code, category, price) in [
        ("a", "x", 5),
        ("b", "y", 1),
        ("c", "x", 9),
        ("d", "x", 5),
        ("e", "y", -3),
    ] {
        add(&mut app, code, category, price).unwrap();
    }
    // unique hash
    let c: Option<Item> = query(&mut app, "kitchen", "item_by_code", ("c".to_string(),)).unwrap();
    assert_eq!(c.map(|i| i.id), Some(3));
    let none: Option<Item> =
        query(&mut app, "kitchen", "item_by_code", ("zz".to_string(),)).unwrap();
    assert!(none.is_none());
    // non-unique hash, primary-key order
    assert_eq!(
        query::<_, Vec<u64>>(&mut app, "kitchen", "ids_in_category", ("x".to_string(),)),
        Ok(vec![1, 3, 4])
    );
    // btree range, key order then primary key
    assert_eq!(
        query::<_, Vec<u64>>(&mut app, "kitchen", "ids_priced", (1i64, 9i64)),
        Ok(vec![2, 1, 4])
    );
    assert_eq!(
        query::<_, Vec<i64>>(&mut app, "kitchen", "prices_from", (-10i64,)),
        Ok(vec![-3, 1, 5, 5, 9])
    );
    assert_eq!(
        query::<_, Vec<u64>>(&mut app, "kitchen", "ids_priced", (9i64, 1i64)),
        Ok(vec![]),
        "inverted range is empty"
    );
    // unique btree with auto_inc
    assert_eq!(
        query::<_, Option<u64>>(&mut app, "kitchen", "item_by_serial", (4u32,)),
        Ok(Some(4))
    );

    // Updating an indexed column moves the row in the index.
    call(&mut app, "kitchen", "set_price", (1u64, 100i64)).unwrap();
    assert_eq!(
        query::<_, Vec<u64>>(&mut app, "kitchen", "ids_priced", (5i64, 6i64)),
        Ok(vec![4])
    );
    call(&mut app, "kitchen", "rename_code", (1u64, "a2".to_string())).unwrap();
    let old: Option<Item> = query(&mut app, "kitchen", "item_by_code", ("a".to_string(),)).unwrap();
    assert!(old.is_none());
    let new: Option<Item> =
        query(&mut app, "kitchen", "item_by_code", ("a2".to_string(),)).unwrap();
    assert_eq!(new.map(|i| i.id), Some(1));
    // An update onto another row's unique key is refused and rolled back.
    let err = call(&mut app, "kitchen", "rename_code", (1u64, "b".to_string())).unwrap_err();
    assert!(
        matches!(&err, CallError::Failed(m) if m.contains("code")),
        "{err}"
    );
    let still: Option<Item> =
        query(&mut app, "kitchen", "item_by_code", ("a2".to_string(),)).unwrap();
    assert_eq!(still.map(|i| i.id), Some(1));
}

#[test]
fn scan_pages_through_large_tables_in_order() {
    let mut app = app();
    load(&mut app, "kitchen").unwrap();
    call(&mut app, "kitchen", "add_many", (700u32,)).unwrap();
    let all = ids(&mut app);
    assert_eq!(all.len(), 700);
    assert!(all.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        with_api(&mut app, |api| api.row_count("kitchen", "item")),
        Ok(700)
    );
}

#[test]
fn unique_violations_are_errors_the_reducer_can_handle() {
    let mut app = app();
    load(&mut app, "kitchen").unwrap();
    call(&mut app, "kitchen", "duplicate_code", ("same".to_string(),)).unwrap();
    assert_eq!(
        query::<_, i64>(
            &mut app,
            "kitchen",
            "counter",
            ("unique_violations".to_string(),)
        ),
        Ok(1)
    );
    assert_eq!(ids(&mut app), vec![1]);
    // Unhandled, the violation fails the reducer and nothing is written.
    let err = add(&mut app, "same", "c", 1).unwrap_err();
    assert!(
        matches!(&err, CallError::Failed(m) if m.contains("exists already")),
        "{err}"
    );
    assert_eq!(ids(&mut app), vec![1]);
}

#[test]
fn reducers_read_their_own_writes() {
    let mut app = app();
    load(&mut app, "kitchen").unwrap();
    call(&mut app, "kitchen", "read_own_writes", ("rw".to_string(),)).unwrap();
}

#[test]
fn an_error_rolls_back_every_table() {
    let mut app = app();
    load(&mut app, "kitchen").unwrap();
    add(&mut app, "keep", "c", 1).unwrap();
    let err = call(&mut app, "kitchen", "add_then_fail", ("gone".to_string(),)).unwrap_err();
    assert_eq!(err, CallError::Failed("deliberate failure".into()));
    assert_eq!(ids(&mut app), vec![1]);
    assert_eq!(
        query::<_, i64>(&mut app, "kitchen", "counter", ("doomed".to_string(),)),
        Ok(0)
    );
    let gone: Option<Item> =
        query(&mut app, "kitchen", "item_by_code", ("gone".to_string(),)).unwrap();
    assert!(gone.is_none(), "rolled back rows leave no index entries");
}

#[test]
fn a_panic_traps_and_rolls_back() {
    let mut app = app();
    load(&mut app, "kitchen").unwrap();
    let err = call(&mut app, "kitchen", "add_then_panic", ("gone".to_string(),)).unwrap_err();
    assert!(
        matches!(&err, CallError::Trap(m) if m.contains("deliberate panic after insert")),
        "{err}"
    );
    assert!(ids(&mut app).is_empty());
    // The module keeps working after a trap.
    add(&mut app, "after", "c", 1).unwrap();
    assert_eq!(ids(&mut app).len(), 1);
}

#[test]
fn an_infinite_loop_is_stopped_by_fuel() {
    let mut app = app_with(EngineConfig {
        fuel_per_call: 5_000_000,
        ..EngineConfig::default()
    });
    load(&mut app, "kitchen").unwrap();
    let err = call(&mut app, "kitchen", "add_then_spin", ("gone".to_string(),)).unwrap_err();
    assert_eq!(err, CallError::OutOfFuel(5_000_000));
    assert!(ids(&mut app).is_empty());
    add(&mut app, "after", "c", 1).unwrap();
}

#[test]
fn a_memory_bomb_is_stopped_by_the_cap() {
    let mut app = app_with(EngineConfig {
        memory_cap: 16 * 1024 * 1024,
        ..EngineConfig::default()
    });
    load(&mut app, "kitchen").unwrap();
    let err = call(
        &mut app,
        "kitchen",
        "add_then_hog_memory",
        ("gone".to_string(),),
    )
    .unwrap_err();
    assert_eq!(err, CallError::MemoryCap(16 * 1024 * 1024));
    assert!(ids(&mut app).is_empty());
    add(&mut app, "after", "c", 1).unwrap();
}

#[test]
fn queries_cannot_write() {
    let mut app = app();
    load(&mut app, "kitchen").unwrap();
    let said: String = query(&mut app, "kitchen", "try_write", ()).unwrap();
    assert_eq!(said, "queries cannot change tables");
    assert!(ids(&mut app).is_empty());
}

#[test]
fn values_cross_the_boundary_intact() {
    let mut app = app();
    load(&mut app, "kitchen").unwrap();
    type Echo = (Kind, Vec<String>, (f32, f32), Option<u8>, i16);
    let sent: Echo = (
        Kind::Sized { w: 3, h: 4 },
        vec!["a".into(), "é".into(), String::new()],
        (1.5, -0.0),
        Some(255),
        -32768,
    );
    let back: Echo = query(&mut app, "kitchen", "echo", sent.clone()).unwrap();
    assert_eq!(back.0, sent.0);
    assert_eq!(back.1, sent.1);
    assert_eq!(back.2.0.to_bits(), sent.2.0.to_bits());
    assert_eq!(back.2.1.to_bits(), sent.2.1.to_bits());
    assert_eq!((back.3, back.4), (sent.3, sent.4));

    call(
        &mut app,
        "kitchen",
        "add_item",
        (
            "k".to_string(),
            "c".to_string(),
            7i64,
            Kind::Labeled("tag".into()),
            vec!["x".to_string()],
            Some("note".to_string()),
            (1.0f32, 2.0f32),
        ),
    )
    .unwrap();
    let rows: Vec<Item> = with_api(&mut app, |api| api.rows("kitchen", "item")).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].kind, Kind::Labeled("tag".into()));
    assert_eq!(rows[0].note.as_deref(), Some("note"));
}

#[test]
fn typed_calls_are_checked_against_the_schema() {
    let mut app = app();
    load(&mut app, "kitchen").unwrap();
    let err = with_api(&mut app, |api| {
        api.queue_reducer("kitchen", "set_price", ("1".to_string(), 2i64))
    })
    .unwrap_err();
    assert!(
        matches!(&err, CallError::InvalidArguments(m) if m.contains("`id` is u64")),
        "{err}"
    );
    let err = with_api(&mut app, |api| api.queue_reducer("kitchen", "nope", ())).unwrap_err();
    assert!(matches!(err, CallError::NoSuchReducer { .. }));
    let err = with_api(&mut app, |api| api.queue_reducer("kitchen", "init", ())).unwrap_err();
    assert_eq!(err, CallError::SubscriberOnly("init".into()));
    let err = with_api(&mut app, |api| api.queue_reducer("missing", "x", ())).unwrap_err();
    assert_eq!(err, CallError::NoSuchModule("missing".into()));
    let err = query::<_, String>(&mut app, "kitchen", "item_count", ()).unwrap_err();
    assert!(matches!(err, CallError::TypeMismatch(_)));
    let err = with_api(&mut app, |api| api.rows::<Item>("kitchen", "counter")).unwrap_err();
    assert!(matches!(err, CallError::TypeMismatch(_)));
    // Encoded arguments that do not decode are refused when the reducer runs.
    let id = with_api(&mut app, |api| {
        api.queue_reducer_encoded("kitchen", "set_price", vec![0xff])
    });
    app.update();
    let messages = app
        .world()
        .resource::<bevy::prelude::Messages<interstice::ReducerOutcome>>();
    let outcome = messages
        .get_cursor()
        .read(messages)
        .find(|o| o.id == id)
        .cloned()
        .unwrap();
    assert!(matches!(
        outcome.result,
        Err(CallError::InvalidArguments(_))
    ));
}

#[test]
fn a_second_claimant_of_an_authority_is_refused_and_leaves_nothing() {
    let mut app = app();
    load(&mut app, "gpu_holder").unwrap();
    let err = load(&mut app, "gpu_rival").unwrap_err();
    assert!(
        matches!(&err, LoadError::AuthorityTaken { holder, .. } if holder == "gpu_holder"),
        "{err}"
    );
    let rival_loaded = with_api(&mut app, |api| api.schema("gpu_rival").is_some());
    assert!(!rival_loaded);
    call(&mut app, "gpu_holder", "ping", ()).unwrap();
}

#[test]
fn a_module_cannot_be_loaded_twice() {
    let mut app = app();
    load(&mut app, "hello").unwrap();
    let err = load(&mut app, "hello").unwrap_err();
    assert!(matches!(err, LoadError::DuplicateModule(ref n) if n == "hello"));
}

#[test]
fn malformed_wasm_is_refused_and_the_node_keeps_running() {
    let mut app = app();
    load(&mut app, "hello").unwrap();
    let garbage: &[&[u8]] = &[
        b"",
        b"\0asm",
        b"\0asm\x01\0\0\0\x05\xff",
        b"not wasm at all",
    ];
    for bytes in garbage {
        let err = with_api(&mut app, |api| api.load_module(bytes)).unwrap_err();
        assert!(matches!(err, LoadError::InvalidWasm(_)), "{err}");
    }
    // A valid module without the Interstice exports.
    let empty = b"\0asm\x01\0\0\0";
    let err = with_api(&mut app, |api| api.load_module(empty)).unwrap_err();
    assert!(matches!(err, LoadError::MissingExport(_)), "{err}");
    call(&mut app, "hello", "hello", ("still here".to_string(),)).unwrap();
}
