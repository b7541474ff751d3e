//! What the module holding the Gpu authority draws: a list of [`DrawCommand`]s per frame.
//!
//! The guest encodes commands with postcard and hands them to the `gpu_submit` import in
//! batches; the host decodes them and turns the frame's list into Bevy meshes, text and sprites.
//! Commands are drawn in the order they were submitted (later ones on top).
//!
//! Everything here is 2D, in world units with `y` up; the camera (a [`DrawCommand::Camera2d`])
//! decides what part of the world the window shows. The list is an enum so it can grow: a 3D
//! extension appends variants (`Camera3d`, `Mesh3d`, lights) after the existing ones, which
//! keeps every encoding of today's variants valid (postcard numbers variants by position).

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

pub use crate::limits::{MAX_COMMANDS_PER_FRAME, MAX_POLYGON_POINTS, MAX_TEXT_BYTES};

/// A point or a size in world units.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Vec2 {
    /// Horizontal (right is positive).
    pub x: f32,
    /// Vertical (up is positive).
    pub y: f32,
}

impl Vec2 {
    /// The point `(x, y)`.
    pub const fn new(x: f32, y: f32) -> Vec2 {
        Vec2 { x, y }
    }
}

/// An sRGB colour with alpha, each channel in `0.0..=1.0`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Color {
    /// Red.
    pub r: f32,
    /// Green.
    pub g: f32,
    /// Blue.
    pub b: f32,
    /// Opacity (1 is opaque).
    pub a: f32,
}

impl Color {
    /// Opaque white.
    pub const WHITE: Color = Color::rgb(1.0, 1.0, 1.0);
    /// Opaque black.
    pub const BLACK: Color = Color::rgb(0.0, 0.0, 0.0);

    /// An opaque colour.
    pub const fn rgb(r: f32, g: f32, b: f32) -> Color {
        Color { r, g, b, a: 1.0 }
    }

    /// A colour with opacity.
    pub const fn rgba(r: f32, g: f32, b: f32, a: f32) -> Color {
        Color { r, g, b, a }
    }
}

/// A filled 2D shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Shape2d {
    /// A triangle through three points.
    Triangle([Vec2; 3]),
    /// A rectangle of `size` centred on `center`, turned by `rotation` radians
    /// (counter-clockwise).
    Rect {
        /// Its centre.
        center: Vec2,
        /// Width and height.
        size: Vec2,
        /// Counter-clockwise turn, in radians.
        rotation: f32,
    },
    /// A disc.
    Circle {
        /// Its centre.
        center: Vec2,
        /// Its radius.
        radius: f32,
    },
    /// A simple polygon (convex, or star-shaped around its first point), its points in order.
    Polygon(Vec<Vec2>),
    /// A straight stroke `width` wide.
    Line {
        /// Where it starts.
        from: Vec2,
        /// Where it ends.
        to: Vec2,
        /// How wide it is.
        width: f32,
    },
}

/// One thing to draw (or a setting of the frame).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DrawCommand {
    /// The background colour of the frame.
    Clear(Color),
    /// Where the 2D camera looks and how far it is zoomed (2 shows things twice as big).
    Camera2d {
        /// The world point at the centre of the window.
        position: Vec2,
        /// Magnification; 1 is one world unit per pixel.
        zoom: f32,
    },
    /// A filled shape.
    Shape {
        /// Its geometry.
        shape: Shape2d,
        /// Its colour.
        color: Color,
    },
    /// A line of text, centred on `position`.
    Text {
        /// What it says.
        text: String,
        /// Where its centre is.
        position: Vec2,
        /// Font size in world units.
        size: f32,
        /// Its colour.
        color: Color,
    },
    /// An image from the node's `assets/` folder, centred on `position`.
    Sprite {
        /// Its path inside `assets/` (`"ship.png"`).
        asset: String,
        /// Where its centre is.
        position: Vec2,
        /// Its size in world units; `None` keeps the image's own size in pixels.
        size: Option<Vec2>,
        /// Counter-clockwise turn, in radians.
        rotation: f32,
        /// Multiplies the image's colours (white leaves them as they are).
        tint: Color,
    },
}

impl DrawCommand {
    /// Checks the bounds a host relies on: no non-finite numbers where they would poison a
    /// mesh, polygons and texts within their limits, and asset paths that stay in `assets/`.
    pub fn check(&self) -> Result<(), &'static str> {
        fn finite(v: &Vec2) -> bool {
            v.x.is_finite() && v.y.is_finite()
        }
        match self {
            DrawCommand::Clear(_) => Ok(()),
            DrawCommand::Camera2d { position, zoom } => {
                if !finite(position) || !zoom.is_finite() || *zoom <= 0.0 {
                    return Err("camera position must be finite and zoom positive");
                }
                Ok(())
            }
            DrawCommand::Shape { shape, .. } => match shape {
                Shape2d::Polygon(points) if points.len() > MAX_POLYGON_POINTS => {
                    Err("polygon has too many points")
                }
                Shape2d::Polygon(points) if points.len() < 3 => {
                    Err("polygon needs at least three points")
                }
                _ => Ok(()),
            },
            DrawCommand::Text { text, .. } if text.len() > MAX_TEXT_BYTES => {
                Err("text is too long")
            }
            DrawCommand::Text { .. } => Ok(()),
            DrawCommand::Sprite { asset, .. } => {
                let plain = !asset.is_empty()
                    && !asset.starts_with('/')
                    && !asset.contains('\\')
                    && !asset.contains(':')
                    && asset
                        .split('/')
                        .all(|c| !c.is_empty() && c != "." && c != "..");
                if plain {
                    Ok(())
                } else {
                    Err("sprite asset must be a plain relative path inside assets/")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sprite_paths_stay_in_assets() {
        let sprite = |asset: &str| DrawCommand::Sprite {
            asset: asset.into(),
            position: Vec2::default(),
            size: None,
            rotation: 0.0,
            tint: Color::WHITE,
        };
        assert!(sprite("ship.png").check().is_ok());
        assert!(sprite("ships/red.png").check().is_ok());
        for bad in [
            "",
            "../x.png",
            "/etc/passwd",
            "a/../../b",
            "c:\\x",
            "a//b",
            "./a",
        ] {
            assert!(sprite(bad).check().is_err(), "{bad}");
        }
    }

    #[test]
    fn cameras_and_polygons_are_bounded() {
        let camera = |zoom| DrawCommand::Camera2d {
            position: Vec2::default(),
            zoom,
        };
        assert!(camera(1.0).check().is_ok());
        assert!(camera(0.0).check().is_err());
        assert!(camera(f32::NAN).check().is_err());
        let polygon = |n| DrawCommand::Shape {
            shape: Shape2d::Polygon(alloc::vec![Vec2::default(); n]),
            color: Color::WHITE,
        };
        assert!(polygon(3).check().is_ok());
        assert!(polygon(2).check().is_err());
        assert!(polygon(MAX_POLYGON_POINTS + 1).check().is_err());
    }
}
