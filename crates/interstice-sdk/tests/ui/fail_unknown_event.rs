use interstice_sdk::*;

#[reducer(on = "hello.greetings.upsert")]
fn on_upsert(_ctx: ReducerContext) {}

fn main() {}
