//! The windowed examples' Bevy set-up: a window with Bevy's renderer and input.

use bevy::app::{PluginGroup, PluginGroupBuilder};
use bevy::prelude::*;
use std::path::PathBuf;

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
