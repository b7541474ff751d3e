//! Shapes to triangles: every filled shape of a draw list becomes vertices of a triangle list
//! with a colour per vertex, so a run of shapes is one mesh and one draw call.

use interstice::abi::draw::{Color, Shape2d, Vec2};

/// Triangle-list vertices: positions (`z` is 0; the batch's transform sets the layer) and
/// linear RGBA colours.
#[derive(Debug, Default, Clone)]
pub struct Vertices {
    /// Positions.
    pub positions: Vec<[f32; 3]>,
    /// Colours, one per position.
    pub colors: Vec<[f32; 4]>,
}

impl Vertices {
    /// No vertices.
    pub fn clear(&mut self) {
        self.positions.clear();
        self.colors.clear();
    }

    /// Whether there is nothing to draw.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    fn triangle(&mut self, a: Vec2, b: Vec2, c: Vec2, color: [f32; 4]) {
        self.positions
            .extend([[a.x, a.y, 0.0], [b.x, b.y, 0.0], [c.x, c.y, 0.0]]);
        self.colors.extend([color; 3]);
    }

    fn quad(&mut self, corners: [Vec2; 4], color: [f32; 4]) {
        let [a, b, c, d] = corners;
        self.triangle(a, b, c, color);
        self.triangle(a, c, d, color);
    }

    /// Appends a shape's triangles. Shapes with non-finite coordinates are skipped.
    pub fn push(&mut self, shape: &Shape2d, color: &Color) {
        let color = linear(color);
        match shape {
            Shape2d::Triangle([a, b, c]) => {
                if finite(&[*a, *b, *c]) {
                    self.triangle(*a, *b, *c, color);
                }
            }
            Shape2d::Rect {
                center,
                size,
                rotation,
            } => {
                let (sin, cos) = rotation.sin_cos();
                let (hx, hy) = (size.x / 2.0, size.y / 2.0);
                let corner = |x: f32, y: f32| {
                    Vec2::new(center.x + x * cos - y * sin, center.y + x * sin + y * cos)
                };
                let corners = [
                    corner(-hx, -hy),
                    corner(hx, -hy),
                    corner(hx, hy),
                    corner(-hx, hy),
                ];
                if finite(&corners) {
                    self.quad(corners, color);
                }
            }
            Shape2d::Circle { center, radius } => {
                if !finite(&[*center]) || !radius.is_finite() || *radius <= 0.0 {
                    return;
                }
                let segments = circle_segments(*radius);
                let step = std::f32::consts::TAU / segments as f32;
                let point = |i: u32| {
                    let (sin, cos) = (step * i as f32).sin_cos();
                    Vec2::new(center.x + radius * cos, center.y + radius * sin)
                };
                let mut previous = point(0);
                for i in 1..=segments {
                    let next = point(i % segments);
                    self.triangle(*center, previous, next, color);
                    previous = next;
                }
            }
            Shape2d::Polygon(points) => {
                if points.len() < 3 || !finite(points) {
                    return;
                }
                for pair in points[1..].windows(2) {
                    self.triangle(points[0], pair[0], pair[1], color);
                }
            }
            Shape2d::Line { from, to, width } => {
                let (dx, dy) = (to.x - from.x, to.y - from.y);
                let length = (dx * dx + dy * dy).sqrt();
                if !length.is_finite() || length == 0.0 || !width.is_finite() {
                    return;
                }
                let (nx, ny) = (-dy / length * width / 2.0, dx / length * width / 2.0);
                self.quad(
                    [
                        Vec2::new(from.x + nx, from.y + ny),
                        Vec2::new(from.x - nx, from.y - ny),
                        Vec2::new(to.x - nx, to.y - ny),
                        Vec2::new(to.x + nx, to.y + ny),
                    ],
                    color,
                );
            }
        }
    }
}

fn finite(points: &[Vec2]) -> bool {
    points.iter().all(|p| p.x.is_finite() && p.y.is_finite())
}

/// Enough segments that a circle looks round at its size: from 12 for dots to 96 for large
/// discs.
pub fn circle_segments(radius: f32) -> u32 {
    (radius.sqrt() * 4.0).clamp(12.0, 96.0) as u32
}

/// The guest's sRGB colour as linear RGBA (what vertex colours are in).
pub fn linear(color: &Color) -> [f32; 4] {
    let channel = |c: f32| {
        let c = if c.is_finite() {
            c.clamp(0.0, 1.0)
        } else {
            0.0
        };
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let alpha = if color.a.is_finite() {
        color.a.clamp(0.0, 1.0)
    } else {
        1.0
    };
    [channel(color.r), channel(color.g), channel(color.b), alpha]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_becomes_whole_triangles() {
        let mut v = Vertices::default();
        let white = Color::WHITE;
        v.push(
            &Shape2d::Triangle([
                Vec2::new(0.0, 0.0),
                Vec2::new(1.0, 0.0),
                Vec2::new(0.0, 1.0),
            ]),
            &white,
        );
        assert_eq!(v.positions.len(), 3);
        v.push(
            &Shape2d::Rect {
                center: Vec2::new(0.0, 0.0),
                size: Vec2::new(2.0, 2.0),
                rotation: 0.0,
            },
            &white,
        );
        assert_eq!(v.positions.len(), 9);
        v.push(
            &Shape2d::Circle {
                center: Vec2::new(0.0, 0.0),
                radius: 100.0,
            },
            &white,
        );
        assert_eq!(v.positions.len(), 9 + 3 * 40);
        v.push(&Shape2d::Polygon(vec![Vec2::default(); 5]), &white);
        assert_eq!(v.positions.len(), 9 + 120 + 9);
        v.push(
            &Shape2d::Line {
                from: Vec2::new(0.0, 0.0),
                to: Vec2::new(10.0, 0.0),
                width: 2.0,
            },
            &white,
        );
        assert_eq!(v.positions.len(), 9 + 120 + 9 + 6);
        assert_eq!(v.colors.len(), v.positions.len());
    }

    #[test]
    fn rotated_rect_corners_are_turned_about_the_centre() {
        let mut v = Vertices::default();
        v.push(
            &Shape2d::Rect {
                center: Vec2::new(10.0, 0.0),
                size: Vec2::new(2.0, 4.0),
                rotation: std::f32::consts::FRAC_PI_2,
            },
            &Color::WHITE,
        );
        // (-1, -2) turned a quarter: (2, -1), moved to the centre.
        let [x, y, _] = v.positions[0];
        assert!((x - 12.0).abs() < 1e-5 && (y + 1.0).abs() < 1e-5, "{x} {y}");
    }

    #[test]
    fn degenerate_and_non_finite_shapes_draw_nothing() {
        let mut v = Vertices::default();
        v.push(
            &Shape2d::Circle {
                center: Vec2::new(0.0, 0.0),
                radius: -1.0,
            },
            &Color::WHITE,
        );
        v.push(
            &Shape2d::Triangle([Vec2::new(f32::NAN, 0.0), Vec2::default(), Vec2::default()]),
            &Color::WHITE,
        );
        v.push(
            &Shape2d::Line {
                from: Vec2::default(),
                to: Vec2::default(),
                width: 1.0,
            },
            &Color::WHITE,
        );
        assert!(v.is_empty());
    }

    #[test]
    fn colours_are_linearised() {
        assert_eq!(linear(&Color::WHITE), [1.0, 1.0, 1.0, 1.0]);
        let mid = linear(&Color::rgb(0.5, 0.5, 0.5))[0];
        assert!((mid - 0.214).abs() < 0.001, "{mid}");
    }
}
