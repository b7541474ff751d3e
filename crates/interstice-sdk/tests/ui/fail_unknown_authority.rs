use interstice_sdk::*;

interstice_module!(authorities: [Gpu, Network]);

fn main() {}
