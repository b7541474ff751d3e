//! Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/) from real data: the
//! fixtures' schemas and bindings, protocol messages, a persisting node's log segment and
//! snapshot, draw lists and host-call scripts. Ignored by default; run it to refresh them:
//!
//! ```text
//! cargo test -p interstice --test fuzz_seeds -- --ignored
//! ```

mod common;

use bevy::prelude::App;
use common::*;
use interstice::abi::draw::{Color, DrawCommand, Shape2d, Vec2};
use interstice::abi::{IntersticeType, ModuleSchema, TableEvent};
use interstice::{Modules, StorageConfig};
use interstice_net::message::{Message, Published, RemoteError};
use std::path::{Path, PathBuf};

fn corpus(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn seed(target: &str, name: &str, bytes: &[u8]) {
    std::fs::write(corpus(target).join(name), bytes).unwrap();
}

const FIXTURES: [&str; 8] = [
    "hello",
    "kitchen",
    "bank",
    "teller",
    "greeter",
    "caller",
    "gatekeeper",
    "hostile",
];

#[test]
#[ignore = "writes fuzz/corpus; run by hand to refresh the seeds"]
fn write_fuzz_seeds() {
    let bare = app();
    let schemas = write_schema_seeds(&bare);
    let mut loaded = app();
    write_binding_seeds(&mut loaded);
    write_message_seeds(&schemas);
    write_draw_list_seeds();
    write_value_seeds();
    let data = tempfile::tempdir().unwrap();
    write_storage_seeds(data.path());
    write_host_call_seeds();
}

/// Writes each fixture's schema and its tables' field types; returns the schemas, which the
/// message seeds carry.
fn write_schema_seeds(bare: &App) -> Vec<ModuleSchema> {
    let modules = bare.world().resource::<Modules>();
    let mut schemas = Vec::new();
    for name in FIXTURES {
        let schema = modules.inspect(&wasm(name)).unwrap();
        seed(
            "module_schema",
            name,
            &postcard::to_allocvec(&schema).unwrap(),
        );
        for (i, field) in schema.tables.iter().flat_map(|t| &t.fields).enumerate() {
            seed(
                "value_type",
                &format!("{name}-{i}"),
                &postcard::to_allocvec(&field.ty).unwrap(),
            );
        }
        schemas.push(schema);
    }
    schemas
}

/// Writes the bindings, as `interstice bindings add` writes them, of every fixture loaded into
/// `loaded`, and a node binding.
fn write_binding_seeds(loaded: &mut App) {
    for name in FIXTURES {
        load(loaded, name).unwrap();
    }
    let modules = loaded.world().resource::<Modules>();
    for name in FIXTURES {
        if let Some(binding) = modules.export_binding(name) {
            seed("bindings_toml", name, binding.as_bytes());
        }
    }
    let node = modules.export_node_binding("peer", "127.0.0.1:7000", &[]);
    seed("bindings_toml", "node", node.as_bytes());
}

/// Writes protocol messages of every kind, the schema message carrying the public `schemas`.
fn write_message_seeds(schemas: &[ModuleSchema]) {
    let args = ("peer".to_string(),).to_bytes();
    let messages = vec![
        Message::Hello {
            versions: vec![1],
            node_id: "0190a2b4-0000-8000-8000-000000000000".into(),
        },
        Message::Ping { nonce: 7 },
        Message::SchemaRequest { request: 1 },
        Message::Schema {
            request: 1,
            modules: schemas.iter().filter_map(|s| s.to_public()).collect(),
        },
        Message::CallReducer {
            request: 2,
            module: "hello".into(),
            reducer: "hello".into(),
            args: args.clone(),
        },
        Message::CallResult {
            request: 2,
            outcome: Err(RemoteError::Busy("queue full".into())),
        },
        Message::Query {
            request: 3,
            module: "hello".into(),
            query: "greeting_count".into(),
            args: vec![],
        },
        Message::Subscribe {
            subscription: 1,
            module: "hello".into(),
            table: "greetings".into(),
            from_seq: 5,
        },
        Message::Events {
            subscription: 1,
            first_seq: 5,
            events: vec![(TableEvent::Insert, args.clone())],
        },
        Message::PublishChunk {
            upload: 1,
            index: 0,
            total: 2,
            bytes: b"\0asm\x01\0\0\0".to_vec(),
            drop_data: false,
        },
        Message::PublishResult {
            upload: 1,
            outcome: Ok(Published {
                module: "hello".into(),
                upgraded: true,
                dropped: vec!["table `t`".into()],
            }),
        },
        Message::Remove {
            request: 4,
            module: "hello".into(),
        },
    ];
    for (i, message) in messages.iter().enumerate() {
        seed("message", &format!("{i:02}"), &message.encode().unwrap());
    }
}

/// Writes a draw list with one command of each kind.
fn write_draw_list_seeds() {
    let white = Color::rgb(1.0, 1.0, 1.0);
    let commands = [
        DrawCommand::Clear(Color::BLACK),
        DrawCommand::Camera2d {
            position: Vec2::new(1.0, 2.0),
            zoom: 2.0,
        },
        DrawCommand::Shape {
            shape: Shape2d::Triangle([
                Vec2::new(0.0, 0.0),
                Vec2::new(1.0, 0.0),
                Vec2::new(0.0, 1.0),
            ]),
            color: white,
        },
        DrawCommand::Shape {
            shape: Shape2d::Circle {
                center: Vec2::new(0.0, 0.0),
                radius: 3.0,
            },
            color: white,
        },
        DrawCommand::Text {
            text: "score".into(),
            position: Vec2::new(0.0, 0.0),
            size: 12.0,
            color: white,
        },
    ];
    let mut list = Vec::new();
    for command in &commands {
        list.extend(postcard::to_allocvec(command).unwrap());
    }
    seed("draw_list", "frame", &list);
}

/// Writes values: a pick byte (the target's type list) and an encoding of that type.
fn write_value_seeds() {
    seed("values", "u64", &[0, 0x2a]);
    seed("values", "string", &[3, 3, b'a', b'b', b'c']);
    seed("values", "shape-dot", &[8, 1, 0, 0, 0, 0, 0]);
    seed("values", "tree", &[9, 2, 1, 4, 0, 6, 0]);
    seed("values", "vec-vec-unit", &[6, 2, 1, 2]);
}

/// Writes a persisting node's log segment and snapshot, from a node run on `data`.
fn write_storage_seeds(data: &Path) {
    let mut node = persisting_node(StorageConfig::new(data), &["kitchen", "hello"]);
    call(&mut node, "kitchen", "add_many", (20u32,)).unwrap();
    call(&mut node, "hello", "hello", ("seed".to_string(),)).unwrap();
    node.world_mut().resource_scope(
        |world, mut storage: bevy::prelude::Mut<interstice::Storage>| {
            let mut db = world.resource_mut::<interstice::Database>();
            storage.snapshot(&mut db).unwrap();
        },
    );
    drop(node);
    for (dir, target) in [("log", "log_record"), ("snapshots", "snapshot")] {
        for entry in std::fs::read_dir(data.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            seed(target, &name, &std::fs::read(&path).unwrap());
        }
    }
}

/// Writes host-call scripts for the `hostile` guest's `replay`: selector, a, b, length, payload.
fn write_host_call_seeds() {
    seed("host_calls", "count", &[0, 5, 0, 0]);
    seed(
        "host_calls",
        "insert-get",
        &[0, 1, 0, 2, 1, 7, 0, 2, 0, 1, 7],
    );
    seed("host_calls", "range-all", &[0, 10, 0, 2, 0, 0]);
    seed(
        "host_calls",
        "log",
        &[1, 2, 0, 5, b'h', b'e', b'l', b'l', b'o'],
    );
    seed(
        "host_calls",
        "resolve",
        &[2, 0, 0, 6, b'f', b'i', b'l', b'l', b'e', b'r'],
    );
    seed(
        "host_calls",
        "schedule",
        &[3, 0, 0, 4, 4, b'n', b'o', b'o', b'p'],
    );
    seed("host_calls", "call-module", &[5, 0, 0, 3, 1, b'x', 0]);
    seed("host_calls", "host-table", &[0, 6, 2, 0]);
    // A past read (refused inside a reducer), a table's Get of key 7 as of transaction 0.
    seed("host_calls", "as-of", &[11, 1, 1, 2, 1, 7]);
}
