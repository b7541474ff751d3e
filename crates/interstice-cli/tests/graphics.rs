//! End-to-end, on a real X server and a real Vulkan driver: `interstice example graphics`
//! opens a window under Xvfb (Mesa's lavapipe renders on the CPU), the graphics module draws
//! its triangle through the Gpu authority, and `--screenshot` saves what Bevy rendered.
//! Keys typed with xdotool (the XTEST extension: real X input events, through winit and
//! Bevy's input, to the module's Input authority) move the triangle.
//!
//! Needs the packages `scripts/setup.sh` installs: xvfb, xdotool, mesa-vulkan-drivers.
//! Each run is its own process (winit allows one event loop per process).

use interstice_testkit::{Picture, Xvfb, close, wait_ok};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The triangle's and the background's colours (sRGB bytes of modules/graphics' colours).
const TRIANGLE: [u8; 3] = [242, 89, 51];
const BACKGROUND: [u8; 3] = [20, 23, 31];

fn graphics(xvfb: &Xvfb, data: &Path, frames: u32, screenshot: &Path) -> Command {
    let mut command = xvfb.command(env!("CARGO_BIN_EXE_interstice"));
    command
        .args(["example", "graphics", "--listen", "127.0.0.1:0"])
        .arg("--frames")
        .arg(frames.to_string())
        .arg("--screenshot")
        .arg(screenshot)
        .arg("--data-dir")
        .arg(data);
    command
}

fn near(value: usize, expected: usize, slack: usize) -> bool {
    value.abs_diff(expected) <= slack
}

#[test]
fn the_triangle_is_drawn_and_moves_with_the_keyboard() {
    let xvfb = Xvfb::start();
    let dir = tempfile::tempdir().expect("temp dir");

    // 1. Untouched: the triangle's corners (0, 80), (-70, -50), (70, -50) around the
    //    window's centre (400, 300), y up: pixels x 330..470, y 220..350.
    let still = dir.path().join("still.png");
    let child = graphics(&xvfb, &dir.path().join("a"), 30, &still)
        .spawn()
        .expect("starting interstice");
    wait_ok(child, "graphics example");
    let picture = Picture::load(&still);
    assert_eq!((picture.width, picture.height), (800, 600));
    assert!(
        close(picture.at(400, 300), TRIANGLE),
        "{:?}",
        picture.at(400, 300)
    );
    for (x, y) in [(5, 5), (795, 5), (400, 200), (300, 300), (500, 340)] {
        assert!(
            close(picture.at(x, y), BACKGROUND),
            "({x}, {y}): {:?}",
            picture.at(x, y)
        );
    }
    let (x0, y0, x1, y1) = picture.bounds_of(TRIANGLE).expect("a triangle");
    assert!(
        near(x0, 330, 2) && near(x1, 470, 2) && near(y0, 220, 2) && near(y1, 350, 2),
        "triangle at {:?}",
        (x0, y0, x1, y1)
    );

    let (cx, cy) = picture.centre_of(TRIANGLE).expect("a triangle");

    // 2. Four taps on Right and two on Up move it 4 × 25 right and 2 × 25 up (a key only
    //    glides once held for 150 ms; a tap is one step).
    let moved = dir.path().join("moved.png");
    let child = graphics(&xvfb, &dir.path().join("b"), 400, &moved)
        .spawn()
        .expect("starting interstice");
    let search = Command::new("xdotool")
        .env("DISPLAY", &xvfb.display)
        .args(["search", "--sync", "--name", "graphics example"])
        .output()
        .expect("running xdotool (install it with scripts/setup.sh: apt package xdotool)");
    let window = String::from_utf8_lossy(&search.stdout)
        .lines()
        .next()
        .expect("the example's window")
        .to_string();
    // Let the module load and draw before typing.
    std::thread::sleep(Duration::from_millis(1500));
    let typed = Command::new("xdotool")
        .env("DISPLAY", &xvfb.display)
        .args(["windowfocus", "--sync", &window])
        .args([
            "key", "--delay", "40", "Right", "Right", "Right", "Right", "Up", "Up",
        ])
        .status()
        .expect("running xdotool");
    assert!(typed.success(), "xdotool failed");
    wait_ok(child, "graphics example with keys");
    let picture = Picture::load(&moved);
    let (x0, y0, x1, y1) = picture.bounds_of(TRIANGLE).expect("a triangle");
    let (mx, my) = picture.centre_of(TRIANGLE).expect("a triangle");
    let (dx, dy) = (mx - cx, cy - my);
    assert!(
        (dx - 100.0).abs() < 1.5 && (dy - 50.0).abs() < 1.5,
        "moved by ({dx:.1}, {dy:.1}), triangle at {:?}",
        (x0, y0, x1, y1)
    );
    assert!(
        near(x1 - x0, 140, 5) && near(y1 - y0, 130, 5),
        "same size after moving: {:?}",
        (x0, y0, x1, y1)
    );
    assert!(
        close(picture.at(400, 300), BACKGROUND),
        "the old place is empty"
    );
}

/// The inspector's highlight colour for rows that just changed.
const HIGHLIGHT: [u8; 3] = [255, 210, 90];

#[test]
fn the_inspector_shows_a_tables_rows_live() {
    let xvfb = Xvfb::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let shot = dir.path().join("inspector.png");
    let mut command = graphics(&xvfb, &dir.path().join("data"), 60, &shot);
    command.args(["--inspector", "graphics.triangle"]);
    wait_ok(
        command.spawn().expect("starting interstice"),
        "graphics example with the inspector",
    );
    let picture = Picture::load(&shot);
    // The inspector's window sits at the top left, over the scene.
    let (x0, y0, x1, y1) = picture
        .bounds_of(HIGHLIGHT)
        .expect("the triangle's row, highlighted: it changes every frame");
    assert!(
        x1 < 470 && y1 < 400 && x1 > x0 && y1 >= y0,
        "{:?}",
        (x0, y0, x1, y1)
    );
    let lit = (0..picture.height)
        .flat_map(|y| (0..picture.width).map(move |x| (x, y)))
        .filter(|&(x, y)| close(picture.at(x, y), HIGHLIGHT))
        .count();
    assert!(lit > 30, "only {lit} highlighted pixels");
    // The row is text on the inspector's dark panel, not the scene's background.
    assert!(
        !close(picture.at(100, 100), BACKGROUND),
        "{:?}",
        picture.at(100, 100)
    );
}
