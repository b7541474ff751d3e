//! Input, for the module holding the Input authority
//! (`interstice_module!(authorities: [Input])`): its `#[reducer(on = "input")]` reducers
//! receive one [`InputEvent`] per event: each frame's key events in order, then mouse
//! buttons, cursor movement, mouse motion, wheel and gamepad events (Bevy reports each kind on
//! its own). [`state`] tells what is held down right now:
//!
//! ```ignore
//! #[reducer(on = "input")]
//! fn on_input(ctx: ReducerContext, event: input::InputEvent) {
//!     if let input::InputEvent::Key { key, pressed: true, .. } = event { /* ... */ }
//! }
//! ```

use crate::interstice_type;
use interstice_abi::HostError;
pub use interstice_abi::input::{Cursor, GamepadState, InputState};

/// What is held down now and where the cursor is (for the Input holder only).
pub fn state() -> Result<InputState, HostError> {
    // SAFETY: no arguments; the response is copied into our own buffer.
    let bytes = crate::__private::outcome(unsafe { crate::ffi::input_state() })?;
    postcard::from_bytes(&bytes).map_err(|e| HostError::InvalidPayload(format!("input state: {e}")))
}

/// Something the player did.
#[interstice_type]
#[derive(Debug, Clone, PartialEq)]
pub enum InputEvent {
    /// A key went down (`pressed`) or up. `key` names the physical key as Bevy's `KeyCode`
    /// does (`KeyA`, `ArrowLeft`, `Space`, ...); `text` is what the press typed, if anything.
    Key {
        /// The physical key.
        key: String,
        /// Down or up.
        pressed: bool,
        /// The text it produced.
        text: Option<String>,
    },
    /// A mouse button went down or up (`Left`, `Right`, `Middle`, `Back`, `Forward`, `Other(n)`).
    MouseButton {
        /// The button.
        button: String,
        /// Down or up.
        pressed: bool,
    },
    /// The mouse moved by this much (raw motion, not the cursor position).
    MouseMotion {
        /// Horizontal movement.
        dx: f32,
        /// Vertical movement.
        dy: f32,
    },
    /// The wheel (or a touchpad) scrolled.
    Wheel {
        /// Horizontal scroll.
        x: f32,
        /// Vertical scroll.
        y: f32,
    },
    /// The cursor moved over the window: `x`, `y` in window pixels from the top-left
    /// corner, `world_x`, `world_y` the same point in world units through the 2D camera
    /// (with no camera, relative to the window's centre, `y` up).
    CursorMoved {
        /// Window x.
        x: f32,
        /// Window y.
        y: f32,
        /// World x.
        world_x: f32,
        /// World y.
        world_y: f32,
    },
    /// A gamepad was connected (`connected`) or disconnected.
    GamepadConnection {
        /// Which gamepad.
        id: u64,
        /// Its name (empty when disconnected).
        name: String,
        /// Connected or gone.
        connected: bool,
    },
    /// A gamepad button changed (`South`, `DPadUp`, `LeftTrigger2`, ...), `value` 0 to 1.
    GamepadButton {
        /// Which gamepad.
        id: u64,
        /// The button.
        button: String,
        /// How far it is pressed.
        value: f32,
    },
    /// A gamepad axis moved (`LeftStickX`, ...), `value` -1 to 1.
    GamepadAxis {
        /// Which gamepad.
        id: u64,
        /// The axis.
        axis: String,
        /// Its position.
        value: f32,
    },
}
