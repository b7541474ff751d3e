//! What the game draws of rows, and how players' rows move: the same rules for the host's
//! `arena::Player` and the guest's replica `arena_client::Avatar`.

use bevy::prelude::*;
use interstice::prelude::*;

/// A player's row, whichever side mirrors it.
pub trait PlayerRow: Clone + Send + Sync + 'static {
    fn name(&self) -> &str;
    fn at(&self) -> Vec2;
    fn set_at(&mut self, at: Vec2);
    fn hue(&self) -> f32;
    fn score(&self) -> u32;
    /// The last steering input the host applied.
    fn input(&self) -> u64;
    /// When it last moved, in the host's milliseconds.
    fn moved_at(&self) -> u64;
}

macro_rules! player_row {
    ($t:ty) => {
        impl PlayerRow for $t {
            fn name(&self) -> &str {
                &self.name
            }
            fn at(&self) -> Vec2 {
                Vec2::new(self.x, self.y)
            }
            fn set_at(&mut self, at: Vec2) {
                (self.x, self.y) = (at.x, at.y);
            }
            fn hue(&self) -> f32 {
                self.hue
            }
            fn score(&self) -> u32 {
                self.score
            }
            fn input(&self) -> u64 {
                self.input
            }
            fn moved_at(&self) -> u64 {
                self.moved_at
            }
        }
    };
}

player_row!(arena::Player);
player_row!(arena_client::Avatar);

/// How players move on screen: interpolated by the host's clock, predicted with the host's own
/// movement rule ([`arena::step`]).
pub struct Moves<R>(std::marker::PhantomData<fn() -> R>);

impl<R> Motion for Moves<R>
where
    R: PlayerRow + interstice::IntersticeType + PartialEq,
{
    type Row = R;

    fn blend(from: &R, to: &R, t: f32) -> R {
        let mut row = to.clone();
        row.set_at(from.at().lerp(to.at(), t));
        row
    }

    fn time_ms(row: &R) -> Option<u64> {
        Some(row.moved_at())
    }

    fn distance(from: &R, to: &R) -> Option<f32> {
        Some(from.at().distance(to.at()))
    }
}

impl<R> Prediction for Moves<R>
where
    R: PlayerRow + interstice::IntersticeType + PartialEq,
{
    /// A step, as sent to `steer`.
    type Input = Vec2;

    fn apply(row: &mut R, step: &Vec2) {
        let at = row.at();
        let (x, y) = arena::step(at.x, at.y, step.x, step.y);
        row.set_at(Vec2::new(x, y));
    }

    fn applied(row: &R) -> u64 {
        row.input()
    }

    fn error(predicted: &R, actual: &R) -> f32 {
        predicted.at().distance(actual.at())
    }
}

/// A coin's row.
pub trait CoinRow: Send + Sync + 'static {
    fn at(&self) -> Vec2;
}

impl CoinRow for arena::Coin {
    fn at(&self) -> Vec2 {
        Vec2::new(self.x, self.y)
    }
}

impl CoinRow for arena_client::Gem {
    fn at(&self) -> Vec2 {
        Vec2::new(self.x, self.y)
    }
}

/// A player's square: 24 × 24 in its hue.
pub const PLAYER_SIZE: f32 = 24.0;

/// Sprites for players, where they are shown this frame.
pub fn show_players<R: PlayerRow + PartialEq>(
    mut commands: Commands,
    added: Query<(Entity, &Smoothed<R>), Added<Smoothed<R>>>,
    mut moved: Query<(&Smoothed<R>, &mut Transform), Changed<Smoothed<R>>>,
) {
    for (entity, row) in &added {
        commands.entity(entity).insert((
            Sprite::from_color(
                Color::hsl(row.0.hue(), 0.75, 0.55),
                Vec2::splat(PLAYER_SIZE),
            ),
            Transform::from_translation(row.0.at().extend(0.0)),
        ));
    }
    for (row, mut transform) in &mut moved {
        transform.translation = row.0.at().extend(0.0);
    }
}

/// Sprites for coins, where the host says they are.
pub fn show_coins<C: CoinRow>(
    mut commands: Commands,
    added: Query<(Entity, &Mirrored<C>), Added<Mirrored<C>>>,
    mut moved: Query<(&Mirrored<C>, &mut Transform), Changed<Mirrored<C>>>,
) {
    for (entity, row) in &added {
        commands.entity(entity).insert((
            Sprite::from_color(Color::srgb(1.0, 0.85, 0.2), Vec2::splat(12.0)),
            Transform::from_translation(row.0.at().extend(0.0)),
        ));
    }
    for (row, mut transform) in &mut moved {
        transform.translation = row.0.at().extend(0.0);
    }
}
