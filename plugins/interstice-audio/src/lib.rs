//! The Audio authority on cpal.
//!
//! [`IntersticeAudioPlugin`] opens the default output device (and input device, if any) with
//! cpal. It keeps a short buffer ([`IntersticeAudioPlugin::lead_ms`]) of samples ahead of the
//! device: whenever the buffer runs low, the module holding the Audio authority gets an
//! `audio_output` event asking for the missing frames, and what its reducer writes (and
//! commits) goes into the buffer. Captured input is delivered as `audio_input` events.
//!
//! With no output device (a headless machine, CI) the plugin warns once and plays into a
//! clocked null sink: a thread that consumes samples at the device's rate, so the module is
//! asked for sound at the same pace and behaves the same.

mod device;

use bevy::prelude::*;
pub use device::{AudioOutput, Shared};
use interstice::abi::{Authority, EventSpec, ModuleSchema, Value, ValueType};
use interstice::{IntersticeSystems, Modules, ReducerQueue};
use std::sync::Arc;

/// Plays what the Audio holder writes and delivers what the input device captures.
#[derive(Debug, Clone)]
pub struct IntersticeAudioPlugin {
    /// How far ahead of the device the buffer is kept, in milliseconds: more survives slower
    /// frames, less answers faster.
    pub lead_ms: u32,
    /// Open the default input device and deliver `audio_input` events.
    pub capture: bool,
    /// Skip the devices and use the clocked null sink (for tests and servers).
    pub null_sink: bool,
}

impl Default for IntersticeAudioPlugin {
    fn default() -> Self {
        IntersticeAudioPlugin {
            lead_ms: 100,
            capture: true,
            null_sink: false,
        }
    }
}

/// Counters of the output side, for the inspector and tests.
#[derive(Resource, Debug, Clone, Default)]
pub struct AudioStats {
    /// The output device's name (`null sink` without one).
    pub device: String,
    /// Frames per second.
    pub sample_rate: u32,
    /// Channels per frame.
    pub channels: u16,
    /// Frames the module was asked for.
    pub requested_frames: u64,
    /// Frames the device played from the module.
    pub played_frames: u64,
    /// Frames the device needed while the buffer was empty (played as silence).
    pub underrun_frames: u64,
    /// Captured input blocks delivered.
    pub input_blocks: u64,
}

impl Plugin for IntersticeAudioPlugin {
    fn build(&self, app: &mut App) {
        let output = device::open(self);
        app.insert_resource(AudioStats {
            device: output.device.clone(),
            sample_rate: output.sample_rate,
            channels: output.channels,
            ..default()
        })
        .insert_resource(output)
        .add_systems(Update, request_samples.in_set(IntersticeSystems::Ingest))
        .add_systems(Update, play_samples.in_set(IntersticeSystems::Publish));
    }
}

/// The holder's reducers for `audio_output` and `audio_input`, recomputed when the holder
/// changes.
#[derive(Default)]
struct Targets {
    schema: Option<Arc<ModuleSchema>>,
    holder: String,
    output: Vec<String>,
    input: Vec<String>,
}

impl Targets {
    fn refresh(&mut self, modules: &Modules) -> bool {
        let Some(holder) = modules.authorities().get(&Authority::Audio) else {
            self.schema = None;
            return false;
        };
        let Some(schema) = modules.schema(holder) else {
            return false;
        };
        if self.schema.as_ref().is_none_or(|s| !Arc::ptr_eq(s, schema)) {
            let on = |event: &str| {
                let event = EventSpec::Host(event.into());
                schema
                    .reducers
                    .iter()
                    .filter(|r| r.on.as_ref() == Some(&event))
                    .map(|r| r.name.clone())
                    .collect()
            };
            *self = Targets {
                schema: Some(schema.clone()),
                holder: holder.clone(),
                output: on("audio_output"),
                input: on("audio_input"),
            };
        }
        true
    }
}

/// Encodes an `OutputRequest { frames: u32, channels: u16, sample_rate: u32 }` (a struct's
/// encoding is its fields' one after another).
fn output_request(frames: u32, channels: u16, sample_rate: u32) -> Vec<u8> {
    let mut args = Vec::with_capacity(12);
    let types = interstice::abi::TypeSet::default();
    for (value, ty) in [
        (Value::U32(frames), ValueType::U32),
        (Value::U16(channels), ValueType::U16),
        (Value::U32(sample_rate), ValueType::U32),
    ] {
        // Plain integers always encode.
        let _ = interstice::abi::codec::encode_value(&value, &ty, &types, &mut args);
    }
    args
}

/// Encodes an `InputBlock { channels: u16, sample_rate: u32, samples: Vec<f32> }`.
fn input_block(channels: u16, sample_rate: u32, samples: &[f32]) -> Vec<u8> {
    let mut args = Vec::with_capacity(samples.len() * 4 + 16);
    let types = interstice::abi::TypeSet::default();
    let block = [
        (Value::U16(channels), ValueType::U16),
        (Value::U32(sample_rate), ValueType::U32),
    ];
    for (value, ty) in block {
        let _ = interstice::abi::codec::encode_value(&value, &ty, &types, &mut args);
    }
    interstice::abi::codec::write_varint(&mut args, samples.len() as u64);
    for sample in samples {
        args.extend_from_slice(&sample.to_le_bytes());
    }
    args
}

fn request_samples(
    modules: Res<Modules>,
    output: Res<AudioOutput>,
    mut queue: ResMut<ReducerQueue>,
    mut stats: ResMut<AudioStats>,
    mut targets: Local<Targets>,
) {
    let captured = output.shared.take_captured();
    if !targets.refresh(&modules) {
        return;
    }
    let channels = output.channels;
    let wanted = output.wanted_frames();
    if wanted > 0 && !targets.output.is_empty() {
        stats.requested_frames += u64::from(wanted);
        let args = output_request(wanted, channels, output.sample_rate);
        for reducer in &targets.output {
            queue.push_event(targets.holder.clone(), reducer.clone(), args.clone());
        }
    }
    if let Some((input_channels, input_rate)) = output.input_format
        && !targets.input.is_empty()
    {
        for block in captured {
            stats.input_blocks += 1;
            let args = input_block(input_channels, input_rate, &block);
            for reducer in &targets.input {
                queue.push_event(targets.holder.clone(), reducer.clone(), args.clone());
            }
        }
    }
}

fn play_samples(
    mut modules: ResMut<Modules>,
    output: Res<AudioOutput>,
    mut stats: ResMut<AudioStats>,
) {
    let samples = modules.take_audio();
    if !samples.is_empty() {
        output.shared.push(&samples);
    }
    let (played, underrun) = output.shared.counters();
    stats.played_frames = played;
    stats.underrun_frames = underrun;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_encode_as_the_sdk_struct() {
        // frames 300 (varint ac 02), channels 2, rate 48000 (varint 80 f7 02).
        assert_eq!(
            output_request(300, 2, 48_000),
            vec![0xac, 0x02, 0x02, 0x80, 0xf7, 0x02]
        );
        let block = input_block(1, 8000, &[0.5]);
        assert_eq!(block[..4], [0x01, 0xc0, 0x3e, 0x01]);
        assert_eq!(block[4..], 0.5f32.to_le_bytes());
    }
}
