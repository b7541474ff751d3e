//! The devices: cpal streams (or the clocked null sink) and the buffer shared with them.

use crate::IntersticeAudioPlugin;
use bevy::prelude::*;
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// Sample rate and channels of the null sink.
const NULL_RATE: u32 = 48_000;
const NULL_CHANNELS: u16 = 2;
/// Most captured samples kept between frames (older ones are dropped).
const MAX_CAPTURED: usize = 48_000 * 2;
/// Most captured blocks kept between frames, however small (older ones are dropped).
const MAX_CAPTURED_BLOCKS: usize = 1024;

#[derive(Default)]
struct Inner {
    ring: VecDeque<f32>,
    /// Whether the module has written anything yet (silence before that is no underrun).
    started: bool,
    played: u64,
    underrun: u64,
    captured: VecDeque<Vec<f32>>,
    captured_samples: usize,
}

/// The buffer between the module (through the world) and the device threads.
#[derive(Default)]
pub struct Shared {
    inner: Mutex<Inner>,
    channels: u16,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking device callback cannot leave the buffer half-updated in a harmful way:
        // keep using it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues samples for the device.
    pub fn push(&self, samples: &[f32]) {
        let mut inner = self.lock();
        inner.started = true;
        inner.ring.extend(samples);
    }

    /// Frames waiting to be played.
    pub fn queued_frames(&self) -> usize {
        self.lock().ring.len() / usize::from(self.channels.max(1))
    }

    /// Frames played and frames of silence played for lack of samples.
    pub fn counters(&self) -> (u64, u64) {
        let inner = self.lock();
        (inner.played, inner.underrun)
    }

    /// Fills a device buffer: queued samples, then silence.
    fn fill(&self, out: &mut [f32]) {
        let channels = usize::from(self.channels.max(1));
        let mut inner = self.lock();
        let available = inner.ring.len().min(out.len());
        for (slot, sample) in out.iter_mut().zip(inner.ring.drain(..available)) {
            *slot = sample;
        }
        out[available..].fill(0.0);
        inner.played += (available / channels) as u64;
        if inner.started {
            inner.underrun += ((out.len() - available) / channels) as u64;
        }
    }

    /// Drops `frames` frames as if played (the null sink).
    fn consume(&self, frames: usize) {
        let channels = usize::from(self.channels.max(1));
        let mut inner = self.lock();
        let available = inner.ring.len().min(frames * channels);
        inner.ring.drain(..available);
        inner.played += (available / channels) as u64;
        if inner.started {
            inner.underrun += (frames - available / channels) as u64;
        }
    }

    fn capture(&self, samples: &[f32]) {
        // A device at the end of its input (ALSA's `file` plugin once its FIFO closes) calls
        // back with nothing, as fast as it can: such calls are no blocks, and the number of
        // blocks is bounded as well as their samples.
        if samples.is_empty() {
            return;
        }
        let mut inner = self.lock();
        inner.captured_samples += samples.len();
        inner.captured.push_back(samples.to_vec());
        while inner.captured_samples > MAX_CAPTURED || inner.captured.len() > MAX_CAPTURED_BLOCKS {
            let Some(dropped) = inner.captured.pop_front() else {
                break;
            };
            inner.captured_samples -= dropped.len();
        }
    }

    /// Blocks captured since the last take.
    pub fn take_captured(&self) -> Vec<Vec<f32>> {
        let mut inner = self.lock();
        inner.captured_samples = 0;
        std::mem::take(&mut inner.captured).into()
    }
}

/// The open output (and input), as a resource.
#[derive(Resource)]
pub struct AudioOutput {
    /// The buffer shared with the device threads.
    pub shared: Arc<Shared>,
    /// The output device's name.
    pub device: String,
    /// Output frames per second.
    pub sample_rate: u32,
    /// Output channels.
    pub channels: u16,
    /// Channels and rate of the input device, when capturing.
    pub input_format: Option<(u16, u32)>,
    lead_frames: u32,
    _streams: Vec<cpal::Stream>,
}

impl AudioOutput {
    /// Frames to ask the module for now to keep the buffer `lead_ms` ahead.
    pub fn wanted_frames(&self) -> u32 {
        let queued = self.shared.queued_frames() as u32;
        self.lead_frames.saturating_sub(queued)
    }
}

