//! Drawing, for the module holding the Gpu authority
//! (`interstice_module!(authorities: [Gpu])`). Its `#[reducer(on = "render")]` reducers run
//! once per frame and describe the whole picture with a [`Frame`]:
//!
//! ```ignore
//! #[reducer(on = "render")]
//! fn render(ctx: ReducerContext) {
//!     let mut frame = gpu::Frame::new();
//!     frame.clear(Color::rgb(0.1, 0.1, 0.15))
//!         .triangle([Vec2::new(-50.0, -40.0), Vec2::new(50.0, -40.0), Vec2::new(0.0, 60.0)],
//!                   Color::rgb(1.0, 0.3, 0.2));
//!     frame.submit().expect("draw");
//! }
//! ```
//!
//! Commands are drawn in order, later ones on top. What a reducer draws is shown only if it
//! commits; a frame whose render reducer failed keeps the previous picture.

use crate::ffi;
use interstice_abi::HostError;
pub use interstice_abi::draw::{Color, DrawCommand, Shape2d, Vec2};

/// Encoded commands are handed to the host in batches of about this many bytes.
const BATCH_BYTES: usize = 256 * 1024;

/// A frame's draw list, encoded as it is built and handed to the host in batches.
#[derive(Debug, Default)]
pub struct Frame {
    encoded: Vec<u8>,
    error: Option<HostError>,
}

impl Frame {
    /// An empty draw list.
    pub fn new() -> Frame {
        Frame::default()
    }

    /// Adds any command (the methods below are shorthands).
    pub fn draw(&mut self, command: &DrawCommand) -> &mut Frame {
        if let Err(e) = postcard::to_extend(command, core::mem::take(&mut self.encoded))
            .map(|bytes| self.encoded = bytes)
        {
            self.error
                .get_or_insert(HostError::InvalidPayload(format!("draw command: {e}")));
        }
        if self.encoded.len() >= BATCH_BYTES {
            let flushed = self.flush();
            if let Err(e) = flushed {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// The frame's background colour.
    pub fn clear(&mut self, color: Color) -> &mut Frame {
        self.draw(&DrawCommand::Clear(color))
    }

    /// Centres the camera on `position`, magnified `zoom` times.
    pub fn camera(&mut self, position: Vec2, zoom: f32) -> &mut Frame {
        self.draw(&DrawCommand::Camera2d { position, zoom })
    }

    fn shape(&mut self, shape: Shape2d, color: Color) -> &mut Frame {
        self.draw(&DrawCommand::Shape { shape, color })
    }

    /// A filled triangle.
    pub fn triangle(&mut self, points: [Vec2; 3], color: Color) -> &mut Frame {
        self.shape(Shape2d::Triangle(points), color)
    }

    /// A filled rectangle turned `rotation` radians counter-clockwise about its centre.
    pub fn rect(&mut self, center: Vec2, size: Vec2, rotation: f32, color: Color) -> &mut Frame {
        self.shape(
            Shape2d::Rect {
                center,
                size,
                rotation,
            },
            color,
        )
    }

    /// A filled disc.
    pub fn circle(&mut self, center: Vec2, radius: f32, color: Color) -> &mut Frame {
        self.shape(Shape2d::Circle { center, radius }, color)
    }

    /// A filled polygon (convex, or star-shaped around its first point).
    pub fn polygon(&mut self, points: Vec<Vec2>, color: Color) -> &mut Frame {
        self.shape(Shape2d::Polygon(points), color)
    }

    /// A straight line `width` wide.
    pub fn line(&mut self, from: Vec2, to: Vec2, width: f32, color: Color) -> &mut Frame {
        self.shape(Shape2d::Line { from, to, width }, color)
    }

    /// A line of text centred on `position`, `size` world units high.
    pub fn text(&mut self, text: &str, position: Vec2, size: f32, color: Color) -> &mut Frame {
        self.draw(&DrawCommand::Text {
            text: text.into(),
            position,
            size,
            color,
        })
    }

    /// An image from the node's `assets/` folder centred on `position`; `size` `None` keeps
    /// its own size in pixels.
    pub fn sprite(
        &mut self,
        asset: &str,
        position: Vec2,
        size: Option<Vec2>,
        rotation: f32,
    ) -> &mut Frame {
        self.draw(&DrawCommand::Sprite {
            asset: asset.into(),
            position,
            size,
            rotation,
            tint: Color::WHITE,
        })
    }

    fn flush(&mut self) -> Result<(), HostError> {
        if self.encoded.is_empty() {
            return Ok(());
        }
        // SAFETY: pointer and length of a live buffer.
        let outcome = unsafe { ffi::gpu_submit(self.encoded.as_ptr(), self.encoded.len()) };
        self.encoded.clear();
        crate::__private::outcome(outcome).map(drop)
    }

    /// Hands what is left to the host. The frame shows everything submitted by the reducer
    /// (several frames may submit; their commands follow each other). The first error of any
    /// batch is returned: only the Gpu holder's reducers may draw.
    pub fn submit(&mut self) -> Result<(), HostError> {
        let flushed = self.flush();
        match self.error.take() {
            Some(e) => Err(e),
            None => flushed,
        }
    }
}
