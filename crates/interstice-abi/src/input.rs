//! The input state the holder of the Input authority can poll (`input_state` import).

use crate::draw::Vec2;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// What is held down right now, and where the cursor is.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InputState {
    /// Keys held down, named as Bevy's `KeyCode` (`KeyA`, `ArrowLeft`, `Space`, ...), sorted.
    pub keys: Vec<String>,
    /// Mouse buttons held down (`Left`, `Right`, `Middle`, ...), sorted.
    pub mouse_buttons: Vec<String>,
    /// The cursor, when it is over the window.
    pub cursor: Option<Cursor>,
    /// Connected gamepads.
    pub gamepads: Vec<GamepadState>,
}

/// Where the cursor is.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Cursor {
    /// In window pixels, from the top-left corner.
    pub window: Vec2,
    /// In world units, through the 2D camera (`None` without a camera).
    pub world: Option<Vec2>,
}

/// One gamepad's state.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GamepadState {
    /// Which gamepad (stable while it stays connected).
    pub id: u64,
    /// Its name, as the system reports it.
    pub name: String,
    /// Buttons held down, named as Bevy's `GamepadButton` (`South`, `DPadUp`, ...), sorted.
    pub buttons: Vec<String>,
    /// Axes and their positions (`LeftStickX` → -1.0..=1.0), sorted by name.
    pub axes: Vec<(String, f32)>,
}
