//! Playing: joining (again after a reconnect), steering with prediction, leaving.

use crate::Role;
use crate::pieces::{Moves, PlayerRow};
use bevy::prelude::*;
use bevy::window::WindowCloseRequested;
use interstice::network::{LinkState, PeerHealth, RemoteCallOutcome};
use interstice::prelude::*;
use std::time::{Duration, Instant};

/// Units a second a player moves.
pub const SPEED: f32 = 240.0;

/// How long closing the window waits for the host to confirm the player left.
const LEAVE_WAIT: Duration = Duration::from_secs(1);

/// Where the player wants to go this frame: -1 to 1 on each axis, from the keys or the
/// autopilot.
#[derive(Resource, Default)]
pub struct Intent(pub Vec2);

/// This game's player in the arena, as far as the game knows.
#[derive(Resource, Default)]
pub struct Presence {
    /// A join was sent (and not refused).
    pub joined: bool,
    /// The player chose to leave (Escape); Enter joins again.
    pub left: bool,
    /// The host refused the join, and why.
    pub refused: Option<String>,
    /// The host's arena was opened (host only: guests' players from before a restart left).
    opened: bool,
    /// Whether the link to the host was up last frame (guest only).
    was_connected: bool,
    /// The window is closing: since when the leave was sent.
    closing: Option<Instant>,
}

/// Keys (or the autopilot) become this frame's [`Intent`]; Escape leaves, Enter joins again.
pub fn keys(
    keys: Res<ButtonInput<KeyCode>>,
    mut intent: ResMut<Intent>,
    mut presence: ResMut<Presence>,
    mut pilot: Option<ResMut<crate::trace::Pilot>>,
    mut interstice: Interstice,
    role: Res<Role>,
    time: Res<Time>,
) {
    if let Some(pilot) = pilot.as_deref_mut() {
        intent.0 = pilot.intent(time.elapsed_secs());
        return;
    }
    let axis = |minus: [KeyCode; 2], plus: [KeyCode; 2]| {
        f32::from(keys.any_pressed(plus)) - f32::from(keys.any_pressed(minus))
    };
    intent.0 = Vec2::new(
        axis(
            [KeyCode::ArrowLeft, KeyCode::KeyA],
            [KeyCode::ArrowRight, KeyCode::KeyD],
        ),
        axis(
            [KeyCode::ArrowDown, KeyCode::KeyS],
            [KeyCode::ArrowUp, KeyCode::KeyW],
        ),
    );
    if keys.just_pressed(KeyCode::Escape) && presence.joined && !presence.left {
        presence.left = true;
        if let Err(e) = interstice.queue_reducer(role.module, "leave", (role.name.clone(),)) {
            error!("cannot leave: {e}");
        }
    }
    if keys.just_pressed(KeyCode::Enter) && (presence.left || presence.refused.is_some()) {
        presence.left = false;
        presence.refused = None;
        presence.joined = false;
    }
}

/// Joins once the module is loaded — a guest once its link to the host is up, and again every
/// time it comes back (the host may have restarted). The host first opens the arena.
pub fn join(
    mut interstice: Interstice,
    role: Res<Role>,
    mut presence: ResMut<Presence>,
    health: Option<Res<PeerHealth>>,
) {
    if interstice.schema(role.module).is_none() {
        return;
    }
    if role.is_host() && !presence.opened {
        presence.opened = true;
        if let Err(e) = interstice.queue_reducer(role.module, "open_arena", ()) {
            error!("cannot open the arena: {e}");
        }
    }
    if let Some(host) = role.host {
        let connected = health.as_deref().is_some_and(|h| {
            h.link(host)
                .is_some_and(|l| matches!(l.state, LinkState::Connected { .. }))
        });
        if connected && !presence.was_connected {
            presence.joined = false;
        }
        presence.was_connected = connected;
        if !connected {
            return;
        }
    }
    if presence.joined || presence.left || presence.refused.is_some() {
        return;
    }
    presence.joined = true;
    if let Err(e) = interstice.queue_reducer(role.module, "join", (role.name.clone(), role.hue)) {
        error!("cannot join: {e}");
    }
}

/// The intent moves this game's own player: at once on screen (predicted), and through a
/// `steer` call numbered for reconciliation.
pub fn steer<R: PlayerRow + interstice::IntersticeType + PartialEq>(
    mut interstice: Interstice,
    role: Res<Role>,
    intent: Res<Intent>,
    presence: Res<Presence>,
    time: Res<Time>,
    mut own: Query<&mut Predicted<Moves<R>>>,
) {
    if intent.0 == Vec2::ZERO || presence.left {
        return;
    }
    let Some(mut predicted) = own
        .iter_mut()
        .find(|p| p.authoritative().name() == role.name)
    else {
        return;
    };
    let step = intent.0 * SPEED * time.delta_secs();
    let number = predicted.input(step);
    let args = (role.name.clone(), step.x, step.y, number);
    if let Err(e) = interstice.queue_reducer(role.module, "steer", args) {
        error!("cannot steer: {e}");
    }
}

/// Closing the window leaves the arena first (a guest waits up to [`LEAVE_WAIT`] for the host
/// to confirm; the host's disconnect handling would remove the player anyway, later).
pub fn close(
    mut requests: MessageReader<WindowCloseRequested>,
    mut presence: ResMut<Presence>,
    mut interstice: Interstice,
    role: Res<Role>,
    mut exit: MessageWriter<AppExit>,
) {
    if requests.read().count() == 0 || presence.closing.is_some() {
        return;
    }
    if role.is_host() || !presence.joined || presence.left {
        exit.write(AppExit::Success);
        return;
    }
    presence.closing = Some(Instant::now());
    if let Err(e) = interstice.queue_reducer(role.module, "leave", (role.name.clone(),)) {
        error!("cannot leave: {e}");
        exit.write(AppExit::Success);
    }
}

/// Answers from the host: a refused join is shown; a confirmed leave while closing ends the
/// game.
pub fn leave_when_answered(
    mut remote: MessageReader<RemoteCallOutcome>,
    mut local: MessageReader<ReducerOutcome>,
    mut presence: ResMut<Presence>,
    role: Res<Role>,
    mut exit: MessageWriter<AppExit>,
) {
    let mut answers: Vec<(String, Result<(), String>)> = remote
        .read()
        .map(|o| {
            (
                o.reducer.clone(),
                o.outcome.clone().map_err(|e| e.to_string()),
            )
        })
        .collect();
    if role.is_host() {
        answers.extend(local.read().filter(|o| o.module == role.module).map(|o| {
            (
                o.reducer.clone(),
                o.result.clone().map_err(|e| e.to_string()),
            )
        }));
    }
    for (reducer, outcome) in answers {
        match (reducer.as_str(), outcome) {
            ("join", Err(why)) => {
                warn!("the host refused the join: {why}");
                presence.joined = false;
                presence.refused = Some(why);
            }
            ("leave", _) if presence.closing.is_some() => {
                exit.write(AppExit::Success);
            }
            _ => {}
        }
    }
    if presence
        .closing
        .is_some_and(|since| since.elapsed() > LEAVE_WAIT)
    {
        exit.write(AppExit::Success);
    }
}
