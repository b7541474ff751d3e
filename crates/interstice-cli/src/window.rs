//! The windowed examples' Bevy set-up: a window, Bevy's renderer and input, and saving a
//! screenshot (`--screenshot`).

use bevy::app::{AppExit, PluginGroup, PluginGroupBuilder};
use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured, save_to_disk};
use std::path::{Path, PathBuf};

/// Window size of the examples, in logical pixels.
pub const WINDOW_SIZE: (u32, u32) = (800, 600);

/// Bevy's default plugins with an 800×600 window titled `title`, and sprites loaded from
/// `assets/` in the current directory.
pub fn plugins(title: &str) -> PluginGroupBuilder {
    let assets = std::env::current_dir()
        .map(|d| d.join("assets"))
        .unwrap_or_else(|_| PathBuf::from("assets"));
    DefaultPlugins
        .set(WindowPlugin {
            primary_window: Some(Window {
                title: title.into(),
                resolution: WINDOW_SIZE.into(),
                resizable: false,
                ..default()
            }),
            ..default()
        })
        .set(AssetPlugin {
            file_path: assets.to_string_lossy().into_owned(),
            ..default()
        })
}

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
