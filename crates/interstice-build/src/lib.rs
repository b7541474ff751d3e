//! Builds Interstice module crates to WebAssembly by running cargo.
//!
//! The CLI's build script uses it to embed the example modules, tests use it to build fixture
//! modules, and `interstice publish` will use it for user projects. Builds go to their own
//! target directory so that a nested cargo never waits on the lock of the cargo that runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use thiserror::Error;

/// The target modules are built for.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// The cargo profile modules are built with. Its settings are passed to cargo on the command
/// line ([`PROFILE_SETTINGS`]), so any crate builds with it, whether or not its `Cargo.toml`
/// defines it (the workspace's and `interstice init`'s do, with the same settings).
pub const PROFILE: &str = "wasm-module";

/// The [`PROFILE`]'s settings: a release build, small, without debug information.
pub const PROFILE_SETTINGS: [(&str, &str); 5] = [
    ("inherits", "\"release\""),
    ("debug", "false"),
    ("strip", "true"),
    ("codegen-units", "16"),
    ("incremental", "true"),
];

/// Why a module build failed.
#[derive(Debug, Error)]
pub enum BuildError {
    /// cargo could not be started.
    #[error("cannot run `{cargo}`: {source}")]
    Spawn {
        /// The cargo binary.
        cargo: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// cargo ran and failed; its own messages (shown above this one) say why.
    #[error(
        "cargo could not build {packages} for {WASM_TARGET} ({status}): see its messages above"
    )]
    Cargo {
        /// What was built.
        packages: String,
        /// cargo's exit status.
        status: String,
    },
    /// cargo failed, and the toolchain it used has no standard library for the wasm target.
    #[error(
        "cargo could not build {packages}: the Rust toolchain used in {dir} ({rustc}) has no \
         {WASM_TARGET} target; add it with `rustup target add {WASM_TARGET}`"
    )]
    TargetMissing {
        /// What was built.
        packages: String,
        /// Where cargo ran (its toolchain file, if any, chose the toolchain).
        dir: PathBuf,
        /// `rustc --version` there.
        rustc: String,
    },
    /// cargo succeeded but a module file is missing.
    #[error("cargo built {package} but {path} does not exist")]
    Missing {
        /// The package.
        package: String,
        /// Where its wasm should be.
        path: PathBuf,
    },
}

/// One cargo invocation building several module packages of a workspace.
#[derive(Debug, Clone)]
pub struct ModuleBuild {
    manifest: PathBuf,
    packages: Vec<String>,
    target_dir: PathBuf,
    quiet: bool,
}

impl ModuleBuild {
    /// Builds packages of the workspace (or package) whose `Cargo.toml` is `manifest`, into
    /// `target_dir`. Relative paths are taken from the current directory, now: cargo runs in
    /// the manifest's directory (for its `rust-toolchain.toml`), where they would mean
    /// something else.
    pub fn new(manifest: impl Into<PathBuf>, target_dir: impl Into<PathBuf>) -> Self {
        let absolute = |path: PathBuf| std::path::absolute(&path).unwrap_or(path);
        ModuleBuild {
            manifest: absolute(manifest.into()),
            packages: Vec::new(),
            target_dir: absolute(target_dir.into()),
            quiet: false,
        }
    }

    /// Adds a package to build.
    pub fn package(mut self, name: impl Into<String>) -> Self {
        self.packages.push(name.into());
        self
    }

    /// Hides cargo's progress output (errors are still shown).
    pub fn quiet(mut self, quiet: bool) -> Self {
        self.quiet = quiet;
        self
    }

    /// Where a package's wasm file lands.
    pub fn output(&self, package: &str) -> PathBuf {
        self.target_dir
            .join(WASM_TARGET)
            .join(PROFILE)
            .join(format!("{}.wasm", package.replace('-', "_")))
    }

