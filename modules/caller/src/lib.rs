//! The caller example module: reaches the `hello` module on another node (declared in
//! `src/bindings/node_hello_node.toml`, at 127.0.0.1:8080) — it calls `hello` there and
//! subscribes to every greeting stored there, keeping a copy.

use interstice_sdk::*;

interstice_module!(visibility: Public);

/// Greetings received from the hello node, in the order they were stored there.
#[table]
pub struct Received {
    #[primary_key(auto_inc)]
    pub id: u64,
    /// The id the greeting has on the hello node.
    pub remote_id: u64,
    pub greeting: String,
}

/// On first load, greets the hello node once.
#[reducer(on = "init")]
fn init(ctx: ReducerContext) -> Result<(), HostError> {
    host_calls::log("calling hello on hello_node");
    bindings::hello_node::hello::hello(&ctx, "caller".to_string())
}

/// Asks the hello node to greet `name` (sent once this transaction commits).
#[reducer]
fn greet(ctx: ReducerContext, name: String) -> Result<(), HostError> {
    bindings::hello_node::hello::hello(&ctx, name)
}

/// Asks the hello node to greet `count` names `prefix0`, `prefix1`, ...
#[reducer]
fn greet_many(ctx: ReducerContext, prefix: String, count: u32) -> Result<(), HostError> {
    for i in 0..count {
        bindings::hello_node::hello::hello(&ctx, format!("{prefix}{i}"))?;
    }
    Ok(())
}

/// Every greeting inserted on the hello node arrives here, once, in order.
#[reducer(on = "hello_node.hello.greetings.insert")]
fn on_greeting(
    ctx: ReducerContext,
    row: bindings::hello_node::hello::Greetings,
) -> Result<(), HostError> {
    host_calls::log(&format!("received greeting #{}: {}", row.id, row.greeting));
    ctx.current.tables.received().insert(Received {
        id: 0,
        remote_id: row.id,
        greeting: row.greeting,
    })?;
    Ok(())
}

/// The greetings received so far, in order.
#[query]
fn received(ctx: QueryContext) -> Vec<String> {
    ctx.current
        .tables
        .received()
        .scan()
        .map(|r| r.greeting)
        .collect()
}

/// The hello node's ids of the greetings received so far, in order.
#[query]
fn received_ids(ctx: QueryContext) -> Vec<u64> {
    ctx.current
        .tables
        .received()
        .scan()
        .map(|r| r.remote_id)
        .collect()
}
