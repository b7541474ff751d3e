//! Interpolation: other players' rows shown a little in the past, between received versions.

use super::{Motion, Smoothed, Smoothing};
use crate::mirror::Mirrored;
use bevy::prelude::*;
use std::collections::VecDeque;
use std::time::Duration;

/// How far behind the authority rows are shown by default ([`SmoothTable::delay`]): a round
/// trip of 100 ms, with room for a frame or two of jitter.
///
/// [`SmoothTable::delay`]: super::SmoothTable::delay
pub const DEFAULT_DELAY: Duration = Duration::from_millis(100);

/// Versions kept per row (the newest ones): more than a second's worth at 60 updates a second.
pub const MAX_SAMPLES: usize = 64;

/// The fastest a row's playback runs while it catches up after a gap (and the slowest, its
/// inverse, while it is ahead): 1.5 × real time.
pub const CATCH_UP: f64 = 1.5;

/// A row further behind than this (a long outage) stops catching up and jumps to the present.
pub const SNAP_BEHIND: Duration = Duration::from_secs(1);

/// How far behind the playback must be to run at [`CATCH_UP`]; less runs proportionally
/// slower.
const CATCH_UP_WINDOW_MS: f64 = 200.0;

/// A version of the authority's clock further back than this restarts the row's timeline (the
/// authority's clock was reset).
const CLOCK_RESET_MS: f64 = 5_000.0;

/// How long the playhead waits at a row's newest version (for a late one) before the row is
/// taken to be at rest and the playhead goes on: longer than the outages loss recovery causes
/// at a round trip of 100 ms, short enough that a brief pause leaves little lag behind. A row
/// whose versions come further apart waits three of its intervals instead.
pub const REST_AFTER: Duration = Duration::from_millis(300);

/// How far back the authority's clock is estimated from: the smallest delay (local arrival
/// minus authority time) among the versions received in this window. A window, not all time:
/// a busy host's frame clock falls behind real time (Bevy caps a frame's time step), and an
/// estimate from long ago would leave the playhead ahead of every version.
pub const CLOCK_WINDOW: Duration = Duration::from_secs(1);

/// The longest glide to a version that arrives after the row went quiet (see
/// [`Interpolated::receive`]): a row that went far is given the time its speed needs, up to
/// this, then caught up like any gap.
const LATE_GLIDE_MS: f64 = 1_000.0;

/// A row shown between the versions received, [`SmoothTable::delay`] behind the authority.
///
/// [`SmoothTable::delay`]: super::SmoothTable::delay
#[derive(Component)]
pub struct Interpolated<M: Motion> {
    /// Versions by the authority's time (ms), oldest first.
    samples: VecDeque<(f64, M::Row)>,
    /// The moment shown, on the authority's clock.
    playhead: Option<f64>,
    /// Local time minus authority time, the smallest in [`CLOCK_WINDOW`]: the authority's
    /// clock as read here, plus the fastest one-way delay.
    offset: Option<f64>,
    /// The delays of the versions received in the last [`CLOCK_WINDOW`]: (local ms, delay).
    delays: VecDeque<(f64, f64)>,
    /// When (local ms) the last version arrived.
    last_arrival: Option<f64>,
    /// The usual time between two versions while the row moves (ms, a moving average).
    interval: Option<f64>,
    /// How fast the row has been seen to move lately ([`Motion::distance`] per ms).
    speed: Option<f64>,
    starved: u64,
    snaps: u64,
}

impl<M: Motion> Interpolated<M> {
    /// Starts with one version.
    pub fn new(row: M::Row) -> Self {
        let mut samples = VecDeque::new();
        // Without the authority's time, the first version received replaces it.
        let at = M::time_ms(&row).map_or(f64::NAN, |t| t as f64);
        samples.push_back((at, row));
        Interpolated {
            samples,
            playhead: None,
            offset: None,
            delays: VecDeque::new(),
            last_arrival: None,
            interval: None,
            speed: None,
            starved: 0,
            snaps: 0,
        }
    }