    /// Runs cargo and returns each package's wasm path, in the order they were added.
    pub fn run(&self) -> Result<Vec<PathBuf>, BuildError> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(&cargo);
        cmd.arg("build")
            .arg("--manifest-path")
            .arg(&self.manifest)
            .arg("--target")
            .arg(WASM_TARGET)
            .arg("--profile")
            .arg(PROFILE)
            .arg("--target-dir")
            .arg(&self.target_dir);
        for (key, value) in PROFILE_SETTINGS {
            cmd.arg("--config")
                .arg(format!("profile.{PROFILE}.{key}={value}"));
        }
        for p in &self.packages {
            cmd.arg("-p").arg(p);
        }
        if self.quiet {
            cmd.arg("--quiet");
        }
        // Settings of an outer cargo (a build script, clippy, coverage) must not leak into the
        // wasm build: they target the host, or wrap rustc with tools that do not apply.
        for var in [
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_BUILD_RUSTFLAGS",
            "RUSTC_WORKSPACE_WRAPPER",
            "RUSTC_WRAPPER",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
            "CARGO_MAKEFLAGS",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_ENCODED_RUSTDOCFLAGS",
        ] {
            cmd.env_remove(var);
        }
        // The project's own `rust-toolchain.toml` applies, wherever this runs from.
        let dir = self
            .manifest
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map(Path::to_path_buf);
        if let Some(dir) = &dir {
            cmd.current_dir(dir);
        }
        cmd.stdin(Stdio::null());
        let status = cmd.status().map_err(|source| BuildError::Spawn {
            cargo: cargo.clone(),
            source,
        })?;
        if !status.success() {
            let packages = self.packages.join(", ");
            let dir = dir.unwrap_or_else(|| PathBuf::from("."));
            return Err(match wasm_target_of(&dir) {
                Some((false, rustc)) => BuildError::TargetMissing {
                    packages,
                    dir,
                    rustc,
                },
                _ => BuildError::Cargo {
                    packages,
                    status: status.to_string(),
                },
            });
        }
        self.packages
            .iter()
            .map(|p| {
                let path = self.output(p);
                if path.is_file() {
                    Ok(path)
                } else {
                    Err(BuildError::Missing {
                        package: p.clone(),
                        path,
                    })
                }
            })
            .collect()
    }
}

/// Whether the toolchain that runs in `dir` has the wasm target's standard library, and its
/// `rustc --version`; `None` when that cannot be told.
fn wasm_target_of(dir: &Path) -> Option<(bool, String)> {
    let rustc = |args: &[&str]| -> Option<String> {
        let out = Command::new("rustc")
            .args(args)
            .current_dir(dir)
            .env_remove("RUSTC_WRAPPER")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let version = rustc(&["--version"])?;
    let sysroot = rustc(&["--print", "sysroot"])?;
    let present = Path::new(&sysroot)
        .join("lib")
        .join("rustlib")
        .join(WASM_TARGET)
        .is_dir();
    Some((present, version))
}

/// The workspace root above a crate directory: the nearest ancestor whose `Cargo.toml` has a
/// `[workspace]` table.
pub fn workspace_root(start: &Path) -> Option<PathBuf> {
    start.ancestors().find_map(|dir| {
        let manifest = dir.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).ok()?;
        text.lines()
            .any(|l| l.trim() == "[workspace]")
            .then(|| dir.to_path_buf())
    })
}

/// A target directory for wasm builds next to the host build's, derived from a build
/// script's `OUT_DIR` (`<target>/<profile>/build/<pkg>/out`) or a test's
/// `CARGO_TARGET_TMPDIR` (`<target>/tmp`).
pub fn wasm_target_dir_near(dir: &Path) -> PathBuf {
    let target = dir
        .ancestors()
        .find(|a| a.join("CACHEDIR.TAG").is_file())
        .unwrap_or(dir);
    target.join("interstice-wasm")
}

