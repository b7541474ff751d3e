//! Two games play together: a host and a guest, each its own process with its own node and
//! window (under Xvfb, rendered by Mesa's lavapipe), connected over UDP on 127.0.0.1. Each
//! screenshot must show both players: the guest joined through its node's remote call to the
//! host's arena, and sees the host's player through its subscription.

use bevy::color::{Color, ColorToPacked};
use interstice_testkit::{Picture, Xvfb, wait_ok};
use std::path::Path;
use std::process::Child;

fn game(xvfb: &Xvfb, args: &[String]) -> Child {
    xvfb.command(env!("CARGO_BIN_EXE_arena-game"))
        .args(args)
        .spawn()
        .expect("starting arena-game")
}

/// How many pixels of the screenshot have (about) this colour.
fn pixels_of(path: &Path, color: Color) -> usize {
    let [r, g, b, _] = color.to_srgba().to_u8_array();
    Picture::load(path).count_of([r, g, b])
}

#[test]
fn host_and_guest_see_each_other() {
    let xvfb = Xvfb::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port();
    let keys = dir.path().join("keys");
    let (host_png, guest_png) = (dir.path().join("host.png"), dir.path().join("guest.png"));
    let arg = |p: &Path| p.display().to_string();
    let host = game(
        &xvfb,
        &[
            "--host".into(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--data-dir".into(),
            arg(&keys),
            "--frames".into(),
            "300".into(),
            "--screenshot".into(),
            arg(&host_png),
        ],
    );
    // Both start at once on a fresh data directory: each creates the keys it does not find,
    // and they agree on them.
    let guest = game(
        &xvfb,
        &[
            "--join".into(),
            format!("127.0.0.1:{port}"),
            "--data-dir".into(),
            arg(&keys),
            "--frames".into(),
            "150".into(),
            "--screenshot".into(),
            arg(&guest_png),
        ],
    );
    wait_ok(guest, "the guest");
    wait_ok(host, "the host");
    // The default colours: the host's player is blue (hue 210), the guest's orange (hue 25);
    // each is a 24 × 24 square.
    let host_color = Color::hsl(210.0, 0.75, 0.55);
    let guest_color = Color::hsl(25.0, 0.75, 0.55);
    for (shot, who) in [(&host_png, "host"), (&guest_png, "guest")] {
        let (h, g) = (pixels_of(shot, host_color), pixels_of(shot, guest_color));
        assert!(
            h >= 400 && g >= 400,
            "the {who}'s screen shows {h} pixels of the host's player and {g} of the guest's"
        );
    }
}