    /// Frames in which the newest version was already in the past, so the row stood still
    /// waiting (loss, or a delay shorter than the network's jitter).
    pub fn starved_frames(&self) -> u64 {
        self.starved
    }

    /// Times the row was so far behind that it jumped to the present ([`SNAP_BEHIND`]).
    pub fn snaps(&self) -> u64 {
        self.snaps
    }

    /// A version received at `local_ms`.
    fn receive(&mut self, local_ms: f64, row: M::Row) {
        let at = M::time_ms(&row).map_or(local_ms, |t| t as f64);
        let newest = self.samples.back().map(|(t, _)| *t).filter(|t| !t.is_nan());
        if let Some(newest) = newest {
            if at < newest - CLOCK_RESET_MS {
                // The authority's clock restarted: so does this row's timeline.
                self.samples.clear();
                self.playhead = None;
                self.offset = None;
            } else if at < newest {
                // Older than what is shown already: nothing to add.
                return;
            } else if at == newest {
                self.samples.pop_back();
            }
        } else {
            self.samples.clear();
        }
        let window = CLOCK_WINDOW.as_secs_f64() * 1000.0;
        while self
            .delays
            .front()
            .is_some_and(|(when, _)| local_ms - when > window)
            || self.delays.len() >= MAX_SAMPLES
        {
            self.delays.pop_front();
        }
        self.delays.push_back((local_ms, local_ms - at));
        self.last_arrival = Some(local_ms);
        self.offset = self.delays.iter().map(|(_, d)| *d).reduce(f64::min);
        if let Some(newest) = newest
            && at > newest
            && at - newest < 1_000.0
        {
            let gap = at - newest;
            self.interval = Some(self.interval.map_or(gap, |i| i * 0.8 + gap * 0.2));
        }
        if let (Some(playhead), Some((newest, held))) = (self.playhead, self.samples.back())
            && playhead > *newest
        {
            // The row went quiet, was taken to be at rest, and the playhead went on past its
            // newest version (showing it). Rest and lost versions look alike from here; how
            // far the row went tells them apart: it glides to this version no faster than it
            // has been seen to move. After a pause one step is near, and it moves on from where
            // it stands now (not a pause late); after lost versions it is far, and the playhead
            // goes back (invisibly: the row looks the same) to give it the time it needs, then
            // catches up. Before any speed has been seen (the row's first move, after a busy
            // authority's quiet spell), it is taken to have moved evenly from its newest
            // version to this one. Without a distance, a version already in the past is played
            // from the newest one, and a fresh one from the playhead.
            let (newest, held) = (*newest, held.clone());
            let distance = M::distance(&held, &row);
            let travel = match (distance, self.speed) {
                (Some(distance), Some(speed)) if speed > 0.0 => {
                    (f64::from(distance) / speed).min(LATE_GLIDE_MS)
                }
                (Some(distance), _) if distance > 0.0 => (at - newest).min(LATE_GLIDE_MS),
                _ if at <= playhead => at - newest,
                _ => 0.0,
            };
            let start = (at - travel).clamp(newest, playhead);
            if start > newest {
                self.samples.push_back((start, held));
            }
            self.playhead = Some(start);
        } else if let Some((newest, previous)) = self.samples.back()
            && at > *newest
            && let Some(distance) = M::distance(previous, &row)
        {
            // The row's recent top speed, per millisecond of the authority's clock.
            let speed = f64::from(distance) / (at - newest);
            self.speed = Some(self.speed.map_or(speed, |s| speed.max(s * 0.95)));
        }
        self.samples.push_back((at, row));
        while self.samples.len() > MAX_SAMPLES {
            self.samples.pop_front();
        }
    }

