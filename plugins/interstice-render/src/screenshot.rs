//! Saving the window to a PNG after a number of frames, then exiting: what `--screenshot`
//! options of the examples and the windowed tests use.

use bevy::app::AppExit;
use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured, save_to_disk};
use std::path::{Path, PathBuf};

#[derive(Resource)]
struct ScreenshotPlan {
    path: PathBuf,
    frame: u32,
}

/// Frames to wait for a requested screenshot before giving up.
const SCREENSHOT_PATIENCE: u32 = 600;

/// Saves the primary window to `path` after `frame` frames, then exits (with an error if
/// the screenshot never arrives).
pub fn screenshot_after(app: &mut App, path: &Path, frame: u32) {
    app.insert_resource(ScreenshotPlan {
        path: path.to_path_buf(),
        frame: frame.max(1),
    })
    .add_systems(Last, take_screenshot);
}

fn take_screenshot(
    plan: Res<ScreenshotPlan>,
    mut frames: Local<u32>,
    mut commands: Commands,
    mut exit: MessageWriter<AppExit>,
) {
    *frames += 1;
    if *frames == plan.frame {
        info!("taking a screenshot into {}", plan.path.display());
        commands
            .spawn(Screenshot::primary_window())
            .observe(save_to_disk(plan.path.clone()))
            .observe(
                |_: On<ScreenshotCaptured>, mut exit: MessageWriter<AppExit>| {
                    exit.write(AppExit::Success);
                },
            );
    } else if *frames == plan.frame + SCREENSHOT_PATIENCE {
        error!("no screenshot after {SCREENSHOT_PATIENCE} frames; is there a GPU (or lavapipe)?");
        exit.write(AppExit::error());
    }
}
