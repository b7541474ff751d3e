use interstice_sdk::*;

#[reducer]
fn lonely(name: String) {
    let _ = name;
}

fn main() {}
