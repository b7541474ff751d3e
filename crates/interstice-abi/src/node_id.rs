//! Node ids: the UUIDs modules see for peers (`connect(node_id)`, `ctx.caller_node()`),
//! derived from the fingerprint of the peer's key so that they are bound to it.

/// The node id bound to a key's SHA-256 fingerprint (hex): its first 128 bits as a UUID
/// (version 8, the application-defined layout).
pub fn node_id_of(fingerprint: &str) -> alloc::string::String {
    let hex: alloc::vec::Vec<u8> = fingerprint
        .bytes()
        .filter(u8::is_ascii_hexdigit)
        .map(|b| b.to_ascii_lowercase())
        .chain(core::iter::repeat(b'0'))
        .take(32)
        .collect();
    let nibble = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
    let variant = b"89ab"[usize::from(nibble(hex[16]) & 0x3)];
    let part =
        |r: core::ops::Range<usize>| alloc::string::String::from_utf8_lossy(&hex[r]).into_owned();
    alloc::format!(
        "{}-{}-8{}-{}{}-{}",
        part(0..8),
        part(8..12),
        part(13..16),
        variant as char,
        part(17..20),
        part(20..32)
    )
}
