//! The audio example module: holds the Audio authority, plays a 440 Hz tone and logs the size
//! of every captured input block.
//!
//! The tone's phase is kept in a table, so consecutive blocks join without a click and the
//! inspector can show how many frames were played.

use interstice_sdk::*;

interstice_module!(visibility: Public, authorities: [Audio]);

/// The tone's frequency.
pub const FREQUENCY: f64 = 440.0;
/// Its loudness (full scale is 1).
pub const AMPLITUDE: f32 = 0.25;

/// The oscillator's state.
#[table]
pub struct Tone {
    #[primary_key]
    pub id: u32,
    /// Frequency in Hz (change it with `set_frequency`).
    pub frequency: f64,
    /// Frames played so far.
    pub frames: u64,
    /// Where in its cycle the tone is, in `0.0..1.0`.
    pub phase: f64,
}

/// Input blocks received so far and their sizes.
#[table]
pub struct Captured {
    #[primary_key]
    pub id: u32,
    pub blocks: u64,
    pub last_frames: u32,
}

fn tone(ctx: &ReducerContext) -> Tone {
    ctx.current.tables.tone().get(&0).unwrap_or(Tone {
        id: 0,
        frequency: FREQUENCY,
        frames: 0,
        phase: 0.0,
    })
}

fn save(ctx: &ReducerContext, t: Tone) -> Result<(), HostError> {
    let table = ctx.current.tables.tone();
    if table.get(&0).is_some() {
        table.update(t).map(drop)
    } else {
        table.insert(t).map(drop)
    }
}

/// Starts the tone at 440 Hz.
#[reducer(on = "init")]
fn init(ctx: ReducerContext) -> Result<(), HostError> {
    host_calls::log("audio: playing a 440 Hz tone");
    save(&ctx, tone(&ctx))
}

/// Changes the tone's pitch.
#[reducer]
fn set_frequency(ctx: ReducerContext, frequency: f64) -> Result<(), HostError> {
    if !(20.0..=20_000.0).contains(&frequency) {
        return Err(HostError::InvalidPayload(format!(
            "{frequency} Hz is outside 20..=20000"
        )));
    }
    let mut t = tone(&ctx);
    t.frequency = frequency;
    save(&ctx, t)
}

/// Fills the block the device asks for with the next stretch of the sine wave.
#[reducer(on = "audio_output")]
fn play(ctx: ReducerContext, request: audio::OutputRequest) -> Result<(), HostError> {
    let mut t = tone(&ctx);
    let channels = usize::from(request.channels.max(1));
    let step = t.frequency / f64::from(request.sample_rate.max(1));
    let mut samples = Vec::with_capacity(request.frames as usize * channels);
    let mut phase = t.phase;
    for _ in 0..request.frames {
        let value = (phase * core::f64::consts::TAU).sin() as f32 * AMPLITUDE;
        samples.extend(core::iter::repeat_n(value, channels));
        phase = (phase + step).fract();
    }
    audio::write(&samples)?;
    t.phase = phase;
    t.frames += u64::from(request.frames);
    save(&ctx, t)
}

/// Logs every captured block's size.
#[reducer(on = "audio_input")]
fn captured(ctx: ReducerContext, block: audio::InputBlock) -> Result<(), HostError> {
    let frames = block.samples.len() as u32 / u32::from(block.channels.max(1));
    host_calls::debug(&format!(
        "audio input: {frames} frames x {} channels at {} Hz",
        block.channels, block.sample_rate
    ));
    let table = ctx.current.tables.captured();
    let mut c = table.get(&0).unwrap_or(Captured {
        id: 0,
        blocks: 0,
        last_frames: 0,
    });
    c.blocks += 1;
    c.last_frames = frames;
    if table.get(&0).is_some() {
        table.update(c).map(drop)
    } else {
        table.insert(c).map(drop)
    }
}

/// Frames played so far.
#[query]
fn frames_played(ctx: QueryContext) -> u64 {
    ctx.current.tables.tone().get(&0).map_or(0, |t| t.frames)
}
