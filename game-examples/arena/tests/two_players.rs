//! Two games play together as two players on two machines would: a host and a guest, each its
//! own process with its own node, window (under Xvfb, rendered by Mesa's lavapipe) and data
//! directory, connected over UDP on 127.0.0.1. The guest is given the host's address and
//! nothing else.
//!
//! Run with `--nocapture` to see the measured prediction and interpolation figures.

use bevy::color::{Color, ColorToPacked};
use interstice_testkit::{Picture, Xvfb, wait_ok};
use serde_json::Value;
use std::path::Path;
use std::process::Child;

/// Units a second a player moves (the game's `SPEED`).
const SPEED: f64 = 240.0;

/// One test at a time: each runs two or three games rendering on the CPU, and the timing
/// figures mean little on a machine running seven.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn game(xvfb: &Xvfb, args: &[String]) -> Child {
    xvfb.command(env!("CARGO_BIN_EXE_arena-game"))
        .args(args)
        .spawn()
        .expect("starting arena-game")
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port()
}

/// How many pixels of the screenshot have (about) this colour.
fn pixels_of(path: &Path, color: Color) -> usize {
    let [r, g, b, _] = color.to_srgba().to_u8_array();
    Picture::load(path).count_of([r, g, b])
}

/// The lines of a game's `--trace`.
fn trace(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn xy(v: &Value) -> (f64, f64) {
    (v[0].as_f64().unwrap(), v[1].as_f64().unwrap())
}

fn distance(a: (f64, f64), b: (f64, f64)) -> f64 {
    ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()
}

/// The host's player, as a guest's frame shows it (shown, mirrored).
fn other<'a>(line: &'a Value, name: &str) -> Option<&'a Value> {
    line["others"]
        .as_array()?
        .iter()
        .find(|o| o["name"] == name)
}

