//! The hello example module: a `Greetings` table, a `hello` reducer, an `init` hook and queries.

use interstice_sdk::*;

interstice_module!(visibility: Public);

/// One greeting per call of `hello`.
#[table]
pub struct Greetings {
    #[primary_key(auto_inc)]
    pub id: u64,
    #[index(btree)]
    pub name: String,
    pub greeting: String,
}

/// Runs once, the first time the module is loaded on a node.
#[reducer(on = "init")]
fn init(_ctx: ReducerContext) {
    host_calls::log("hello module initialised");
}

/// Greets `name` and stores the greeting.
#[reducer]
fn hello(ctx: ReducerContext, name: String) -> Result<(), HostError> {
    let row = ctx.current.tables.greetings().insert(Greetings {
        id: 0,
        name: name.clone(),
        greeting: format!("Hello, {name}!"),
    })?;
    host_calls::log(&format!("greeting #{} stored: {}", row.id, row.greeting));
    Ok(())
}

/// How many greetings are stored.
#[query]
fn greeting_count(ctx: QueryContext) -> u64 {
    ctx.current.tables.greetings().count()
}

/// Every greeting addressed to `name`.
#[query]
fn greetings_for(ctx: QueryContext, name: String) -> Vec<String> {
    ctx.current
        .tables
        .greetings()
        .name()
        .filter(&name)
        .into_iter()
        .map(|g| g.greeting)
        .collect()
}
