//! Input, for the module holding the Input authority
//! (`interstice_module!(authorities: [Input])`): its `#[reducer(on = "input")]` reducers
//! receive one [`InputEvent`] per event: each frame's key events in order, then mouse
//! buttons, mouse motion and wheel events (Bevy reports each kind on its own):
//!
//! ```ignore
//! #[reducer(on = "input")]
//! fn on_input(ctx: ReducerContext, event: input::InputEvent) {
//!     if let input::InputEvent::Key { key, pressed: true, .. } = event { /* ... */ }
//! }
//! ```

use crate::interstice_type;

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
}
