//! What the player reads: the scores, and a status line saying what the network does —
//! connecting, connected (round trip), refused (why), lost (reconnecting).

use crate::Role;
use crate::pieces::PlayerRow;
use crate::play::Presence;
use bevy::prelude::*;
use bevy::text::TextBounds;
use interstice::network::{LinkState, NetworkStatus, PeerHealth};
use interstice::prelude::*;

#[derive(Component)]
pub struct Scoreboard;

/// The status line; its text is what [`status_line`] said last.
#[derive(Component)]
pub struct StatusLine;

/// Colours of the status line.
const OK: Color = Color::srgb(0.55, 0.85, 0.55);
const WAITING: Color = Color::srgb(0.95, 0.8, 0.35);
const BAD: Color = Color::srgb(0.95, 0.4, 0.35);

pub fn setup(mut commands: Commands) {
    commands.spawn((
        Scoreboard,
        Text2d::default(),
        TextFont::from_font_size(20.0),
        Transform::from_xyz(0.0, 275.0, 1.0),
    ));
    commands.spawn((
        StatusLine,
        Text2d::default(),
        TextFont::from_font_size(13.0),
        TextColor(WAITING),
        TextLayout::justify(Justify::Center),
        TextBounds::new_horizontal(780.0),
        // Grows upward as it wraps: a long refusal stays on screen.
        bevy::sprite::Anchor::BOTTOM_CENTER,
        Transform::from_xyz(0.0, -296.0, 1.0),
    ));
}

/// Everyone's score, best first.
pub fn scoreboard<R: PlayerRow + PartialEq>(
    players: Query<&Smoothed<R>>,
    mut board: Single<&mut Text2d, With<Scoreboard>>,
) {
    let mut scores: Vec<(&str, u32)> = players.iter().map(|p| (p.0.name(), p.0.score())).collect();
    scores.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let text = scores
        .iter()
        .map(|(name, score)| format!("{name} {score}"))
        .collect::<Vec<_>>()
        .join("   ");
    if board.0 != text {
        board.0 = text;
    }
}

/// The status line for this frame, and whether it is good news, waiting or trouble.
pub fn status_line(
    role: &Role,
    presence: &Presence,
    health: Option<&PeerHealth>,
    network: Option<&NetworkStatus>,
    players: usize,
) -> (String, Color) {
    if let Some(error) = network.and_then(|n| n.error.as_ref()) {
        return (format!("network down: {error}"), BAD);
    }
    let mut line = match role.host {
        None => {
            let invite = role.invite.as_deref().unwrap_or("?");
            (
                format!("hosting | {players} in the arena | invite: {invite}"),
                OK,
            )
        }
        Some(host) => match health.and_then(|h| h.link(host)) {
            None => (format!("starting... (host {host})"), WAITING),
            Some(link) => match &link.state {
                LinkState::Connecting { attempt: 1, .. } => {
                    (format!("connecting to {host}..."), WAITING)
                }
                LinkState::Connecting {
                    attempt,
                    last_error,
                } => (
                    format!(
                        "connecting to {host}... (attempt {attempt}{})",
                        last_error
                            .as_ref()
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default()
                    ),
                    WAITING,
                ),
                LinkState::Connected { .. } => (
                    match link.rtt {
                        Some(rtt) => format!(
                            "connected to {host} | RTT {:.0} ms",
                            rtt.as_secs_f64() * 1000.0
                        ),
                        None => format!("connected to {host}"),
                    },
                    OK,
                ),
                LinkState::Refused { why, .. } => (format!("refused: {why}"), BAD),
                LinkState::Lost { why, attempt } => (
                    format!("connection lost ({why}) - reconnecting (attempt {attempt})..."),
                    BAD,
                ),
            },
        },
    };
    if let Some(why) = &presence.refused {
        line = (
            format!("{} | cannot join: {why} (Enter: try again)", line.0),
            BAD,
        );
    } else if presence.left {
        line.0.push_str(" | you left the arena (Enter: join again)");
    }
    line
}

/// Keeps the status line current.
pub fn status<R: PlayerRow + PartialEq>(
    role: Res<Role>,
    presence: Res<Presence>,
    health: Option<Res<PeerHealth>>,
    network: Option<Res<NetworkStatus>>,
    players: Query<(), With<Smoothed<R>>>,
    mut line: Single<(&mut Text2d, &mut TextColor), With<StatusLine>>,
) {
    let (text, color) = status_line(
        &role,
        &presence,
        health.as_deref(),
        network.as_deref(),
        players.iter().count(),
    );
    let (shown, shown_color) = &mut *line;
    if shown.0 != text {
        shown.0 = text;
    }
    if shown_color.0 != color {
        shown_color.0 = color;
    }
}
