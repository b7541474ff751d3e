//! Mirrored rows shown smoothly over a real network: this game's own rows *predicted* (its
//! inputs applied at once, reconciled when the authority's change arrives), everyone else's
//! *interpolated* between the versions received.
//!
//! A guest playing on another node sees the authority's rows a round trip late, and in steps
//! as they arrive. [`SmoothTable`] sits on top of a [`MirrorTable`](crate::MirrorTable) of the
//! same rows and keeps a [`Smoothed`] component beside each [`crate::Mirrored`] row:
//! what to draw this frame.
//!
//! - **Prediction** ([`Predicted`], for rows the game chooses — its own player): the game gives
//!   each input to [`Predicted::input`], which applies it at once with the same rule the
//!   module's reducer runs ([`Prediction::apply`] — share the function) and numbers it; the
//!   game sends that number with the reducer call, and the module stores the number of the
//!   last input it applied in the row ([`Prediction::applied`]). When the authority's row
//!   arrives, the inputs it has applied are dropped and the rest are applied again on top of it
//!   (rollback and replay, as in lightyear). A prediction that turns out wrong (a wall, a push
//!   the game did not foresee) is corrected over [`CORRECTION`] instead of in one jump.
//! - **Interpolation** ([`Interpolated`], for every other row): versions are shown
//!   [`SmoothTable::delay`] behind the authority's clock ([`Motion::time_ms`], a column the
//!   reducer fills with `ctx.timestamp()`), blended between the two around that moment, so
//!   network jitter up to the delay never shows. When the versions stop coming (a lost
//!   packet's retransmission), the row waits at the newest and then catches up at most 1.5 ×
//!   real speed: it never jumps.
//!
//! The rules for a row type are given by a marker type implementing [`Motion`] (and
//! [`Prediction`] to predict), so a game can describe the rows of a module crate it depends on.
//!
//! ```ignore
//! use interstice::smooth::{Motion, Prediction, SmoothTable, Smoothed};
//!
//! struct Moves;
//! impl Motion for Moves {
//!     type Row = arena::Player;
//!     fn blend(from: &Player, to: &Player, t: f32) -> Player {
//!         Player { x: from.x + (to.x - from.x) * t, y: from.y + (to.y - from.y) * t, ..to.clone() }
//!     }
//!     fn time_ms(row: &Player) -> Option<u64> { Some(row.moved_at) }
//! }
//! impl Prediction for Moves {
//!     type Input = (f32, f32);
//!     fn apply(row: &mut Player, &(dx, dy): &(f32, f32)) { (row.x, row.y) = arena::step(row.x, row.y, dx, dy); }
//!     fn applied(row: &Player) -> u64 { row.input }
//! }
//!
//! app.add_plugins((
//!     MirrorTable::<Player>::new("arena", "player"),
//!     SmoothTable::<Moves>::new().predict(move |row| row.name == me),
//! ));
//! // Steering: `let n = predicted.input((dx, dy));` then call `steer(name, dx, dy, n)`.
//! // Drawing: `Query<&Smoothed<Player>>`.
//! ```

mod interpolate;
mod predict;

pub use interpolate::{
    CATCH_UP, CLOCK_WINDOW, DEFAULT_DELAY, Interpolated, MAX_SAMPLES, REST_AFTER, SNAP_BEHIND,
};
pub use predict::{CORRECTION, MAX_PENDING_INPUTS, PENDING_TIMEOUT, Predicted, PredictionStats};

use crate::mirror::{MirrorSystems, Mirrored};
use bevy::prelude::*;
use interstice_abi::IntersticeType;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

/// How rows of one type move: how to show one part way to another, and when the authority
/// wrote each.
pub trait Motion: Send + Sync + 'static {
    /// The row type (the module's, as mirrored).
    type Row: IntersticeType + Clone + PartialEq + Send + Sync + 'static;

    /// `from` moved `t` (0 to 1) of the way to `to`: positions blended, everything else
    /// usually `to`'s.
    fn blend(from: &Self::Row, to: &Self::Row, t: f32) -> Self::Row;

    /// When the authority wrote this version, in its milliseconds (`ctx.timestamp()` stored
    /// by the reducer). Without it, versions are timed by their arrival, and network jitter
    /// shows.
    fn time_ms(row: &Self::Row) -> Option<u64> {
        let _ = row;
        None
    }

    /// How far apart two versions are (a position's distance). With it, a row that went
    /// quiet and then turns up far away — versions were lost, it did not rest — glides there
    /// no faster than it has been seen to move, instead of in a jump.
    fn distance(from: &Self::Row, to: &Self::Row) -> Option<f32> {
        let _ = (from, to);
        None
    }
}

/// How this game's own inputs change rows of one type, for prediction.
pub trait Prediction: Motion {
    /// One input, as the game sends it to the reducer (with the number
    /// [`Predicted::input`] gave it).
    type Input: Clone + Send + Sync + 'static;

