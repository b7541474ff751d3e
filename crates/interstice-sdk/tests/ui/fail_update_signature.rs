use interstice_sdk::*;

#[interstice_type]
pub struct Row {
    id: u64,
}

#[reducer(on = "other.rows.update")]
fn on_update(_ctx: ReducerContext, _new: Row) {}

fn main() {}
