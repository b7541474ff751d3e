//! The rules of the minimal game example: dots orbiting the origin. The game mirrors the `Dot`
//! table into sprites; the module alone decides where the dots are.

use interstice_sdk::*;

interstice_module!(visibility: Public);

/// One dot on its orbit.
#[table]
#[derive(Debug, Clone, PartialEq)]
pub struct Dot {
    #[primary_key]
    pub id: u32,
    /// Distance from the origin.
    pub radius: f32,
    /// Where on its orbit it is, in radians.
    pub angle: f32,
    /// Radians per second (negative: clockwise).
    pub speed: f32,
    /// Position, kept for the game to draw.
    pub x: f32,
    pub y: f32,
    /// Colour hue in degrees.
    pub hue: f32,
}

/// Places `count` dots on orbits of growing radius, with speeds from the deterministic random
/// numbers of the call.
#[reducer]
fn spawn(ctx: ReducerContext, count: u32) -> Result<(), HostError> {
    let dots = ctx.current.tables.dot();
    let first = dots.count() as u32;
    for id in first..first.saturating_add(count) {
        let radius = 40.0 + (id % 50) as f32 * 5.0;
        let speed =
            (ctx.random_below(200) as f32 / 100.0 + 0.2) * if id % 2 == 0 { 1.0 } else { -1.0 };
        let angle = ctx.random_below(628) as f32 / 100.0;
        dots.insert(Dot {
            id,
            radius,
            angle,
            speed,
            x: radius * angle.cos(),
            y: radius * angle.sin(),
            hue: (id * 37 % 360) as f32,
        })?;
    }
    Ok(())
}

/// Moves every dot along its orbit by `dt_ms` milliseconds.
#[reducer]
fn step(ctx: ReducerContext, dt_ms: u32) -> Result<(), HostError> {
    let dt = dt_ms.min(100) as f32 / 1000.0;
    let dots = ctx.current.tables.dot();
    for mut dot in dots.scan().collect::<Vec<_>>() {
        dot.angle = (dot.angle + dot.speed * dt) % core::f32::consts::TAU;
        dot.x = dot.radius * dot.angle.cos();
        dot.y = dot.radius * dot.angle.sin();
        dots.update(dot)?;
    }
    Ok(())
}

/// Removes every dot.
#[reducer]
fn clear(ctx: ReducerContext) -> Result<(), HostError> {
    let dots = ctx.current.tables.dot();
    for dot in dots.scan().collect::<Vec<_>>() {
        dots.delete(&dot.id)?;
    }
    Ok(())
}
