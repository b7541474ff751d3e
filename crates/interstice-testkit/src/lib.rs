//! What the windowed end-to-end tests share: an [`Xvfb`] display (with Mesa's lavapipe for
//! Vulkan, so wgpu renders on the CPU) and screenshots read back as RGB pixels ([`Picture`]).
//! Needs the packages `scripts/setup.sh` installs: xvfb, mesa-vulkan-drivers.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// An Xvfb server on a free display, stopped on drop.
pub struct Xvfb {
    child: Child,
    /// Kept open: the server may write to it again.
    _stdout: std::io::BufReader<std::process::ChildStdout>,
    /// The display, for `DISPLAY` (`:93`).
    pub display: String,
}

impl Xvfb {
    /// Starts one on a display the server picks itself (`-displayfd`), so tests starting
    /// servers at the same moment never share one (a window on a shared display could take
    /// another test's keyboard focus).
    pub fn start() -> Xvfb {
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1024x768x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting Xvfb (install it with scripts/setup.sh: apt package xvfb)");
        // The server writes its display number once it accepts connections.
        let mut line = String::new();
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("Xvfb's stdout"));
        let read = std::io::BufRead::read_line(&mut stdout, &mut line);
        let number = line.trim().to_string();
        if read.is_err() || number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("Xvfb did not start (it said {line:?})");
        }
        Xvfb {
            child,
            _stdout: stdout,
            display: format!(":{number}"),
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Mesa's lavapipe ICD, so wgpu finds a Vulkan device without a GPU.
pub fn lavapipe() -> Option<PathBuf> {
    let dir = Path::new("/usr/share/vulkan/icd.d");
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("lvp_icd"))
        })
}

/// The screenshot as RGB rows.
pub struct Picture {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Pixels, row by row.
    pub rgb: Vec<[u8; 3]>,
}

impl Picture {
    /// Reads a PNG (panics with the reason if it cannot: this is for tests).
    pub fn load(path: &Path) -> Picture {
        let file = std::fs::File::open(path).expect("the screenshot exists");
        let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info().expect("a PNG");
        let mut buffer = vec![0; reader.output_buffer_size().expect("an image size")];
        let info = reader.next_frame(&mut buffer).expect("PNG pixels");
        let channels = info.color_type.samples();
        let rgb = buffer[..info.buffer_size()]
            .chunks_exact(channels)
            .map(|p| [p[0], p[1], p[2]])
            .collect();
        Picture {
            width: info.width as usize,
            height: info.height as usize,
            rgb,
        }
    }

    /// The pixel at `(x, y)`.
    pub fn at(&self, x: usize, y: usize) -> [u8; 3] {
        self.rgb[y * self.width + x]
    }

    /// The centre (mean position) of the pixels of `color`.
    pub fn centre_of(&self, color: [u8; 3]) -> Option<(f64, f64)> {
        let (mut n, mut sx, mut sy) = (0usize, 0.0, 0.0);
        for y in 0..self.height {
            for x in 0..self.width {
                if close(self.at(x, y), color) {
                    n += 1;
                    sx += x as f64;
                    sy += y as f64;
                }
            }
        }
        (n > 0).then(|| (sx / n as f64, sy / n as f64))
    }

    /// The bounding box (min x, min y, max x, max y) of the pixels of `color`.
    pub fn bounds_of(&self, color: [u8; 3]) -> Option<(usize, usize, usize, usize)> {
        let mut bounds: Option<(usize, usize, usize, usize)> = None;
        for y in 0..self.height {
            for x in 0..self.width {
                if close(self.at(x, y), color) {
                    let b = bounds.get_or_insert((x, y, x, y));
                    *b = (b.0.min(x), b.1.min(y), b.2.max(x), b.3.max(y));
                }
            }
        }
        bounds
    }
}

/// Whether two colours are the same within 4 in every channel.
pub fn close(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(a, b)| a.abs_diff(b) <= 4)
}

impl Picture {
    /// How many pixels have (about) this colour.
    pub fn count_of(&self, color: [u8; 3]) -> usize {
        self.rgb.iter().filter(|p| close(**p, color)).count()
    }
}

impl Xvfb {
    /// A command running `program` on this display with Mesa's lavapipe, plain log output and
    /// its output captured (for [`wait_ok`]).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        command
            .env("DISPLAY", &self.display)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .env_remove("WAYLAND_DISPLAY")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(icd) = lavapipe() {
            command.env("VK_ICD_FILENAMES", icd);
        }
        command
    }
}

/// Waits for `child` and fails the test, with its output, unless it exited successfully.
pub fn wait_ok(child: Child, what: &str) {
    let output = child.wait_with_output().expect("waiting for the program");
    assert!(
        output.status.success(),
        "{what}: exit status {:?}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
