//! The graphics example module: holds the Gpu and Input authorities, draws a triangle every
//! frame and moves it with the keyboard and mouse.
//!
//! - arrow keys / WASD: a tap moves the triangle 25 units; held (longer than 150 ms), it keeps
//!   moving (200/s);
//! - `Q` / `E`: a tap turns it 15°; held, it keeps turning;
//! - left click: the triangle jumps to the cursor; wheel: grows or shrinks it;
//! - `Space`: back to the start.
//!
//! Its state lives in a table, so the inspector (and `call_query`) can watch it move.

use interstice_sdk::*;

interstice_module!(visibility: Public, authorities: [Gpu, Input]);

/// Where the triangle is.
#[table]
pub struct Triangle {
    #[primary_key]
    pub id: u32,
    pub x: f32,
    pub y: f32,
    /// Counter-clockwise turn in radians.
    pub angle: f32,
    pub scale: f32,
    /// The logical time of the last frame drawn, for continuous movement.
    pub last_ms: u64,
    /// Frames drawn so far.
    pub frames: u64,
    /// Where the cursor was last seen, in world units.
    pub cursor_x: f32,
    pub cursor_y: f32,
}

/// Keys held down, from the key events. (Tracking them from events rather than polling
/// `input::state()` keeps the module replayable: events are the invocation's arguments.)
#[table]
pub struct Held {
    #[primary_key]
    pub key: String,
    /// When it went down (logical ms): a key glides only once held for `HOLD_MS`, so a tap
    /// is exactly one step.
    pub since_ms: u64,
}

const HOLD_MS: u64 = 150;

const STEP: f32 = 25.0;
const TURN: f32 = core::f32::consts::PI / 12.0;
const SPEED: f32 = 200.0;
const SPIN: f32 = core::f32::consts::PI;

/// The triangle's colour.
pub const TRIANGLE: Color = Color::rgb(0.95, 0.35, 0.2);
/// The background.
pub const BACKGROUND: Color = Color::rgb(0.08, 0.09, 0.12);

fn start(now: u64) -> Triangle {
    Triangle {
        id: 0,
        x: 0.0,
        y: 0.0,
        angle: 0.0,
        scale: 1.0,
        last_ms: now,
        frames: 0,
        cursor_x: 0.0,
        cursor_y: 0.0,
    }
}

fn triangle(ctx: &ReducerContext) -> Triangle {
    ctx.current
        .tables
        .triangle()
        .get(&0)
        .unwrap_or_else(|| start(ctx.timestamp()))
}

fn save(ctx: &ReducerContext, t: Triangle) -> Result<(), HostError> {
    let table = ctx.current.tables.triangle();
    if table.get(&t.id).is_some() {
        table.update(t).map(drop)
    } else {
        table.insert(t).map(drop)
    }
}

/// Places the triangle at the start.
#[reducer(on = "init")]
fn init(ctx: ReducerContext) -> Result<(), HostError> {
    host_calls::log("graphics: arrows/WASD move, Q/E turn, click jumps, wheel scales");
    save(&ctx, start(ctx.timestamp()))
}

/// The triangle's corners, turned and scaled about its centre.
pub fn corners(t: &Triangle) -> [Vec2; 3] {
    let (sin, cos) = t.angle.sin_cos();
    [(0.0, 80.0), (-70.0, -50.0), (70.0, -50.0)].map(|(x, y)| {
        let (x, y) = (x * t.scale, y * t.scale);
        Vec2::new(t.x + x * cos - y * sin, t.y + x * sin + y * cos)
    })
}

/// Moves the triangle for held keys, then draws the frame.
#[reducer(on = "render")]
fn render(ctx: ReducerContext) -> Result<(), HostError> {
    let mut t = triangle(&ctx);
    let now = ctx.timestamp();
    let dt = now.saturating_sub(t.last_ms).min(100) as f32 / 1000.0;
    let held = ctx.current.tables.held();
    let down = |names: &[&str]| {
        names.iter().any(|n| {
            held.get(&n.to_string())
                .is_some_and(|h| now.saturating_sub(h.since_ms) >= HOLD_MS)
        })
    };
    if down(&["ArrowLeft", "KeyA"]) {
        t.x -= SPEED * dt;
    }
    if down(&["ArrowRight", "KeyD"]) {
        t.x += SPEED * dt;
    }
    if down(&["ArrowUp", "KeyW"]) {
        t.y += SPEED * dt;
    }
    if down(&["ArrowDown", "KeyS"]) {
        t.y -= SPEED * dt;
    }
    if down(&["KeyQ"]) {
        t.angle += SPIN * dt;
    }
    if down(&["KeyE"]) {
        t.angle -= SPIN * dt;
    }
    t.last_ms = now;
    t.frames += 1;

    let mut frame = gpu::Frame::new();
    frame
        .clear(BACKGROUND)
        .camera(Vec2::new(0.0, 0.0), 1.0)
        .triangle(corners(&t), TRIANGLE)
        .text(
            "arrows/WASD move - Q/E turn - click - wheel",
            Vec2::new(0.0, -260.0),
            20.0,
            Color::rgb(0.8, 0.8, 0.85),
        );
    frame.submit()?;
    save(&ctx, t)
}

/// Taps move and turn; a click moves the triangle to the cursor; the wheel scales it.
#[reducer(on = "input")]
fn input(ctx: ReducerContext, event: input::InputEvent) -> Result<(), HostError> {
    let mut t = triangle(&ctx);
    if let input::InputEvent::Key {
        key,
        pressed: false,
        ..
    } = &event
    {
        ctx.current.tables.held().delete(key)?;
        return Ok(());
    }
    match event {
        input::InputEvent::Key {
            key, pressed: true, ..
        } => {
            let held = ctx.current.tables.held();
            if held.get(&key).is_none() {
                held.insert(Held {
                    key: key.clone(),
                    since_ms: ctx.timestamp(),
                })?;
            }
            match key.as_str() {
                "ArrowLeft" | "KeyA" => t.x -= STEP,
                "ArrowRight" | "KeyD" => t.x += STEP,
                "ArrowUp" | "KeyW" => t.y += STEP,
                "ArrowDown" | "KeyS" => t.y -= STEP,
                "KeyQ" => t.angle += TURN,
                "KeyE" => t.angle -= TURN,
                "Space" => t = start(ctx.timestamp()),
                _ => return Ok(()),
            }
        }
        input::InputEvent::CursorMoved {
            world_x, world_y, ..
        } => {
            t.cursor_x = world_x;
            t.cursor_y = world_y;
        }
        input::InputEvent::MouseButton {
            button,
            pressed: true,
        } if button == "Left" => {
            t.x = t.cursor_x;
            t.y = t.cursor_y;
        }
        input::InputEvent::Wheel { y, .. } => {
            t.scale = (t.scale * if y > 0.0 { 1.1 } else { 1.0 / 1.1 }).clamp(0.2, 5.0);
        }
        _ => return Ok(()),
    }
    save(&ctx, t)
}

/// Where the triangle is: `(x, y, angle, scale)`.
#[query]
fn position(ctx: QueryContext) -> (f32, f32, f32, f32) {
    ctx.current
        .tables
        .triangle()
        .get(&0)
        .map_or((0.0, 0.0, 0.0, 1.0), |t| (t.x, t.y, t.angle, t.scale))
}