/// The wasm of module packages of this workspace, for the test or bench that calls it: built
/// next to its host build (its `CARGO_TARGET_TMPDIR`) and read, in the order given. Panics with
/// the build's own message when a package does not build: what a test wants.
///
/// ```ignore
/// let [hello, kitchen] = interstice_build::test_modules!["hello", "kitchen"]
///     .try_into()
///     .unwrap();
/// ```
#[macro_export]
macro_rules! test_modules {
    ($($package:expr),+ $(,)?) => {
        $crate::read_modules($crate::build_workspace_modules(
            ::std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
            ::std::path::Path::new(env!("CARGO_TARGET_TMPDIR")),
            &[$($package),+],
        ))
    };
}

/// The bytes of the modules a build made, in order ([`test_modules!`]'s second half).
///
/// # Panics
///
/// When the build failed or a built file cannot be read: tests and benches stop there.
pub fn read_modules(built: Result<Vec<PathBuf>, BuildError>) -> Vec<Vec<u8>> {
    let paths = built.unwrap_or_else(|e| panic!("building the modules: {e}"));
    paths
        .iter()
        .map(|path| {
            std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        })
        .collect()
}

/// Builds module packages of the workspace that contains `crate_dir`, next to the host build
/// whose scratch directory is `target_tmpdir` (a test's or bench's `CARGO_TARGET_TMPDIR`), and
/// returns their wasm paths in order. What tests and benches call.
pub fn build_workspace_modules(
    crate_dir: &Path,
    target_tmpdir: &Path,
    packages: &[&str],
) -> Result<Vec<PathBuf>, BuildError> {
    let root = workspace_root(crate_dir).ok_or_else(|| BuildError::Missing {
        package: packages.join(", "),
        path: crate_dir.join("Cargo.toml"),
    })?;
    let mut build =
        ModuleBuild::new(root.join("Cargo.toml"), wasm_target_dir_near(target_tmpdir)).quiet(true);
    for p in packages {
        build = build.package(*p);
    }
    build.run()
}

/// For a build script: builds module packages of the enclosing workspace and copies each to
/// `$OUT_DIR/<package>.wasm` (for `include_bytes!(concat!(env!("OUT_DIR"), "/hello.wasm"))`),
/// telling cargo to run the script again when the modules or the SDK change. Panics with the
/// reason when it cannot: a build script has no other way to fail.
pub fn embed_workspace_modules(packages: &[&str]) {
    let var = |name: &str| {
        std::env::var(name)
            .map(PathBuf::from)
            .unwrap_or_else(|_| panic!("cargo sets {name} for build scripts"))
    };
    let (manifest_dir, out_dir) = (var("CARGO_MANIFEST_DIR"), var("OUT_DIR"));
    let Some(root) = workspace_root(&manifest_dir) else {
        panic!(
            "{} must be built from the Interstice workspace (it embeds modules from it)",
            manifest_dir.display()
        );
    };
    let sdk = [
        "crates/interstice-abi",
        "crates/interstice-sdk",
        "crates/interstice-sdk-macros",
        "Cargo.toml",
        "Cargo.lock",
    ];
    for path in sdk {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    let mut build = ModuleBuild::new(root.join("Cargo.toml"), wasm_target_dir_near(&out_dir));
    for package in packages {
        let modules = root.join("modules");
        if let Some(dir) = [
            modules.join(package),
            modules.join("fixtures").join(package),
        ]
        .into_iter()
        .find(|d| d.is_dir())
        {
            println!("cargo:rerun-if-changed={}", dir.display());
        }
        build = build.package(*package);
    }
    let paths = match build.run() {
        Ok(paths) => paths,
        Err(e) => panic!("cannot build {}: {e}", packages.join(", ")),
    };
    for (package, path) in packages.iter().zip(paths) {
        let dest = out_dir.join(format!("{package}.wasm"));
        if let Err(e) = std::fs::copy(&path, &dest) {
            panic!("cannot copy {} to {}: {e}", path.display(), dest.display());
        }
    }
}