    /// Moves the playhead by `dt_ms` of real time toward `delay_ms` behind the authority, and
    /// returns the row as it was there.
    fn advance(&mut self, local_ms: f64, dt_ms: f64, delay_ms: f64) -> M::Row {
        let (Some(offset), Some(&(newest, _))) = (self.offset, self.samples.back()) else {
            return self.newest();
        };
        let target = local_ms - offset - delay_ms;
        let mut playhead = match self.playhead {
            // From the version shown so far (no jump), catching up from there.
            None => match self.samples.front() {
                Some((shown, _)) if !shown.is_nan() => target.min(*shown),
                _ => target,
            },
            Some(at) => {
                let behind = target - at;
                if behind > SNAP_BEHIND.as_secs_f64() * 1000.0 {
                    self.snaps += 1;
                    target
                } else {
                    let rate = (1.0 + behind / CATCH_UP_WINDOW_MS).clamp(1.0 / CATCH_UP, CATCH_UP);
                    at + dt_ms * rate
                }
            }
        };
        if playhead > newest {
            // No newer version yet: a late one (wait for it, then catch up), or none because the
            // row is at rest. Once nothing at all has arrived for REST_AFTER (or three of the
            // row's usual intervals), the row is taken to be at rest and the playhead goes on
            // to its target (what it shows stays the newest version).
            let rest_after =
                (REST_AFTER.as_secs_f64() * 1000.0).max(3.0 * self.interval.unwrap_or(0.0));
            let quiet = self.last_arrival.map_or(0.0, |at| local_ms - at);
            if quiet <= rest_after {
                if self.playhead.is_some() {
                    self.starved += 1;
                }
                playhead = newest;
            } else {
                // At rest the row looks the same at any moment: the playhead may as well be
                // where it should, so the next move starts on time.
                playhead = playhead.max(target);
            }
        }
        self.playhead = Some(playhead);
        // Keep one version at or before the playhead; older ones are done with.
        while self.samples.len() > 1 && self.samples[1].0 <= playhead {
            self.samples.pop_front();
        }
        match (self.samples.front(), self.samples.get(1)) {
            (Some((t0, a)), Some((t1, b))) if playhead > *t0 && t1 > t0 => {
                M::blend(a, b, ((playhead - t0) / (t1 - t0)) as f32)
            }
            (Some((_, a)), _) => a.clone(),
            (None, _) => unreachable!("a row always has a version"),
        }
    }

    fn newest(&self) -> M::Row {
        match self.samples.back() {
            Some((_, row)) => row.clone(),
            None => unreachable!("a row always has a version"),
        }
    }
}

