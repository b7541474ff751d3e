use interstice_sdk::*;

#[table(stateful, ephemeral)]
pub struct Both {
    #[primary_key]
    id: u64,
}

fn main() {}
