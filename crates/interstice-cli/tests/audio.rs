//! End-to-end through a real audio stack: `interstice example audio` opens ALSA's default
//! device with cpal, and the audio module fills the blocks it asks for with a 440 Hz tone.
//! The test points ALSA's default device at the `file` plugin (an `.asoundrc` in a temporary
//! `HOME`), writing into a FIFO the test reads at exactly the device's rate, so the stream is
//! paced like a sound card. The captured samples must hold the tone's frequency (±2%) without
//! a gap or a jump. Capture works the same way backwards: the file plugin's `infile` reads a
//! FIFO the test fills at the device's rate, and the module's `audio_input` reducer logs each
//! block it receives.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const RATE: usize = 48_000;
const CHANNELS: usize = 2;
const BYTES_PER_SECOND: usize = RATE * CHANNELS * 4;
/// What the test analyses, once the tone started.
const ANALYSED_SECONDS: f64 = 2.0;

/// Playback into the file plugin. Capture, when asked for, reads another FIFO through its
/// own file plugin (`infile`); otherwise there is no capture device (the file plugin on one
/// device would write what it captures into the playback file, and a null capture device
/// delivers silence unpaced).
fn asoundrc(home: &Path, fifo: &Path, capture: Option<&Path>) {
    let capture_pcm = match capture {
        Some(input) => format!(
            "pcm.fromfile {{\n    type file\n    slave.pcm \"null\"\n    file \"/dev/null\"\n    infile \"{}\"\n    format \"raw\"\n}}\n",
            input.display()
        ),
        None => String::new(),
    };
    let config = format!(
        r#"pcm.!default {{
    type asym
    playback.pcm "tofile"
    capture.pcm "{}"
}}
pcm.tofile {{
    type file
    slave.pcm "null"
    file "{}"
    format "raw"
}}
{capture_pcm}"#,
        if capture.is_some() {
            "fromfile"
        } else {
            "nocapture"
        },
        fifo.display()
    );
    std::fs::write(home.join(".asoundrc"), config).expect("writing .asoundrc");
}

/// Reads the FIFO at `BYTES_PER_SECOND` until the writer closes it or `limit` bytes came.
fn read_paced(fifo: &Path, limit: usize) -> Vec<u8> {
    let mut file = std::fs::File::open(fifo).expect("opening the FIFO");
    let mut out = Vec::with_capacity(limit.min(BYTES_PER_SECOND * 8));
    let mut chunk = vec![0u8; BYTES_PER_SECOND / 100];
    let start = Instant::now();
    while out.len() < limit {
        let due = (start.elapsed().as_secs_f64() * BYTES_PER_SECOND as f64) as usize;
        if out.len() > due {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("reading the FIFO: {e}"),
        }
    }
    out
}

/// Runs `interstice example audio` for `frames` frames with `HOME` (and so ALSA's
/// `.asoundrc`) in `dir`; returns its log after checking it exited well.
fn run_audio_example(dir: &Path, frames: u32, rust_log: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_interstice"))
        .args(["example", "audio", "--listen", "127.0.0.1:0", "--frames"])
        .arg(frames.to_string())
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("HOME", dir)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", rust_log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("running interstice");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{:?}\n{log}", output.status);
    log
}

#[test]
fn the_tone_reaches_the_device_at_its_frequency_without_dropouts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("device.raw");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("running mkfifo");
    assert!(made.success());
    asoundrc(dir.path(), &fifo, None);

    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || read_paced(&fifo, BYTES_PER_SECOND * 6))
    };
    let log = run_audio_example(dir.path(), 300, "info");
    assert!(
        !log.contains("null sink"),
        "cpal should have opened ALSA's default device:\n{log}"
    );
    let bytes = reader.join().expect("the reader thread");

    // Left channel, from the first sound on.
    let left: Vec<f32> = bytes
        .as_chunks::<{ 4 * CHANNELS }>()
        .0
        .iter()
        .map(|frame| f32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]))
        .collect();
    let start = left
        .iter()
        .position(|s| s.abs() > 1e-3)
        .expect("the device received sound");
    let wanted = (ANALYSED_SECONDS * RATE as f64) as usize;
    assert!(
        left.len() - start >= wanted,
        "only {} frames of tone captured\n{log}",
        left.len() - start
    );
    let tone = &left[start..start + wanted];

    // Frequency: rising zero crossings per second.
    let crossings = tone
        .windows(2)
        .filter(|w| w[0] < 0.0 && w[1] >= 0.0)
        .count();
    let frequency = crossings as f64 / ANALYSED_SECONDS;
    assert!(
        (frequency - 440.0).abs() <= 440.0 * 0.02,
        "measured {frequency} Hz"
    );
    // Amplitude: the module plays at a quarter of full scale.
    let peak = tone.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    assert!((peak - 0.25).abs() < 0.01, "peak {peak}");
    // No dropout: a sine at 440 Hz moves at most 0.25 × 2π × 440 / 48000 ≈ 0.0144 per
    // sample; silence or a lost block shows as a jump or a flat run.
    let jump = tone
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0f32, f32::max);
    assert!(jump < 0.02, "largest step between samples {jump}");
    let flat = tone
        .windows(4)
        .filter(|w| w.iter().all(|s| s.abs() < 1e-4))
        .count();
    assert_eq!(flat, 0, "runs of silence inside the tone");
}

