//! For tests and demos: an autopilot that steers instead of the keys, and a trace of what each
//! frame shows (JSON lines) — positions as drawn and as the host last said, the inputs, the
//! status line — so a test can measure prediction and interpolation in a real game.

use crate::pieces::{Moves, PlayerRow};
use crate::play::{Intent, Presence};
use bevy::prelude::*;
use interstice::prelude::*;
use std::io::Write;
use std::path::Path;

/// An autopilot's plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Autopilot {
    /// Round and round at full speed, from the start.
    Circle,
}

/// The autopilot, when one steers.
#[derive(Resource)]
pub struct Pilot {
    plan: Autopilot,
}

impl Pilot {
    /// Where to go at `now` (seconds since start).
    pub fn intent(&mut self, now: f32) -> Vec2 {
        match self.plan {
            Autopilot::Circle => Vec2::new((now * 2.0).cos(), (now * 2.0).sin()),
        }
    }
}

/// Where the trace goes.
#[derive(Resource)]
struct TraceFile(std::io::BufWriter<std::fs::File>);

/// Adds the autopilot and the trace, when asked for.
pub fn add<R: PlayerRow + interstice::IntersticeType + PartialEq>(
    app: &mut App,
    autopilot: Option<Autopilot>,
    trace: Option<&Path>,
) -> Result<(), String> {
    if let Some(plan) = autopilot {
        app.insert_resource(Pilot { plan });
    }
    if let Some(path) = trace {
        let file = std::fs::File::create(path)
            .map_err(|e| format!("trace file {}: {e}", path.display()))?;
        app.insert_resource(TraceFile(std::io::BufWriter::new(file)))
            .add_systems(Last, write::<R>);
    }
    Ok(())
}

fn xy(at: Vec2) -> serde_json::Value {
    serde_json::json!([at.x, at.y])
}

/// One line per frame.
#[allow(clippy::type_complexity, clippy::too_many_arguments)] // a Bevy system
fn write<R: PlayerRow + interstice::IntersticeType + PartialEq>(
    mut file: ResMut<TraceFile>,
    mut frame: Local<u64>,
    time: Res<Time<Real>>,
    role: Res<crate::Role>,
    intent: Res<Intent>,
    presence: Res<Presence>,
    own: Query<&Predicted<Moves<R>>>,
    others: Query<(&Smoothed<R>, &Mirrored<R>), Without<Predicted<Moves<R>>>>,
    status: Query<&Text2d, With<crate::hud::StatusLine>>,
) {
    *frame += 1;
    let own = own
        .iter()
        .find(|p| p.authoritative().name() == role.name)
        .map(|p| {
            let stats = p.stats();
            serde_json::json!({
                "shown": xy(p.shown().at()),
                "auth": xy(p.authoritative().at()),
                "pending": p.pending_inputs(),
                "inputs": stats.inputs,
                "confirmed": stats.confirmed,
                "expired": stats.expired,
                "mispredictions": stats.mispredictions,
                "largest_error": stats.largest_error,
            })
        });
    let others: Vec<serde_json::Value> = others
        .iter()
        .map(|(shown, auth)| {
            serde_json::json!({
                "name": shown.0.name(),
                "shown": xy(shown.0.at()),
                "auth": xy(auth.0.at()),
                "moved_at": auth.0.moved_at(),
            })
        })
        .collect();
    let line = serde_json::json!({
        "frame": *frame,
        "t": time.elapsed_secs_f64(),
        "status": status.iter().next().map(|t| t.0.clone()).unwrap_or_default(),
        "joined": presence.joined,
        "intent": xy(intent.0),
        "own": own,
        "others": others,
    });
    let _ = writeln!(file.0, "{line}");
    let _ = file.0.flush();
}