/// Opens the devices the plugin asks for, falling back to the null sink (warned once).
pub fn open(plugin: &IntersticeAudioPlugin) -> AudioOutput {
    let lead = |rate: u32| (u64::from(rate) * u64::from(plugin.lead_ms.max(1)) / 1000) as u32;
    if !plugin.null_sink {
        match open_output() {
            Ok((stream, shared, device, rate, channels)) => {
                let mut streams = vec![stream];
                let input_format = if plugin.capture {
                    match open_input(&shared) {
                        Ok((stream, channels, rate)) => {
                            streams.push(stream);
                            Some((channels, rate))
                        }
                        Err(e) => {
                            info!("no audio input ({e}); audio_input events will not arrive");
                            None
                        }
                    }
                } else {
                    None
                };
                info!("audio output on `{device}`: {rate} Hz, {channels} channels");
                return AudioOutput {
                    shared,
                    device,
                    sample_rate: rate,
                    channels,
                    input_format,
                    lead_frames: lead(rate),
                    _streams: streams,
                };
            }
            Err(e) => warn!(
                "no usable audio output device ({e}); playing into a null sink at {NULL_RATE} Hz"
            ),
        }
    }
    let shared = Arc::new(Shared {
        channels: NULL_CHANNELS,
        ..Default::default()
    });
    spawn_null_sink(Arc::downgrade(&shared), NULL_RATE);
    AudioOutput {
        shared,
        device: "null sink".into(),
        sample_rate: NULL_RATE,
        channels: NULL_CHANNELS,
        input_format: None,
        lead_frames: lead(NULL_RATE),
        _streams: Vec::new(),
    }
}

type Opened = (cpal::Stream, Arc<Shared>, String, u32, u16);

fn open_output() -> Result<Opened, String> {
    let host = cpal::default_host();
    let device = host
        .default_output_device()
        .ok_or_else(|| "no default output device".to_string())?;
    let name = device
        .description()
        .map(|d| d.to_string())
        .unwrap_or_else(|_| "default".into());
    let config = device
        .default_output_config()
        .map_err(|e| format!("{name}: {e}"))?
        .config();
    let shared = Arc::new(Shared {
        channels: config.channels,
        ..Default::default()
    });
    let filler = shared.clone();
    let stream = device
        .build_output_stream::<f32, _, _>(
            config,
            move |data, _| filler.fill(data),
            |e| warn!("audio output: {e}"),
            None,
        )
        .map_err(|e| format!("{name}: {e}"))?;
    stream.play().map_err(|e| format!("{name}: {e}"))?;
    Ok((stream, shared, name, config.sample_rate, config.channels))
}

fn open_input(shared: &Arc<Shared>) -> Result<(cpal::Stream, u16, u32), String> {
    let host = cpal::default_host();
    let device = host
        .default_input_device()
        .ok_or_else(|| "no default input device".to_string())?;
    let config = device
        .default_input_config()
        .map_err(|e| e.to_string())?
        .config();
    let sink = shared.clone();
    let stream = device
        .build_input_stream::<f32, _, _>(
            config,
            move |data, _| sink.capture(data),
            |e| warn!("audio input: {e}"),
            None,
        )
        .map_err(|e| e.to_string())?;
    stream.play().map_err(|e| e.to_string())?;
    Ok((stream, config.channels, config.sample_rate))
}

/// Consumes frames at `rate` until the buffer is dropped.
fn spawn_null_sink(shared: Weak<Shared>, rate: u32) {
    let spawned = std::thread::Builder::new()
        .name("interstice-null-audio".into())
        .spawn(move || {
            let start = Instant::now();
            let mut consumed = 0u64;
            loop {
                std::thread::sleep(Duration::from_millis(5));
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                let due = (start.elapsed().as_secs_f64() * f64::from(rate)) as u64;
                shared.consume((due - consumed) as usize);
                consumed = due;
            }
        });
    if let Err(e) = spawned {
        error!("cannot start the null audio sink: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_plays_in_order_and_counts_silence_after_the_start() {
        let shared = Shared {
            channels: 2,
            ..Default::default()
        };
        let mut out = [1.0f32; 4];
        shared.fill(&mut out);
        assert_eq!(out, [0.0; 4]);
        assert_eq!(shared.counters(), (0, 0), "silence before the first write");
        shared.push(&[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]);
        assert_eq!(shared.queued_frames(), 3);
        let mut out = [0.0f32; 4];
        shared.fill(&mut out);
        assert_eq!(out, [0.1, 0.2, 0.3, 0.4]);
        let mut out = [9.0f32; 4];
        shared.fill(&mut out);
        assert_eq!(out, [0.5, 0.6, 0.0, 0.0]);
        assert_eq!(shared.counters(), (3, 1));
        shared.consume(2);
        assert_eq!(shared.counters(), (3, 3));
    }

    #[test]
    fn empty_captures_are_no_blocks_and_blocks_are_bounded() {
        let shared = Shared::default();
        for _ in 0..10_000 {
            shared.capture(&[]);
        }
        assert!(shared.take_captured().is_empty());
        for i in 0..(MAX_CAPTURED_BLOCKS + 10) {
            shared.capture(&[i as f32]);
        }
        let blocks = shared.take_captured();
        assert_eq!(blocks.len(), MAX_CAPTURED_BLOCKS);
        assert_eq!(blocks[0], [10.0], "the oldest blocks were dropped");
        shared.capture(&vec![0.5; MAX_CAPTURED + 1]);
        shared.capture(&[0.25]);
        assert_eq!(shared.take_captured(), [vec![0.25]]);
    }
}
