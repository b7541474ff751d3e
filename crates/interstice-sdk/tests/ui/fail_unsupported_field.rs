use interstice_sdk::*;

#[table]
pub struct Sizes {
    #[primary_key]
    id: u64,
    len: usize,
}

fn main() {}