    /// Applies `input` to `row`: the same rule the reducer applies (call the same function).
    fn apply(row: &mut Self::Row, input: &Self::Input);

    /// The number of the last input the authority applied to this row (a column the reducer
    /// sets from the number sent with each input).
    fn applied(row: &Self::Row) -> u64;

    /// How far the prediction was from the authority's version (after replaying the inputs it
    /// had not applied yet); above 0 it is corrected ([`CORRECTION`]) and counted as a
    /// misprediction. By default any difference counts 1; measure only what inputs move
    /// (positions), or every column the authority alone changes (a score) counts too.
    fn error(predicted: &Self::Row, actual: &Self::Row) -> f32 {
        if predicted == actual { 0.0 } else { 1.0 }
    }
}

/// The row as this game should draw it now: predicted or interpolated.
#[derive(Component, Debug, Clone, PartialEq)]
pub struct Smoothed<T>(pub T);

/// Which rows a [`SmoothTable`] predicts: inserts [`Predicted`] on the entity and answers
/// `true`, or answers `false`.
type PredictChoice<R> = Arc<dyn Fn(&mut Commands, Entity, &R) -> bool + Send + Sync>;

/// Shows the rows of a [`MirrorTable`](crate::MirrorTable) (of `M::Row`, added separately)
/// smoothly: predicted for the rows [`SmoothTable::predict`] chooses, interpolated for the
/// rest. See the [module docs](self).
pub struct SmoothTable<M: Motion> {
    delay: Duration,
    predict: Option<PredictChoice<M::Row>>,
    add_prediction: Option<fn(&mut App)>,
    _motion: PhantomData<fn() -> M>,
}

impl<M: Motion> SmoothTable<M> {
    /// Every row interpolated, [`DEFAULT_DELAY`] behind the authority.
    pub fn new() -> Self {
        SmoothTable {
            delay: DEFAULT_DELAY,
            predict: None,
            add_prediction: None,
            _motion: PhantomData,
        }
    }

    /// How far behind the authority's clock other rows are shown: longer hides more jitter
    /// and loss, shorter shows them sooner. About one round trip plus a frame suits most
    /// networks.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

impl<M: Motion> Default for SmoothTable<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M: Prediction> SmoothTable<M> {
    /// Predicts the rows `which` picks (when they first appear): this game's own.
    pub fn predict(mut self, which: impl Fn(&M::Row) -> bool + Send + Sync + 'static) -> Self {
        self.predict = Some(Arc::new(move |commands, entity, row| {
            let chosen = which(row);
            if chosen {
                commands
                    .entity(entity)
                    .insert(Predicted::<M>::new(row.clone()));
            }
            chosen
        }));
        self.add_prediction = Some(predict::add::<M>);
        self
    }
}

/// A [`SmoothTable`]'s settings, as its systems read them.
#[derive(Resource)]
struct Smoothing<M: Motion> {
    delay: Duration,
    predict: Option<PredictChoice<M::Row>>,
}

/// Order inside [`IntersticeSystems::Publish`](crate::IntersticeSystems::Publish), after
/// the mirrors: new rows get their components, then every smoothed row is brought up to date.
#[derive(SystemSet, Debug, Clone, PartialEq, Eq, Hash)]
pub enum SmoothSystems {
    /// New mirrored rows become predicted or interpolated.
    Attach,
    /// Reconciliation, interpolation and [`Smoothed`] for this frame.
    Update,
}

impl<M: Motion> Plugin for SmoothTable<M> {
    fn build(&self, app: &mut App) {
        app.insert_resource(Smoothing::<M> {
            delay: self.delay,
            predict: self.predict.clone(),
        })
        .configure_sets(
            Update,
            (SmoothSystems::Attach, SmoothSystems::Update)
                .chain()
                .after(MirrorSystems::Mirror),
        )
        .add_systems(Update, attach::<M>.in_set(SmoothSystems::Attach))
        .add_systems(
            Update,
            interpolate::update::<M>.in_set(SmoothSystems::Update),
        );
        if let Some(add) = self.add_prediction {
            add(app);
        }
    }
}

/// New mirrored rows: predicted if chosen, interpolated otherwise; drawn as they are at once.
#[allow(clippy::type_complexity)] // a Bevy query
fn attach<M: Motion>(
    smoothing: Res<Smoothing<M>>,
    added: Query<(Entity, &Mirrored<M::Row>), Added<Mirrored<M::Row>>>,
    mut commands: Commands,
) {
    for (entity, row) in &added {
        let predicted = smoothing
            .predict
            .as_ref()
            .is_some_and(|choose| choose(&mut commands, entity, &row.0));
        if !predicted {
            commands
                .entity(entity)
                .insert(Interpolated::<M>::new(row.0.clone()));
        }
        commands.entity(entity).insert(Smoothed(row.0.clone()));
    }
}
