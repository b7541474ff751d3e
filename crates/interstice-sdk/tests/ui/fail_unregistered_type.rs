use interstice_sdk::*;

pub struct NotAnIntersticeType;

#[table]
pub struct Holder {
    #[primary_key]
    id: u64,
    thing: NotAnIntersticeType,
}

fn main() {}
