//! Host calls of the presenting authorities: `gpu_submit` (Gpu), `audio_write` (Audio) and
//! `input_state` (Input).
//!
//! What a reducer draws or plays waits in its transaction, like its table writes: it reaches
//! [`Presented`] only when the call commits, so a failed render leaves the previous frame on
//! screen and a failed audio block plays nothing. The engine knows nothing of Bevy: the
//! plugins take what was presented ([`Modules::take_draw_list`](crate::Modules::take_draw_list),
//! [`Modules::take_audio`](crate::Modules::take_audio)) and give it to the renderer and the
//! audio device.

use super::host_calls::{guest_bytes, memory_and_state, trap};
use super::state::HostState;
use interstice_abi::draw::{DrawCommand, MAX_COMMANDS_PER_FRAME};
use interstice_abi::{Authority, HostError};
use std::sync::Arc;
use wasmtime::Caller;

/// Most samples one transaction may queue (10 s of stereo at 48 kHz).
pub const MAX_PENDING_SAMPLES: usize = 48_000 * 2 * 10;

/// What a call queued for the presenting authorities, kept until it commits.
#[derive(Debug, Default)]
pub struct PendingOutput {
    /// Draw commands (`Some` once the call submitted any, even an empty batch).
    pub draw: Option<Vec<DrawCommand>>,
    /// Interleaved output samples.
    pub samples: Vec<f32>,
}

/// What committed calls presented, waiting for the plugins to take it.
#[derive(Debug, Default)]
pub struct Presented {
    /// The draw list of the last committed call that drew, by module.
    pub draw: Option<(Arc<str>, Vec<DrawCommand>)>,
    /// Samples committed since the plugin last took them, by module.
    pub samples: Vec<f32>,
}

impl Presented {
    /// Moves a committed call's output in: its draw list replaces the previous one, its
    /// samples are appended.
    pub fn commit(&mut self, module: &Arc<str>, pending: &mut PendingOutput) {
        if let Some(draw) = pending.draw.take() {
            self.draw = Some((module.clone(), draw));
        }
        self.samples.append(&mut pending.samples);
    }
}

fn holds(state: &HostState, authority: Authority) -> bool {
    state
        .schema
        .as_ref()
        .is_some_and(|s| s.authorities.contains(&authority))
}

/// Checks that a presenting call comes from the holder's own reducer.
fn check_caller(state: &HostState, authority: Authority, what: &str) -> Result<(), HostError> {
    if !holds(state, authority) {
        return Err(HostError::NotPermitted(format!(
            "{what} is only for the module holding the {authority} authority"
        )));
    }
    if state.tx.read_only {
        return Err(HostError::ReadOnly);
    }
    if state.caller.is_some() {
        return Err(HostError::NotPermitted(format!(
            "{what} happens in the module a transaction started in, not in modules it calls"
        )));
    }
    Ok(())
}

fn submit(state: &mut HostState, mut bytes: &[u8]) -> Result<(), HostError> {
    check_caller(state, Authority::Gpu, "drawing")?;
    let list = state.effects.output.draw.get_or_insert_with(Vec::new);
    while !bytes.is_empty() {
        if list.len() >= MAX_COMMANDS_PER_FRAME {
            return Err(HostError::InvalidPayload(format!(
                "a frame may hold at most {MAX_COMMANDS_PER_FRAME} draw commands"
            )));
        }
        let (command, rest) = postcard::take_from_bytes::<DrawCommand>(bytes)
            .map_err(|e| HostError::InvalidPayload(format!("draw command: {e}")))?;
        command
            .check()
            .map_err(|e| HostError::InvalidPayload(format!("draw command: {e}")))?;
        list.push(command);
        bytes = rest;
    }
    Ok(())
}

fn write_samples(state: &mut HostState, bytes: &[u8]) -> Result<(), HostError> {
    check_caller(state, Authority::Audio, "playing audio")?;
    if !bytes.len().is_multiple_of(4) {
        return Err(HostError::InvalidPayload(
            "samples are 4-byte little-endian f32".into(),
        ));
    }
    if state.effects.output.samples.len() + bytes.len() / 4 > MAX_PENDING_SAMPLES {
        return Err(HostError::InvalidPayload(format!(
            "a transaction may queue at most {MAX_PENDING_SAMPLES} samples"
        )));
    }
    state.effects.output.samples.extend(
        bytes
            .as_chunks::<4>()
            .0
            .iter()
            .map(|c| f32::from_le_bytes(*c))
            // Nothing louder than full scale, and no NaN, reaches the device.
            .map(|s| {
                if s.is_finite() {
                    s.clamp(-1.0, 1.0)
                } else {
                    0.0
                }
            }),
    );
    Ok(())
}

/// Leaves `outcome` as the response and answers like `table_op`.
fn answer(state: &mut HostState, outcome: Result<(), HostError>) -> wasmtime::Result<i64> {
    state.response.clear();
    Ok(match outcome {
        Ok(()) => state.response.len() as i64,
        Err(error) => {
            state.response = postcard::to_allocvec(&error)
                .map_err(|e| trap(format!("cannot encode host error: {e}")))?;
            -(state.response.len() as i64) - 1
        }
    })
}

/// Runs a presenting host call on the guest's payload, inside a call only.
fn with_payload(
    caller: &mut Caller<'_, HostState>,
    ptr: u32,
    len: u32,
    what: &str,
    run: fn(&mut HostState, &[u8]) -> Result<(), HostError>,
) -> wasmtime::Result<i64> {
    let (memory, state) = memory_and_state(caller)?;
    if !state.in_call {
        return Err(trap(format!("{what} is only allowed inside a reducer")));
    }
    let outcome = run(state, guest_bytes(memory, ptr, len)?);
    answer(state, outcome)
}

/// The `gpu_submit` host function.
pub(crate) fn gpu_submit(
    caller: &mut Caller<'_, HostState>,
    ptr: u32,
    len: u32,
) -> wasmtime::Result<i64> {
    with_payload(caller, ptr, len, "drawing", submit)
}

/// The `audio_write` host function.
pub(crate) fn audio_write(
    caller: &mut Caller<'_, HostState>,
    ptr: u32,
    len: u32,
) -> wasmtime::Result<i64> {
    with_payload(caller, ptr, len, "audio", write_samples)
}

/// The `input_state` host function.
pub(crate) fn input_state(mut caller: Caller<'_, HostState>) -> wasmtime::Result<i64> {
    let state = caller.data_mut();
    if !state.in_call {
        return Err(trap(
            "input state is only available inside a reducer or query",
        ));
    }
    if !holds(state, Authority::Input) {
        let refused = Err(HostError::NotPermitted(
            "input state is only for the module holding the Input authority".into(),
        ));
        return answer(state, refused);
    }
    state.response.clear();
    let input = state.input.clone();
    state.response.extend_from_slice(&input);
    Ok(state.response.len() as i64)
}
