use interstice_sdk::*;

#[table]
pub struct NoKey {
    id: u64,
}

fn main() {}
