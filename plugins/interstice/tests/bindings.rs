//! Typed bindings: a node exports a module's public schema as a binding file, and a module
//! compiled with that file calls the other module through typed functions.

mod common;

use common::*;
use interstice::Modules;
use std::path::Path;

const CHECKED_IN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../modules/fixtures/greeter/src/bindings/hello.toml"
);

#[test]
fn the_checked_in_binding_is_what_the_node_exports() {
    let mut app = app();
    load(&mut app, "hello").unwrap();
    let exported = app
        .world()
        .resource::<Modules>()
        .export_binding("hello")
        .expect("hello is public");
    if std::env::var_os("INTERSTICE_BLESS").is_some() {
        std::fs::write(CHECKED_IN, &exported).unwrap();
    }
    let checked_in = std::fs::read_to_string(Path::new(CHECKED_IN)).unwrap();
    assert_eq!(
        checked_in, exported,
        "modules/fixtures/greeter/src/bindings/hello.toml is stale: rerun with INTERSTICE_BLESS=1"
    );
    assert!(
        !exported.contains("\"init\""),
        "subscribers are not part of the public view"
    );
}

#[test]
fn the_arena_client_node_binding_is_what_the_arena_host_exports() {
    const NODE_BINDING: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../modules/arena_client/src/bindings/node_arena_node.toml"
    );
    let mut app = app();
    load(&mut app, "arena").unwrap();
    let exported =
        app.world()
            .resource::<Modules>()
            .export_node_binding("arena_node", "127.0.0.1:8090", &[]);
    if std::env::var_os("INTERSTICE_BLESS").is_some() {
        std::fs::write(NODE_BINDING, &exported).unwrap();
    }
    let checked_in = std::fs::read_to_string(Path::new(NODE_BINDING)).unwrap_or_default();
    assert_eq!(
        checked_in, exported,
        "modules/arena_client/src/bindings/node_arena_node.toml is stale: rerun with INTERSTICE_BLESS=1"
    );
}

#[test]
fn the_caller_node_binding_is_what_the_hello_node_exports() {
    const NODE_BINDING: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../modules/caller/src/bindings/node_hello_node.toml"
    );
    let mut app = app();
    load(&mut app, "hello").unwrap();
    load(&mut app, "kitchen").unwrap();
    let exported =
        app.world()
            .resource::<Modules>()
            .export_node_binding("hello_node", "127.0.0.1:8080", &[]);
    assert!(!exported.contains("kitchen"), "private modules stay out");
    if std::env::var_os("INTERSTICE_BLESS").is_some() {
        std::fs::write(NODE_BINDING, &exported).unwrap();
    }
    let checked_in = std::fs::read_to_string(Path::new(NODE_BINDING)).unwrap();
    assert_eq!(
        checked_in, exported,
        "modules/caller/src/bindings/node_hello_node.toml is stale: rerun with INTERSTICE_BLESS=1"
    );
}

#[test]
fn private_modules_export_no_binding() {
    let mut app = app();
    load(&mut app, "kitchen").unwrap();
    assert!(
        app.world()
            .resource::<Modules>()
            .export_binding("kitchen")
            .is_none()
    );
}

#[test]
fn a_module_calls_another_through_typed_bindings() {
    let mut app = app();
    load(&mut app, "hello").unwrap();
    load(&mut app, "greeter").unwrap();
    call(&mut app, "greeter", "greet_twice", ("Ada".to_string(),)).unwrap();
    assert_eq!(
        query::<_, u64>(&mut app, "hello", "greeting_count", ()),
        Ok(2)
    );
    assert_eq!(query::<_, u64>(&mut app, "greeter", "counted", ()), Ok(2));
    let seen: Vec<String> = query(&mut app, "greeter", "seen", ()).unwrap();
    assert_eq!(
        seen,
        vec!["Hello, Ada!", "Hello, Ada!"],
        "typed subscription rows"
    );
}
