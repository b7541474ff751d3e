//! Prediction: this game's own rows, moved by its inputs at once and reconciled with the
//! authority's versions as they arrive.

use super::{Prediction, SmoothSystems, Smoothed};
use crate::mirror::Mirrored;
use bevy::prelude::*;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long a misprediction takes to be corrected on screen: the row slides from where it
/// was shown to where it should be over this time, instead of jumping.
pub const CORRECTION: Duration = Duration::from_millis(100);

/// Inputs kept waiting for the authority at once; older ones are given up (and counted in
/// [`PredictionStats::expired`]).
pub const MAX_PENDING_INPUTS: usize = 256;

/// How long an input may wait for the authority to apply it before it is given up (its call
/// was refused or lost): the prediction then stops counting on it.
pub const PENDING_TIMEOUT: Duration = Duration::from_secs(2);

/// What a prediction did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PredictionStats {
    /// Inputs given to [`Predicted::input`].
    pub inputs: u64,
    /// Inputs the authority confirmed having applied.
    pub confirmed: u64,
    /// Inputs given up ([`PENDING_TIMEOUT`], [`MAX_PENDING_INPUTS`]).
    pub expired: u64,
    /// Authority versions that disagreed with the prediction (after replaying the inputs it
    /// had not applied yet).
    pub mispredictions: u64,
    /// The largest disagreement, as [`Prediction::error`] measures it.
    pub largest_error: f32,
}

/// One of this game's own rows, predicted: the authority's latest version with every input it
/// has not applied yet applied on top.
#[derive(Component)]
pub struct Predicted<M: Prediction> {
    authoritative: M::Row,
    predicted: M::Row,
    shown: M::Row,
    /// Inputs not applied by the authority yet: number, when given, input.
    pending: VecDeque<(u64, Instant, M::Input)>,
    next: u64,
    /// A correction in progress: where the row was shown when it began, and for how long it
    /// has run.
    correction: Option<(M::Row, Duration)>,
    stats: PredictionStats,
}

impl<M: Prediction> Predicted<M> {
    /// Starts from the authority's `row`; input numbers continue after the last it applied
    /// (so a game restarted mid-play does not reuse numbers).
    pub fn new(row: M::Row) -> Self {
        Predicted {
            next: M::applied(&row).saturating_add(1),
            authoritative: row.clone(),
            predicted: row.clone(),
            shown: row,
            pending: VecDeque::new(),
            correction: None,
            stats: PredictionStats::default(),
        }
    }

    /// Applies `input` at once and returns its number: send it with the reducer call, which
    /// must store the number of the last input applied in the row
    /// ([`Prediction::applied`]).
    pub fn input(&mut self, input: M::Input) -> u64 {
        let number = self.next;
        // The authority sets where numbering resumes: never past the last number.
        self.next = self.next.saturating_add(1);
        M::apply(&mut self.predicted, &input);
        self.pending.push_back((number, Instant::now(), input));
        if self.pending.len() > MAX_PENDING_INPUTS {
            self.pending.pop_front();
            self.stats.expired += 1;
        }
        self.stats.inputs += 1;
        self.shown = self.showing();
        number
    }

    /// The authority's latest version.
    pub fn authoritative(&self) -> &M::Row {
        &self.authoritative
    }

    /// The prediction: the authority's version with the pending inputs applied.
    pub fn predicted(&self) -> &M::Row {
        &self.predicted
    }

    /// What to draw now (the prediction, or a correction on its way to it).
    pub fn shown(&self) -> &M::Row {
        &self.shown
    }

    /// Inputs the authority has not applied yet.
    pub fn pending_inputs(&self) -> usize {
        self.pending.len()
    }

    /// What the prediction did so far.
    pub fn stats(&self) -> PredictionStats {
        self.stats
    }

    /// A new version from the authority: drops the inputs it applied, gives up those waiting
    /// too long, replays the rest on top of it, and starts a correction if the result is not
    /// what was predicted.
    fn reconcile(&mut self, row: M::Row, now: Instant) {
        let applied = M::applied(&row);
        let waiting = self.pending.len();
        self.pending.retain(|(number, _, _)| *number > applied);
        self.stats.confirmed += (waiting - self.pending.len()) as u64;
        while self
            .pending
            .front()
            .is_some_and(|(_, given, _)| now.duration_since(*given) > PENDING_TIMEOUT)
        {
            self.pending.pop_front();
            self.stats.expired += 1;
        }
        self.next = self.next.max(applied.saturating_add(1));
        let mut replayed = row.clone();
        for (_, _, input) in &self.pending {
            M::apply(&mut replayed, input);
        }
        let error = M::error(&self.predicted, &replayed);
        if error > 0.0 {
            self.stats.mispredictions += 1;
            self.stats.largest_error = self.stats.largest_error.max(error);
            self.correction = Some((self.shown.clone(), Duration::ZERO));
        }
        self.authoritative = row;
        self.predicted = replayed;
        self.shown = self.showing();
    }

    /// Moves a correction on by `dt`.
    fn tick(&mut self, dt: Duration) {
        if let Some((_, elapsed)) = &mut self.correction {
            *elapsed += dt;
            if *elapsed >= CORRECTION {
                self.correction = None;
            }
        }
        self.shown = self.showing();
    }