/// Feeds new versions in and sets every interpolated row's [`Smoothed`] for this frame.
#[allow(clippy::type_complexity)] // a Bevy query
pub(super) fn update<M: Motion>(
    smoothing: Res<Smoothing<M>>,
    time: Res<Time<Real>>,
    mut rows: Query<(
        Ref<Mirrored<M::Row>>,
        &mut Interpolated<M>,
        &mut Smoothed<M::Row>,
    )>,
) {
    let local_ms = time.elapsed().as_secs_f64() * 1000.0;
    let dt_ms = time.delta().as_secs_f64() * 1000.0;
    let delay_ms = smoothing.delay.as_secs_f64() * 1000.0;
    for (row, mut interpolated, mut shown) in &mut rows {
        if row.is_changed() {
            interpolated.receive(local_ms, row.0.clone());
        }
        let now = interpolated.advance(local_ms, dt_ms, delay_ms);
        if shown.0 != now {
            shown.0 = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use interstice_abi::IntersticeType;

    /// A position on a line, stamped with the authority's time.
    #[derive(Debug, Clone, PartialEq)]
    struct Dot {
        x: f32,
        at: u64,
    }

    impl IntersticeType for Dot {
        fn value_type() -> interstice_abi::ValueType {
            interstice_abi::ValueType::Unit
        }
        fn encode(&self, _out: &mut Vec<u8>) {}
        fn decode(_: &mut interstice_abi::Reader<'_>) -> Result<Self, interstice_abi::DecodeError> {
            Err(interstice_abi::DecodeError::UnexpectedEnd)
        }
    }

    struct Line;
    impl Motion for Line {
        type Row = Dot;
        fn blend(from: &Dot, to: &Dot, t: f32) -> Dot {
            Dot {
                x: from.x + (to.x - from.x) * t,
                at: to.at,
            }
        }
        fn time_ms(row: &Dot) -> Option<u64> {
            Some(row.at)
        }
        fn distance(from: &Dot, to: &Dot) -> Option<f32> {
            Some((to.x - from.x).abs())
        }
    }

    /// The dot moves 1 unit per ms of authority time; versions every 16 ms arrive 50 ms later
    /// (±jitter), some lost. Returns the largest step between two frames 16 ms apart.
    fn largest_step(lose_every: u64, burst_loss: std::ops::Range<u64>) -> (f32, u64) {
        largest_step_every(16, lose_every, burst_loss, |real| real)
    }

    /// The same with versions every `every` ms, stamped by an authority whose clock reads
    /// `clock(real ms)`.
    fn largest_step_every(
        every: u64,
        lose_every: u64,
        burst_loss: std::ops::Range<u64>,
        clock: impl Fn(u64) -> u64,
    ) -> (f32, u64) {
        let mut row = Interpolated::<Line>::new(Dot { x: 0.0, at: 0 });
        let mut shown = 0.0f32;
        let mut largest = 0.0f32;
        let mut arrivals: Vec<(f64, Dot)> = (1..4_000 / every)
            .filter(|i| i % lose_every != 0 && !burst_loss.contains(i))
            .map(|i| {
                let real = i * every;
                let at = clock(real);
                // Deterministic jitter of up to 30 ms.
                let jitter = ((i * 7919) % 31) as f64;
                (real as f64 + 50.0 + jitter, Dot { x: real as f32, at })
            })
            .collect();
        arrivals.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut next = 0;
        for frame in 1..250u64 {
            let local = frame as f64 * 16.0;
            while next < arrivals.len() && arrivals[next].0 <= local {
                row.receive(local, arrivals[next].1.clone());
                next += 1;
            }
            let now = row.advance(local, 16.0, 100.0).x;
            if frame > 20 {
                largest = largest.max((now - shown).abs());
            }
            shown = now;
        }
        (largest, row.snaps())
    }

    #[test]
    fn the_authoritys_clock_is_read_from_recent_versions() {
        // A host busy starting up: its clock ran at half speed, so its first versions look
        // 500 ms fresher than the later ones. Once they are a window old, the estimate
        // follows the later ones (the playhead would otherwise stay ahead of every version).
        let mut row = Interpolated::<Line>::new(Dot { x: 0.0, at: 0 });
        for real in (16..=1_000u64).step_by(16) {
            row.receive(
                (real + 50) as f64,
                Dot {
                    x: 0.0,
                    at: real / 2,
                },
            );
        }
        for real in (1_016..=3_000u64).step_by(16) {
            row.receive(
                (real + 50) as f64,
                Dot {
                    x: 0.0,
                    at: real - 500,
                },
            );
        }
        assert_eq!(row.offset, Some(550.0));
    }

    #[test]
    fn a_row_that_rests_and_moves_again_is_not_a_pause_behind() {
        // Moves 1 unit per ms for 500 ms, rests 600 ms, moves again; versions every 16 ms
        // while moving (none while at rest), each arriving 50 ms later.
        let mut row = Interpolated::<Line>::new(Dot { x: 0.0, at: 0 });
        let position = |t: u64| -> f32 {
            match t {
                0..=500 => t as f32,
                501..=1100 => 500.0,
                _ => 500.0 + (t - 1100) as f32,
            }
        };
        let versions: Vec<u64> = (0..=500)
            .step_by(16)
            .chain((1116..=2000).step_by(16))
            .collect();
        let mut next = 0;
        let mut worst_lag = 0.0f32;
        for frame in 1..140u64 {
            let local = frame as f64 * 16.0;
            while next < versions.len() && (versions[next] + 50) as f64 <= local {
                let at = versions[next];
                row.receive(
                    local,
                    Dot {
                        x: position(at),
                        at,
                    },
                );
                next += 1;
            }
            let shown = row.advance(local, 16.0, 100.0).x;
            // 300 ms after moving again, the row is where the authority had it about
            // delay + one-way delay ago (150 ms), give or take a frame.
            if (1400..2000).contains(&(local as u64)) {
                let expected = position(local as u64 - 150);
                worst_lag = worst_lag.max((expected - shown).abs());
            }
        }
        assert!(
            worst_lag <= 34.0,
            "{worst_lag} units behind after the pause"
        );
    }

    #[test]
    fn a_row_whose_first_move_comes_after_a_quiet_spell_glides_there() {
        // A host busy starting up: its player's first version (x = 0, at 0 ms), then nothing
        // for 400 ms — longer than REST_AFTER, so the row is taken to be at rest — then the
        // player turns up 60 units away and moves on at 0.15 units per ms, a version every
        // 16 ms, each arriving 50 ms after it was written. No speed has been seen yet: the
        // first move must still glide (no faster than CATCH_UP × its speed), not jump.
        let mut row = Interpolated::<Line>::new(Dot { x: 0.0, at: 0 });
        let versions: Vec<u64> = std::iter::once(0)
            .chain((400..=2_000).step_by(16))
            .collect();
        let (mut next, mut shown, mut largest) = (0, 0.0f32, 0.0f32);
        for frame in 1..160u64 {
            let local = frame as f64 * 16.0;
            while next < versions.len() && (versions[next] + 50) as f64 <= local {
                let at = versions[next];
                row.receive(
                    local,
                    Dot {
                        x: at as f32 * 0.15,
                        at,
                    },
                );
                next += 1;
            }
            let now = row.advance(local, 16.0, 100.0).x;
            largest = largest.max((now - shown).abs());
            shown = now;
        }
        let allowed = 0.15 * 16.0 * CATCH_UP as f32 + 0.1;
        assert!(
            largest <= allowed,
            "a frame moved {largest} units (allowed {allowed})"
        );
        assert_eq!(row.snaps(), 0);
    }

    #[test]
    fn jitter_under_the_delay_never_shows_and_a_gap_is_caught_up_without_a_jump() {
        // Jitter only: the dot moves exactly its speed per frame.
        let (steady, snaps) = largest_step(u64::MAX, 0..0);
        assert!(steady <= 16.5, "a frame moved {steady} units");
        assert_eq!(snaps, 0);
        // Every 20th version lost, and a 250 ms outage: never faster than CATCH_UP × speed.
        let (lossy, snaps) = largest_step(20, 60..76);
        assert!(
            lossy <= 16.0 * CATCH_UP as f32 + 0.5,
            "a frame moved {lossy} units"
        );
        assert_eq!(snaps, 0);
        // An outage longer than REST_AFTER: taken for rest, then found late; still no jump.
        let (outage, snaps) = largest_step(u64::MAX, 100..131);
        assert!(
            outage <= 16.0 * CATCH_UP as f32 + 0.5,
            "a frame moved {outage} units"
        );
        assert_eq!(snaps, 0);
        // A slow authority (a version every 300 ms, every 5th lost) is not taken to be at
        // rest between its versions.
        let (slow, snaps) = largest_step_every(300, 5, 0..0, |real| real);
        assert!(
            slow <= 16.0 * CATCH_UP as f32 + 0.5,
            "a frame moved {slow} units"
        );
        assert_eq!(snaps, 0);
    }
}
