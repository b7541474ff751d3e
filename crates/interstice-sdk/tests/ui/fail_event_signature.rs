use interstice_sdk::*;

#[reducer(on = "connect")]
fn on_connect(_ctx: ReducerContext) {}

fn main() {}
