//! Sound, for the module holding the Audio authority (`interstice_module!(authorities:
//! [Audio])`).
//!
//! The node keeps a short buffer ahead of the output device. When it runs low, the module's
//! `#[reducer(on = "audio_output")]` reducers receive an [`OutputRequest`] and answer with
//! [`write()`]: `frames × channels` interleaved samples in `-1.0..=1.0`. Captured input arrives at
//! `#[reducer(on = "audio_input")]` reducers as [`InputBlock`]s.
//!
//! ```ignore
//! #[reducer(on = "audio_output")]
//! fn play(ctx: ReducerContext, request: audio::OutputRequest) {
//!     let samples = vec![0.0; (request.frames * u32::from(request.channels)) as usize];
//!     audio::write(&samples).expect("audio");
//! }
//! ```
//!
//! Samples are played only if the reducer commits. With no audio device the node still asks
//! for samples at the device's pace (a clocked null sink), so modules behave the same.

use crate::ffi;
use interstice_abi::HostError;

/// The output device wants more sound.
#[crate::interstice_type]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutputRequest {
    /// How many frames (one sample per channel each) to write.
    pub frames: u32,
    /// Channels per frame (samples are interleaved).
    pub channels: u16,
    /// Frames per second.
    pub sample_rate: u32,
}

/// A block captured from the input device.
#[crate::interstice_type]
#[derive(Debug, Clone, PartialEq)]
pub struct InputBlock {
    /// Channels per frame.
    pub channels: u16,
    /// Frames per second.
    pub sample_rate: u32,
    /// Interleaved samples in `-1.0..=1.0`.
    pub samples: Vec<f32>,
}

/// Queues interleaved samples for the output device (played when the reducer commits).
pub fn write(samples: &[f32]) -> Result<(), HostError> {
    let mut bytes = Vec::with_capacity(samples.len() * 4);
    for sample in samples {
        bytes.extend_from_slice(&sample.to_le_bytes());
    }
    // SAFETY: pointer and length of a live buffer.
    let outcome = unsafe { ffi::audio_write(bytes.as_ptr(), bytes.len()) };
    crate::__private::outcome(outcome).map(drop)
}
