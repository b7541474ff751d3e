//! The Audio authority without a device: the clocked null sink asks the audio module for
//! samples at the device's pace, and only the holder may play. (Real devices are covered by
//! the CLI's audio test through ALSA.)

use bevy::ecs::system::RunSystemOnce;
use bevy::prelude::*;
use interstice::prelude::*;
use interstice_audio::{AudioStats, IntersticeAudioPlugin};
use std::time::{Duration, Instant};

fn modules() -> Vec<Vec<u8>> {
    interstice_build::test_modules!["audio", "painter"]
}

#[test]
fn the_null_sink_plays_the_holder_at_the_device_rate() {
    let wasm = modules();
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        IntersticePlugin::default()
            .with_module_bytes("audio", wasm[0].clone())
            .with_module_bytes("painter", wasm[1].clone()),
        IntersticeAudioPlugin {
            null_sink: true,
            ..default()
        },
    ));
    app.update();
    app.world_mut()
        .run_system_once(|mut interstice: Interstice| {
            interstice.queue_reducer("painter", "try_play", ()).unwrap();
        })
        .unwrap();
    let start = Instant::now();
    let mut refusal = None;
    while start.elapsed() < Duration::from_millis(1000) {
        app.update();
        let outcomes = app.world_mut().resource_mut::<Messages<ReducerOutcome>>();
        for outcome in outcomes.iter_current_update_messages() {
            if outcome.reducer == "try_play" {
                refusal = Some(format!("{:?}", outcome.result));
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let refusal = refusal.expect("try_play ran");
    assert!(refusal.contains("Audio authority"), "{refusal}");

    let stats = app.world().resource::<AudioStats>().clone();
    assert_eq!(stats.device, "null sink");
    // The sink consumes 48,000 frames a second; the module kept it fed after its first block.
    let expected = elapsed * 48_000.0;
    assert!(
        (stats.played_frames as f64) > expected * 0.7
            && (stats.played_frames as f64) < expected * 1.1,
        "{} frames in {elapsed:.2} s",
        stats.played_frames
    );
    assert!(
        stats.underrun_frames < 48_000 / 10,
        "{} frames of silence",
        stats.underrun_frames
    );
    let played: u64 = app
        .world_mut()
        .run_system_once(|mut interstice: Interstice| {
            interstice
                .query::<_, u64>("audio", "frames_played", ())
                .unwrap()
        })
        .unwrap();
    // What the module wrote is what was requested: played plus what is still buffered.
    assert_eq!(played, stats.requested_frames);
    assert!(played >= stats.played_frames);
}
