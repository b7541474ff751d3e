//! Protocol version negotiation.

/// The version this build speaks best.
pub const PROTOCOL_VERSION: u16 = 1;

/// Every version this build can speak, newest first.
pub const SUPPORTED_VERSIONS: &[u16] = &[1];

/// The newest version both sides support, or `None` when they share none (the handshake is
/// then refused with a message naming both lists).
pub fn negotiate(ours: &[u16], theirs: &[u16]) -> Option<u16> {
    ours.iter().copied().filter(|v| theirs.contains(v)).max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_common_version_wins() {
        assert_eq!(negotiate(&[1, 2, 3], &[2, 3, 4]), Some(3));
        assert_eq!(negotiate(&[1], &[2]), None);
        assert_eq!(
            negotiate(SUPPORTED_VERSIONS, &[PROTOCOL_VERSION]),
            Some(PROTOCOL_VERSION)
        );
        assert_eq!(negotiate(&[], &[1]), None);
    }
}