#[test]
fn two_games_with_their_own_data_directories_play_together() {
    let _serial = one_at_a_time();
    let xvfb = Xvfb::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let (host_dir, guest_dir) = (dir.path().join("host"), dir.path().join("guest"));
    let (host_png, guest_png) = (dir.path().join("host.png"), dir.path().join("guest.png"));
    let arg = |p: &Path| p.display().to_string();
    let host = game(
        &xvfb,
        &[
            "--host".into(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--data-dir".into(),
            arg(&host_dir),
            "--frames".into(),
            "200".into(),
            "--screenshot".into(),
            arg(&host_png),
        ],
    );
    // The guest knows the address and nothing else: no key of the host's, and the host none
    // of the guest's. It plays on after the host's screenshot (a player whose node leaves
    // leaves the arena).
    let guest = game(
        &xvfb,
        &[
            "--join".into(),
            format!("127.0.0.1:{port}"),
            "--data-dir".into(),
            arg(&guest_dir),
            "--frames".into(),
            "300".into(),
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
    // The guest pinned the key the host presented.
    let host_key = std::fs::read(host_dir.join("host").join("identity.cert.der")).unwrap();
    let pins = std::fs::read_to_string(guest_dir.join("player-guest").join("known_hosts"))
        .expect("the guest keeps the keys it pinned");
    assert!(
        pins.contains(&format!(
            "127.0.0.1:{port} {}",
            interstice_net::transport::fingerprint(&host_key)
        )),
        "{pins}"
    );
}

/// Waits until the game writing `path` shows its own player (it joined), for up to 60 s.
fn wait_until_joined(path: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let joined = std::fs::read_to_string(path)
            .ok()
            .and_then(|text| text.lines().last().map(str::to_string))
            .and_then(|line| serde_json::from_str::<Value>(&line).ok())
            .is_some_and(|line| !line["own"].is_null());
        if joined {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the guest never joined"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Holds `key` down in the only window of `xvfb`'s display for `held`.
fn hold_key(xvfb: &Xvfb, key: &str, held: std::time::Duration) {
    let xdotool = |args: &[&str]| {
        std::process::Command::new("xdotool")
            .env("DISPLAY", &xvfb.display)
            .args(args)
            .output()
            .expect("running xdotool (install it with scripts/setup.sh: apt package xdotool)")
    };
    let search = xdotool(&["search", "--sync", "--name", "Interstice arena"]);
    let window = String::from_utf8_lossy(&search.stdout)
        .lines()
        .next()
        .expect("the game's window")
        .to_string();
    assert!(
        xdotool(&["windowfocus", "--sync", &window, "keydown", key])
            .status
            .success()
    );
    std::thread::sleep(held);
    assert!(xdotool(&["keyup", key]).status.success());
}

#[test]
fn through_a_distant_lossy_network_the_guest_predicts_and_interpolates() {
    let _serial = one_at_a_time();
    // Each game on its own display: the guest's window has the keyboard to itself.
    let (host_screen, guest_screen) = (Xvfb::start(), Xvfb::start());
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let arg = |p: &Path| p.display().to_string();
    let (host_trace, guest_trace) = (
        dir.path().join("host.jsonl"),
        dir.path().join("guest.jsonl"),
    );
    // 50 ms each way and 5% of datagrams lost each way, between the guest and the host.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let relay = runtime
        .block_on(interstice_net::impair::impairing_relay(
            format!("127.0.0.1:{port}").parse().unwrap(),
            7,
            interstice_net::impair::Impairment::distant(5),
        ))
        .expect("the relay");
    let host = game(
        &host_screen,
        &[
            args(&["--host", "--autopilot", "circle", "--seconds", "26"]),
            vec![
                "--listen".into(),
                format!("127.0.0.1:{port}"),
                "--data-dir".into(),
                arg(&dir.path().join("host")),
                "--trace".into(),
                arg(&host_trace),
            ],
        ]
        .concat(),
    );
    let guest = game(
        &guest_screen,
        &[
            args(&["--seconds", "16"]),
            vec![
                "--join".into(),
                relay.to_string(),
                "--data-dir".into(),
                arg(&dir.path().join("guest")),
                "--trace".into(),
                arg(&guest_trace),
            ],
        ]
        .concat(),
    );
    // A real key press (through the X server and winit): D, held for a second.
    wait_until_joined(&guest_trace);
    std::thread::sleep(std::time::Duration::from_secs(1));
    hold_key(&guest_screen, "d", std::time::Duration::from_secs(1));
    // Then, once host and guest agree, Escape: the guest leaves the arena.
    std::thread::sleep(std::time::Duration::from_secs(3));
    hold_key(
        &guest_screen,
        "Escape",
        std::time::Duration::from_millis(100),
    );
    wait_ok(guest, "the guest");
    wait_ok(host, "the host");
    if let Some(keep) = std::env::var_os("ARENA_KEEP_TRACES") {
        for file in [&host_trace, &guest_trace] {
            let _ = std::fs::copy(file, Path::new(&keep).join(file.file_name().unwrap()));
        }
    }
    let frames = trace(&guest_trace);
    let seconds = frames.last().and_then(|l| l["t"].as_f64()).unwrap_or(1.0);
    println!(
        "guest: {} frames in {seconds:.1} s ({:.0} per second)",
        frames.len(),
        frames.len() as f64 / seconds
    );

    // Prediction: the frame that reads the first key press already shows the square moved,
    // while the host's version is still where it was.
    let first = frames
        .iter()
        .position(|l| l["intent"][0].as_f64() > Some(0.0) && !l["own"].is_null())
        .expect("the key press reached the game");
    let (before, at) = (&frames[first - 1]["own"], &frames[first]["own"]);
    assert!(
        xy(&at["shown"]).0 > xy(&before["shown"]).0,
        "the square did not move in the frame of the key press: {before} then {at}"
    );
    assert_eq!(
        at["auth"], before["auth"],
        "the host cannot have answered within the frame"
    );
    let pressed = frames[first]["t"].as_f64().unwrap();
    let answered = frames[first..]
        .iter()
        .find(|l| l["own"]["auth"] != before["auth"])
        .and_then(|l| l["t"].as_f64())
        .expect("the host's version came back");
    println!(
        "prediction: moved in the frame of the input; the host's version followed {:.0} ms later",
        (answered - pressed) * 1000.0
    );

    // Agreement: once the input stopped and the host caught up, host and guest agree.
    // The last frame before the guest left.
    let last = frames
        .iter()
        .rev()
        .find(|l| !l["own"].is_null())
        .expect("the guest played");
    let own = &last["own"];
    assert_eq!(
        own["pending"], 0,
        "inputs still unconfirmed at the end: {own}"
    );
    let guest_end = xy(&own["shown"]);
    assert!(
        distance(guest_end, xy(&own["auth"])) < 0.01,
        "the guest shows {own}"
    );
    let host_view = trace(&host_trace)
        .iter()
        .rev()
        .find_map(|l| other(l, "guest").map(|g| xy(&g["auth"])))
        .expect("the host saw the guest");
    assert!(
        distance(guest_end, host_view) < 0.01,
        "the guest ends at {guest_end:?}, the host has it at {host_view:?}"
    );
    println!(
        "prediction: {} inputs, {} mispredictions (largest {:.2} units), {} given up",
        own["inputs"], own["mispredictions"], own["largest_error"], own["expired"]
    );

    // Leaving: the host took the guest's player out, and the guest saw it go (the host's
    // delete came back through its subscription) while its game still ran.
    let end = frames.last().unwrap();
    assert!(
        end["own"].is_null()
            && end["status"]
                .as_str()
                .is_some_and(|s| s.contains("you left the arena")),
        "after Escape the guest's last frame shows {end}"
    );

    // Interpolation: the host's player, moving at SPEED, never moves faster on the guest's
    // screen than the catch-up rate allows — while the raw versions arrive in jumps.
    let (mut worst_shown, mut worst_raw, mut worst_at) = (0.0f64, 0.0f64, 0);
    for (i, pair) in frames.windows(2).enumerate() {
        let (Some(a), Some(b)) = (other(&pair[0], "host"), other(&pair[1], "host")) else {
            continue;
        };
        let dt = pair[1]["t"].as_f64().unwrap() - pair[0]["t"].as_f64().unwrap();
        let allowed = SPEED * dt;
        let step = distance(xy(&a["shown"]), xy(&b["shown"])) / allowed;
        if step > worst_shown {
            (worst_shown, worst_at) = (step, i + 1);
        }
        worst_raw = worst_raw.max(distance(xy(&a["auth"]), xy(&b["auth"])) / allowed);
    }
    let around: Vec<String> = frames[worst_at.saturating_sub(3)..(worst_at + 2).min(frames.len())]
        .iter()
        .map(|l| {
            format!(
                "t {} host {}",
                l["t"],
                other(l, "host").cloned().unwrap_or_default()
            )
        })
        .collect();
    println!(
        "interpolation: largest step {worst_shown:.2} × the speed (raw versions: {worst_raw:.2} ×)"
    );
    // 1.5: the catch-up rate (`interstice::smooth::CATCH_UP`); the rest is the frame clock
    // and the host's clock running apart by a frame.
    assert!(
        worst_shown <= 2.0,
        "the host's player jumped {worst_shown:.2} × its speed in a frame:\n{}",
        around.join("\n")
    );
}

#[test]
fn refused_and_lost_connections_are_shown_in_the_window() {
    let _serial = one_at_a_time();
    let xvfb = Xvfb::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let arg = |p: &Path| p.display().to_string();
    let (refused_trace, lost_trace) = (
        dir.path().join("refused.jsonl"),
        dir.path().join("lost.jsonl"),
    );
    let refused_png = dir.path().join("refused.png");
    let host = game(
        &xvfb,
        &[
            args(&["--host", "--seconds", "6"]),
            vec![
                "--listen".into(),
                format!("127.0.0.1:{port}"),
                "--data-dir".into(),
                arg(&dir.path().join("host")),
            ],
        ]
        .concat(),
    );
    // An invite whose key is not the host's: refused, and the player is told why.
    let wrong = "ab".repeat(32);
    let refused = game(
        &xvfb,
        &[
            args(&["--name", "mallory", "--frames", "40"]),
            vec![
                "--join".into(),
                format!("127.0.0.1:{port}/{wrong}"),
                "--data-dir".into(),
                arg(&dir.path().join("refused")),
                "--trace".into(),
                arg(&refused_trace),
                "--screenshot".into(),
                arg(&refused_png),
            ],
        ]
        .concat(),
    );
    // A guest that outlives the host: connected, then lost.
    let lost = game(
        &xvfb,
        &[
            args(&["--seconds", "12"]),
            vec![
                "--join".into(),
                format!("127.0.0.1:{port}"),
                "--data-dir".into(),
                arg(&dir.path().join("lost")),
                "--trace".into(),
                arg(&lost_trace),
            ],
        ]
        .concat(),
    );
    wait_ok(refused, "the refused guest");
    wait_ok(host, "the host");
    wait_ok(lost, "the guest that lost the host");

    let statuses = |path: &Path| -> Vec<String> {
        trace(path)
            .iter()
            .map(|l| l["status"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let refused_lines = statuses(&refused_trace);
    let last = refused_lines.last().cloned().unwrap_or_default();
    assert!(
        last.starts_with("refused:") && last.contains(&wrong) && last.contains("pinned"),
        "the refused guest's status line: {last}"
    );
    // The status line is drawn, in the colour of trouble.
    let bad = pixels_of(&refused_png, Color::srgb(0.95, 0.4, 0.35));
    assert!(bad > 50, "{bad} pixels of the refusal's colour on screen");

    let lost_lines = statuses(&lost_trace);
    let connected = lost_lines
        .iter()
        .position(|s| s.starts_with("connected to"))
        .unwrap_or_else(|| panic!("never connected: {lost_lines:?}"));
    assert!(
        lost_lines[connected..]
            .iter()
            .any(|s| s.starts_with("connection lost") && s.contains("reconnecting")),
        "the host's departure was not shown: {:?}",
        &lost_lines[connected..]
    );
}
