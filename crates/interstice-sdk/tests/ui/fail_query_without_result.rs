use interstice_sdk::*;

#[query]
fn nothing(_ctx: QueryContext) {}

fn main() {}