/// Writes silence into the FIFO at `BYTES_PER_SECOND` for `seconds`, or until the reader is
/// gone.
/// Writes silence into the FIFO at `BYTES_PER_SECOND` until `stop` is set (or `seconds`
/// pass); returns the bytes written.
///
/// ALSA opens and closes the capture device while cpal probes it, before the stream opens it
/// for good, so the FIFO is (re)opened whenever it has a reader, without blocking: a writer
/// that gave up on the probe's close left the stream's open waiting for ever.
fn write_paced(fifo: &Path, stop: &AtomicBool, seconds: f64) -> usize {
    /// `O_NONBLOCK` on Linux: opening a FIFO for writing fails at once when it has no reader.
    const O_NONBLOCK: i32 = 0o4000;
    let chunk = vec![0u8; BYTES_PER_SECOND / 100];
    let start = Instant::now();
    let mut written = 0;
    let mut file: Option<std::fs::File> = None;
    while start.elapsed().as_secs_f64() < seconds && !stop.load(Ordering::Relaxed) {
        let due = (start.elapsed().as_secs_f64() * BYTES_PER_SECOND as f64) as usize;
        if written > due {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        let Some(open) = file.as_mut() else {
            file = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(O_NONBLOCK)
                .open(fifo)
                .ok();
            if file.is_none() {
                std::thread::sleep(Duration::from_millis(2));
            }
            continue;
        };
        // A chunk is under PIPE_BUF: it is written whole or not at all.
        match std::io::Write::write(open, &chunk) {
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(_) => file = None,
        }
    }
    written
}

#[test]
fn captured_blocks_reach_the_module() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (out, input) = (dir.path().join("out.raw"), dir.path().join("in.raw"));
    for fifo in [&out, &input] {
        let made = Command::new("mkfifo")
            .arg(fifo)
            .status()
            .expect("running mkfifo");
        assert!(made.success());
    }
    asoundrc(dir.path(), &out, Some(&input));
    // Both ends keep going until the example has exited: a capture FIFO that ends while the
    // example still runs (a slow, loaded machine) makes ALSA's `file` plugin deliver blocks
    // as fast as it can, and the module would see more than was fed.
    let player = {
        let out = out.clone();
        std::thread::spawn(move || read_paced(&out, BYTES_PER_SECOND * 120))
    };
    let stop = Arc::new(AtomicBool::new(false));
    let microphone = {
        let (input, stop) = (input.clone(), stop.clone());
        std::thread::spawn(move || write_paced(&input, &stop, 120.0))
    };
    let log = run_audio_example(dir.path(), 240, "info,interstice::module=debug");
    stop.store(true, Ordering::Relaxed);
    player.join().expect("the player thread");
    let fed = microphone.join().expect("the microphone thread") / (4 * CHANNELS);
    // The module logs each block: "audio input: N frames x 2 channels at 48000 Hz".
    let frames: Vec<usize> = log
        .lines()
        .filter_map(|l| l.split("audio input: ").nth(1))
        .filter_map(|rest| rest.split(' ').next()?.parse().ok())
        .collect();
    assert!(
        log.contains("x 2 channels at 48000 Hz"),
        "no input block logged:\n{log}"
    );
    let captured: usize = frames.iter().sum();
    // About four seconds of the app's life were captured, and never more than was fed.
    assert!(
        captured >= RATE * 2 && captured <= fed,
        "{captured} frames captured of {fed} fed, in {} blocks",
        frames.len()
    );
}