    fn showing(&self) -> M::Row {
        match &self.correction {
            Some((from, elapsed)) => M::blend(
                from,
                &self.predicted,
                (elapsed.as_secs_f32() / CORRECTION.as_secs_f32()).min(1.0),
            ),
            None => self.predicted.clone(),
        }
    }
}

pub(super) fn add<M: Prediction>(app: &mut App) {
    app.add_systems(Update, reconcile::<M>.in_set(SmoothSystems::Update));
}

/// Reconciles predicted rows with the versions mirrored this frame, and sets their
/// [`Smoothed`].
#[allow(clippy::type_complexity)] // a Bevy query
fn reconcile<M: Prediction>(
    time: Res<Time<Real>>,
    mut rows: Query<(
        Ref<Mirrored<M::Row>>,
        &mut Predicted<M>,
        &mut Smoothed<M::Row>,
    )>,
) {
    let now = Instant::now();
    for (row, mut predicted, mut shown) in &mut rows {
        if row.is_changed() && !row.is_added() {
            predicted.reconcile(row.0.clone(), now);
        }
        predicted.tick(time.delta());
        if shown.0 != predicted.shown {
            shown.0 = predicted.shown.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Motion;
    use super::*;
    use interstice_abi::IntersticeType;

    /// A counter moved by inputs; the authority stamps the last input it applied.
    #[derive(Debug, Clone, PartialEq)]
    struct Counter {
        x: f32,
        applied: u64,
        wall: f32,
    }

    impl IntersticeType for Counter {
        fn value_type() -> interstice_abi::ValueType {
            interstice_abi::ValueType::Unit
        }
        fn encode(&self, _out: &mut Vec<u8>) {}
        fn decode(_: &mut interstice_abi::Reader<'_>) -> Result<Self, interstice_abi::DecodeError> {
            Err(interstice_abi::DecodeError::UnexpectedEnd)
        }
    }

    struct Steps;
    impl Motion for Steps {
        type Row = Counter;
        fn blend(from: &Counter, to: &Counter, t: f32) -> Counter {
            Counter {
                x: from.x + (to.x - from.x) * t,
                ..to.clone()
            }
        }
    }
    impl Prediction for Steps {
        type Input = f32;
        fn apply(row: &mut Counter, dx: &f32) {
            row.x = (row.x + dx).min(row.wall);
        }
        fn applied(row: &Counter) -> u64 {
            row.applied
        }
        fn error(predicted: &Counter, actual: &Counter) -> f32 {
            (predicted.x - actual.x).abs()
        }
    }

    /// The authority: applies inputs in order, stamping each.
    fn authority(row: &mut Counter, number: u64, dx: f32) {
        Steps::apply(row, &dx);
        row.applied = number;
    }

    #[test]
    fn inputs_show_at_once_and_late_versions_replay_the_rest() {
        let start = Counter {
            x: 0.0,
            applied: 0,
            wall: 100.0,
        };
        let mut own = Predicted::<Steps>::new(start.clone());
        let mut host = start;
        let numbers: Vec<u64> = (0..5).map(|_| own.input(10.0)).collect();
        assert_eq!(numbers, [1, 2, 3, 4, 5]);
        assert_eq!(own.shown().x, 50.0, "inputs show before any answer");
        // The authority has applied two of them when its version arrives.
        authority(&mut host, 1, 10.0);
        authority(&mut host, 2, 10.0);
        own.reconcile(host.clone(), Instant::now());
        assert_eq!(
            own.shown().x,
            50.0,
            "the three pending are replayed: no snap back"
        );
        assert_eq!(own.pending_inputs(), 3);
        assert_eq!(own.stats().mispredictions, 0);
        for n in 3..=5 {
            authority(&mut host, n, 10.0);
        }
        own.reconcile(host.clone(), Instant::now());
        assert_eq!(own.pending_inputs(), 0);
        assert_eq!(own.stats().confirmed, 5);
        assert_eq!(own.shown(), &host);
    }

    #[test]
    fn a_misprediction_is_corrected_over_time_not_at_once() {
        let start = Counter {
            x: 0.0,
            applied: 0,
            wall: 100.0,
        };
        let mut own = Predicted::<Steps>::new(start.clone());
        own.input(40.0);
        // The authority put a wall at 10 the game did not know of.
        let mut host = Counter {
            wall: 10.0,
            ..start
        };
        authority(&mut host, 1, 40.0);
        own.reconcile(host.clone(), Instant::now());
        assert_eq!(own.stats().mispredictions, 1);
        assert_eq!(own.predicted().x, 10.0);
        assert_eq!(own.shown().x, 40.0, "no jump at the moment of correction");
        own.tick(CORRECTION / 2);
        assert!((own.shown().x - 25.0).abs() < 0.01, "{}", own.shown().x);
        own.tick(CORRECTION);
        assert_eq!(own.shown().x, 10.0);
    }

    #[test]
    fn inputs_the_authority_never_applies_are_given_up() {
        let start = Counter {
            x: 0.0,
            applied: 0,
            wall: 100.0,
        };
        let mut own = Predicted::<Steps>::new(start.clone());
        own.input(5.0);
        let later = Instant::now() + PENDING_TIMEOUT + Duration::from_millis(1);
        own.reconcile(start.clone(), later);
        assert_eq!(own.pending_inputs(), 0);
        assert_eq!(own.stats().expired, 1);
        // Numbers never go back, even under a version that applied none of them.
        assert_eq!(own.input(1.0), 2);
    }
}
